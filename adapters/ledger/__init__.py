"""Ledger stores: PostgreSQL (asyncpg, production) and SQLite (embedded default), one interface.

A ledger is named by a DSN: ``postgresql://user@host:port/db`` (extra query parameters
such as ``?search_path=ledger`` become server settings) or ``sqlite://PATH``, where PATH
is the file path as written, so ``sqlite:///var/lib/settlement/ledger.db`` is absolute
and ``sqlite://ledger.db`` is relative to the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from settlement.errors import ErrorCode, SettlementError

__all__ = ["existing_ledger", "migrate_ledger", "open_store", "parse_dsn"]


def parse_dsn(dsn: str) -> tuple[str, str]:
    """Return (dialect, target): ``("pg", dsn)`` or ``("sqlite", path)``; raise LEDGER_DSN_INVALID otherwise."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return "pg", dsn
    if dsn.startswith("sqlite://"):
        path = dsn[len("sqlite://") :]
        if path and path != ":memory:":
            return "sqlite", path
        detail, detail_en = "需要文件路径（不支持内存库）", "a file path is required (an in-memory database is not supported)"
    else:
        detail, detail_en = "应以 postgresql:// 或 sqlite:// 开头", "expected postgresql://... or sqlite://PATH"
    raise SettlementError(ErrorCode.LEDGER_DSN_INVALID, field="--ledger", value=_shown(dsn), detail=detail, detail_en=detail_en)


def existing_ledger(dsn: str) -> tuple[str, str]:
    """Parse ``dsn`` like ``parse_dsn`` and, for SQLite, refuse a file that does not exist.

    Commands that only read a ledger use this, so that a mistyped path is named as such
    instead of creating an empty database or failing inside the driver.
    """
    dialect, target = parse_dsn(dsn)
    if dialect == "sqlite" and not Path(target).is_file():
        raise SettlementError(
            ErrorCode.LEDGER_DSN_INVALID, field="--ledger", value=dsn,
            detail=f"账本文件 {target} 不存在", detail_en=f"ledger file {target} does not exist",
        )
    return dialect, target


def _shown(dsn: str) -> str:
    # Keep a password out of messages.
    head, _, tail = dsn.partition("@")
    return f"{head.split(':')[0]}:***@{tail}" if tail and head.count(":") > 1 else dsn


async def open_store(dsn: str, **options: Any) -> Any:
    """Open the store named by ``dsn``; ``options`` go to ``PostgresStore.open`` or ``SqliteStore.open``."""
    dialect, target = parse_dsn(dsn)
    if dialect == "pg":
        from adapters.ledger.postgres import PostgresStore

        return await PostgresStore.open(target, **options)

    from adapters.ledger.sqlite import SqliteStore

    return await SqliteStore.open(target, **options)


async def migrate_ledger(dsn: str) -> list[str]:
    """Apply every pending migration to the ledger named by ``dsn``; return the applied file names."""
    dialect, target = parse_dsn(dsn)
    if dialect == "pg":
        from adapters.ledger.postgres import migrate_postgres

        return await migrate_postgres(target)

    import asyncio

    from adapters.ledger.sqlite import migrate_sqlite

    return await asyncio.to_thread(migrate_sqlite, target)
