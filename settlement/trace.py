"""Format a settlement trace as ``setl_proc_info`` text, one short line per step.

Chinese is the default; ``lang="en"`` gives English. Amounts are yuan with two decimals
and ratios are percentages with two decimals, for example
``分段2 费用 10000.00 × 90.00% = 9000.00``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from settlement.money import format_amount, round_half_away
from settlement.types import RATIO_SCALE, LineResult, TraceStep

__all__ = ["format_step", "format_trace"]

# A trace step writes -1 where it has no limit or no index.
NO_VALUE = -1


def _percent(ratio: int) -> str:
    """Format a 1e-4 ratio as a percentage with two decimals: ``9000`` gives ``"90.00%"``."""
    sign = "-" if ratio < 0 else ""
    whole, hundredths = divmod(abs(ratio), 100)
    return f"{sign}{whole}.{hundredths:02d}%"


def _limit(step: TraceStep, lang: str) -> str:
    if step.limit == NO_VALUE:
        return ""
    if lang == "en":
        return f" (limit left {format_amount(step.limit)})"
    return f"（剩余限额 {format_amount(step.limit)}）"


def _product(step: TraceStep) -> str:
    return f"{format_amount(step.base)} × {_percent(step.ratio)} = {format_amount(step.amount)}"


def _line(step: TraceStep, lang: str) -> str:
    number, amount, inscp = step.index + 1, format_amount(step.base), format_amount(step.amount)
    if lang == "en":
        return f"line {number}: amount {amount}, first self-pay {_percent(step.ratio)}, in scope {inscp}"
    return f"明细{number} 金额 {amount} 先行自付 {_percent(step.ratio)} 政策范围内 {inscp}"


def _deductible(step: TraceStep, lang: str) -> str:
    due, base, applied = format_amount(step.limit), format_amount(step.base), format_amount(step.amount)
    if lang == "en":
        return f"deductible due {due}, in scope {base}, applied {applied}"
    return f"起付线 应付 {due} 政策范围内 {base} 本次起付 {applied}"


def _band(step: TraceStep, lang: str) -> str:
    # A band where the cap ran out pays less than its share; show the share and then the payment.
    share = round_half_away(step.base * step.ratio, RATIO_SCALE)
    if share != step.amount:
        product = f"{format_amount(step.base)} × {_percent(step.ratio)} = {format_amount(share)}"
        if lang == "en":
            return f"band {step.index + 1}: expense {product}, paid {format_amount(step.amount)} up to the limit{_limit(step, lang)}"
        return f"分段{step.index + 1} 费用 {product}，按剩余限额支付 {format_amount(step.amount)}{_limit(step, lang)}"
    if lang == "en":
        return f"band {step.index + 1}: expense {_product(step)}{_limit(step, lang)}"
    return f"分段{step.index + 1} 费用 {_product(step)}{_limit(step, lang)}"


def _cap(step: TraceStep, lang: str) -> str:
    left, used, above = format_amount(step.limit), format_amount(step.base), format_amount(step.amount)
    if lang == "en":
        return (
            f"band {step.index + 1}: fund cap reached, cap left {left} used by expense {used} "
            f"(at {_percent(step.ratio)}, rounded up), expense above the cap {above}"
        )
    return f"分段{step.index + 1} 达到统筹基金封顶：剩余 {left} 对应费用 {used}（按 {_percent(step.ratio)} 向上取整），超封顶费用 {above}"


def _large_amount(step: TraceStep, lang: str) -> str:
    if lang == "en":
        return f"large-amount fund: expense {_product(step)}{_limit(step, lang)}"
    return f"大额医疗 费用 {_product(step)}{_limit(step, lang)}"


def _critical_illness(step: TraceStep, lang: str) -> str:
    if lang == "en":
        return f"critical illness band {step.index + 1}: base {_product(step)}{_limit(step, lang)}"
    return f"大病保险分段{step.index + 1} 费用 {_product(step)}{_limit(step, lang)}"


def _civil_servant(step: TraceStep, lang: str) -> str:
    if lang == "en":
        part = "deductible" if step.index == 0 else "co-payment"
        return f"civil servant subsidy on the {part}: {_product(step)}{_limit(step, lang)}"
    part = "起付线部分" if step.index == 0 else "共付部分"
    return f"公务员补助（{part}）{_product(step)}{_limit(step, lang)}"


def _medical_assistance(step: TraceStep, lang: str) -> str:
    if lang == "en":
        return f"medical assistance: burden {_product(step)}{_limit(step, lang)}"
    return f"医疗救助 费用 {_product(step)}{_limit(step, lang)}"


def _account(step: TraceStep, lang: str) -> str:
    payable, balance, paid = format_amount(step.base), format_amount(step.limit), format_amount(step.amount)
    if lang == "en":
        return f"own account: payable {payable}, balance {balance}, paid {paid}"
    return f"个人账户 可支付 {payable} 余额 {balance} 支付 {paid}"


def _mutual_aid(step: TraceStep, lang: str) -> str:
    payable, paid = format_amount(step.base), format_amount(step.amount)
    balance = "" if step.limit == NO_VALUE else format_amount(step.limit)
    if lang == "en":
        return f"family mutual aid: payable {payable}, balance {balance}, paid {paid}"
    return f"家庭共济 可支付 {payable} 余额 {balance} 支付 {paid}"


def _reversal(step: TraceStep, lang: str) -> str:
    original, reversed_amount = format_amount(step.base), format_amount(step.amount)
    if lang == "en":
        return f"settlement cancelled: medical fees {original} reversed as {reversed_amount}"
    return f"撤销结算 原医疗费总额 {original} 冲销 {reversed_amount}"


_FORMATTERS: dict[str, Callable[[TraceStep, str], str]] = {
    "line": _line,
    "deductible": _deductible,
    "band": _band,
    "cap": _cap,
    "large_amount": _large_amount,
    "critical_illness": _critical_illness,
    "civil_servant": _civil_servant,
    "medical_assistance": _medical_assistance,
    "account": _account,
    "mutual_aid": _mutual_aid,
    "reversal": _reversal,
}


def format_step(step: TraceStep, lang: str = "zh") -> str:
    """Format one trace step as one line in ``lang`` (``zh`` or ``en``).

    Raises ``ValueError`` for a step name this module does not know.
    """
    formatter = _FORMATTERS.get(step.step)
    if formatter is None:
        raise ValueError(f"unknown trace step {step.step!r}")
    return formatter(step, "en" if lang == "en" else "zh")


def format_trace(
    trace: Sequence[TraceStep],
    lang: str = "zh",
    *,
    include_lines: bool = True,
    line_results: Sequence[LineResult] | None = None,
) -> str:
    """Return the ``setl_proc_info`` text of a trace: one line per step, joined by newlines.

    ``include_lines=False`` leaves out the per-line steps, which a long claim would
    otherwise fill the text with. With ``line_results``, a line that is wholly self-paid
    (class C or outside the catalogue) is written as such, because its trace step alone
    cannot tell it from a class B line with a 100% first self-pay.
    """
    steps = trace if include_lines else [step for step in trace if step.step != "line"]
    self_paid = set()
    if line_results is not None:
        self_paid = {index for index, line in enumerate(line_results) if line.amount != 0 and line.fulamt_ownpay_amt == line.amount}
    texts = []
    for step in steps:
        if step.step == "line" and step.index in self_paid:
            texts.append(_self_paid_line(step, "en" if lang == "en" else "zh"))
        else:
            texts.append(format_step(step, lang))
    return "\n".join(texts)


def _self_paid_line(step: TraceStep, lang: str) -> str:
    number, amount = step.index + 1, format_amount(step.base)
    if lang == "en":
        return f"line {number}: amount {amount}, fully self-paid"
    return f"明细{number} 金额 {amount} 全自费"
