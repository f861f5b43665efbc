"""Shared plumbing of the ``card``, ``employment`` and ``pension`` subcommands (staff operations).

Each command opens the ledger named by ``--ledger`` (applying pending migrations, as the
server does at start), runs one operation with the operator ``cli`` and prints its
result as JSON under a heading in Chinese, or in English with ``--lang en``. A coded
error is printed to stderr with exit status 1 and nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import pathlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from adapters.services.context import ServiceContext
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.services.standards import load_standards

__all__ = ["add_common", "run_operation"]

Operation = Callable[[ServiceContext], Awaitable[Any]]


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    parser.add_argument("--rules", default=str(bundled_rules_dir()), help="规则目录 rules directory with services/ (default: the bundled rules)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")


def run_operation(args: argparse.Namespace, heading: tuple[str, str], operation: Operation) -> int:
    """Run ``operation`` on the ledger of ``args.ledger``; print the result or the coded error."""
    try:
        result = asyncio.run(_run(args.ledger, pathlib.Path(args.rules) / "services", operation))
    except SettlementError as error:
        print(error.message(args.lang), file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as error:
        failure = SettlementError(ErrorCode.LEDGER_FAILED, detail=f"{type(error).__name__}: {error}")
        print(failure.message(args.lang), file=sys.stderr)
        return 1
    print(heading[1] if args.lang == "en" else heading[0])
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


async def _run(dsn: str, standards_dir: pathlib.Path, operation: Operation) -> Any:
    from adapters.ledger import migrate_ledger, open_store
    from adapters.server.sqldb import open_database

    standards = load_standards(standards_dir)
    await migrate_ledger(dsn)
    db = await open_database(dsn)
    try:
        ledger = await open_store(dsn)
        try:
            context = ServiceContext(db=db, ledger=ledger, standards=standards, now=lambda: datetime.datetime.now().replace(microsecond=0))
            return await operation(context)
        finally:
            await ledger.close()
    finally:
        await db.close()


def parse_date(value: str) -> datetime.date:
    """argparse type for ``yyyy-MM-dd``."""
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 yyyy-MM-dd (expected yyyy-MM-dd): {value}") from None
