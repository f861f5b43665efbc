"""``settlement replay``: re-run recorded settlements under the rules in force and report every difference.

Input is a ledger (``--ledger`` with optional date, institution and region filters),
record files written by ``settlement export``, or claim vectors. Each settlement is
settled again by the kernel with the policy and catalogue versions in force on its date
and the accumulators recorded before it. Each cancel is replayed as the kernel's cancel
of its original. The report (HTML, CSV, JSON) goes to ``--out``. The exit status is 0
when everything matches and the hash chain is intact, 1 otherwise, 2 on an input error.

With ``--rules DIR`` the claims are settled again under those (corrected) rules instead,
and the command writes the proposed adjustment transactions; ``--post`` writes them to
the ledger as adjustments after a confirmation.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import msgspec

from adapters.cli.parser import settlement_date
from adapters.cli.selection import ledger_selection
from adapters.replay.columnar import ColumnarWriter
from adapters.replay.ledger_reader import LedgerFilter, read_ledger_records, stream_ledger_records
from adapters.replay.report import summary, write_csv, write_html, write_json
from adapters.replay.runner import ReplayOptions, ReplayOutcome, run_replay, units_from_columns, units_from_records
from adapters.replay.sources import plan_inputs
from adapters.replay.whatif_files import post_adjustments, write_what_if
from settlement.errors import SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("replay", help="按规则重算已结算记录并核对 (replay settlements and compare)")
    parser.add_argument("inputs", nargs="*", type=Path, metavar="FILE",
                        help="导出的记录文件 (.jsonl 或 columnar 目录) 或结算向量 (.json)，或其所在目录 "
                             "(record files, columnar record folders, claim vectors, or folders of them)")
    parser.add_argument("--ledger", metavar="DSN", help="postgresql://... 或 sqlite://PATH (ledger address)")
    parser.add_argument("--from", dest="date_from", metavar="DATE", type=settlement_date, help="起始结算日期 yyyy-MM-dd (first settlement date)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", type=settlement_date, help="截止结算日期 yyyy-MM-dd，含当日 (last settlement date, inclusive)")
    parser.add_argument("--institution", help="定点机构编码 (institution code)")
    parser.add_argument("--region", help="参保统筹区 insuplc_admdvs (pooling region)")
    parser.add_argument("--base-rules", type=Path, metavar="DIR", help="结算时生效的规则目录，默认内置规则 (rules in force, default the bundled rules)")
    parser.add_argument("--rules", type=Path, metavar="DIR", help="模拟：按此目录的规则重算并生成调整分录 (what-if: replay under these rules and propose adjustments)")
    parser.add_argument("--post", action="store_true", help="确认后将调整分录写入账本 (write the adjustments to the ledger after a confirmation)")
    parser.add_argument("--yes", action="store_true", help="不再询问，直接写入 (confirm --post without asking)")
    parser.add_argument("--workers", type=int, default=0, metavar="N", help="本机进程数，默认为 CPU 核数 (local processes, default one per core)")
    parser.add_argument("--dask", metavar="SCHEDULER", help="Dask 调度器地址，或 local 在本机启动集群 (Dask scheduler address, or local)")
    parser.add_argument("--out", type=Path, default=Path("replay-report"), metavar="DIR", help="报告输出目录 (report folder, default replay-report)")
    parser.add_argument("--no-progress", action="store_true", help="不显示进度条 (hide the progress bar)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="报告与输出语言 (language of the report and messages)")
    parser.set_defaults(handler=lambda args: run(args, sys.stdout, sys.stderr, sys.stdin))


def _say(lang: str, zh: str, en: str, stream: TextIO) -> None:
    print(en if lang == "en" else zh, file=stream)


def _source_label(args: Any) -> str:
    if args.ledger:
        parts = [args.ledger.split("@")[-1]]
        for name in ("date_from", "date_to", "institution", "region"):
            if getattr(args, name):
                parts.append(f"{name}={getattr(args, name)}")
        return " ".join(parts)
    return " ".join(str(path) for path in args.inputs)


def _layout(selection: LedgerFilter) -> str:
    if selection.whole:
        return "whole"
    return "window" if not (selection.institution or selection.region) else "gaps"


def _input_failure(error: Exception, lang: str) -> str:
    """Word a failure to read the input: coded errors as they are, a missing or unreadable file by its name."""
    if isinstance(error, SettlementError):
        return error.message(lang)
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        return f"cannot read {error.filename}: {reason}" if lang == "en" else f"无法读取 {error.filename}：{reason}"
    return f"{type(error).__name__}: {error}"


def _replay_ledger(args: Any, options: ReplayOptions, rules: Any) -> ReplayOutcome:
    """Replay the selection of a ledger.

    For workers on this machine the records stream into a temporary columnar folder, which
    they memory-map: memory stays bounded whatever the ledger's size, and the columnar
    replay is the fast one. A Dask scheduler elsewhere cannot read that folder, so its
    workers get the records themselves, read into memory first.
    """
    selection = ledger_selection(args)
    layout = _layout(selection)
    if options.dask and options.dask != "local":
        records = asyncio.run(read_ledger_records(args.ledger, selection, rules))
        return run_replay(units_from_records(records, options.worker_count()), options, total=len(records), chain_layout=layout)
    with tempfile.TemporaryDirectory(prefix="settlement-replay-") as temp:
        folder = Path(temp) / "records"
        with ColumnarWriter(folder, grouped=True, chain=layout) as writer:
            asyncio.run(stream_ledger_records(args.ledger, selection, rules, writer.write))
        units, total, layout = units_from_columns(str(folder), options.worker_count())
        return run_replay(units, options, total=total, chain_layout=layout)


def run(args: Any, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Run the command; return its exit status."""
    lang = args.lang
    if not args.ledger and not args.inputs:
        _say(lang, "请指定 --ledger 或输入文件", "give --ledger or input files", stderr)
        return 2
    if args.post and not (args.rules and args.ledger):
        _say(lang, "--post 需要同时指定 --rules 与 --ledger", "--post needs both --rules and --ledger", stderr)
        return 2

    if args.out.exists() and not args.out.is_dir():
        _say(lang, f"报告目录 {args.out} 已是一个文件，请用 --out 指定目录", f"the report folder {args.out} is a file; give a folder with --out", stderr)
        return 2

    if args.rules and args.ledger and (args.institution or args.region):
        _say(lang, "模拟重算需要每人的全部记录，不能按机构或统筹区筛选", "a what-if replay needs every record of each person; "
             "do not select by institution or region", stderr)
        return 2

    base_dir = args.base_rules or bundled_rules_dir()
    options = ReplayOptions(
        rules_dir=str(args.rules or base_dir), workers=args.workers, dask=args.dask,
        what_if=args.rules is not None, lang=lang, progress=False if args.no_progress else None,
        reason=f"what-if replay under {args.rules}" if args.rules else "",
    )
    try:
        base_rules = load_rules(base_dir)
        if args.ledger:
            outcome = _replay_ledger(args, options, base_rules)
        else:
            plan = plan_inputs(list(args.inputs), base_rules, options.worker_count())
            outcome = run_replay(plan.units, options, total=plan.total, chain_layout=plan.chain_layout)
    except (SettlementError, OSError, msgspec.DecodeError, ValueError) as error:
        print(_input_failure(error, lang), file=stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    if options.what_if:
        return _finish_what_if(args, outcome, stdout, stderr, stdin)
    return _finish_replay(args, outcome, stdout)


def _finish_replay(args: Any, outcome: ReplayOutcome, stdout: TextIO) -> int:
    lang = args.lang
    data = summary(outcome, _source_label(args))
    write_json(args.out / "summary.json", data)
    write_csv(args.out / "discrepancies.csv", outcome.replay.discrepancies if outcome.replay else [])
    write_html(args.out / "report.html", outcome, data, lang=lang)

    counts = data["counts"]
    rate = outcome.records / outcome.seconds if outcome.seconds > 0 else 0.0
    if lang == "en":
        print(f"checked {counts['checked']} records: {counts['matching']} match, {counts['differing']} differ "
              f"({counts['discrepancies']} discrepancies); {rate:,.0f} records/s", file=stdout)
    else:
        print(f"已核对 {counts['checked']} 笔：一致 {counts['matching']} 笔，差异 {counts['differing']} 笔"
              f"（差异项 {counts['discrepancies']} 个）；{rate:,.0f} 笔/秒", file=stdout)
    for item in outcome.breaks:
        if lang == "en":
            print(f"hash chain broken at settlement {item.setl_id} (seq {item.seq}, {item.reason})", file=stdout)
        else:
            print(f"哈希链在结算 {item.setl_id} 处断裂（序号 {item.seq}，{item.reason}）", file=stdout)
    if data["empty"]:
        _say(lang, "所选范围内没有结算记录，未核对任何结算；请检查 --from/--to（yyyy-MM-dd）、--institution 与 --region",
             "no settlement in the selection, so nothing was checked; check --from/--to (yyyy-MM-dd), --institution and --region", stdout)
    _say(lang, f"报告已写入 {args.out}", f"report written to {args.out}", stdout)
    return 0 if data["ok"] else 1


def _finish_what_if(args: Any, outcome: ReplayOutcome, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    lang = args.lang
    result = outcome.what_if
    assert result is not None
    write_what_if(args.out, result, str(args.rules))
    count = len(result.adjustments)
    _say(lang, f"模拟重算 {result.records} 笔，需调整 {count} 笔；调整分录已写入 {args.out / 'adjustments.jsonl'}",
         f"{result.records} records replayed under {args.rules}; {count} need adjustments, written to {args.out / 'adjustments.jsonl'}",
         stdout)
    if result.failures:
        _say(lang, f"{len(result.failures)} 笔无法重算，见 whatif-summary.json",
             f"{len(result.failures)} records could not be replayed; see whatif-summary.json", stderr)
    if not args.post or not count:
        return 0 if not result.failures else 1

    if not args.yes:
        _say(lang, f"将向账本写入 {count} 笔调整交易，输入 yes 确认：",
             f"About to write {count} adjustment transactions to the ledger; type yes to confirm:", stdout)
        stdout.flush()
        if stdin.readline().strip().lower() != "yes":
            _say(lang, "未确认，未写入任何调整", "not confirmed; nothing was written", stdout)
            return 1
    try:
        posted, skipped = asyncio.run(post_adjustments(args.ledger, result.adjustments))
    except SettlementError as error:
        print(error.message(lang), file=stderr)
        return 2
    _say(lang, f"已写入 {posted} 笔调整交易；{skipped} 笔为已撤销结算与其撤销，相互抵销，未写入",
         f"{posted} adjustment transactions written; {skipped} belong to cancelled settlements and their cancels, "
         "which offset each other, and were not written", stdout)
    return 0
