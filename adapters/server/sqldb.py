"""A small SQL access layer over asyncpg and aiosqlite for the server's own tables.

Queries are written once with PostgreSQL's ``$1`` placeholders; the SQLite side rewrites
them to SQLite's numbered ``?1``. A transaction is the only way in, so every group of
statements commits or rolls back together. Rows support access by column name.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiosqlite
import asyncpg

__all__ = ["Connection", "Database", "PostgresDatabase", "open_database", "is_postgres_dsn"]

_PLACEHOLDER = re.compile(r"\$(\d+)")

# First key of the PostgreSQL advisory locks that serialize the steps of one visit.
VISIT_LOCK_CLASS = 2_201


class Connection(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Any | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Protocol):
    dialect: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]: ...
    def read_transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]: ...
    def visit_transaction(self, mdtrt_id: str) -> contextlib.AbstractAsyncContextManager[Connection]: ...
    def batch_fingerprint(self, mdtrt_id: str, chrg_bchno: str) -> tuple: ...
    async def close(self) -> None: ...


def is_postgres_dsn(dsn: str) -> bool:
    return dsn.startswith(("postgresql://", "postgres://"))


class _PgConnection:
    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any | None:
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    @property
    def asyncpg_connection(self) -> asyncpg.Connection:
        """The underlying connection, for the ledger's writes inside this transaction."""
        return self._conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    # The server sets no session state and takes only transaction-scoped advisory locks, so
    # asyncpg's default reset query on every release would be one more round trip for nothing.
    return None


# Connections of the settlement groups' own pool: at least the batcher's lanes per process.
_GROUP_CONNECTIONS = 4
# The groups' statements take arrays of keys. PostgreSQL keeps planning such a statement
# at every run when its generic plan, which cannot see the arrays' lengths, is estimated to
# cost more than the custom plans of small groups. Planning the claim read of one
# settlement took 0.35 to 0.45 ms on this project's 2-core test machine. Their plans are
# index probes per key whatever the arrays hold, so the generic plan is made once per
# connection and kept.
# The ledger writes a group's settlements inside the group's transaction. So its COMMIT
# must wait for the WAL flush, and statements run without JIT, as on the ledger's own pool.
_GROUP_SETTINGS = {"plan_cache_mode": "force_generic_plan", "synchronous_commit": "on", "jit": "off"}


class PostgresDatabase:
    """A pool of asyncpg connections; ``schema`` (when given) is put first on the search path.

    A 2304 settlement keeps one pooled connection (holding its visit lock) while the ledger
    commits, so the pool size bounds those in flight in this process. A group of 2207s
    shares one connection (``settle_batch``).
    """

    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, group_pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._group_pool = group_pool

    @classmethod
    async def connect(cls, dsn: str, *, schema: str | None = None, min_size: int = 2, max_size: int = 32) -> PostgresDatabase:
        settings = {"search_path": f"{schema},public"} if schema else {}
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, server_settings=settings or None, reset=_keep_session,
        )
        try:
            group_pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=_GROUP_CONNECTIONS, server_settings={**settings, **_GROUP_SETTINGS}, reset=_keep_session,
            )
        except BaseException:
            await pool.close()
            raise
        return cls(pool, group_pool)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgConnection(conn)

    def read_transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        return self.transaction()

    @contextlib.asynccontextmanager
    async def visit_transaction(self, mdtrt_id: str) -> AsyncIterator[Connection]:
        """Open a transaction holding the visit's advisory lock until it ends, in any process.

        The lock is a two-key advisory lock (class ``VISIT_LOCK_CLASS``, hash of the visit id),
        a key space separate from the ledger's one-key person locks. Two visits whose ids hash
        alike only wait for each other.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", VISIT_LOCK_CLASS, mdtrt_id)
            yield _PgConnection(conn)

    @contextlib.asynccontextmanager
    async def group_transaction(self) -> AsyncIterator[Connection]:
        """Open a transaction on a connection of the settlement groups' pool (``settle_batch``)."""
        async with self._group_pool.acquire() as conn, conn.transaction():
            yield _PgConnection(conn)

    def batch_fingerprint(self, mdtrt_id: str, chrg_bchno: str) -> tuple:
        raise NotImplementedError("PostgreSQL settlements hold the visit lock instead")

    async def close(self) -> None:
        await self._group_pool.close()
        await self._pool.close()


class _SqliteConnection:
    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(_sqlite_sql(sql), args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(_sqlite_sql(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._conn.execute(_sqlite_sql(sql), args) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Any | None:
        async with self._conn.execute(_sqlite_sql(sql), args) as cursor:
            return await cursor.fetchone()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


_SQLITE_CACHE: dict[str, str] = {}


def _sqlite_sql(sql: str) -> str:
    converted = _SQLITE_CACHE.get(sql)
    if converted is None:
        converted = _PLACEHOLDER.sub(r"?\1", sql)
        _SQLITE_CACHE[sql] = converted
    return converted


class SqliteDatabase:
    """One aiosqlite connection in WAL mode; transactions take turns behind an asyncio lock.

    SQLite allows one writer at a time, so serialising transactions in the process loses
    nothing and avoids ``database is locked`` retries. ``synchronous=FULL`` makes each
    commit durable.
    """

    dialect = "sqlite"

    # Maximum number of callers whose writes share one transaction (see write_shared).
    SHARED_WRITES_MAX = 256

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._path = path
        self._readers = threading.local()
        self._shared: list[tuple[Callable[[Connection], Awaitable[None]], asyncio.Future[None]]] = []
        self._shared_writer: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, path: str) -> SqliteDatabase:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return cls(conn, path)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteConnection(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[Connection]:
        """Open a transaction for reads only: a deferred ``BEGIN`` takes no write lock, so the
        ledger's writer connection is not kept waiting, and its ``COMMIT`` writes nothing."""
        async with self._lock:
            await self._conn.execute("BEGIN")
            try:
                yield _SqliteConnection(self._conn)
            finally:
                await self._conn.execute("COMMIT")

    async def write_shared(self, work: Callable[[Connection], Awaitable[None]]) -> None:
        """Run ``work`` in a write transaction shared with the other callers queued meanwhile, so they pay one commit (one fsync).

        Each caller's work runs inside its own SAVEPOINT: an exception it raises undoes only its
        own writes and is raised only to that caller, while the others still commit. Returns
        once the shared transaction has committed. If the commit itself fails, every caller of
        that transaction gets the error and nothing of it is written.
        """
        future = asyncio.get_running_loop().create_future()
        self._shared.append((work, future))
        if self._shared_writer is None or self._shared_writer.done():
            self._shared_writer = asyncio.create_task(self._write_shared_queue())
        await future

    async def _write_shared_queue(self) -> None:
        while self._shared:
            batch = self._shared[:self.SHARED_WRITES_MAX]
            del self._shared[:self.SHARED_WRITES_MAX]
            async with self._lock:
                outcomes = await self._run_shared(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)

    async def _run_shared(self, batch: list[tuple[Callable[[Connection], Awaitable[None]], asyncio.Future[None]]]) -> list[BaseException | None]:
        conn = _SqliteConnection(self._conn)
        outcomes: list[BaseException | None] = []
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            for work, _ in batch:
                await self._conn.execute("SAVEPOINT shared_write")
                try:
                    await work(conn)
                except Exception as error:  # noqa: BLE001 - the error belongs to this caller only
                    await self._conn.execute("ROLLBACK TO shared_write")
                    outcomes.append(error)
                else:
                    outcomes.append(None)
                await self._conn.execute("RELEASE shared_write")
            await self._conn.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - BEGIN, a savepoint or COMMIT failed: nothing of the batch is kept
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")
            return [error] * len(batch)
        return outcomes

    def visit_transaction(self, mdtrt_id: str) -> contextlib.AbstractAsyncContextManager[Connection]:
        """Open a write transaction: ``BEGIN IMMEDIATE`` takes SQLite's single write lock, which
        excludes every other writer of the file, in this process or another, until it ends."""
        return self.transaction()

    def batch_fingerprint(self, mdtrt_id: str, chrg_bchno: str) -> tuple:
        """Return the live lines of a charge batch as ``(feedetl_sn, amount)`` pairs, read now.

        Synchronous, on a private connection of the calling thread. The ledger calls a
        settlement's compute step inside its ``BEGIN IMMEDIATE`` transaction, so a read made
        there returns the last committed state, and nothing else can commit before the ledger does.
        """
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = sqlite3.connect(self._path, timeout=5, check_same_thread=True)
        rows = conn.execute(
            "SELECT feedetl_sn, amount FROM srv_fee_line WHERE mdtrt_id = ? AND chrg_bchno = ? AND cancelled_by IS NULL ORDER BY feedetl_sn",
            (mdtrt_id, chrg_bchno),
        ).fetchall()
        conn.commit()
        return tuple(rows)

    async def close(self) -> None:
        if self._shared_writer is not None:
            await self._shared_writer
        await self._conn.close()


async def open_database(dsn: str, *, schema: str | None = None) -> Database:
    """Open the database of a ledger DSN (``postgresql://...`` or ``sqlite://PATH``, read as the ledger reads it)."""
    from adapters.ledger import parse_dsn

    dialect, target = parse_dsn(dsn)
    if dialect == "pg":
        return await PostgresDatabase.connect(target, schema=schema)
    return await SqliteDatabase.connect(target)
