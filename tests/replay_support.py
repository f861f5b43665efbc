"""Ledgers for the replay tests: every shared claim vector and a generated history, settled through the store.

A vector's person starts from the vector's accumulators (a deposit for the account and
an adjustment for the counters), as the ledger kernel tests do. Cancel vectors are
settled and then cancelled; the partial refund is cancelled and its kept lines settled
again; the mutual-aid vector draws on a relative's funded account.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import msgspec

from adapters.ledger import migrate_ledger, open_store
from bench.replay_workload import apply_history, generate_history, load_history_rules
from settlement import engine
from settlement.claimfile import read_claim_file
from settlement.store import (
    AccumulatorDelta,
    AdjustmentRequest,
    CancelRequest,
    DepositRequest,
    SettlementPlan,
    SettlementRequest,
)
from vector_files import vector_paths

__all__ = ["build_ledger", "copy_ledger", "sqlite_path"]


def _compute(claim, rule_version: str):
    def compute(before: dict[str, int]) -> SettlementPlan:
        settled = msgspec.structs.replace(claim, accumulators=dict(before))
        return SettlementPlan(result=engine.settle(settled), rule_version=rule_version, claim=settled)

    return compute


def _request(number: int, psn_no: str, setl_time: str, claim, *, insutype: str = "310", family: str | None = None) -> SettlementRequest:
    return SettlementRequest(
        fixmedins_code="H11010199999", msgid=f"VEC{number:06d}", mdtrt_id=f"VECV{number:06d}", chrg_bchno=f"VECB{number:06d}",
        psn_no=psn_no, insuplc_admdvs="110100", insutype=insutype, med_type="11", clr_type="11", setl_time=setl_time,
        acct_used=claim.acct_used, feedetl_sns=tuple(line.feedetl_sn for line in claim.lines), family_psn_no=family,
        clr_optins="110100",
    )


async def _seed(store, psn_no: str, year: int, insutype: str, accumulators: dict[str, int]) -> None:
    if accumulators.get("acct_balc"):
        await store.deposit(DepositRequest(msgid=f"seed:{psn_no}", psn_no=psn_no, insuplc_admdvs="110100", insutype=insutype,
                                           amount=accumulators["acct_balc"], period=str(year)))
    deltas = tuple(
        AccumulatorDelta(psn_no, year, key, value)
        for key, value in accumulators.items()
        if key not in ("acct_balc", "family_acct_balc") and value
    )
    if deltas:
        await store.adjust(AdjustmentRequest(msgid=f"seed-counters:{psn_no}", reason="counters before the vector", accumulator_deltas=deltas))


async def _settle_vectors(store, rules) -> int:
    """Settle every shared vector; return the number of settlement and cancel records written."""
    written = 0
    for number, path in enumerate(vector_paths(), start=1):
        vector = read_claim_file(path, rules)
        case = vector.case
        claim = case.claim
        psn_no = f"VEC-{vector.example_id}"
        insutype = "390" if "resident" in vector.policy_id else "310"
        family = None
        if claim.has_family_account:
            family = f"VEC-{vector.example_id}-FAMILY"
            await store.deposit(DepositRequest(msgid=f"seed:{family}", psn_no=family, insuplc_admdvs="110100", insutype="310",
                                               amount=claim.accumulators["family_acct_balc"], period=str(case.setl_date.year)))
        await _seed(store, psn_no, case.setl_date.year, insutype, dict(claim.accumulators))
        when = f"{case.setl_date.isoformat()} 09:00:00"
        original = await store.settle(_request(number * 10, psn_no, when, claim, insutype=insutype, family=family),
                                      _compute(claim, vector.policy_id))
        written += 1
        if vector.operation in ("cancel", "refund_partial"):
            await store.cancel(CancelRequest(fixmedins_code=original.fixmedins_code, msgid=f"VECC{number:06d}", setl_id=original.setl_id,
                                             mdtrt_id=original.mdtrt_id, psn_no=psn_no, setl_time=f"{case.setl_date.isoformat()} 10:00:00"))
            written += 1
        if vector.operation == "refund_partial":
            kept = engine.refunded_lines(claim, vector.refund_feedetl_sns)
            await store.settle(_request(number * 10 + 1, psn_no, f"{case.setl_date.isoformat()} 11:00:00", kept, insutype=insutype),
                               _compute(kept, vector.policy_id))
            written += 1
    return written


def sqlite_path(dsn: str) -> Path:
    return Path(dsn[len("sqlite://"):])


async def _build(dsn: str, claims: int, seed: int, with_vectors: bool) -> int:
    rules = load_history_rules()
    await migrate_ledger(dsn)
    store = await open_store(dsn)
    try:
        written = await _settle_vectors(store, rules) if with_vectors else 0
        history = generate_history(claims, seed=seed, rules=rules)
        await apply_history(store, history, rules, concurrency=256)
        return written + len(history.events)
    finally:
        await store.close()


def build_ledger(folder: Path, claims: int, *, seed: int = 2024, with_vectors: bool = True) -> tuple[str, int]:
    """Build a SQLite ledger in ``folder``; return its DSN and the number of records written."""
    dsn = f"sqlite://{folder / 'ledger.sqlite3'}"
    return dsn, asyncio.run(_build(dsn, claims, seed, with_vectors))


def copy_ledger(dsn: str, folder: Path) -> str:
    """Copy a closed SQLite ledger (its WAL checkpointed on close) into ``folder``; return the copy's DSN."""
    source = sqlite_path(dsn)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copy(source, target)
    for suffix in ("-wal", "-shm"):
        extra = Path(str(source) + suffix)
        if extra.exists():
            shutil.copy(extra, Path(str(target) + suffix))
    return f"sqlite://{target}"
