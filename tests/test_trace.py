"""``setl_proc_info`` text of a trace: one short line per step, Chinese or English."""

from __future__ import annotations

import pytest

from settlement.trace import format_step, format_trace
from settlement.types import TraceStep

# Steps as the kernel writes them for a band crossing and a cap point (amounts in fen, ratios in 1e-4).
BAND_STEP = TraceStep("band", 1, 490000, 9000, 441000, 7615750)
CAP_STEP = TraceStep("cap", 2, 1127369, 9500, 1787631, 1071000)

STEP_CASES = [
    (TraceStep("line", 0, 9600, 1000, 8640, -1), "明细1 金额 96.00 先行自付 10.00% 政策范围内 86.40",
     "line 1: amount 96.00, first self-pay 10.00%, in scope 86.40"),
    (TraceStep("deductible", -1, 55880, 0, 20000, 20000), "起付线 应付 200.00 政策范围内 558.80 本次起付 200.00",
     "deductible due 200.00, in scope 558.80, applied 200.00"),
    (BAND_STEP, "分段2 费用 4900.00 × 90.00% = 4410.00（剩余限额 76157.50）",
     "band 2: expense 4900.00 × 90.00% = 4410.00 (limit left 76157.50)"),
    (TraceStep("band", 0, 1000000, 8500, 850000, -1), "分段1 费用 10000.00 × 85.00% = 8500.00",
     "band 1: expense 10000.00 × 85.00% = 8500.00"),
    (CAP_STEP, "分段3 达到统筹基金封顶：剩余 10710.00 对应费用 11273.69（按 95.00% 向上取整），超封顶费用 17876.31",
     "band 3: fund cap reached, cap left 10710.00 used by expense 11273.69 (at 95.00%, rounded up), "
     "expense above the cap 17876.31"),
    (TraceStep("band", 2, 2915000, 9500, 1071000, 1071000),
     "分段3 费用 29150.00 × 95.00% = 27692.50，按剩余限额支付 10710.00（剩余限额 10710.00）",
     "band 3: expense 29150.00 × 95.00% = 27692.50, paid 10710.00 up to the limit (limit left 10710.00)"),
    (TraceStep("civil_servant", 1, 62400, 6000, 37440, -1), "公务员补助（共付部分）624.00 × 60.00% = 374.40",
     "civil servant subsidy on the co-payment: 624.00 × 60.00% = 374.40"),
    (TraceStep("reversal", -1, 50000, 0, -50000, -1), "撤销结算 原医疗费总额 500.00 冲销 -500.00",
     "settlement cancelled: medical fees 500.00 reversed as -500.00"),
]


@pytest.mark.parametrize(("step", "chinese", "english"), STEP_CASES)
def test_format_step(step: TraceStep, chinese: str, english: str) -> None:
    assert format_step(step) == chinese
    assert format_step(step, "en") == english


def test_format_trace_one_line_per_step() -> None:
    steps = (TraceStep("line", 0, 100, 0, 100, -1), BAND_STEP, CAP_STEP)
    assert format_trace(steps).splitlines() == [format_step(step) for step in steps]
    assert format_trace(steps, include_lines=False).splitlines() == [format_step(BAND_STEP), format_step(CAP_STEP)]


def test_format_step_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown trace step"):
        format_step(TraceStep("bonus", 0, 0, 0, 0, 0))


def test_fully_self_paid_line_named_as_such():
    from settlement.types import LineResult

    step = TraceStep("line", 0, 55000, 10000, 0, -1)
    class_c = LineResult("1", 55000, 55000, 0, 0, 0)
    class_b = LineResult("1", 55000, 0, 0, 55000, 0)
    assert format_trace([step], line_results=[class_c]) == "明细1 金额 550.00 全自费"
    assert format_trace([step], "en", line_results=[class_c]) == "line 1: amount 550.00, fully self-paid"
    assert format_trace([step], line_results=[class_b]) == format_step(step)
