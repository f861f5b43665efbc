"""Durable settlements per second through the PostgreSQL ledger store, side by side in one run.

Scenarios, all against the same server and a fresh schema each:

* ``group-N``: the store with group commit (default batch size and committers), N
  concurrent callers, each settling one claim at a time and waiting for its durable outcome.
* ``naive-N``: one settlement per database transaction (``batch_max=1``), N callers,
  with as many committers as callers up to 8 (the pool limit used here).
* ``copy-ceiling``: ``copy_records_to_table`` of the same rows (headers, records linked
  into the hash chain, six postings, counter changes) in transactions of 2,000
  settlements, with no locking, reading or planning. It measures what the tables,
  indexes and triggers can take at all. The hashes are computed before the clock starts.

Each claim posts six lines: pooled fund, medical assistance, personal account, persons'
cash, and the institution's payable and cash accounts. Claims go to distinct persons
drawn from a pool of 10,000 funded accounts (a person is reused only after the pool is
exhausted), across 50 institutions.

Run as a script (``python bench/bench_ledger.py --seconds 5``), which prints a Markdown
table, or through pytest-benchmark (``pytest bench/bench_ledger.py --benchmark-enable``).
Set SETTLEMENT_BENCH_PG_DSN to use another server than the local test database.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.ledger import migrate_ledger  # noqa: E402
from adapters.ledger.batch import Batch, LedgerState, Operation  # noqa: E402
from adapters.ledger.postgres import PostgresStore  # noqa: E402
from settlement.chain import link_hash  # noqa: E402
from settlement.store import DepositRequest, SettlementPlan, SettlementRequest  # noqa: E402
from settlement.types import FundDetail, LineResult, SettlementOutputs, SettlementResult  # noqa: E402

PG_DSN = os.environ.get("SETTLEMENT_BENCH_PG_DSN", os.environ.get("SETTLEMENT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
PERSONS = 10_000
INSTITUTIONS = 50
OPENING_BALANCE = 10_000_000


def bench_compute(amount: int):
    """Return a fixed rule that pays from two funds, the account and cash, so every claim has six postings."""

    def compute(before: dict[str, int]) -> SettlementPlan:
        hifp = amount * 6 // 10
        maf = amount // 20
        acct = min(before["acct_balc"], amount // 5)
        cash = amount - hifp - maf - acct
        outputs = SettlementOutputs(
            medfee_sumamt=amount, fulamt_ownpay_amt=0, overlmt_selfpay=0, preselfpay_amt=0, inscp_scp_amt=amount,
            act_pay_dedc=0, hifp_pay=hifp, hifob_pay=0, hifmi_pay=0, cvlserv_pay=0, maf_pay=maf,
            fund_pay_sumamt=hifp + maf, psn_part_amt=acct + cash, acct_pay=acct, acct_mulaid_pay=0, psn_cash_pay=cash,
            hosp_part_amt=0, balc=before["acct_balc"] - acct, pool_prop_selfpay=6000,
        )
        after = dict(before)
        after["op_fund_paid"] += hifp
        after["maf_paid"] += maf
        after["acct_balc"] -= acct
        result = SettlementResult(
            outputs=outputs,
            lines=(LineResult("1", amount, 0, 0, 0, amount),),
            fund_details=(FundDetail("hifp", amount, None, hifp), FundDetail("maf", amount, None, maf), FundDetail("acct", amount, None, acct)),
            accumulators_after=after,
            trace=(),
        )
        return SettlementPlan(result=result, rule_version="bench-1")

    return compute


class Workload:
    """Deterministic claims: claim n goes to person n mod PERSONS at institution n mod INSTITUTIONS."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.counter = itertools.count()

    def next_claim(self) -> tuple[SettlementRequest, object]:
        n = next(self.counter)
        fixmedins_code = f"H{n % INSTITUTIONS:011d}"
        request = SettlementRequest(
            fixmedins_code=fixmedins_code,
            msgid=f"{self.run_id}{n:012d}",
            mdtrt_id=f"M{self.run_id}{n:010d}",
            chrg_bchno=f"B{n:010d}",
            psn_no=f"PSN{n % PERSONS:09d}",
            insuplc_admdvs="110100",
            insutype="310",
            med_type="11",
            clr_type="11",
            setl_time="2024-06-01 10:00:00",
            acct_used=True,
            feedetl_sns=(f"{n}-1", f"{n}-2", f"{n}-3"),
        )
        return request, bench_compute(10_000 + n % 5_000)


async def fresh_schema(admin: asyncpg.Connection) -> tuple[str, str]:
    schema = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in PG_DSN else "?"
    dsn = f"{PG_DSN}{separator}search_path={schema}"
    await migrate_ledger(dsn)
    return schema, dsn


async def fund_persons(dsn: str) -> None:
    store = await PostgresStore.open(dsn, committers=2)
    try:
        for start in range(0, PERSONS, 2_000):
            await asyncio.gather(*(
                store.deposit(DepositRequest(msgid=f"FUND{i}", psn_no=f"PSN{i:09d}", insuplc_admdvs="110100", insutype="310", amount=OPENING_BALANCE, period="2024"))
                for i in range(start, min(start + 2_000, PERSONS))
            ))
    finally:
        await store.close()


async def run_store(dsn: str, callers: int, seconds: float, max_settlements: int, **options) -> dict[str, float]:
    """Run ``callers`` loops of settle-and-wait for ``seconds`` (and at most ``max_settlements``)."""
    store = await PostgresStore.open(dsn, **options)
    workload = Workload(uuid.uuid4().hex[:8])
    done = 0
    deadline = 0.0

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline and done < max_settlements:
            request, compute = workload.next_claim()
            await store.settle(request, compute)
            done += 1

    try:
        # Warm up the statement cache and the account ids before timing.
        for _ in range(20):
            request, compute = workload.next_claim()
            await store.settle(request, compute)
        stats_before = dict(store.stats)
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - start
        batches = store.stats["batches"] - stats_before["batches"]
    finally:
        await store.close()
    return {"settlements": done, "seconds": elapsed, "per_second": done / elapsed, "mean_batch": done / max(batches, 1)}


def copy_rows(count: int, run_id: str, first_txn_id: int, account_ids: dict[str, int], head: list):
    """Plan ``count`` claims offline (no database) and return their rows, as the store would write them.

    ``head`` is the chain head ``[last_seq, last_hash]``; the records are linked after it
    and the head is moved past them.
    """
    workload = Workload(run_id)
    operations = []
    for _ in range(count):
        request, compute = workload.next_claim()
        operations.append(Operation("settle", request, compute))
    persons = {op.request.psn_no for op in operations}
    state = LedgerState(
        txn_ids=list(range(first_txn_id, first_txn_id + count)), by_msgid={}, batches={}, originals={},
        accumulators={(p, 2024): {} for p in persons}, balances={p: OPENING_BALANCE for p in persons},
    )
    plan = Batch(operations).plan(state)
    from adapters.ledger.postgres import _settlement_row

    settlements = []
    for record, body in plan.settlements:
        digest = link_hash(body, head[1])
        settlements.append((*_settlement_row(record, body), head[0] + 1, head[1], digest))
        head[0], head[1] = head[0] + 1, digest
    postings = [(t, s, account_ids[key], d, c) for t, s, key, d, c in plan.postings]
    return plan.transactions, settlements, postings, plan.deltas


async def run_copy_ceiling(dsn: str, total: int, chunk: int = 2_000) -> dict[str, float]:
    from adapters.ledger.postgres import _DELTA_COLUMNS, _POSTING_COLUMNS, _SETTLEMENT_COLUMNS, _TRANSACTION_COLUMNS

    conn = await asyncpg.connect(dsn)
    try:
        account_ids = dict(await conn.fetch("SELECT account_key, account_id FROM ledger_accounts"))
        for i in range(INSTITUTIONS):
            for kind in ("medins_payable", "medins_cash"):
                key = f"{kind}:H{i:011d}"
                if key not in account_ids:
                    account_ids[key] = await conn.fetchval(
                        "INSERT INTO ledger_accounts (account_key, kind, owner) VALUES ($1, $2, $3) RETURNING account_id", key, kind, f"H{i:011d}"
                    )
        for key in ("fund:110100:310:310100", "fund:110100:310:610100", "psn_cash:110100:310"):
            if key not in account_ids:
                kind = key.split(":")[0]
                account_ids[key] = await conn.fetchval("INSERT INTO ledger_accounts (account_key, kind) VALUES ($1, $2) RETURNING account_id", key, kind)

        first_id = await conn.fetchval("SELECT setval('journal_txn_id_seq', nextval('journal_txn_id_seq') + $1)", total + 1) - total
        head = list(await conn.fetchrow("SELECT last_seq, last_hash FROM ledger_chain_head"))
        chunks = []
        for start in range(0, total, chunk):
            rows = copy_rows(min(chunk, total - start), f"C{start:07d}", first_id + start, account_ids, head)
            chunks.append((*rows, tuple(head)))

        settlement_columns = (*_SETTLEMENT_COLUMNS, "chain_seq", "prev_hash", "record_hash")
        begin = time.perf_counter()
        for transactions, settlements, postings, deltas, chunk_head in chunks:
            async with conn.transaction():
                await conn.copy_records_to_table("journal_transactions", records=transactions, columns=_TRANSACTION_COLUMNS)
                await conn.copy_records_to_table("ledger_settlements", records=settlements, columns=settlement_columns)
                await conn.execute("UPDATE ledger_chain_head SET last_seq = $1, last_hash = $2", *chunk_head)
                await conn.copy_records_to_table("journal_postings", records=postings, columns=_POSTING_COLUMNS)
                await conn.copy_records_to_table("journal_accumulator_deltas", records=deltas, columns=_DELTA_COLUMNS)
        elapsed = time.perf_counter() - begin
    finally:
        await conn.close()
    return {"settlements": total, "seconds": elapsed, "per_second": total / elapsed, "mean_batch": chunk}


async def run_scenario(name: str, seconds: float, max_settlements: int) -> dict[str, float]:
    """Run one named scenario on a fresh schema and drop the schema afterwards."""
    admin = await asyncpg.connect(PG_DSN)
    schema, dsn = await fresh_schema(admin)
    try:
        await fund_persons(dsn)
        kind, _, callers_text = name.partition("-")
        if kind == "copy":
            return await run_copy_ceiling(dsn, min(max_settlements, 40_000))
        callers = int(callers_text)
        if kind == "group":
            return await run_store(dsn, callers, seconds, max_settlements)
        committers = min(callers, 8)
        return await run_store(dsn, callers, seconds, max_settlements, batch_max=1, committers=committers, pool_size=committers + 1)
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


SCENARIOS = ("group-1", "group-8", "group-32", "group-256", "naive-1", "naive-8", "naive-32", "copy-ceiling")

# Measured time per scenario under pytest-benchmark, in seconds.
PYTEST_SECONDS = float(os.environ.get("SETTLEMENT_BENCH_SECONDS", "5"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ledger_throughput(benchmark, scenario):
    """Run one scenario once and record its settlements per second in the benchmark's extra_info."""
    result = benchmark.pedantic(lambda: asyncio.run(run_scenario(scenario, PYTEST_SECONDS, 200_000)), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["settlements"] > 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Ledger store throughput on PostgreSQL")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario, in seconds")
    parser.add_argument("--max-settlements", type=int, default=200_000, help="stop a scenario after this many settlements")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only these scenarios (repeatable)")
    args = parser.parse_args()

    print("| scenario | settlements | seconds | settlements/s | mean batch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.scenario or SCENARIOS:
        result = asyncio.run(run_scenario(name, args.seconds, args.max_settlements))
        print(f"| {name} | {result['settlements']:.0f} | {result['seconds']:.2f} | {result['per_second']:,.0f} | {result['mean_batch']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
