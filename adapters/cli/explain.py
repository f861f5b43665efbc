"""``settlement explain``: settle claim vector files and show, or check, what comes out.

Each file is read with ``settlement.claimfile`` and run through ``settlement.engine``
(settle, cancel, or cancel and settle again for a partial refund). Output:

* by default, one JSON object per file and line (JSON Lines) with the outputs and the
  accumulators after, limited to the keys the file lists. On a terminal it prints the
  steps (``settlement.trace`` text) and a table of the outputs instead, unless ``--json``
  is given.
* with ``--check``, each difference from the file's ``expected`` block as
  ``file: field: expected X, got Y`` and a summary line.

Exit status: 0 when everything ran (and matched, with ``--check``), 1 when ``--check``
found a difference, 2 for bad input (rules, claim file or an amount the engine cannot
represent). On status 2 only the error goes to stderr and nothing is written to stdout,
because every file is read and settled before anything is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import msgspec

from settlement import engine
from settlement.claimfile import ClaimFile, read_claim_file
from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount
from settlement.paths import bundled_rules_dir
from settlement.policy import RuleSet, load_rules
from settlement.trace import format_trace
from settlement.types import SETTLEMENT_OUTPUT_FIELDS, SettlementResult

__all__ = ["register", "run"]

EXIT_OK = 0
EXIT_DIFFERENCE = 1
EXIT_BAD_INPUT = 2

# Chinese names of the year-to-date accumulators, shown beside the key in the table.
ACCUMULATOR_LABELS_ZH = {
    "acct_balc": "个人账户余额",
    "op_dedc_used": "门诊已用起付线",
    "op_dedc_used_primary": "门诊已用起付线（基层）",
    "op_dedc_used_hospital": "门诊已用起付线（二三级）",
    "op_fund_paid": "门诊统筹已支付",
    "ip_admission_count": "本年住院次数",
    "ip_inscp_cum": "住院政策范围内累计",
    "ip_fund_paid": "住院统筹已支付",
    "hifob_paid": "大额补助已支付",
    "chronic_dedc_used": "门诊慢特病已用起付线",
    "cii_base_cum": "大病保险累计基数",
    "hifmi_paid": "大病保险已支付",
    "cvlserv_paid": "公务员补助已支付",
    "maf_paid": "医疗救助已支付",
    "family_acct_balc": "共济账户余额",
}

OUTPUT_LABELS_ZH = {
    "medfee_sumamt": "医疗费总额",
    "fulamt_ownpay_amt": "全自费金额",
    "overlmt_selfpay": "超限价自费金额",
    "preselfpay_amt": "先行自付金额",
    "inscp_scp_amt": "符合政策范围金额",
    "act_pay_dedc": "实际支付起付线",
    "hifp_pay": "基本医疗保险统筹基金支出",
    "hifob_pay": "职工大额医疗费用补助基金支出",
    "hifmi_pay": "居民大病保险资金支出",
    "cvlserv_pay": "公务员医疗补助资金支出",
    "maf_pay": "医疗救助基金支出",
    "fund_pay_sumamt": "基金支付总额",
    "psn_part_amt": "个人负担总金额",
    "acct_pay": "个人账户支出",
    "acct_mulaid_pay": "个人账户共济支付金额",
    "psn_cash_pay": "个人现金支出",
    "hosp_part_amt": "医院负担金额",
    "balc": "个人账户余额",
}

OPERATION_LABELS = {
    "settle": ("结算", "settle"),
    "cancel": ("撤销结算", "cancel"),
    "refund_partial": ("部分退费（撤销后重新结算）", "partial refund (cancel, then settle again)"),
}

class Explanation(msgspec.Struct, frozen=True):
    """Result of running one claim file.

    ``sections`` maps an output block name (``outputs``, ``original_outputs``,
    ``reversal_outputs``, ``resettle_outputs``) to its result, in the order they happened.
    ``accumulators_after`` contains only the keys the file lists.
    """

    claim_file: ClaimFile
    sections: dict[str, SettlementResult]
    original_accumulators_after: dict[str, int] | None
    accumulators_after: dict[str, int]
    family_account_balc_after: int | None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="结算示例文件并解释结果 (settle claim vector files and explain the results)",
        description="结算一个或多个示例文件（claim vector）并输出结果；--check 与文件中的期望值比对。"
        " Settle claim vector files and print the results; --check compares them with the expected values.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="示例文件 (claim vector JSON file)")
    parser.add_argument("--check", action="store_true", help="与文件的 expected 比对，不符时退出码为 1 (compare with expected; exit 1 on a difference)")
    parser.add_argument("--rules", type=Path, metavar="DIR", help="规则目录，默认使用内置规则 (rules directory; default: the bundled rules)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of messages and tables)")
    parser.add_argument("--json", action="store_true", help="终端上也输出 JSON (print JSON even on a terminal)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    return run(args.files, check=args.check, rules_dir=args.rules, lang=args.lang, force_json=args.json, stdout=sys.stdout, stderr=sys.stderr)


def run(
    files: list[Path],
    *,
    check: bool = False,
    rules_dir: Path | None = None,
    lang: str = "zh",
    force_json: bool = False,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Settle ``files``, print the results or the check report, and return the exit status."""
    try:
        rules = load_rules(rules_dir if rules_dir is not None else bundled_rules_dir())
    except SettlementError as error:
        print(error.message(lang), file=stderr)
        return EXIT_BAD_INPUT

    explanations = []
    for path in files:
        try:
            explanations.append(_explain_file(path, rules, check))
        except SettlementError as error:
            print(f"{path}: {error.message(lang)}", file=stderr)
            return EXIT_BAD_INPUT

    if check:
        return _report_check(explanations, lang, force_json, stdout)
    if stdout.isatty() and not force_json:
        for explanation in explanations:
            stdout.write(render_table(explanation, lang))
    else:
        for explanation in explanations:
            stdout.write(json.dumps(to_json(explanation), ensure_ascii=False) + "\n")
    return EXIT_OK


# ---------------------------------------------------------------------------
# Running one file


def _explain_file(path: Path, rules: RuleSet, check: bool) -> Explanation:
    claim_file = read_claim_file(path, rules)
    if check and not claim_file.expected_outputs:
        raise SettlementError(
            ErrorCode.CLAIM_FILE_INVALID,
            field="expected",
            value=path.name,
            detail="--check 需要文件给出期望的结算结果",
            detail_en="--check needs the expected outputs in the file",
        )

    case = claim_file.case
    original = engine.settle(case.claim)
    if claim_file.operation == "settle":
        family_after = original.accumulators_after.get("family_acct_balc") if case.claim.has_family_account else None
        return Explanation(
            claim_file=claim_file,
            sections={"outputs": original},
            original_accumulators_after=None,
            accumulators_after=_listed(original.accumulators_after, case.accumulator_keys),
            family_account_balc_after=family_after,
        )

    assert claim_file.accumulators_before is not None
    if claim_file.operation == "cancel":
        reversal = engine.cancel(original, case.claim.accumulators, claim_file.accumulators_before)
        sections = {"original_outputs": original, "outputs": reversal}
        final = reversal
    else:
        kept_claim = engine.refunded_lines(case.claim, claim_file.refund_feedetl_sns)
        reversal, resettle = engine.refund_partial(original, case.claim.accumulators, claim_file.accumulators_before, kept_claim)
        sections = {"original_outputs": original, "reversal_outputs": reversal, "resettle_outputs": resettle}
        final = resettle

    return Explanation(
        claim_file=claim_file,
        sections=sections,
        original_accumulators_after=_listed(original.accumulators_after, case.accumulator_keys),
        accumulators_after=_listed(final.accumulators_after, tuple(claim_file.accumulators_before)),
        family_account_balc_after=None,
    )


def _listed(accumulators: Mapping[str, int], keys: tuple[str, ...]) -> dict[str, int]:
    # A key the engine left out stays missing, so a check reports it instead of reading 0.
    return {key: accumulators[key] for key in keys if key in accumulators}


def _accumulator_text(key: str, value: int) -> int | str:
    """Return a counter as an integer and any other value (accumulator or output) as a money string."""
    return value if key.endswith("_count") else format_amount(value)


def _outputs_json(result: SettlementResult) -> dict[str, str]:
    return {name: format_amount(getattr(result.outputs, name)) for name in SETTLEMENT_OUTPUT_FIELDS}


def to_json(explanation: Explanation) -> dict[str, Any]:
    """Return the JSON object printed for one file: money as decimal strings, counters as integers."""
    claim_file = explanation.claim_file
    document: dict[str, Any] = {
        "file": claim_file.path,
        "example_id": claim_file.example_id,
        "operation": claim_file.operation,
        "policy_id": claim_file.policy_id,
    }
    for name, result in explanation.sections.items():
        document[name] = _outputs_json(result)
    document["accumulators_after"] = {key: _accumulator_text(key, value) for key, value in explanation.accumulators_after.items()}
    if explanation.family_account_balc_after is not None:
        document["family_account_balc_after"] = format_amount(explanation.family_account_balc_after)
    return document


# ---------------------------------------------------------------------------
# Checking


class Difference(msgspec.Struct, frozen=True):
    field: str
    expected: str
    got: str


def differences(explanation: Explanation) -> list[Difference]:
    """Compare every value the file expects with what the engine returned."""
    claim_file = explanation.claim_file
    found: list[Difference] = []

    def compare(prefix: str, expected: Mapping[str, int], got: Mapping[str, int]) -> None:
        for key, want in expected.items():
            have = got.get(key)
            if have != want:
                shown = "(missing)" if have is None else str(_accumulator_text(key, have))
                found.append(Difference(f"{prefix}{key}", str(_accumulator_text(key, want)), shown))

    def outputs_of(result: SettlementResult) -> dict[str, int]:
        return {name: getattr(result.outputs, name) for name in SETTLEMENT_OUTPUT_FIELDS}

    case = claim_file.case
    if claim_file.operation != "settle":
        # The original is recomputed first and must reproduce its stored result.
        original = explanation.sections["original_outputs"]
        if case.expected_outputs is not None:
            compare("original.expected.outputs.", case.expected_outputs, outputs_of(original))
        if case.expected_accumulators_after is not None and explanation.original_accumulators_after is not None:
            compare("original.expected.accumulators_after.", case.expected_accumulators_after, explanation.original_accumulators_after)

    for name, expected in claim_file.expected_outputs.items():
        compare(f"{name}.", expected, outputs_of(explanation.sections[name]))
    if claim_file.expected_accumulators_after is not None:
        compare("accumulators_after.", claim_file.expected_accumulators_after, explanation.accumulators_after)
    if claim_file.expected_family_account_balc_after is not None:
        compare(
            "",
            {"family_account_balc_after": claim_file.expected_family_account_balc_after},
            {} if explanation.family_account_balc_after is None else {"family_account_balc_after": explanation.family_account_balc_after},
        )
    return found


def _report_check(explanations: list[Explanation], lang: str, force_json: bool, stdout: TextIO) -> int:
    failed = 0
    for explanation in explanations:
        path = explanation.claim_file.path
        found = differences(explanation)
        failed += bool(found)
        if force_json:
            document = to_json(explanation)
            document["check"] = {"passed": not found, "differences": [msgspec.to_builtins(item) for item in found]}
            stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
            continue
        if not found:
            stdout.write(f"{'ok' if lang == 'en' else '通过'} {path}\n")
        for item in found:
            if lang == "en":
                stdout.write(f"{path}: {item.field}: expected {item.expected}, got {item.got}\n")
            else:
                stdout.write(f"{path}: {item.field}: 期望 {item.expected}，实际 {item.got}\n")

    if not force_json:
        passed = len(explanations) - failed
        if lang == "en":
            stdout.write(f"{passed} passed, {failed} with differences\n")
        else:
            stdout.write(f"{passed} 个文件通过，{failed} 个文件不符\n")
    return EXIT_DIFFERENCE if failed else EXIT_OK


# ---------------------------------------------------------------------------
# Terminal table


def _width(text: str) -> int:
    # Chinese characters take two columns on a terminal.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _left(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _right(text: str, width: int) -> str:
    return " " * max(0, width - _width(text)) + text


# Chinese headings of the output blocks a claim file can produce.
SECTION_LABELS_ZH = {
    "outputs": "结算结果",
    "original_outputs": "原结算结果",
    "reversal_outputs": "撤销结果",
    "resettle_outputs": "重新结算结果",
}


def render_table(explanation: Explanation, lang: str) -> str:
    """Return a readable table of one file's steps, outputs and accumulators after."""
    claim_file = explanation.claim_file
    english = lang == "en"
    operation = OPERATION_LABELS[claim_file.operation][1 if english else 0]
    lines = [
        f"{claim_file.example_id or claim_file.path}  {claim_file.title}",
        f"  {'policy' if english else '政策'} {claim_file.policy_id}  {operation}",
    ]

    for name, result in explanation.sections.items():
        lines.append("")
        lines.append(f"  [{name if english else SECTION_LABELS_ZH.get(name, name)}]")
        lines.extend(f"    {step}" for step in format_trace(result.trace, lang, line_results=result.lines).splitlines())
        lines.append("")
        for field in SETTLEMENT_OUTPUT_FIELDS:
            label = field if english else f"{OUTPUT_LABELS_ZH[field]} {field}"
            lines.append(f"    {_left(label, 44)}{_right(format_amount(getattr(result.outputs, field)), 16)}")

    lines.append("")
    lines.append(f"  [{'accumulators after' if english else '结算后累计值'}]")
    for key, value in explanation.accumulators_after.items():
        label = key if english else f"{ACCUMULATOR_LABELS_ZH.get(key, '')} {key}".strip()
        lines.append(f"    {_left(label, 44)}{_right(str(_accumulator_text(key, value)), 16)}")
    if explanation.family_account_balc_after is not None:
        label = "family account balance after" if english else "共济账户余额"
        lines.append(f"    {_left(label, 44)}{_right(format_amount(explanation.family_account_balc_after), 16)}")
    return "\n".join(lines) + "\n\n"
