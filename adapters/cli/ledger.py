"""``settlement ledger verify`` and ``settlement ledger fund``: audit the ledger and fund personal accounts.

``verify`` recomputes every balance and accumulator from the journal, checks the hash
chain over the settlement records, and exits 1 when anything differs, listing the first
differences and naming the first broken chain link. ``fund`` posts yearly or monthly
injections into personal accounts, from a CSV file (``psn_no,insuplc_admdvs,insutype,amount``
with the amount in yuan, such as ``1200.00``) or for one person. Each injection's
idempotency key is the batch name and the person, so running the same file again
writes nothing new.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from adapters.cli.serve import DEFAULT_LEDGER
from adapters.ledger import existing_ledger, open_store
from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount, parse_amount
from settlement.store import DepositRequest, JournalEntry, VerifyReport

__all__ = ["read_funding_file", "register", "run_fund", "run_verify"]

# Injections in flight at once; the store groups them into database transactions.
FUND_CONCURRENCY = 256
CSV_COLUMNS = ("psn_no", "insuplc_admdvs", "insutype", "amount")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ledger", help=(text := "账本核验与个人账户划入 (ledger audit and account funding)"), description=text)
    commands = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    verify = commands.add_parser("verify", help=(text := "按日志重算余额与累计项并核对 (recompute balances from the journal and compare)"), description=text)
    verify.add_argument("--ledger", default=DEFAULT_LEDGER, metavar="DSN",
                        help=f"postgresql://... 或 sqlite://PATH，默认与 settlement serve 相同 (ledger address, default {DEFAULT_LEDGER})")
    verify.add_argument("--max-differences", type=int, default=20, metavar="N", help="最多列出的差异条数 (differences to list, default 20)")
    verify.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")
    verify.set_defaults(handler=lambda args: run_verify(args.ledger, args.max_differences, args.lang, sys.stdout, sys.stderr))

    fund = commands.add_parser("fund", help=(text := "向个人账户划入资金 (inject money into personal accounts)"), description=text)
    fund.add_argument("--ledger", required=True, metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    fund.add_argument("--period", required=True, help="划入期间 yyyy 或 yyyy-MM (funding period)")
    fund.add_argument("--batch", help="批次名，默认为期间；同一批次同一人只入账一次 (batch name, default the period; one injection per person and batch)")
    fund.add_argument("--file", type=Path, help="CSV 文件：psn_no,insuplc_admdvs,insutype,amount（元）(CSV file, amount in yuan)")
    fund.add_argument("--psn-no", help="单人划入的人员编号 (person, instead of --file)")
    fund.add_argument("--admdvs", help="单人划入的统筹区 (pooling region, with --psn-no)")
    fund.add_argument("--insutype", default="310", help="险种类型，默认 310 (insurance type, default 310)")
    fund.add_argument("--amount", help="单人划入金额（元），负数为划出 (amount in yuan; negative withdraws)")
    fund.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages)")
    fund.set_defaults(handler=_handle_fund)


def _failure(error: BaseException) -> SettlementError:
    if isinstance(error, SettlementError):
        return error
    return SettlementError(ErrorCode.LEDGER_FAILED, detail=f"{type(error).__name__}: {error}")


def run_verify(dsn: str, max_differences: int, lang: str, stdout: TextIO, stderr: TextIO) -> int:
    """Print the verification summary; return 0 when the ledger is consistent, 1 when it differs, 2 when it cannot be read."""
    try:
        report = asyncio.run(_verify(dsn, max_differences, lang))
    except (SettlementError, OSError, asyncpg.PostgresError) as error:
        print(_failure(error).message(lang), file=stderr)
        return 2
    stdout.write(render_report(report, lang))
    return 0 if report.ok else 1


async def _verify(dsn: str, max_differences: int, lang: str) -> VerifyReport:
    # Verifying must never create a ledger: a mistyped SQLite path would otherwise leave an
    # empty database behind and report a missing schema instead of a missing file.
    existing_ledger(dsn)
    store = await open_store(dsn)
    try:
        return await store.verify(max_differences=max_differences, lang=lang)
    finally:
        await store.close()


_COUNT_NAMES = {
    "transactions": "交易",
    "postings": "分录",
    "accounts": "账户",
    "accumulators": "累计项",
    "settlements": "结算",
    "cancels": "撤销",
    "chain_links": "链节",
}


def render_report(report: VerifyReport, lang: str) -> str:
    english = lang == "en"
    lines = []
    checked = ", ".join(f"{name} {count}" if english else f"{_COUNT_NAMES[name]} {count}" for name, count in report.counts.items())
    lines.append(f"checked: {checked}" if english else f"已核对：{checked}")
    if report.ok:
        lines.append(
            "ledger verified: every balance and accumulator equals the journal, and the hash chain is unbroken"
            if english
            else "核对通过：所有余额和累计项与日志一致，哈希链完整"
        )
        return "\n".join(lines) + "\n"

    shown = len(report.differences)
    if english:
        lines.append(f"ledger verification FAILED: {report.difference_count} differences (first {shown} listed)")
    else:
        lines.append(f"核对未通过：共 {report.difference_count} 处差异（列出前 {shown} 处）")
    if report.chain_break:
        lines.append(f"first broken chain link: {report.chain_break}" if english else f"哈希链首个断裂处：{report.chain_break}")
    lines.extend(f"  {difference}" for difference in report.differences)
    return "\n".join(lines) + "\n"


def read_funding_file(path: Path, *, period: str, batch: str) -> list[DepositRequest]:
    """Read the CSV file into deposit requests; raise CLAIM_FILE_INVALID naming the line and column."""
    requests = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in CSV_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise SettlementError(ErrorCode.CLAIM_FILE_INVALID, field="header", value=str(path), detail=f"缺少列 {missing}", detail_en=f"missing columns {missing}")
        for line, row in enumerate(reader, start=2):
            for name in CSV_COLUMNS:
                if not (row.get(name) or "").strip():
                    raise SettlementError(ErrorCode.CLAIM_FILE_INVALID, field=f"{path.name}:{line}:{name}", value=str(path), detail="为空", detail_en="is empty")
            try:
                amount = parse_amount(row["amount"].strip(), f"{path.name}:{line}:amount", allow_negative=True)
            except SettlementError as error:
                raise SettlementError(ErrorCode.CLAIM_FILE_INVALID, field=f"{path.name}:{line}:amount", value=str(path), detail=error.message_zh, detail_en=error.message_en) from error
            psn_no = row["psn_no"].strip()
            requests.append(
                DepositRequest(
                    msgid=f"{batch}:{psn_no}", psn_no=psn_no, insuplc_admdvs=row["insuplc_admdvs"].strip(),
                    insutype=row["insutype"].strip(), amount=amount, period=period,
                )
            )
    return requests


def _handle_fund(args: Any) -> int:
    batch = args.batch or args.period
    try:
        if args.file is not None:
            requests = read_funding_file(args.file, period=args.period, batch=batch)
        elif args.psn_no and args.admdvs and args.amount:
            amount = parse_amount(args.amount, "--amount", allow_negative=True)
            requests = [DepositRequest(msgid=f"{batch}:{args.psn_no}", psn_no=args.psn_no, insuplc_admdvs=args.admdvs, insutype=args.insutype, amount=amount, period=args.period)]
        else:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field="--file 或 --psn-no/--admdvs/--amount" if args.lang != "en" else "--file or --psn-no/--admdvs/--amount")
    except (SettlementError, OSError) as error:
        print(_failure(error).message(args.lang), file=sys.stderr)
        return 2
    return run_fund(args.ledger, requests, args.lang, sys.stdout, sys.stderr)


def run_fund(dsn: str, requests: list[DepositRequest], lang: str, stdout: TextIO, stderr: TextIO) -> int:
    """Post the injections; print the total and each failure; return 1 if any failed."""
    try:
        outcomes = asyncio.run(_fund(dsn, requests))
    except (SettlementError, OSError, asyncpg.PostgresError) as error:
        print(_failure(error).message(lang), file=stderr)
        return 2

    posted = [(request, outcome) for request, outcome in zip(requests, outcomes, strict=True) if isinstance(outcome, JournalEntry)]
    failed = [(request, outcome) for request, outcome in zip(requests, outcomes, strict=True) if not isinstance(outcome, JournalEntry)]
    total = format_amount(sum(request.amount for request, _ in posted))
    if lang == "en":
        print(f"posted {len(posted)} injections, {total} yuan in total; {len(failed)} failed", file=stdout)
    else:
        print(f"已入账 {len(posted)} 笔，合计 {total} 元；失败 {len(failed)} 笔", file=stdout)
    for request, error in failed:
        print(f"{request.msgid}: {_failure(error).message(lang)}", file=stderr)
    return 1 if failed else 0


async def _fund(dsn: str, requests: list[DepositRequest]) -> list[Any]:
    store = await open_store(dsn)
    try:
        outcomes: list[Any] = []
        for start in range(0, len(requests), FUND_CONCURRENCY):
            chunk = requests[start : start + FUND_CONCURRENCY]
            outcomes.extend(await asyncio.gather(*(store.deposit(request) for request in chunk), return_exceptions=True))
        return outcomes
    finally:
        await store.close()
