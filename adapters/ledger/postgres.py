"""The production ledger store: PostgreSQL through an asyncpg connection pool, with group commit.

Each batch is one database transaction on one pooled connection, in four round trips
whatever the batch size (BEGIN, ``ledger_batch_read``, ``ledger_batch_write_rows``, COMMIT):

1. ``ledger_batch_read`` takes ``pg_advisory_xact_lock`` on every person of the batch, in
   sorted order. Two batches (in this process or another) therefore never interleave one
   person's settlements and never deadlock on each other. The locks end with the
   transaction. It then reads the committed keys, counters and personal balances and
   takes transaction ids from the sequence *after* locking, so one person's transactions
   have rising ids in the order they were serialized (``ledger verify`` relies on it).
2. The batch is planned in Python (``batch.py``), calling each operation's compute callback.
3. ``ledger_batch_write_rows`` inserts the journal rows with one multi-row INSERT per
   table (one array of row values per table, unnested), links the batch's records into
   the hash chain under the chain head's row lock, then locks the touched account rows
   in id order and adds the batch's totals to them, then upserts the counters. Hot
   accounts (a region's pooled fund) are updated once per batch, not once per settlement.
   Every journal transaction's balance is checked once per batch, at COMMIT.

Callers get their results after COMMIT returns; with ``synchronous_commit = on`` (the
server default, and set for every pooled connection here) that means the WAL is flushed.
Queries run as prepared statements through asyncpg's statement cache.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec

from adapters.ledger import migrate
from adapters.ledger.base import LedgerStoreBase
from adapters.ledger.batch import Batch, BatchPlan, LedgerState, Operation, ReadRequest, StoredTxn, decode_record
from adapters.ledger.queue import resolve_outcomes
from adapters.ledger.verify import ReadSession
from settlement.errors import ErrorCode, SettlementError
from settlement.ledger_posting import parse_account
from settlement.store import SettleCompute, SettlementRecord, SettlementRequest

__all__ = ["PostgresStore", "migrate_postgres", "numbered"]

logger = logging.getLogger("settlement.ledger")

# Session-level lock number that serializes concurrent `settlement db migrate` runs.
_MIGRATION_LOCK = 7_262_001

_ORIGINALS_SQL = (
    "SELECT s.setl_id, s.record, EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id) "
    "FROM ledger_settlements s WHERE s.setl_id = ANY($1::text[])"
)
_ACCOUNT_INSERT_SQL = (
    "INSERT INTO ledger_accounts (account_key, kind, admdvs, insutype, owner, fund_pay_type, debits_must_not_exceed_credits) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[]) "
    "ON CONFLICT (account_key) DO NOTHING"
)
_ACCOUNT_IDS_SQL = "SELECT account_key, account_id FROM ledger_accounts WHERE account_key = ANY($1::text[])"
_READ_SQL = "SELECT * FROM ledger_batch_read(" + ", ".join(f"${n}" for n in range(1, 12)) + ")"
_WRITE_SQL = "SELECT ledger_batch_write_rows($1, $2, $3, $4, $5, $6)"

# Columns of the rows the store writes, as the copy benchmark writes them too.
_TRANSACTION_COLUMNS = ("txn_id", "kind", "origin", "msgid", "reverses_txn_id", "request_digest", "body")
_SETTLEMENT_COLUMNS = (
    "txn_id", "setl_id", "kind", "fixmedins_code", "msgid", "mdtrt_id", "chrg_bchno", "batch_attempt", "psn_no",
    "insuplc_admdvs", "insutype", "med_type", "clr_type", "clr_optins", "setl_time", "year", "original_setl_id",
    "request_digest", "rule_version", "catalog_version", "feedetl_sns", "medfee_sumamt", "fund_pay_sumamt", "acct_pay",
    "psn_cash_pay", "record",
)
_POSTING_COLUMNS = ("txn_id", "seq", "account_id", "debit", "credit")
_DELTA_COLUMNS = ("txn_id", "psn_no", "year", "acc_key", "delta")

# Errors after which the batch is retried one operation at a time: the database refused a
# row (a duplicate from another process, a check) or the connection was lost. asyncpg
# raises InternalClientError when its protocol state is broken by a connection that the
# server terminated in the middle of a transaction.
_RETRYABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


def numbered(sql: str) -> str:
    """Turn ``?`` placeholders into asyncpg's ``$1, $2, ...`` (the shared SQL has no ``?`` in literals)."""
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def _applied(conn: asyncpg.Connection) -> dict[int, str]:
    await conn.execute(migrate.CREATE_TABLE_SQL)
    return {row["version"]: row["checksum"] for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")}


async def migrate_postgres(dsn: str) -> list[str]:
    """Apply the pending migrations and return their file names; concurrent runs wait for each other."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        todo = migrate.pending(migrate.discover("pg"), await _applied(conn))
        for migration in todo:
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as error:
                raise SettlementError(ErrorCode.MIGRATION_FAILED, value=migration.path.name, detail=str(error)) from error
        return [migration.path.name for migration in todo]
    finally:
        await conn.close()


class _Session:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.conn.fetch(numbered(sql), *args)]

    async def stream(self, sql: str) -> AsyncIterator[tuple[Any, ...]]:
        async for row in self.conn.cursor(numbered(sql), prefetch=2000):
            yield tuple(row)


# Session defaults of every pooled connection, sent at connection start so that a RESET ALL
# returns to them. synchronous_commit = on makes COMMIT wait for the WAL flush. JIT
# compilation costs tens of milliseconds per statement and never pays back on the store's
# short statements.
_SERVER_SETTINGS = {"synchronous_commit": "on", "jit": "off"}


class PostgresStore(LedgerStoreBase):
    """Ledger store on PostgreSQL. Open it with ``await PostgresStore.open(dsn)``.

    ``batch_max`` caps the operations per database transaction; ``committers`` is the
    number of batches in flight at once (each on its own pooled connection).
    """

    dialect = "pg"

    def __init__(self, pool: asyncpg.Pool, *, batch_max: int = 512, committers: int = 2) -> None:
        super().__init__(batch_max=batch_max, committers=committers)
        self.pool = pool
        # Server pids of connections lent through connection(); see _reset_if_lent.
        self._lent: set[int] = set()
        self._account_ids: dict[str, int] = {}

    @classmethod
    async def open(
        cls, dsn: str, *, batch_max: int = 512, committers: int = 2, pool_size: int | None = None
    ) -> PostgresStore:
        """Create the pool and check the schema; raises LEDGER_SCHEMA_OUTDATED if not migrated."""
        size = pool_size or committers + 2
        lent: set[int] = set()
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, server_settings=_SERVER_SETTINGS, reset=functools.partial(_reset_if_lent, lent)
        )
        try:
            async with pool.acquire() as conn:
                migrate.check_applied(_masked(dsn), "pg", await _applied(conn))
        except BaseException:
            await pool.close()
            raise
        store = cls(pool, batch_max=batch_max, committers=committers)
        store._lent = lent
        return store

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """Borrow a pooled connection, for callers with their own simple reads and writes.

        The connection's session state (settings, cursors, session locks) is reset when it
        returns to the pool, as asyncpg does by default.
        """
        async with self.pool.acquire() as conn:
            self._lent.add(conn.get_server_pid())
            yield conn

    async def close(self) -> None:
        await super().close()
        await self.pool.close()

    # -- hooks for the base class ---------------------------------------------------------------

    async def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.pool.acquire() as conn:
            return [tuple(row) for row in await conn.fetch(numbered(sql), *args)]

    def _decode_feedetl_sns(self, value: Any) -> list[str]:
        return msgspec.json.decode(value)

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[ReadSession]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield _Session(conn)

    async def _run_batch(self, operations: list[Operation]) -> list[Any]:
        try:
            return await self._batch(operations)
        except _RETRYABLE as error:
            if len(operations) > 1:
                logger.warning("ledger: batch: retrying one by one operations=%d error=%s", len(operations), error)
                return [(await self._run_single(op))[0] for op in operations]
            return await self._run_single(operations[0], error)

    async def _run_single(self, op: Operation, first_error: BaseException | None = None) -> list[Any]:
        """Run one operation; after a rejected first try, try once more (a duplicate is then found as stored)."""
        attempts = 1 if first_error is not None else 2
        error = first_error
        for _ in range(attempts):
            try:
                return await self._batch([op])
            except _RETRYABLE as caught:
                error = caught
        logger.warning("ledger: operation: failed kind=%s msgid=%s error=%s", op.kind, op.request.msgid, error)
        failure = SettlementError(ErrorCode.LEDGER_FAILED, detail=f"{type(error).__name__}: {error}")
        failure.__cause__ = error
        return [failure]

    # -- one batch --------------------------------------------------------------------------------

    async def _batch(self, operations: list[Operation]) -> list[Any]:
        batch = Batch(operations)
        created: dict[str, int] = {}
        async with self.pool.acquire() as conn:
            setl_ids = batch.cancel_setl_ids()
            if setl_ids:
                originals = await self._originals(conn, setl_ids)
                batch.known_originals = {setl_id: record for setl_id, (record, _) in originals.items()}

            async with conn.transaction():
                plan = await self._plan_and_write(conn, batch, created)
        # Ids of accounts created in the transaction are cached only once it has committed.
        self._account_ids.update((key, account_id) for key, account_id in created.items() if not key.startswith("personal:"))
        return plan.outcomes

    async def _plan_and_write(self, conn: asyncpg.Connection, batch: Batch, created: dict[str, int]) -> BatchPlan:
        state, personal_ids = await self._read_state(conn, batch.read_request())
        plan = batch.plan(state)
        if not plan.empty:
            ids = await self._account_ids_for(conn, plan, personal_ids, created)
            await self._write(conn, plan, ids)
        return plan

    async def settle_in_transaction(self, conn: asyncpg.Connection, items: list[tuple[SettlementRequest, SettleCompute]]) -> list[Any]:
        """Plan and write settlements inside the caller's open transaction on ``conn``; return one outcome per item.

        An outcome is the settlement's record, or the coded error for that settlement alone.
        Errors of the database itself are raised, and the caller must then roll back. The
        rows are durable once the caller commits with ``synchronous_commit = on``. The
        person locks, chain head and account rows order these writes with every other batch.
        """
        batch = Batch([Operation("settle", request, compute) for request, compute in items])
        plan = await self._plan_and_write(conn, batch, {})
        return resolve_outcomes(plan.outcomes)

    async def _account_ids_for(
        self, conn: asyncpg.Connection, plan: BatchPlan, personal_ids: dict[str, int], created: dict[str, int]
    ) -> dict[str, int]:
        """Return the id of every account the plan posts to, creating the accounts that do not exist yet.

        Only the bounded set of fund, region and institution accounts is cached; personal
        account ids come with the balances that the batch reads anyway. Creating an account
        here, before ledger_batch_write_rows locks any account row, cannot deadlock two batches:
        a batch waiting for another's new account row holds no account row itself.
        """
        ids = {}
        missing = set()
        for key in plan.account_moves:
            account_id = personal_ids.get(key) or self._account_ids.get(key)
            if account_id is None:
                missing.add(key)
            else:
                ids[key] = account_id
        if missing:
            # Rows found before this transaction inserts any are committed, so their ids may be
            # cached at once, even when the caller's transaction later rolls back.
            for key, account_id in await conn.fetch(_ACCOUNT_IDS_SQL, sorted(missing)):
                ids[key] = account_id
                missing.discard(key)
                if not key.startswith("personal:"):
                    self._account_ids[key] = account_id
        if missing:
            specs = [parse_account(key) for key in sorted(missing)]
            await conn.execute(
                _ACCOUNT_INSERT_SQL,
                [s.key for s in specs],
                [s.kind for s in specs],
                [s.admdvs for s in specs],
                [s.insutype for s in specs],
                [s.owner for s in specs],
                [s.fund_pay_type for s in specs],
                [s.debits_must_not_exceed_credits for s in specs],
            )
            for key, account_id in await conn.fetch(_ACCOUNT_IDS_SQL, sorted(missing)):
                ids[key] = account_id
                created[key] = account_id
        return ids

    async def _originals(self, conn: asyncpg.Connection, setl_ids: list[str]) -> dict[str, tuple[SettlementRecord, bool]]:
        rows = await conn.fetch(_ORIGINALS_SQL, setl_ids)
        return {row[0]: (decode_record(row[1]), row[2]) for row in rows}

    async def _read_state(self, conn: asyncpg.Connection, request: ReadRequest) -> tuple[LedgerState, dict[str, int]]:
        """Lock the batch's persons and read its state in one call (see ledger_batch_read).

        Also return the ids of the persons' personal accounts, by account key.
        """
        rows = await conn.fetch(
            _READ_SQL,
            request.lock_keys,
            request.id_count,
            [k[0] for k in request.msgid_keys],
            [k[1] for k in request.msgid_keys],
            [k[0] for k in request.batch_keys],
            [k[1] for k in request.batch_keys],
            [k[2] for k in request.batch_keys],
            request.setl_ids,
            [k[0] for k in request.accumulator_keys],
            [k[1] for k in request.accumulator_keys],
            [f"personal:{p}" for p in request.persons],
        )
        ids: list[int] = []
        by_msgid = {}
        batches: dict[tuple[str, str, str], tuple[int, SettlementRecord | None]] = {}
        originals = {}
        accumulators: dict[tuple[str, int], dict[str, int]] = {key: {} for key in request.accumulator_keys}
        balances = {psn_no: 0 for psn_no in request.persons}
        personal_ids = {}
        for part, k1, k2, k3, k4, n1, n2, flag, body in rows:
            if part == 0:
                ids.append(n1)
            elif part == 1:
                by_msgid[(k1, k2)] = StoredTxn(n1, k3, k4, body)
            elif part == 2:
                count, live = batches.get((k1, k2, k3), (0, None))
                batches[(k1, k2, k3)] = (count + 1, live if flag else decode_record(body))
            elif part == 3:
                originals[k1] = (decode_record(body), flag)
            elif part == 4:
                accumulators[(k1, int(n1))][k2] = n2
            else:
                balances[k1] = n1
                personal_ids[k2] = n2
        ids.sort()
        state = LedgerState(
            txn_ids=ids, by_msgid=by_msgid, batches=batches, originals=originals, accumulators=accumulators, balances=balances
        )
        return state, personal_ids

    async def _write(self, conn: asyncpg.Connection, plan: BatchPlan, ids: dict[str, int]) -> None:
        """Write the batch's rows in one call (see ledger_batch_write_rows); ``ids`` maps account keys to ids.

        Each argument is an array of row tuples, which asyncpg encodes as composite values.
        """
        moves = sorted((ids[key], debit, credit) for key, (debit, credit) in plan.account_moves.items())
        await conn.execute(
            _WRITE_SQL,
            plan.transactions,
            [_settlement_row(record, body) for record, body in plan.settlements],
            [(txn_id, seq, ids[key], debit, credit) for txn_id, seq, key, debit, credit in plan.postings],
            plan.deltas,
            moves,
            [(psn_no, year, key, value) for (psn_no, year, key), value in plan.accumulators.items()],
        )


def _settlement_row(record: SettlementRecord, body: bytes) -> tuple[Any, ...]:
    outputs = record.outputs
    return (
        record.txn_id, record.setl_id, record.kind, record.fixmedins_code, record.msgid, record.mdtrt_id, record.chrg_bchno,
        record.batch_attempt, record.psn_no, record.insuplc_admdvs, record.insutype, record.med_type, record.clr_type,
        record.clr_optins, record.setl_time, record.year, record.original_setl_id, record.request_digest, record.rule_version,
        record.catalog_version, _encode_sns(record.feedetl_sns), outputs.medfee_sumamt, outputs.fund_pay_sumamt, outputs.acct_pay,
        outputs.psn_cash_pay, body,
    )


def _encode_sns(feedetl_sns: tuple[str, ...]) -> str:
    return msgspec.json.encode(list(feedetl_sns)).decode()


async def _reset_if_lent(lent: set[int], conn: asyncpg.Connection) -> None:
    """Reset a connection returning to the pool only if it was lent through ``connection()``.

    The store's own batches and reads change no session state (their locks and settings
    end with their transactions), so skipping asyncpg's reset query saves a round trip per
    batch. asyncpg still rolls back an open transaction before calling this.
    """
    pid = conn.get_server_pid()
    if pid in lent:
        lent.discard(pid)
        await conn.execute(conn.get_reset_query())


def _masked(dsn: str) -> str:
    """Return the DSN without its password, for messages."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", dsn)
