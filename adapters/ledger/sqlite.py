"""The embedded ledger store: one SQLite file in WAL mode, written by one thread.

All reads and writes of a store object run on one worker thread that owns its
connection, so the event loop never blocks on the disk. A batch runs inside
``BEGIN IMMEDIATE``, which takes the database's write lock before reading: this is the
SQLite form of the person lock, and it also serializes writers in other processes. The
connection uses ``synchronous = FULL`` so that a committed batch survives a power loss.
Compute callbacks run on that thread too, which is why they must be pure and must not
touch the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from adapters.ledger import migrate
from adapters.ledger.base import LedgerStoreBase
from adapters.ledger.batch import Batch, BatchPlan, LedgerState, Operation, ReadRequest, StoredTxn, decode_record
from adapters.ledger.verify import ReadSession
from settlement.chain import link_hash
from settlement.errors import ErrorCode, SettlementError
from settlement.ledger_posting import parse_account
from settlement.store import SettlementRecord

__all__ = ["SqliteStore", "connect", "migrate_sqlite"]

logger = logging.getLogger("settlement.ledger")

T = TypeVar("T")

# Wait this long for another process's write lock before failing a batch.
BUSY_TIMEOUT_MS = 10_000


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a ledger connection: autocommit mode (the store issues BEGIN), WAL, FULL sync, foreign keys on."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _applied(conn: sqlite3.Connection) -> dict[int, str]:
    conn.execute(migrate.CREATE_TABLE_SQL)
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations"))


def migrate_sqlite(path: str | Path) -> list[str]:
    """Apply the pending migrations to the SQLite file and return their file names."""
    conn = connect(path)
    try:
        todo = migrate.pending(migrate.discover("sqlite"), _applied(conn))
        for migration in todo:
            # The script leaves its transaction open, so that a Python step of the same
            # migration (see _AFTER_SCRIPT) commits or rolls back together with it.
            script = (
                "BEGIN IMMEDIATE;\n"
                + migration.sql
                + "\n;INSERT INTO schema_migrations (version, name, checksum) VALUES "
                + f"({migration.version}, '{migration.name}', '{migration.checksum}');"
            )
            try:
                conn.executescript(script)
                after = _AFTER_SCRIPT.get(migration.version) if migration.version in migrate.LEDGER_VERSIONS else None
                if after is not None:
                    after(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise SettlementError(ErrorCode.MIGRATION_FAILED, value=migration.path.name, detail=str(error)) from error
        return [migration.path.name for migration in todo]
    finally:
        conn.close()


def _link_unchained_records(conn: sqlite3.Connection) -> None:
    """Link the records written before the hash chain existed, in transaction id order (migration 0002)."""
    last_seq, last_hash = conn.execute("SELECT last_seq, last_hash FROM ledger_chain_head WHERE chain = 'ledger'").fetchone()
    rows = conn.execute("SELECT txn_id, record FROM ledger_settlements WHERE chain_seq IS NULL ORDER BY txn_id").fetchall()
    for txn_id, body in rows:
        last_seq += 1
        digest = link_hash(bytes(body), last_hash)
        conn.execute(
            "UPDATE ledger_settlements SET chain_seq = ?, prev_hash = ?, record_hash = ? WHERE txn_id = ?",
            (last_seq, last_hash, digest, txn_id),
        )
        last_hash = digest
    conn.execute("UPDATE ledger_chain_head SET last_seq = ?, last_hash = ? WHERE chain = 'ledger'", (last_seq, last_hash))


# Python steps of ledger migrations, run inside the migration's transaction after its SQL.
_AFTER_SCRIPT: dict[int, Callable[[sqlite3.Connection], None]] = {2: _link_unchained_records}


class _Session:
    """A read snapshot on its own connection and thread (WAL lets it read while the store writes)."""

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor, path: str) -> None:
        self._executor = executor
        self._path = path
        self.conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(self) -> None:
        def begin() -> None:
            self.conn = connect(self._path)
            self.conn.execute("BEGIN")

        await self._call(begin)

    async def close(self) -> None:
        def end() -> None:
            assert self.conn is not None
            self.conn.execute("ROLLBACK")
            self.conn.close()

        await self._call(end)

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        assert self.conn is not None
        conn = self.conn
        return await self._call(lambda: conn.execute(sql, args).fetchall())

    async def stream(self, sql: str) -> AsyncIterator[tuple[Any, ...]]:
        assert self.conn is not None
        cursor = await self._call(lambda: self.conn.execute(sql))  # type: ignore[union-attr]
        while True:
            rows = await self._call(lambda: cursor.fetchmany(2000))
            if not rows:
                return
            for row in rows:
                yield row


class SqliteStore(LedgerStoreBase):
    """Ledger store on one SQLite file. Open it with ``await SqliteStore.open(path)``."""

    dialect = "sqlite"

    def __init__(self, path: str, *, batch_max: int = 256) -> None:
        super().__init__(batch_max=batch_max, committers=1)
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._account_ids: dict[str, int] = {}

    @classmethod
    async def open(cls, path: str | Path, *, batch_max: int = 256) -> SqliteStore:
        """Open the store; raises LEDGER_SCHEMA_OUTDATED if ``settlement db migrate`` was not run."""
        store = cls(str(path), batch_max=batch_max)
        try:
            await store.run(lambda conn: migrate.check_applied(f"sqlite://{path}", "sqlite", _applied(conn)))
        except BaseException:
            await store.close()
            raise
        return store

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread, for callers with their own simple reads and writes.

        ``fn`` must finish any transaction it begins; the same connection writes the ledger's batches.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._with_connection, fn)

    def _with_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = connect(self.path)
        return fn(self._conn)

    async def close(self) -> None:
        await super().close()

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    # -- hooks for the base class ---------------------------------------------------------------

    async def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self.run(lambda conn: conn.execute(sql, args).fetchall())

    def _decode_feedetl_sns(self, value: Any) -> list[str]:
        return json.loads(value)

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[ReadSession]:
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite-read")
        session = _Session(executor, self.path)
        try:
            await session.open()
            yield session
        finally:
            if session.conn is not None:
                await session.close()
            executor.shutdown(wait=True)

    async def _run_batch(self, operations: list[Operation]) -> list[Any]:
        return await self.run(lambda conn: self._batch_with_fallback(conn, operations))

    # -- one batch, on the store's thread -------------------------------------------------------

    def _batch_with_fallback(self, conn: sqlite3.Connection, operations: list[Operation]) -> list[Any]:
        """Run the batch; if the database rejects it, run its operations one by one."""
        try:
            return self._batch(conn, operations)
        except sqlite3.Error as error:
            if len(operations) == 1:
                logger.warning("ledger: batch: rejected error=%s", error)
                return [SettlementError(ErrorCode.LEDGER_FAILED, detail=str(error))]
            return [self._batch_with_fallback(conn, [op])[0] for op in operations]

    def _batch(self, conn: sqlite3.Connection, operations: list[Operation]) -> list[Any]:
        batch = Batch(operations)
        setl_ids = batch.cancel_setl_ids()
        if setl_ids:
            batch.known_originals = {r.setl_id: r for r, _ in self._originals(conn, setl_ids).values()}

        new_accounts: dict[str, int] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            plan = batch.plan(self._read_state(conn, batch.read_request()))
            if not plan.empty:
                new_accounts = self._write(conn, plan)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # Account ids are cached only once committed: a rolled-back insert would leave a stale id.
        self._account_ids.update(new_accounts)
        return plan.outcomes

    def _originals(self, conn: sqlite3.Connection, setl_ids: list[str]) -> dict[str, tuple[SettlementRecord, bool]]:
        found = {}
        for setl_id in setl_ids:
            row = conn.execute(
                "SELECT s.record, EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id) "
                "FROM ledger_settlements s WHERE s.setl_id = ?",
                (setl_id,),
            ).fetchone()
            if row is not None:
                found[setl_id] = (decode_record(row[0]), bool(row[1]))
        return found

    def _read_state(self, conn: sqlite3.Connection, request: ReadRequest) -> LedgerState:
        last_id = conn.execute("SELECT coalesce(max(txn_id), 0) FROM journal_transactions").fetchone()[0]
        by_msgid = {}
        for origin, msgid in request.msgid_keys:
            row = conn.execute(
                "SELECT t.txn_id, t.kind, t.request_digest, coalesce(s.record, t.body) FROM journal_transactions t "
                "LEFT JOIN ledger_settlements s ON s.txn_id = t.txn_id WHERE t.origin = ? AND t.msgid = ?",
                (origin, msgid),
            ).fetchone()
            if row is not None:
                by_msgid[(origin, msgid)] = StoredTxn(row[0], row[1], row[2], row[3])

        batches = {}
        for key in request.batch_keys:
            rows = conn.execute(
                "SELECT s.record, EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id) "
                "FROM ledger_settlements s WHERE s.fixmedins_code = ? AND s.mdtrt_id = ? AND s.chrg_bchno = ? AND s.kind = 'settle'",
                key,
            ).fetchall()
            if rows:
                live = [decode_record(record) for record, cancelled in rows if not cancelled]
                batches[key] = (len(rows), live[0] if live else None)

        accumulators = {}
        for psn_no, year in request.accumulator_keys:
            rows = conn.execute("SELECT acc_key, value FROM ledger_accumulators WHERE psn_no = ? AND year = ?", (psn_no, year))
            accumulators[(psn_no, year)] = dict(rows.fetchall())

        balances = {}
        for psn_no in request.persons:
            row = conn.execute(
                "SELECT credits_posted - debits_posted FROM ledger_accounts WHERE account_key = ?", (f"personal:{psn_no}",)
            ).fetchone()
            balances[psn_no] = row[0] if row else 0

        return LedgerState(
            txn_ids=list(range(last_id + 1, last_id + 1 + request.id_count)),
            by_msgid=by_msgid,
            batches=batches,
            originals=self._originals(conn, request.setl_ids),
            accumulators=accumulators,
            balances=balances,
        )

    def _account_id(self, conn: sqlite3.Connection, key: str, new_accounts: dict[str, int]) -> int:
        known = self._account_ids.get(key) or new_accounts.get(key)
        if known is not None:
            return known
        spec = parse_account(key)
        conn.execute(
            "INSERT INTO ledger_accounts (account_key, kind, admdvs, insutype, owner, fund_pay_type, debits_must_not_exceed_credits) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_key) DO NOTHING",
            (key, spec.kind, spec.admdvs, spec.insutype, spec.owner, spec.fund_pay_type, int(spec.debits_must_not_exceed_credits)),
        )
        account_id = conn.execute("SELECT account_id FROM ledger_accounts WHERE account_key = ?", (key,)).fetchone()[0]
        new_accounts[key] = account_id
        return account_id

    def _write(self, conn: sqlite3.Connection, plan: BatchPlan) -> dict[str, int]:
        new_accounts: dict[str, int] = {}
        ids = {key: self._account_id(conn, key, new_accounts) for key in plan.account_moves}

        conn.executemany(
            "INSERT INTO journal_transactions (txn_id, kind, origin, msgid, reverses_txn_id, request_digest, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            plan.transactions,
        )
        linked, head = self._linked_rows(conn, plan)
        conn.executemany(
            "INSERT INTO ledger_settlements (txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt, psn_no, "
            "insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id, request_digest, rule_version, "
            "catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, record, chain_seq, prev_hash, record_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            linked,
        )
        if linked:
            conn.execute("UPDATE ledger_chain_head SET last_seq = ?, last_hash = ? WHERE chain = 'ledger'", head)
        conn.executemany(
            "INSERT INTO journal_postings (txn_id, seq, account_id, debit, credit) VALUES (?, ?, ?, ?, ?)",
            [(txn_id, seq, ids[key], debit, credit) for txn_id, seq, key, debit, credit in plan.postings],
        )
        conn.executemany(
            "INSERT INTO journal_accumulator_deltas (txn_id, psn_no, year, acc_key, delta) VALUES (?, ?, ?, ?, ?)", plan.deltas
        )
        # Closing the batch's transactions checks that each one balances.
        conn.execute("DELETE FROM journal_open_transactions")

        conn.executemany(
            "UPDATE ledger_accounts SET debits_posted = debits_posted + ?, credits_posted = credits_posted + ? WHERE account_id = ?",
            [(debit, credit, ids[key]) for key, (debit, credit) in plan.account_moves.items()],
        )
        conn.executemany(
            "INSERT INTO ledger_accumulators (psn_no, year, acc_key, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (psn_no, year, acc_key) DO UPDATE SET value = excluded.value",
            [(psn_no, year, key, value) for (psn_no, year, key), value in plan.accumulators.items()],
        )
        return new_accounts

    def _linked_rows(self, conn: sqlite3.Connection, plan: BatchPlan) -> tuple[list[tuple[Any, ...]], tuple[int, str]]:
        """Return the batch's record rows with their chain links, and the new chain head (last_seq, last_hash).

        The batch holds the database's write lock (BEGIN IMMEDIATE), so no other writer can
        link a record between reading the head and committing.
        """
        if not plan.settlements:
            return [], (0, "")
        last_seq, last_hash = conn.execute("SELECT last_seq, last_hash FROM ledger_chain_head WHERE chain = 'ledger'").fetchone()
        rows = []
        for record, body in plan.settlements:
            last_seq += 1
            digest = link_hash(body, last_hash)
            rows.append((*_settlement_row(record, body), last_seq, last_hash, digest))
            last_hash = digest
        return rows, (last_seq, last_hash)


def _settlement_row(record: SettlementRecord, body: bytes) -> tuple[Any, ...]:
    outputs = record.outputs
    return (
        record.txn_id, record.setl_id, record.kind, record.fixmedins_code, record.msgid, record.mdtrt_id, record.chrg_bchno,
        record.batch_attempt, record.psn_no, record.insuplc_admdvs, record.insutype, record.med_type, record.clr_type,
        record.clr_optins, record.setl_time, record.year, record.original_setl_id, record.request_digest, record.rule_version,
        record.catalog_version, msgspec.json.encode(list(record.feedetl_sns)).decode(), outputs.medfee_sumamt,
        outputs.fund_pay_sumamt, outputs.acct_pay, outputs.psn_cash_pay, body,
    )
