"""``settlement db migrate --ledger DSN``: apply the numbered schema migrations."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

import asyncpg

from adapters.ledger import migrate_ledger
from settlement.errors import ErrorCode, SettlementError

__all__ = ["register", "run_migrate"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help=(text := "账本数据库维护 (ledger database maintenance)"), description=text)
    commands = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate = commands.add_parser("migrate", help=(text := "按编号执行未执行的迁移 (apply pending migrations in number order)"), description=text)
    migrate.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    migrate.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")
    migrate.set_defaults(handler=lambda args: run_migrate(args.ledger, args.lang, sys.stdout, sys.stderr))


def run_migrate(dsn: str, lang: str, stdout: TextIO, stderr: TextIO) -> int:
    """Apply pending migrations; print each applied file, or that the ledger is up to date."""
    try:
        applied = asyncio.run(migrate_ledger(dsn))
    except SettlementError as error:
        print(error.message(lang), file=stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as error:
        failure = SettlementError(ErrorCode.LEDGER_FAILED, detail=f"{type(error).__name__}: {error}")
        print(failure.message(lang), file=stderr)
        return 1

    if not applied:
        print("schema is up to date" if lang == "en" else "表结构已是最新", file=stdout)
    for name in applied:
        print(f"applied {name}" if lang == "en" else f"已执行 {name}", file=stdout)
    return 0
