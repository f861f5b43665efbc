"""``settlement export``: write a ledger's settlement records as a replay record file.

The file is JSON Lines (``--format jsonl``, the default) or a columnar folder of numpy
arrays (``--format columnar``) that replay memory-maps and compares with array
operations, many times faster. Each person's records are written together in ledger
order, so ``settlement replay`` can cut the file at person boundaries and replay the
pieces in parallel. The scheme
selection behind each record (person group, hospital level, flags) is found against the
policy version it was settled under, so that the file can be replayed under other rules.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from adapters.cli.parser import settlement_date
from adapters.cli.selection import ledger_selection
from adapters.replay.columnar import ColumnarWriter
from adapters.replay.jsonl import RecordWriter
from adapters.replay.ledger_reader import LedgerFilter, stream_ledger_records
from settlement.errors import SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules

__all__ = ["register", "run_export"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help="导出结算记录供回放 (export settlement records for replay)")
    parser.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    parser.add_argument("--from", dest="date_from", metavar="DATE", type=settlement_date, help="起始结算日期 yyyy-MM-dd (first settlement date)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", type=settlement_date, help="截止结算日期 yyyy-MM-dd，含当日 (last settlement date, inclusive)")
    parser.add_argument("--institution", help="定点机构编码 (institution code)")
    parser.add_argument("--region", help="参保统筹区 insuplc_admdvs (pooling region)")
    parser.add_argument("--rules", type=Path, metavar="DIR", help="结算时生效的规则目录，默认内置规则 (rules the ledger was settled under)")
    parser.add_argument("--no-bodies", action="store_true",
                        help="不附带记录原文（文件更小，但回放只能检查链的次序，不能检查内容）(omit stored record bytes: smaller, but replay then checks only the chain order)")
    parser.add_argument("--format", choices=("jsonl", "columnar"), default="jsonl",
                        help="jsonl：每行一条记录；columnar：按列存放的 numpy 数组目录，回放更快 "
                             "(jsonl: one record a line; columnar: a folder of numpy arrays that replays faster)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                        help="输出文件 .jsonl，或 columnar 格式的输出目录 (output file, or folder for --format columnar)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")
    parser.set_defaults(handler=lambda args: run_export(args, sys.stdout, sys.stderr))


class _WriteFailed(Exception):
    """An OSError raised while writing the output, as opposed to one raised while reading the ledger."""


async def _export(args: Any, selection: LedgerFilter, rules: Any, writer: Any) -> int:
    """Stream the selected records into ``writer``; return how many kept their stored scheme parameters."""

    def write(chunk: list) -> None:
        try:
            writer.write(chunk)
        except OSError as error:
            raise _WriteFailed(error) from error

    return await stream_ledger_records(args.ledger, selection, rules, write, with_bodies=not args.no_bodies)


def run_export(args: Any, stdout: TextIO, stderr: TextIO) -> int:
    """Export the selected records; return 0, or 2 when the ledger or rules cannot be read or the output written."""
    try:
        selection = ledger_selection(args)
        rules = load_rules(args.rules or bundled_rules_dir())
    except (SettlementError, OSError) as error:
        print(error.message(args.lang) if isinstance(error, SettlementError) else f"{type(error).__name__}: {error}", file=stderr)
        return 2

    if selection.whole:
        layout = "whole"
    else:
        layout = "window" if not (selection.institution or selection.region) else "gaps"
    writer_type = ColumnarWriter if args.format == "columnar" else RecordWriter
    try:
        writer = writer_type(args.output, grouped=True, chain=layout)
    except OSError as error:
        return _cannot_write(args, error, stderr)

    # Records stream from the ledger into the writer a chunk at a time, so memory stays
    # bounded whatever the ledger's size. Any failure leaves no output behind.
    try:
        unresolved = asyncio.run(_export(args, selection, rules, writer))
    except _WriteFailed as failure:
        writer.discard()
        return _cannot_write(args, failure.__cause__, stderr)
    except (SettlementError, OSError) as error:
        writer.discard()
        print(error.message(args.lang) if isinstance(error, SettlementError) else f"{type(error).__name__}: {error}", file=stderr)
        return 2
    except BaseException:
        writer.discard()
        raise
    try:
        writer.close()
    except OSError as error:
        writer.discard()
        return _cannot_write(args, error, stderr)

    if not writer.count:
        if args.lang == "en":
            print("no settlement in the selection; check --from/--to (yyyy-MM-dd), --institution and --region", file=stderr)
        else:
            print("所选范围内没有结算记录；请检查 --from/--to（yyyy-MM-dd）、--institution 与 --region", file=stderr)
    if args.lang == "en":
        print(f"{writer.count} records written to {args.output}", file=stdout)
        if unresolved:
            print(f"{unresolved} records kept their stored scheme parameters (no matching rule selection)", file=stdout)
    else:
        print(f"已导出 {writer.count} 条记录到 {args.output}", file=stdout)
        if unresolved:
            print(f"{unresolved} 条记录未能还原规则选择，保留其结算参数", file=stdout)
    return 0


def _cannot_write(args: Any, error: BaseException | None, stderr: TextIO) -> int:
    # The writers' own FileExistsError messages already name the remedy in both languages.
    reason = str(error) if isinstance(error, FileExistsError) else f"{type(error).__name__}: {error}"
    if args.lang == "en":
        print(f"cannot write {args.output}: {reason}", file=stderr)
    else:
        print(f"无法写入 {args.output}：{reason}", file=stderr)
    return 2
