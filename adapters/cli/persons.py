"""``settlement persons load FILE --ledger DSN``: register insured persons and fund their accounts.

FILE is JSON (a list of persons, or ``{"persons": [...]}``) or CSV with the columns of
``settlement.persons.PERSON_COLUMNS``. Each person and card is inserted or replaced, and
the personal account is funded up to the file's ``acct_balc`` with one ledger deposit per
person. Loading the same file again deposits nothing more.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import sys
from typing import Any, TextIO

import asyncpg

from settlement.errors import ErrorCode, SettlementError

__all__ = ["register", "run_load"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("persons", help="参保人员管理 (insured persons)")
    commands = parser.add_subparsers(dest="persons_command", metavar="ACTION", required=True)
    load = commands.add_parser(
        "load",
        help="从 JSON 或 CSV 文件登记人员并充值个人账户 (register persons from a JSON or CSV file and fund their accounts)",
    )
    load.add_argument("file", metavar="FILE", help="人员文件 persons file (.json or .csv)")
    load.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    load.add_argument("--year", type=int, default=None, help="账户充值所属年度 year the deposits are booked to (default: this year)")
    load.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")
    load.set_defaults(handler=lambda args: run_load(args.file, args.ledger, args.year, args.lang, sys.stdout, sys.stderr))


def run_load(path: str, dsn: str, year: int | None, lang: str, stdout: TextIO, stderr: TextIO) -> int:
    """Load the file into the ledger named by ``dsn``; print the count, or the coded error."""
    from adapters.server.wiring import read_person_file

    try:
        persons = read_person_file(path)
        count = asyncio.run(_load(dsn, persons, year or datetime.date.today().year, pathlib.Path(path).name))
    except SettlementError as error:
        print(error.message(lang), file=stderr)
        return 1
    except FileNotFoundError:
        print(f"file not found: {path}" if lang == "en" else f"文件不存在：{path}", file=stderr)
        return 1
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        failure = SettlementError(ErrorCode.MALFORMED_JSON, detail=f"{path}: {error}")
        print(failure.message(lang), file=stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as error:
        failure = SettlementError(ErrorCode.LEDGER_FAILED, detail=f"{type(error).__name__}: {error}")
        print(failure.message(lang), file=stderr)
        return 1

    print(f"loaded {count} persons from {path}" if lang == "en" else f"已登记 {count} 名人员（文件 {path}）", file=stdout)
    return 0


async def _load(dsn: str, persons: list, year: int, batch: str) -> int:
    from adapters.ledger import migrate_ledger, open_store
    from adapters.server.sqldb import open_database
    from adapters.server.wiring import load_persons

    # The server's tables come with the ledger's migrations, as at server start.
    await migrate_ledger(dsn)
    db = await open_database(dsn)
    try:
        ledger = await open_store(dsn)
        try:
            return await load_persons(db, ledger, persons, year=year, batch=batch)
        finally:
            await ledger.close()
    finally:
        await db.close()
