"""Helpers shared by the ledger tests: a small fixed settlement rule, requests, and throwaway ledgers.

``toy_compute`` replaces the kernel where a test needs exact control: the pooled
fund pays ``ratio`` of the amount up to a yearly cap kept in ``op_fund_paid``, then the
personal account pays what it can, then the family account (mutual aid), then cash.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg

from adapters.ledger import migrate_ledger, open_store
from settlement.store import SettlementPlan, SettlementRequest
from settlement.types import ACCUMULATOR_KEYS, FundDetail, LineResult, SettlementOutputs, SettlementResult

PG_DSN = os.environ.get("SETTLEMENT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def toy_compute(amount: int, *, cap: int = 500_000, ratio: int = 7000, acct_used: bool = True, mutual_aid: bool = False):
    """Return a compute callback for one claim of ``amount`` fen under the toy rule."""

    def compute(before: dict[str, int]) -> SettlementPlan:
        assert set(before) == set(ACCUMULATOR_KEYS)
        cap_left = max(cap - before["op_fund_paid"], 0)
        hifp = min(amount * ratio // 10_000, cap_left)
        personal = amount - hifp
        own = min(before["acct_balc"], personal) if acct_used else 0
        family = min(before["family_acct_balc"], personal - own) if acct_used and mutual_aid else 0
        cash = personal - own - family

        outputs = SettlementOutputs(
            medfee_sumamt=amount, fulamt_ownpay_amt=0, overlmt_selfpay=0, preselfpay_amt=0, inscp_scp_amt=amount,
            act_pay_dedc=0, hifp_pay=hifp, hifob_pay=0, hifmi_pay=0, cvlserv_pay=0, maf_pay=0, fund_pay_sumamt=hifp,
            psn_part_amt=personal, acct_pay=own + family, acct_mulaid_pay=family, psn_cash_pay=cash, hosp_part_amt=0,
            balc=before["acct_balc"] - own, pool_prop_selfpay=ratio if hifp else 0,
        )
        after = dict(before)
        after["op_fund_paid"] += hifp
        after["acct_balc"] -= own
        after["family_acct_balc"] -= family
        details = [FundDetail("hifp", amount, cap_left, hifp)]
        if own + family:
            details.append(FundDetail("acct", amount, before["acct_balc"], own + family))
        result = SettlementResult(
            outputs=outputs,
            lines=(LineResult("1", amount, 0, 0, 0, amount),),
            fund_details=tuple(details),
            accumulators_after=after,
            trace=(),
        )
        return SettlementPlan(result=result, rule_version="toy-1", catalog_version="toy-cat-1")

    return compute


def settle_request(n: int | str, *, psn_no: str = "P0001", fixmedins_code: str = "H11010100001", **changes) -> SettlementRequest:
    """Return a settlement request numbered ``n``; keyword arguments replace fields."""
    fields = dict(
        fixmedins_code=fixmedins_code,
        msgid=f"{fixmedins_code}2024060110{n:0>6}",
        mdtrt_id=f"MDTRT{n:0>8}",
        chrg_bchno=f"CB{n:0>8}",
        psn_no=psn_no,
        insuplc_admdvs="110100",
        insutype="310",
        med_type="11",
        clr_type="11",
        setl_time="2024-06-01 10:00:00",
        acct_used=True,
        feedetl_sns=(f"{n}-1", f"{n}-2"),
    )
    fields.update(changes)
    return SettlementRequest(**fields)


def pg_dsn_with_schema(schema: str) -> str:
    separator = "&" if "?" in PG_DSN else "?"
    return f"{PG_DSN}{separator}search_path={schema}"


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """Create a fresh schema on the test server, migrate it, yield its DSN, then drop it."""
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        dsn = pg_dsn_with_schema(schema)
        await migrate_ledger(dsn)
        yield dsn
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@contextlib.asynccontextmanager
async def sqlite_file(tmp_path) -> AsyncIterator[str]:
    dsn = f"sqlite://{tmp_path / 'ledger.sqlite3'}"
    await migrate_ledger(dsn)
    yield dsn


@contextlib.asynccontextmanager
async def ledger(kind: str, tmp_path, **options) -> AsyncIterator[object]:
    """Yield an open store of ``kind`` (``pg`` or ``sqlite``) on a fresh, migrated ledger."""
    source = pg_schema() if kind == "pg" else sqlite_file(tmp_path)
    async with source as dsn:
        store = await open_store(dsn, **options)
        store.test_dsn = dsn
        try:
            yield store
        finally:
            await store.close()


async def sql_rows(store, sql: str, *args) -> list[tuple]:
    """Run one statement on the store's own database (``?`` placeholders) and return its rows."""
    if store.dialect == "pg":
        from adapters.ledger.postgres import numbered

        async with store.connection() as conn:
            return [tuple(row) for row in await conn.fetch(numbered(sql), *args)]
    return await store.run(lambda conn: conn.execute(sql, args).fetchall())


async def sql_in_transaction(store, statements: list[tuple[str, tuple]]) -> None:
    """Run statements in one database transaction and commit; the database's error propagates."""
    if store.dialect == "pg":
        from adapters.ledger.postgres import numbered

        async with store.connection() as conn, conn.transaction():
            for sql, args in statements:
                await conn.execute(numbered(sql), *args)
        return

    def run(conn) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    await store.run(run)


async def row_counts(store) -> dict[str, int]:
    tables = ("journal_transactions", "journal_postings", "journal_accumulator_deltas", "ledger_settlements", "ledger_accumulators")
    return {table: (await sql_rows(store, f"SELECT count(*) FROM {table}"))[0][0] for table in tables}
