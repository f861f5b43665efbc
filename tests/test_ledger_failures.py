"""Failures in the middle of a write leave nothing behind, and group commit keeps per-operation results.

On PostgreSQL the store's own backend is terminated with ``pg_terminate_backend`` after
the batch's rows are written and before COMMIT. On SQLite the write raises at the same
point. Either way the database must roll the whole batch back.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from adapters.ledger.postgres import PostgresStore
from adapters.ledger.sqlite import SqliteStore
from ledger_support import PG_DSN, ledger, pg_schema, row_counts, settle_request, sql_rows, sqlite_file, toy_compute
from settlement.errors import ErrorCode, SettlementError
from settlement.store import DepositRequest


class KillingPostgresStore(PostgresStore):
    """Terminates its own backend after writing a batch's rows, ``kills`` times."""

    kills = 0

    async def _write(self, conn, plan, ids):
        await super()._write(conn, plan, ids)
        if self.kills > 0:
            self.kills -= 1
            admin = await asyncpg.connect(PG_DSN)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            finally:
                await admin.close()


class FailingSqliteStore(SqliteStore):
    """Raises a database error after writing a batch's rows, ``failures`` times."""

    failures = 0

    def _write(self, conn, plan):
        new_accounts = super()._write(conn, plan)
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error (simulated by the test)")
        return new_accounts


def deposit(psn_no: str, amount: int) -> DepositRequest:
    return DepositRequest(msgid=f"seed:{psn_no}", psn_no=psn_no, insuplc_admdvs="110100", insutype="310", amount=amount, period="2024")


async def _killed_write_leaves_nothing(store, set_failures) -> None:
    await store.deposit(deposit("P0001", 5_000))
    before = await row_counts(store)
    balance = await store.account_balance("personal:P0001")

    set_failures(10)
    with pytest.raises(SettlementError) as failed:
        await store.settle(settle_request(1), toy_compute(20_000))
    assert failed.value.code is ErrorCode.LEDGER_FAILED
    assert await row_counts(store) == before
    assert await store.account_balance("personal:P0001") == balance
    assert await store.get_by_msgid("H11010100001", settle_request(1).msgid) is None
    assert (await store.verify()).ok

    # The client's retry of the same request then settles it exactly once.
    set_failures(0)
    record = await store.settle(settle_request(1), toy_compute(20_000))
    assert record.outputs.acct_pay == 5_000
    assert (await row_counts(store))["ledger_settlements"] == before["ledger_settlements"] + 1
    assert (await store.verify()).ok


@pytest.mark.postgres
def test_killed_connection_leaves_no_partial_rows_pg():
    async def scenario():
        async with pg_schema() as dsn:
            store = await KillingPostgresStore.open(dsn)
            try:
                await _killed_write_leaves_nothing(store, lambda n: setattr(store, "kills", n))
            finally:
                await store.close()

    asyncio.run(scenario())


def test_failed_write_leaves_no_partial_rows_sqlite(tmp_path):
    async def scenario():
        async with sqlite_file(tmp_path) as dsn:
            store = await FailingSqliteStore.open(dsn[len("sqlite://") :])
            try:
                await _killed_write_leaves_nothing(store, lambda n: setattr(store, "failures", n))
            finally:
                await store.close()

    asyncio.run(scenario())


@pytest.mark.postgres
def test_killed_batch_retried_per_operation():
    async def scenario():
        async with pg_schema() as dsn:
            store = await KillingPostgresStore.open(dsn, committers=1)
            try:
                store.kills = 1
                requests = [settle_request(n, psn_no=f"P{n:04d}") for n in range(30)]
                records = await asyncio.gather(*(store.settle(r, toy_compute(10_000)) for r in requests))
                assert [r.msgid for r in records] == [r.msgid for r in requests]
                assert (await row_counts(store))["ledger_settlements"] == 30
                assert (await store.verify()).ok
            finally:
                await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ("sqlite", pytest.param("pg", marks=pytest.mark.postgres)))
def test_group_commit_batches_and_answers_each_caller(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            requests = [settle_request(n, psn_no=f"P{n % 40:04d}") for n in range(200)]
            records = await asyncio.gather(*(store.settle(r, toy_compute(1_000 + n)) for n, r in enumerate(requests)))

            assert [r.msgid for r in records] == [r.msgid for r in requests]
            assert [r.outputs.medfee_sumamt for r in records] == [1_000 + n for n in range(200)]
            assert store.stats["operations"] == 200
            assert store.stats["batches"] < 200
            # A person's settlements were applied in the order they were queued.
            for psn in range(40):
                mine = [r for r in records if r.psn_no == f"P{psn:04d}"]
                assert [r.txn_id for r in mine] == sorted(r.txn_id for r in mine)
                assert [r.accumulators_before["op_fund_paid"] for r in mine[1:]] == [r.accumulators_after["op_fund_paid"] for r in mine[:-1]]
            assert (await store.verify()).ok

    asyncio.run(scenario())


@pytest.mark.postgres
def test_pg_store_commits_synchronously():
    async def scenario():
        async with ledger("pg", None) as store:
            rows = await sql_rows(store, "SELECT current_setting('synchronous_commit')")
            assert rows == [("on",)]

    asyncio.run(scenario())


@pytest.mark.postgres
def test_pg_lent_connection_cannot_turn_off_sync_commit():
    async def scenario():
        async with ledger("pg", None, committers=1) as store:
            async with store.connection() as conn:
                lent_pid = conn.get_server_pid()
                await conn.execute("SET synchronous_commit = off")
            await store.settle(settle_request(1), toy_compute(1_000))

            # Hold every pooled connection at once, so the one lent above is among them.
            pooled = [await store.pool.acquire() for _ in range(store.pool.get_max_size())]
            try:
                assert lent_pid in [conn.get_server_pid() for conn in pooled]
                for conn in pooled:
                    assert await conn.fetchval("SELECT current_setting('synchronous_commit')") == "on"
                    assert await conn.fetchval("SELECT current_setting('jit')") == "off"
            finally:
                for conn in pooled:
                    await store.pool.release(conn)

    asyncio.run(scenario())
