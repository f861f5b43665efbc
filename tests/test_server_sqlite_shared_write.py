"""SqliteDatabase.write_shared: callers share a transaction, and one caller's error undoes only its own writes."""

import asyncio
import sqlite3

import pytest

from adapters.server.sqldb import SqliteDatabase


class Refused(Exception):
    pass


async def _scenario(path: str) -> tuple[list[object], list[tuple]]:
    db = await SqliteDatabase.connect(path)
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE item (name TEXT PRIMARY KEY)")

        def writer(*names: str, fail: bool = False):
            async def work(conn) -> None:
                for name in names:
                    await conn.execute("INSERT INTO item (name) VALUES ($1)", name)
                if fail:
                    raise Refused(names[0])
            return work

        outcomes = await asyncio.gather(
            db.write_shared(writer("a1", "a2")),
            db.write_shared(writer("b1", "b2", fail=True)),
            db.write_shared(writer("c1")),
            # A duplicate key fails inside its own savepoint only.
            db.write_shared(writer("c1")),
            db.write_shared(writer("d1")),
            return_exceptions=True,
        )
        async with db.read_transaction() as conn:
            rows = [tuple(row) for row in await conn.fetch("SELECT name FROM item ORDER BY name")]
    finally:
        await db.close()
    return outcomes, rows


def test_shared_write_isolates_failures(tmp_path):
    outcomes, rows = asyncio.run(_scenario(str(tmp_path / "shared.sqlite3")))

    assert outcomes[0] is None
    assert isinstance(outcomes[1], Refused)
    assert outcomes[2] is None
    assert isinstance(outcomes[3], sqlite3.IntegrityError)
    assert outcomes[4] is None
    assert rows == [("a1",), ("a2",), ("c1",), ("d1",)]


def test_shared_write_survives_reopen(tmp_path):
    path = str(tmp_path / "durable.sqlite3")
    asyncio.run(_scenario(path))

    with sqlite3.connect(path) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM item ORDER BY name")]
    assert names == ["a1", "a2", "c1", "d1"]


@pytest.mark.parametrize("count", [1, SqliteDatabase.SHARED_WRITES_MAX + 5])
def test_shared_write_runs_every_caller(tmp_path, count):
    async def scenario() -> int:
        db = await SqliteDatabase.connect(str(tmp_path / "many.sqlite3"))
        try:
            async with db.transaction() as conn:
                await conn.execute("CREATE TABLE item (name TEXT PRIMARY KEY)")

            async def insert(name: str) -> None:
                async def work(conn) -> None:
                    await conn.execute("INSERT INTO item (name) VALUES ($1)", name)
                await db.write_shared(work)

            await asyncio.gather(*(insert(f"n{index}") for index in range(count)))
            async with db.read_transaction() as conn:
                return await conn.fetchval("SELECT count(*) FROM item")
        finally:
            await db.close()

    assert asyncio.run(scenario()) == count
