"""``settlement reconcile``: 3201 totals and 3202 details from the ledger, and the check of an institution's file.

``export`` writes the figures the server returns for an institution and a period, as
text files with the chosen separator. ``import`` reads an institution's own detail file
and lists the settlements missing on either side and those whose amounts differ (exit
status 1 when anything does). A cancel counts on its own date, so cancelling later never
changes an earlier day's figures.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from adapters.cli.parser import settlement_date
from adapters.ledger import open_store
from adapters.replay.recon_files import SEPARATORS, read_details, write_details, write_totals
from settlement.errors import SettlementError
from settlement.money import format_amount
from settlement.replay.reconcile import DETAIL_AMOUNTS, compare_details, detail_rows, totals_rows
from settlement.store import SettlementSummary

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reconcile", help="对账文件 3201/3202 (reconciliation files)")
    commands = parser.add_subparsers(dest="reconcile_command", metavar="ACTION", required=True)

    def common(sub: Any) -> None:
        sub.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
        sub.add_argument("--institution", required=True, help="定点机构编码 (institution code)")
        sub.add_argument("--from", dest="date_from", required=True, metavar="DATE", type=settlement_date, help="起始日期 yyyy-MM-dd (first day)")
        sub.add_argument("--to", dest="date_to", metavar="DATE", type=settlement_date, help="截止日期 yyyy-MM-dd，默认同起始日期 (last day, default the first)")
        sub.add_argument("--sep", choices=sorted(SEPARATORS), default="tab", help="字段分隔符，默认 tab (field separator)")
        sub.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")

    export = commands.add_parser("export", help="由账本生成 3201 汇总与 3202 明细文件 (write 3201 totals and 3202 details)")
    common(export)
    export.add_argument("--totals", type=Path, required=True, metavar="FILE", help="3201 汇总文件 (totals file)")
    export.add_argument("--details", type=Path, required=True, metavar="FILE", help="3202 明细文件 (details file)")
    export.add_argument("--exclude-cancels", action="store_true", help="汇总不含撤销记录 refd_setl_flag=0 (totals without cancel records)")
    export.set_defaults(handler=lambda args: run_export(args, sys.stdout, sys.stderr))

    check = commands.add_parser("import", help="核对机构的 3202 明细文件 (compare an institution's detail file)")
    common(check)
    check.add_argument("--file", type=Path, required=True, metavar="FILE", help="机构的明细文件 (the institution's detail file)")
    check.set_defaults(handler=lambda args: run_import(args, sys.stdout, sys.stderr))


async def _summaries(dsn: str, institution: str, begin: str, end: str) -> list[SettlementSummary]:
    store = await open_store(dsn)
    try:
        return await store.settlements_in_period(institution, begin, end)
    finally:
        await store.close()


def _fail(error: Exception, lang: str, stderr: TextIO) -> int:
    print(error.message(lang) if isinstance(error, SettlementError) else f"{type(error).__name__}: {error}", file=stderr)
    return 2


def run_export(args: Any, stdout: TextIO, stderr: TextIO) -> int:
    end = args.date_to or args.date_from
    try:
        summaries = asyncio.run(_summaries(args.ledger, args.institution, args.date_from, end))
    except (SettlementError, OSError) as error:
        return _fail(error, args.lang, stderr)
    separator = SEPARATORS[args.sep]
    totals = totals_rows(summaries, args.institution, args.date_from, end, include_cancels=not args.exclude_cancels)
    write_totals(args.totals, totals, separator)
    write_details(args.details, detail_rows(summaries), separator)
    for row in totals:
        if args.lang == "en":
            print(f"{row.insutype}/{row.clr_type}: {row.fixmedins_setl_cnt} records, medical fees {format_amount(row.medfee_sumamt)}, "
                  f"funds {format_amount(row.fund_pay_sumamt)}, accounts {format_amount(row.acct_pay)}", file=stdout)
        else:
            print(f"{row.insutype}/{row.clr_type}：{row.fixmedins_setl_cnt} 笔，医疗费 {format_amount(row.medfee_sumamt)}，"
                  f"基金 {format_amount(row.fund_pay_sumamt)}，个人账户 {format_amount(row.acct_pay)}", file=stdout)
    return 0


def run_import(args: Any, stdout: TextIO, stderr: TextIO) -> int:
    end = args.date_to or args.date_from
    try:
        theirs = read_details(args.file, SEPARATORS[args.sep])
        summaries = asyncio.run(_summaries(args.ledger, args.institution, args.date_from, end))
    except (SettlementError, OSError) as error:
        return _fail(error, args.lang, stderr)
    report = compare_details(detail_rows(summaries), theirs)
    english = args.lang == "en"
    print(f"ledger {report.ledger_count} records, file {report.file_count} records" if english
          else f"账本 {report.ledger_count} 笔，机构文件 {report.file_count} 笔", file=stdout)
    for setl_id in report.missing_in_file:
        print(f"missing in the institution's file: {setl_id}" if english else f"机构文件缺少：{setl_id}", file=stdout)
    for setl_id in report.missing_in_ledger:
        print(f"missing in the ledger: {setl_id}" if english else f"账本中不存在：{setl_id}", file=stdout)
    for setl_id, field, ours, other in report.differing:
        if field in DETAIL_AMOUNTS:
            ours, other = format_amount(int(ours)), format_amount(int(other))
        print(f"differs: {setl_id} {field} ledger {ours}, file {other}" if english
              else f"不一致：{setl_id} {field} 账本 {ours}，机构 {other}", file=stdout)
    if report.ok:
        print("reconciled: every settlement agrees" if english else "对账一致", file=stdout)
    return 0 if report.ok else 1
