"""The contract every ledger store meets, run against PostgreSQL and SQLite alike.

Each test opens a fresh ledger: a new schema on the test PostgreSQL server (dropped
afterwards) or a new SQLite file in a temporary folder. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import asyncpg
import msgspec
import pytest

from adapters.ledger import open_store
from ledger_support import ledger, row_counts, settle_request, sql_in_transaction, sql_rows, toy_compute
from settlement.errors import ErrorCode, SettlementError
from settlement.store import AccumulatorDelta, AdjustmentRequest, CancelRequest, DepositRequest, Posting

STORES = ("sqlite", pytest.param("pg", marks=pytest.mark.postgres))
DATABASE_ERRORS = (asyncpg.PostgresError, sqlite3.Error)


def run(coro):
    return asyncio.run(coro)


def fund(psn_no: str, amount: int, msgid: str = "2024") -> DepositRequest:
    return DepositRequest(msgid=f"{msgid}:{psn_no}", psn_no=psn_no, insuplc_admdvs="110100", insutype="310", amount=amount, period="2024")


def cancel_of(record, msgid: str = "CANCEL1", setl_time: str = "2024-06-02 09:00:00") -> CancelRequest:
    return CancelRequest(
        fixmedins_code=record.fixmedins_code, msgid=msgid, setl_id=record.setl_id, mdtrt_id=record.mdtrt_id,
        psn_no=record.psn_no, setl_time=setl_time,
    )


@pytest.mark.parametrize("kind", STORES)
def test_settle_posts_balanced_lines_and_moves_accumulators(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 5_000))
            record = await store.settle(settle_request(1), toy_compute(20_000))

            assert record.outputs.hifp_pay == 14_000
            assert record.outputs.acct_pay == 5_000
            assert record.outputs.psn_cash_pay == 1_000
            assert record.outputs.balc == 0
            assert sum(p.debit for p in record.postings) == sum(p.credit for p in record.postings) == 20_000
            assert {p.account for p in record.postings} == {
                "fund:110100:310:310100", "personal:P0001", "psn_cash:110100:310",
                "medins_payable:H11010100001", "medins_cash:H11010100001",
            }
            assert [row.fund_pay_type for row in record.setldetail] == ["310100", "310200"]
            assert record.accumulators_before["acct_balc"] == 5_000
            assert record.accumulators_after["op_fund_paid"] == 14_000
            assert record.rule_version == "toy-1"
            assert record.feedetl_sns == ("1-1", "1-2")

            accumulators = await store.accumulators("P0001", 2024)
            assert accumulators["op_fund_paid"] == 14_000
            assert accumulators["acct_balc"] == 0
            assert await store.account_balance("medins_payable:H11010100001") == 19_000
            assert await store.account_balance("medins_cash:H11010100001") == 1_000
            assert await store.account_balance("fund:110100:310:310100") == 14_000
            assert await store.get_settlement(record.setl_id) == record
            assert await store.get_by_msgid(record.fixmedins_code, record.msgid) == record
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_retry_returns_stored_record_and_writes_nothing(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            first = await store.settle(settle_request(1), toy_compute(10_000))
            counts = await row_counts(store)

            same_msgid = await store.settle(settle_request(1, setl_time="2024-06-01 10:00:05"), toy_compute(10_000))
            new_msgid_same_batch = await store.settle(settle_request(1, msgid="RETRY-NEW-MSGID"), toy_compute(10_000))
            concurrent = await asyncio.gather(*(store.settle(settle_request(1), toy_compute(10_000)) for _ in range(5)))

            assert same_msgid == first
            assert new_msgid_same_batch == first
            assert all(record == first for record in concurrent)
            assert await row_counts(store) == counts

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_same_key_with_other_content_is_rejected(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            first = await store.settle(settle_request(1), toy_compute(10_000))
            counts = await row_counts(store)

            with pytest.raises(SettlementError) as reused:
                await store.settle(settle_request(1, chrg_bchno="OTHER-BATCH"), toy_compute(10_000))
            assert reused.value.code is ErrorCode.MSGID_REUSED

            with pytest.raises(SettlementError) as settled:
                await store.settle(settle_request(1, msgid="NEW", feedetl_sns=("1-1",)), toy_compute(10_000))
            assert settled.value.code is ErrorCode.ALREADY_SETTLED
            assert first.setl_id in settled.value.message_en

            # The same two requests queued together are also distinguished inside one batch.
            results = await asyncio.gather(
                store.settle(settle_request(2), toy_compute(10_000)),
                store.settle(settle_request(2, chrg_bchno="OTHER-BATCH"), toy_compute(10_000)),
                return_exceptions=True,
            )
            assert results[0].chrg_bchno == settle_request(2).chrg_bchno
            assert isinstance(results[1], SettlementError) and results[1].code is ErrorCode.MSGID_REUSED
            assert (await row_counts(store))["ledger_settlements"] == counts["ledger_settlements"] + 1

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_database_rejects_unbalanced_transaction(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 1_000))
            account_id = (await sql_rows(store, "SELECT account_id FROM ledger_accounts WHERE account_key = 'personal:P0001'"))[0][0]
            header = (
                "INSERT INTO journal_transactions (txn_id, kind, origin, msgid, request_digest) VALUES (?, 'adjustment', 'test', ?, 'x')",
            )
            posting = "INSERT INTO journal_postings (txn_id, seq, account_id, debit, credit) VALUES (?, ?, ?, ?, ?)"

            with pytest.raises(DATABASE_ERRORS):
                await sql_in_transaction(store, [(header[0], (900_001, "U1")), (posting, (900_001, 0, account_id, 100, 0))])
            with pytest.raises(DATABASE_ERRORS):
                await sql_in_transaction(store, [(posting, (1, 5, account_id, 100, 0)), (posting, (1, 6, account_id, 0, 100))])
            assert (await sql_rows(store, "SELECT count(*) FROM journal_transactions WHERE txn_id = 900001"))[0][0] == 0

            # SQLite has no commit-time trigger: a writer closes its transactions, and closing checks the balance.
            close = [("DELETE FROM journal_open_transactions WHERE txn_id = ?", (900_003,))] if kind == "sqlite" else []
            with pytest.raises(DATABASE_ERRORS):
                await sql_in_transaction(store, [(header[0], (900_003, "U3")), (posting, (900_003, 0, account_id, 100, 0)), *close])

            # A balanced one written line by line commits, so the check runs at commit, not per line.
            close = [("DELETE FROM journal_open_transactions WHERE txn_id = ?", (900_002,))] if kind == "sqlite" else []
            await sql_in_transaction(
                store,
                [(header[0], (900_002, "B1")), (posting, (900_002, 0, account_id, 100, 0)), (posting, (900_002, 1, account_id, 0, 100)), *close],
            )
            assert (await sql_rows(store, "SELECT count(*) FROM journal_postings WHERE txn_id = 900002"))[0][0] == 2

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_database_rejects_update_and_delete_of_journal_rows(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 1_000))
            record = await store.settle(settle_request(1), toy_compute(10_000))
            statements = [
                "UPDATE journal_postings SET debit = debit + 1 WHERE txn_id = ?",
                "DELETE FROM journal_postings WHERE txn_id = ?",
                "UPDATE journal_transactions SET msgid = 'changed' WHERE txn_id = ?",
                "DELETE FROM journal_transactions WHERE txn_id = ?",
                "UPDATE ledger_settlements SET medfee_sumamt = 0 WHERE txn_id = ?",
                "DELETE FROM ledger_settlements WHERE txn_id = ?",
                "UPDATE journal_accumulator_deltas SET delta = 1 WHERE txn_id = ?",
                "DELETE FROM journal_accumulator_deltas WHERE txn_id = ?",
            ]
            for statement in statements:
                with pytest.raises(DATABASE_ERRORS):
                    await sql_in_transaction(store, [(statement, (record.txn_id,))])
            assert await store.get_settlement(record.setl_id) == record
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_cancel_reverses_once_and_restores_account(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 26_000))
            original = await store.settle(settle_request(1), toy_compute(50_000))
            later = await store.settle(settle_request(2), toy_compute(10_000))

            reversal = await store.cancel(cancel_of(original))
            assert reversal.kind == "cancel"
            assert reversal.original_setl_id == original.setl_id
            assert reversal.outputs.medfee_sumamt == -50_000
            assert reversal.outputs.acct_pay == -original.outputs.acct_pay
            assert reversal.outputs.pool_prop_selfpay == original.outputs.pool_prop_selfpay
            assert reversal.setl_id != original.setl_id
            assert [(p.account, p.debit, p.credit) for p in reversal.postings] == [(p.account, p.credit, p.debit) for p in original.postings]

            # Moves back exactly what the original added; the later settlement keeps its result.
            accumulators = await store.accumulators("P0001", 2024)
            assert accumulators["op_fund_paid"] == later.accumulators_after["op_fund_paid"] - original.outputs.hifp_pay
            assert accumulators["acct_balc"] == later.accumulators_after["acct_balc"] + original.outputs.acct_pay
            assert reversal.outputs.balc == accumulators["acct_balc"]

            assert await store.cancel(cancel_of(original)) == reversal
            with pytest.raises(SettlementError) as twice:
                await store.cancel(cancel_of(original, msgid="CANCEL2"))
            assert twice.value.code is ErrorCode.ALREADY_CANCELLED
            with pytest.raises(SettlementError) as unknown:
                await store.cancel(msgspec.structs.replace(cancel_of(original, msgid="CANCEL3"), setl_id="NOPE"))
            assert unknown.value.code is ErrorCode.UNKNOWN_SETTLEMENT
            with pytest.raises(SettlementError) as other_institution:
                await store.cancel(msgspec.structs.replace(cancel_of(original, msgid="CANCEL5"), fixmedins_code="H99"))
            assert other_institution.value.code is ErrorCode.UNKNOWN_SETTLEMENT
            with pytest.raises(SettlementError) as cancel_of_cancel:
                await store.cancel(cancel_of(reversal, msgid="CANCEL4"))
            assert cancel_of_cancel.value.code is ErrorCode.UNKNOWN_SETTLEMENT

            assert await store.live_settlement(original.fixmedins_code, original.mdtrt_id, original.chrg_bchno) is None
            again = await store.settle(settle_request(1, msgid="RESETTLE"), toy_compute(50_000))
            assert again.batch_attempt == 1
            assert await store.live_settlement(original.fixmedins_code, original.mdtrt_id, original.chrg_bchno) == again
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_cancel_in_same_batch_as_settle(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 3_000))
            first = await store.settle(settle_request(1), toy_compute(10_000))
            settled, cancelled = await asyncio.gather(
                store.settle(settle_request(2), toy_compute(10_000)),
                store.cancel(cancel_of(first)),
            )
            assert settled.accumulators_before["acct_balc"] == 0
            assert cancelled.accumulators_after["acct_balc"] == 3_000
            assert (await store.accumulators("P0001", 2024))["acct_balc"] == 3_000
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_deposit_withdrawal_and_insufficient_balance(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            entry = await store.deposit(fund("P0001", 12_000))
            assert entry.postings == (Posting("personal_funding:110100:310", debit=12_000), Posting("personal:P0001", credit=12_000))
            assert await store.deposit(fund("P0001", 12_000)) == entry

            await store.deposit(fund("P0001", -2_000, msgid="2024-refund"))
            assert await store.account_balance("personal:P0001") == 10_000
            with pytest.raises(SettlementError) as short:
                await store.deposit(fund("P0001", -10_001, msgid="too-much"))
            assert short.value.code is ErrorCode.INSUFFICIENT_BALANCE
            with pytest.raises(SettlementError) as changed:
                await store.deposit(fund("P0001", 1, msgid="2024"))
            assert changed.value.code is ErrorCode.MSGID_REUSED
            assert await store.account_balance("personal_funding:110100:310") == 10_000
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_adjustment_must_balance_and_moves_counters(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            with pytest.raises(SettlementError) as unbalanced:
                await store.adjust(AdjustmentRequest(msgid="A1", reason="opening", postings=(Posting("personal:P0001", credit=100),)))
            assert unbalanced.value.code is ErrorCode.UNBALANCED_TRANSACTION
            with pytest.raises(SettlementError) as bad_account:
                await store.adjust(AdjustmentRequest(msgid="A2", reason="x", postings=(Posting("nosuch:1", debit=1), Posting("personal:P1", credit=1))))
            assert bad_account.value.code is ErrorCode.UNKNOWN_ACCOUNT

            opening = AdjustmentRequest(
                msgid="A3",
                reason="opening balances migrated from the old system",
                postings=(Posting("personal_funding:110100:310", debit=700), Posting("personal:P0001", credit=700)),
                accumulator_deltas=(AccumulatorDelta("P0001", 2024, "op_dedc_used", 150_000),),
            )
            entry = await store.adjust(opening)
            assert entry.kind == "adjustment"
            accumulators = await store.accumulators("P0001", 2024)
            assert accumulators["op_dedc_used"] == 150_000
            assert accumulators["acct_balc"] == 700
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_failed_compute_answers_only_its_caller(kind, tmp_path):
    def refusing(before):
        raise SettlementError(ErrorCode.NO_SCHEME, field="11", value="toy")

    def inconsistent(before):
        # Claims to leave more in the account than the ledger holds.
        plan = toy_compute(10_000)(before)
        wrong = dict(plan.result.accumulators_after, acct_balc=plan.result.accumulators_after["acct_balc"] + 1)
        return msgspec.structs.replace(plan, result=msgspec.structs.replace(plan.result, accumulators_after=wrong))

    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 1_000))
            results = await asyncio.gather(
                store.settle(settle_request(1), toy_compute(10_000)),
                store.settle(settle_request(2), refusing),
                store.settle(settle_request(3), inconsistent),
                store.settle(settle_request(4), toy_compute(10_000)),
                return_exceptions=True,
            )
            assert results[0].accumulators_before["acct_balc"] == 1_000
            assert results[1].code is ErrorCode.NO_SCHEME
            assert results[2].code is ErrorCode.PLAN_INCONSISTENT
            assert results[3].accumulators_before["acct_balc"] == 0
            assert (await row_counts(store))["ledger_settlements"] == 2
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_family_account_pays_mutual_aid(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("PARENT", 2_000))
            request = settle_request(1, psn_no="CHILD", insutype="390", family_psn_no="PARENT")
            record = await store.settle(request, toy_compute(10_000, mutual_aid=True))
            assert record.outputs.acct_mulaid_pay == 2_000
            assert record.outputs.acct_pay == 2_000
            assert record.accumulators_before["family_acct_balc"] == 2_000
            assert Posting("personal:PARENT", debit=2_000) in record.postings
            assert [row.fund_pay_type for row in record.setldetail] == ["390100", "310200"]
            assert await store.account_balance("personal:PARENT") == 0

            await store.cancel(cancel_of(record))
            assert await store.account_balance("personal:PARENT") == 2_000
            assert (await store.verify()).ok

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_one_person_concurrent_settlements_respect_cap_and_account(kind, tmp_path):
    cap, balance, amount, count = 50_000, 10_000, 1_000, 200

    async def scenario():
        async with ledger(kind, tmp_path) as store, ledger_twin(store) as twin:
            await store.deposit(fund("P0001", balance))
            stores = (store, twin)
            requests = [settle_request(n) for n in range(count)]
            records = await asyncio.wait_for(
                asyncio.gather(*(stores[n % 2].settle(request, toy_compute(amount, cap=cap)) for n, request in enumerate(requests))),
                timeout=120,
            )

            fund_paid = sum(r.outputs.hifp_pay for r in records)
            account_paid = sum(r.outputs.acct_pay for r in records)
            assert fund_paid == cap
            assert account_paid == balance
            accumulators = await store.accumulators("P0001", 2024)
            assert accumulators["op_fund_paid"] == cap
            assert accumulators["acct_balc"] == 0
            assert all(r.accumulators_after["acct_balc"] >= 0 for r in records)
            for request, record in zip(requests, records, strict=True):
                assert await store.get_by_msgid(request.fixmedins_code, request.msgid) == record
            report = await store.verify()
            assert report.ok, report.differences
            assert report.counts["settlements"] == count

    run(scenario())


@contextlib.asynccontextmanager
async def ledger_twin(store):
    """Yield a second store object on the same ledger, so that two pools or connections contend for the person."""
    other = await open_store(store.test_dsn)
    try:
        yield other
    finally:
        await other.close()


@pytest.mark.parametrize("kind", STORES)
def test_verify_reports_tampered_balance_and_accumulator(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 5_000))
            await store.settle(settle_request(1), toy_compute(20_000))
            clean = await store.verify()
            assert clean.ok
            assert clean.counts["postings"] > 0

            await sql_in_transaction(store, [("UPDATE ledger_accounts SET credits_posted = credits_posted + 100 WHERE account_key = ?", ("personal:P0001",))])
            await sql_in_transaction(store, [("UPDATE ledger_accumulators SET value = value - 1 WHERE psn_no = ? AND acc_key = ?", ("P0001", "op_fund_paid"))])
            report = await store.verify(lang="en")
            assert not report.ok
            assert report.difference_count == 2
            assert any("personal:P0001" in line for line in report.differences)
            assert any("op_fund_paid" in line and "P0001" in line for line in report.differences)

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_queries_for_server_and_reconciliation(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await store.deposit(fund("P0001", 1_000))
            same_visit = dict(mdtrt_id="MDTRT-A")
            first = await store.settle(settle_request(1, **same_visit, feedetl_sns=("a", "b")), toy_compute(10_000))
            second = await store.settle(settle_request(2, **same_visit, feedetl_sns=("c",)), toy_compute(4_000))
            await store.settle(settle_request(3, setl_time="2024-06-03 08:00:00"), toy_compute(2_000))
            await store.cancel(cancel_of(first, setl_time="2024-06-02 09:00:00"))

            assert await store.covered_fee_details("H11010100001", "MDTRT-A") == {"c": second.setl_id}
            day_one = await store.settlements_in_period("H11010100001", "2024-06-01", "2024-06-01")
            assert [s.kind for s in day_one] == ["settle", "settle"]
            period = await store.settlements_in_period("H11010100001", "2024-06-01", "2024-06-02")
            assert [s.kind for s in period] == ["settle", "settle", "cancel"]
            assert period[2].medfee_sumamt == -10_000

            totals = await store.reconciliation_totals("H11010100001", "2024-06-01", "2024-06-02", "310", "11")
            assert totals.count == 3
            assert totals.medfee_sumamt == 4_000
            assert totals.fund_pay_sumamt == second.outputs.fund_pay_sumamt
            settled_only = await store.reconciliation_totals("H11010100001", "2024-06-01", "2024-06-02", "310", "11", include_cancels=False)
            assert settled_only.count == 2
            assert settled_only.medfee_sumamt == 14_000

    run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_invalid_request_fails_alone(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            results = await asyncio.gather(
                store.settle(settle_request(1), toy_compute(1_000)),
                store.settle(settle_request(2, setl_time="2024/06/01"), toy_compute(1_000)),
                store.settle(settle_request(3, psn_no=""), toy_compute(1_000)),
                store.settle(settle_request(4, psn_no="P:1"), toy_compute(1_000)),
                store.settle(settle_request(5), toy_compute(1_000)),
                return_exceptions=True,
            )
            assert results[0].msgid == settle_request(1).msgid
            assert results[1].code is ErrorCode.INVALID_FIELD
            assert results[1].field == "setl_time"
            assert results[2].code is ErrorCode.REQUIRED_FIELD
            assert results[3].code is ErrorCode.INVALID_FIELD
            assert results[4].msgid == settle_request(5).msgid
            assert (await store.verify()).ok

    run(scenario())
