"""The ledger records real kernel results: claim vectors settled by ``settlement.engine`` through both stores.

The person's starting state comes from the vector: a deposit for the account and an
adjustment for the other counters. The store then passes its committed accumulators to
the kernel, and the stored outputs and counters must equal the vector's expectations.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec
import pytest

from ledger_support import ledger, settle_request
from settlement import engine
from settlement.claimfile import read_claim_file
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules
from settlement.store import AccumulatorDelta, AdjustmentRequest, CancelRequest, DepositRequest, Posting, SettlementPlan

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = Path(os.environ.get("SETTLEMENT_EXAMPLES", REPO.parent / "shared" / "reference" / "examples"))
STORES = ("sqlite", pytest.param("pg", marks=pytest.mark.postgres))


@pytest.fixture(scope="module")
def rules():
    return load_rules(bundled_rules_dir())


def kernel_compute(claim):
    def compute(before: dict[str, int]) -> SettlementPlan:
        result = engine.settle(msgspec.structs.replace(claim, accumulators=dict(before)))
        return SettlementPlan(result=result, rule_version=claim.params.policy_id, claim=claim)

    return compute


async def seed_person(store, psn_no: str, year: int, accumulators: dict[str, int]) -> None:
    """Give the person the vector's starting account balance and counters."""
    if accumulators.get("acct_balc"):
        await store.deposit(DepositRequest(msgid=f"seed:{psn_no}", psn_no=psn_no, insuplc_admdvs="110100", insutype="310", amount=accumulators["acct_balc"], period=str(year)))
    deltas = tuple(
        AccumulatorDelta(psn_no, year, key, value)
        for key, value in accumulators.items()
        if key not in ("acct_balc", "family_acct_balc") and value
    )
    if deltas:
        await store.adjust(AdjustmentRequest(msgid=f"seed-counters:{psn_no}", reason="counters before the vector", accumulator_deltas=deltas))


@pytest.mark.parametrize("kind", STORES)
def test_kernel_settlement_is_recorded_as_computed(kind, tmp_path, rules):
    vector = read_claim_file(EXAMPLES / "ex03-mixed-abc-deductible-crossed.json", rules)
    case = vector.case

    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await seed_person(store, "P0003", case.setl_date.year, dict(case.claim.accumulators))
            request = settle_request(3, psn_no="P0003", setl_time=f"{case.setl_date} 10:00:00", acct_used=case.claim.acct_used)
            record = await store.settle(request, kernel_compute(case.claim))

            for field, value in case.expected_outputs.items():
                assert getattr(record.outputs, field) == value, field
            stored = await store.accumulators("P0003", case.setl_date.year)
            for key, value in case.expected_accumulators_after.items():
                assert stored[key] == value, key
            assert record.claim is not None
            assert engine.settle(msgspec.structs.replace(record.claim, accumulators=record.accumulators_before)) == record.result
            assert (await store.verify()).ok

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_kernel_cancel_is_recorded_as_exact_reversal(kind, tmp_path, rules):
    vector = read_claim_file(EXAMPLES / "ex23-cancel-full-reversal.json", rules)
    case = vector.case

    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await seed_person(store, "P0023", case.setl_date.year, dict(case.claim.accumulators))
            request = settle_request(23, psn_no="P0023", setl_time=f"{case.setl_date} 10:00:00")
            original = await store.settle(request, kernel_compute(case.claim))
            cancel = CancelRequest(
                fixmedins_code=original.fixmedins_code, msgid="CANCEL23", setl_id=original.setl_id,
                mdtrt_id=original.mdtrt_id, psn_no="P0023", setl_time=f"{case.setl_date} 11:00:00",
            )
            reversal = await store.cancel(cancel, lambda stored, now: engine.cancel(stored.result, stored.accumulators_before, now))

            for field, value in vector.expected_outputs["outputs"].items():
                assert getattr(reversal.outputs, field) == value, field
            stored = await store.accumulators("P0023", case.setl_date.year)
            for key, value in vector.expected_accumulators_after.items():
                assert stored[key] == value, key
            assert (await store.verify()).ok

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_kernel_mutual_aid_debits_relative_account(kind, tmp_path, rules):
    vector = read_claim_file(EXAMPLES / "ex28-resident-child-family-mutual-aid.json", rules)
    case = vector.case
    family_balance = case.claim.accumulators["family_acct_balc"]

    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await seed_person(store, "CHILD28", case.setl_date.year, dict(case.claim.accumulators))
            await store.deposit(DepositRequest(msgid="seed:MOTHER28", psn_no="MOTHER28", insuplc_admdvs="110100", insutype="310", amount=family_balance, period="2024"))
            request = settle_request(
                28, psn_no="CHILD28", insutype="390", family_psn_no="MOTHER28", setl_time=f"{case.setl_date} 10:00:00"
            )
            record = await store.settle(request, kernel_compute(case.claim))

            for field, value in case.expected_outputs.items():
                assert getattr(record.outputs, field) == value, field
            assert await store.account_balance("personal:MOTHER28") == vector.expected_family_account_balc_after
            assert Posting("personal:MOTHER28", debit=record.outputs.acct_mulaid_pay) in record.postings
            assert (await store.verify()).ok

    asyncio.run(scenario())
