"""Table tests of the settlement kernel, one table per calculation step, in calculation order.

Each row builds its ``SchemeParams`` directly (no rule files) and carries its expected
values derived by hand in the comment beside it. Amounts in the comments are yuan;
the tables hold fen. Many rows reuse Beijing-style claims (mixed classes, a band crossing, the
pooled cap running out, critical illness, mutual aid) so that a mismatch points at one step.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from settlement import engine, reference
from settlement.errors import ErrorCode, SettlementError
from settlement.types import (
    AccountParams,
    Band,
    ChargeClass,
    CivilServantParams,
    ClaimInput,
    CriticalIllnessParams,
    FeeLine,
    MedicalAssistanceParams,
    SchemeParams,
    SettlementResult,
    TraceStep,
)

# ---------------------------------------------------------------------------
# Builders: yuan text to fixed-point integers, schemes, lines and claims.


def scaled(text: str, scale: int) -> int:
    value = Decimal(text) * scale
    assert value == value.to_integral_value(), f"{text} has too many decimals"
    return int(value)


def fen(text: str) -> int:
    return scaled(text, 100)


def ratio(text: str) -> int:
    return scaled(text, 10_000)


ACCOUNT = AccountParams(has_account=True, pays_fulamt=True, pays_overlmt=True, mutual_aid=True)
NO_ACCOUNT = AccountParams(has_account=False, pays_fulamt=True, pays_overlmt=True, mutual_aid=True)


def scheme(**changes: object) -> SchemeParams:
    """Return a one-band 70% scheme with no deductible, cap or layer, changed by ``changes``."""
    fields: dict[str, object] = {
        "policy_id": "test",
        "med_type": "outpatient_general",
        "fund_enabled": True,
        "deductible_basis": "none",
        "deductible_amount": 0,
        "deductible_subsequent": 0,
        "deductible_accumulator": None,
        "band_accumulator": None,
        "bands": (Band(0, 7000),),
        "fund_cap": None,
        "fund_cap_accumulator": None,
        "large_amount_ratio": None,
        "large_amount_cap": None,
        "large_amount_accumulator": None,
        "critical_illness": None,
        "civil_servant": None,
        "medical_assistance": None,
        "account": ACCOUNT,
    }
    fields.update(changes)
    return SchemeParams(**fields)  # type: ignore[arg-type]


def line(
    charge_class: str = "A",
    price: str = "10.00",
    quantity: str = "1",
    selfpay: str = "0",
    cap: str | None = None,
    amount: int | None = None,
    sn: str = "1",
) -> FeeLine:
    return FeeLine(
        feedetl_sn=sn,
        med_list_codg=f"T-{sn}",
        charge_class=ChargeClass[charge_class],
        price_micro=scaled(price, 1_000_000),
        quantity=scaled(quantity, 10_000),
        selfpay_prop=ratio(selfpay),
        price_cap_micro=None if cap is None else scaled(cap, 1_000_000),
        amount=amount,
    )


def in_scope(amount_fen: int) -> tuple[FeeLine, ...]:
    """Return one class A line worth ``amount_fen``, so the claim's in-scope amount is exactly that."""
    return (FeeLine("1", "T-1", ChargeClass.A, amount_fen * 10_000, 10_000),)


def settle(
    params: SchemeParams,
    lines: tuple[FeeLine, ...],
    accumulators: dict[str, int] | None = None,
    *,
    acct_used: bool = True,
    family: bool = False,
) -> SettlementResult:
    claim = ClaimInput(params, lines, dict(accumulators or {}), acct_used, has_family_account=family)
    return engine.settle(claim)


# Fee lines shared by several tables.
MIXED_CLASS_LINES = (
    line("A", "30.00", "1", sn="1"),
    line("B", "48.00", "2", "0.1000", sn="2"),
    line("B", "64.00", "3", "0.0500", sn="3"),
    line("C", "45.50", "2", "1.0000", sn="4"),
    line("A", "260.00", "1", sn="5"),
)
OVER_CAP_LINES = (
    line("A", "3.50", "10", cap="2.80", sn="1"),
    line("B", "130.00", "2", "0.2000", cap="100.00", sn="2"),
    line("A", "18.00", "5", cap="20.00", sn="3"),
    line("A", "40.00", "1", sn="4"),
)
FRACTIONAL_LINES = (
    line("A", "65.80", "1.2500", sn="1"),
    line("B", "8.47", "0.5000", "0.1000", sn="2"),
    line("A", "0.086000", "233.3333", sn="3"),
    line("A", "2.00", "1.7500", sn="4"),
)
PHARMACY_LINES = (
    line("A", "6.80", "2", sn="1"),
    line("B", "9.90", "3", "0.0500", sn="2"),
    line("C", "1.50", "10", "1.0000", sn="3"),
)

# Beijing employee outpatient, level 2, in service: 1800 a year, 70%, 20000 fund limit.
BJ_OUTPATIENT = scheme(
    deductible_basis="annual",
    deductible_amount=fen("1800.00"),
    deductible_accumulator="op_dedc_used",
    fund_cap=fen("20000.00"),
    fund_cap_accumulator="op_fund_paid",
)


def bj_inpatient(ratios: tuple[int, int, int] = (8500, 9000, 9500), **changes: object) -> SchemeParams:
    """Beijing employee inpatient: 1300 / 650 per admission, bands at 30000 and 40000, cap 100000."""
    fields: dict[str, object] = {
        "med_type": "inpatient",
        "deductible_basis": "per_admission",
        "deductible_amount": fen("1300.00"),
        "deductible_subsequent": fen("650.00"),
        "deductible_accumulator": "ip_admission_count",
        "band_accumulator": "ip_inscp_cum",
        "bands": (Band(0, ratios[0]), Band(fen("30000.00"), ratios[1]), Band(fen("40000.00"), ratios[2])),
        "fund_cap": fen("100000.00"),
        "fund_cap_accumulator": "ip_fund_paid",
    }
    fields.update(changes)
    return scheme(**fields)


LARGE_AMOUNT = {"large_amount_ratio": 8500, "large_amount_cap": fen("200000.00"), "large_amount_accumulator": "hifob_paid"}


def resident_inpatient(level_ratio: int, first: str, subsequent: str, **changes: object) -> SchemeParams:
    """Beijing resident inpatient at one level, with critical illness from 30404 (60%) and 50000 (70%)."""
    fields: dict[str, object] = {
        "med_type": "inpatient",
        "deductible_basis": "per_admission",
        "deductible_amount": fen(first),
        "deductible_subsequent": fen(subsequent),
        "deductible_accumulator": "ip_admission_count",
        "bands": (Band(0, level_ratio),),
        "fund_cap": fen("250000.00"),
        "fund_cap_accumulator": "ip_fund_paid",
        "critical_illness": CriticalIllnessParams(
            include_preselfpay=False,
            base_accumulator="cii_base_cum",
            paid_accumulator="hifmi_paid",
            bands=(Band(fen("30404.00"), 6000), Band(fen("50000.00"), 7000)),
            cap=None,
        ),
        "account": NO_ACCOUNT,
    }
    fields.update(changes)
    return scheme(**fields)


# 30000 A + 10000 B at 10% + 1000 A + 2000 C -> in scope 40000.00, first self-pay 1000.00.
RESIDENT_40000_LINES = (
    line("A", "30000.00", sn="1"),
    line("B", "10000.00", selfpay="0.1000", sn="2"),
    line("A", "50.00", "20", sn="3"),
    line("C", "2000.00", selfpay="1.0000", sn="4"),
)
# 20000 A + 5000 B at 20% + 450 A + 550 C -> in scope 24450.00, first self-pay 1000.00.
RESIDENT_24450_LINES = (
    line("A", "20000.00", sn="1"),
    line("B", "5000.00", selfpay="0.2000", sn="2"),
    line("A", "45.00", "10", sn="3"),
    line("C", "550.00", selfpay="1.0000", sn="4"),
)
# 4000 A + 2000 B at 10% + 300 A + 200 C -> in scope 6100.00.
CIVIL_SERVANT_LINES = (
    line("A", "4000.00", sn="1"),
    line("B", "2000.00", selfpay="0.1000", sn="2"),
    line("A", "50.00", "6", sn="3"),
    line("C", "200.00", selfpay="1.0000", sn="4"),
)


# ---------------------------------------------------------------------------
# Line amount = round(price x quantity), half away from zero, once per line.

LINE_AMOUNT_CASES = [
    # price, quantity, amount of record, expected amount in fen
    ("30.00", "1", None, 3000),  # 30.00 x 1 = 30.00
    ("65.80", "1.2500", None, 8225),  # 65.80 x 1.25 = 82.25 exactly
    ("8.47", "0.5000", None, 424),  # 4.235 -> 4.24, the half fen goes up
    ("0.086000", "233.3333", None, 2007),  # 20.0666638 -> 20.07 (not 233.3333 x 0.09)
    ("0.005000", "1", None, 1),  # half a fen -> 1 fen
    ("0.004999", "1", None, 0),  # 0.4999 fen -> 0
    ("8.47", "-0.5000", None, -424),  # refund line: -4.235 -> -4.24, away from zero
    ("0.005000", "-1", None, -1),  # minus half a fen -> -1 fen
    ("8.47", "0.5000", 423, 423),  # the sender's amount of record is kept as sent
    ("1000000000.00", "100", None, 10_000_000_000_000),  # 1e21 in 1e-8 fen passes int64: 1e13 fen via the wide path
]


@pytest.mark.parametrize(("price", "quantity", "amount", "expected"), LINE_AMOUNT_CASES)
def test_line_amount(price: str, quantity: str, amount: int | None, expected: int) -> None:
    result = settle(scheme(fund_enabled=False), (line("A", price, quantity, amount=amount),), acct_used=False)
    assert result.lines[0].amount == expected
    assert result.outputs.medfee_sumamt == expected


# ---------------------------------------------------------------------------
# Line split: class C all self-paid; price cap first; first self-pay on the capped part.

LINE_SPLIT_CASES = [
    # class, price, quantity, selfpay, cap, amount of record -> (amount, fulamt, overlmt, preselfpay, inscp)
    ("C", "45.50", "2", "1.0000", None, None, (9100, 9100, 0, 0, 0)),  # 91.00 all fully self-paid; 1.0000 ignored
    ("C", "5.00", "1", "0", "1.00", None, (500, 500, 0, 0, 0)),  # class C above a cap is still all fully self-paid
    ("A", "30.00", "1", "0", None, None, (3000, 0, 0, 0, 3000)),  # class A: all in scope
    ("B", "48.00", "2", "0.1000", None, None, (9600, 0, 0, 960, 8640)),  # 96.00 x 10% = 9.60; in scope 86.40
    ("B", "9.90", "3", "0.0500", None, None, (2970, 0, 0, 149, 2821)),  # 29.70 x 5% = 1.485 -> 1.49
    ("A", "3.50", "10", "0", "2.80", None, (3500, 0, 700, 0, 2800)),  # at cap 2.80 x 10 = 28.00; over 7.00
    ("B", "130.00", "2", "0.2000", "100.00", None, (26000, 0, 6000, 4000, 16000)),  # capped 200.00; 20% of it = 40.00
    ("A", "18.00", "5", "0", "20.00", None, (9000, 0, 0, 0, 9000)),  # below its cap: unaffected
    ("A", "20.00", "1", "0", "20.00", None, (2000, 0, 0, 0, 2000)),  # exactly at its cap: not above it
    ("B", "1.234567", "3", "0.1000", "1.000001", None, (370, 0, 70, 30, 270)),  # 3.703701 -> 3.70; 3.000003 -> 3.00
    ("A", "3.50", "10", "0", "2.80", 3501, (3501, 0, 701, 0, 2800)),  # amount of record 35.01 - capped 28.00
    ("B", "9.90", "-3", "0.0500", None, None, (-2970, 0, 0, -149, -2821)),  # refund mirrors a sale: -1.485 -> -1.49
]


@pytest.mark.parametrize(("charge_class", "price", "quantity", "selfpay", "cap", "amount", "expected"), LINE_SPLIT_CASES)
def test_line_split(
    charge_class: str, price: str, quantity: str, selfpay: str, cap: str | None, amount: int | None, expected: tuple
) -> None:
    result = settle(scheme(fund_enabled=False), (line(charge_class, price, quantity, selfpay, cap, amount),), acct_used=False)
    split = result.lines[0]
    assert split.amount == expected[0]
    assert split.fulamt_ownpay_amt == expected[1]
    assert split.overlmt_amt == expected[2]
    assert split.preselfpay_amt == expected[3]
    assert split.inscp_scp_amt == expected[4]


# ---------------------------------------------------------------------------
# Totals are sums of the rounded line parts.

TOTALS_CASES = [
    # lines -> (medfee, fulamt, overlmt, preselfpay, inscp)
    (MIXED_CLASS_LINES, (66900, 9100, 0, 1920, 55880)),  # 30 + 96 + 192 + 91 + 260; 9.60 + 9.60; 91.00 class C
    (OVER_CAP_LINES, (42500, 0, 6700, 4000, 31800)),  # over cap 7.00 + 60.00; first self-pay 40.00
    (FRACTIONAL_LINES, (11006, 0, 0, 42, 10964)),  # 82.25 + 4.24 + 20.07 + 3.50 = 110.06 (exact sum would give 110.05)
    ((), (0, 0, 0, 0, 0)),  # no lines
]


@pytest.mark.parametrize(("lines", "expected"), TOTALS_CASES)
def test_claim_totals(lines: tuple[FeeLine, ...], expected: tuple) -> None:
    out = settle(scheme(fund_enabled=False), lines, acct_used=False).outputs
    assert out.medfee_sumamt == expected[0]
    assert out.fulamt_ownpay_amt == expected[1]
    assert out.overlmt_selfpay == expected[2]
    assert out.preselfpay_amt == expected[3]
    assert out.inscp_scp_amt == expected[4]


# ---------------------------------------------------------------------------
# Deductible: only in-scope money fills it; annual or per admission.

ANNUAL_DEDUCTIBLE_CASES = [
    # used before, in scope -> act_pay_dedc, hifp at 70%, used after
    (fen("1600.00"), 55880, 20000, 25116, fen("1800.00")),  # 200 left; (558.80 - 200) x 0.70 = 251.16
    (fen("1800.00"), 31800, 0, 22260, fen("1800.00")),  # met; 318.00 x 0.70 = 222.60
    (fen("1900.00"), 31800, 0, 22260, fen("1900.00")),  # used above the amount: nothing due, counter unchanged
    (0, 30000, 30000, 0, 30000),  # 300.00 all inside the deductible
    (fen("1799.99"), 100, 1, 69, fen("1800.00")),  # 1 fen left; (1.00 - 0.01) x 0.70 = 0.693 -> 0.69
]


@pytest.mark.parametrize(("used", "inscp", "dedc", "hifp", "used_after"), ANNUAL_DEDUCTIBLE_CASES)
def test_deductible_annual(used: int, inscp: int, dedc: int, hifp: int, used_after: int) -> None:
    result = settle(BJ_OUTPATIENT, in_scope(inscp), {"op_dedc_used": used})
    assert result.outputs.act_pay_dedc == dedc
    assert result.outputs.hifp_pay == hifp
    assert result.accumulators_after["op_dedc_used"] == used_after


PER_ADMISSION_CASES = [
    # admissions before, in scope -> act_pay_dedc, hifp at 85%
    (0, fen("9900.00"), fen("1300.00"), fen("7310.00")),  # first admission: (9900 - 1300) x 0.85
    (1, fen("9900.00"), fen("650.00"), fen("7862.50")),  # later admission: (9900 - 650) x 0.85
    (3, fen("500.00"), fen("500.00"), 0),  # the claim is smaller than the deductible
]


@pytest.mark.parametrize(("admissions", "inscp", "dedc", "hifp"), PER_ADMISSION_CASES)
def test_deductible_per_admission(admissions: int, inscp: int, dedc: int, hifp: int) -> None:
    params = scheme(
        deductible_basis="per_admission",
        deductible_amount=fen("1300.00"),
        deductible_subsequent=fen("650.00"),
        deductible_accumulator="ip_admission_count",
        bands=(Band(0, 8500),),
    )
    result = settle(params, in_scope(inscp), {"ip_admission_count": admissions})
    assert result.outputs.act_pay_dedc == dedc
    assert result.outputs.hifp_pay == hifp
    assert result.accumulators_after["ip_admission_count"] == admissions + 1


def test_deductible_counts_only_in_scope_amount() -> None:
    # 100.00 class C + 100.00 class B at 10%: only the 90.00 in scope fills the 1800.00 deductible.
    lines = (line("C", "100.00", sn="1"), line("B", "100.00", selfpay="0.1000", sn="2"))
    result = settle(BJ_OUTPATIENT, lines, {"op_dedc_used": 0})
    assert result.outputs.act_pay_dedc == 9000
    assert result.outputs.hifp_pay == 0
    assert result.accumulators_after["op_dedc_used"] == 9000


def test_deductible_none_moves_no_counter() -> None:
    result = settle(scheme(), in_scope(10000), {})
    assert result.outputs.act_pay_dedc == 0
    assert result.outputs.hifp_pay == 7000  # 100.00 x 0.70
    assert "op_dedc_used" not in result.accumulators_after


# ---------------------------------------------------------------------------
# Pooled fund by bands on the year's cumulative in-scope scale.

BAND_CASES = [
    # band position, admissions, in scope -> hifp, pool_prop_selfpay
    # Second admission: deductible 650 takes [25000, 25650); 4350 x 0.85 = 3697.50 + 4900 x 0.90 = 4410.00.
    (fen("25000.00"), 1, fen("9900.00"), fen("8107.50"), 8500),
    # The deductible fills [29350, 30000), so the fund range [30000, 31000) is all band 2: 1000 x 0.90.
    (fen("29350.00"), 1, fen("1650.00"), fen("900.00"), 9000),
    # Fund range [29650, 30650): 350 x 0.85 = 297.50 + 650 x 0.90 = 585.00.
    (fen("29000.00"), 1, fen("1650.00"), fen("882.50"), 8500),
    # Two edges crossed, [20650, 41650): 9350 x 0.85 = 7947.50 + 10000 x 0.90 + 1650 x 0.95 = 1567.50.
    (fen("20000.00"), 1, fen("21650.00"), fen("18515.00"), 8500),
    # Whole claim inside the first-admission deductible of 1300: nothing fundable, ratio 0.
    (0, 0, fen("1000.00"), 0, 0),
]


@pytest.mark.parametrize(("position", "admissions", "inscp", "hifp", "pool_prop"), BAND_CASES)
def test_bands(position: int, admissions: int, inscp: int, hifp: int, pool_prop: int) -> None:
    before = {"ip_admission_count": admissions, "ip_inscp_cum": position, "ip_fund_paid": 0}
    result = settle(bj_inpatient(), in_scope(inscp), before)
    assert result.outputs.hifp_pay == hifp
    assert result.outputs.pool_prop_selfpay == pool_prop
    assert result.accumulators_after["ip_inscp_cum"] == position + inscp
    assert result.accumulators_after["ip_fund_paid"] == hifp


def test_bands_round_each_band_payment() -> None:
    # Two bands of 1 fen at 50%: each pays 0.5 fen -> 1 fen, so 2 fen (one rounding would give 1).
    params = scheme(bands=(Band(0, 5000), Band(1, 5000)))
    assert settle(params, in_scope(2)).outputs.hifp_pay == 2


def test_bands_trace_each_band() -> None:
    before = {"ip_admission_count": 1, "ip_inscp_cum": fen("25000.00"), "ip_fund_paid": fen("20145.00")}
    trace = settle(bj_inpatient(), in_scope(fen("9900.00")), before).trace
    bands = [step for step in trace if step.step == "band"]
    cap_left = fen("100000.00") - fen("20145.00")
    assert bands[0] == TraceStep("band", 0, fen("4350.00"), 8500, fen("3697.50"), cap_left)
    assert bands[1] == TraceStep("band", 1, fen("4900.00"), 9000, fen("4410.00"), cap_left - fen("3697.50"))


# ---------------------------------------------------------------------------
# Fund cap and large-amount layer: the cap runs out inside a band, expense = ceil(cap left / ratio).

CAP_CASES = [
    # band position, admissions, fund paid, hifob paid, in scope -> hifp, hifob
    # Fourth admission: cap left 10710.00; ceil(10710 / 0.95) = 11273.69; above 29150 - 11273.69 = 17876.31;
    # large-amount 17876.31 x 0.85 = 15194.8635 -> 15194.86.
    (fen("100000.00"), 3, fen("89290.00"), 0, fen("29800.00"), fen("10710.00"), fen("15194.86")),
    # Cap left 5000.00 inside band 1: ceil(5000 / 0.85) = 5882.36 (5882.3529...); above
    # 9350 - 5882.36 + 10000 + 1650 = 15117.64; x 0.85 = 12849.994 -> 12849.99.
    (fen("20000.00"), 1, fen("95000.00"), 0, fen("21650.00"), fen("5000.00"), fen("12849.99")),
    # Cap left 3697.50 is exactly band 1's payment; band 2 is then all above the cap: 4900 x 0.85 = 4165.00.
    (fen("25000.00"), 1, fen("96302.50"), 0, fen("9900.00"), fen("3697.50"), fen("4165.00")),
    # Cap used up before the claim: the whole fund range 9250.00 is above it: x 0.85 = 7862.50.
    (fen("25000.00"), 1, fen("100000.00"), 0, fen("9900.00"), 0, fen("7862.50")),
    # Cap overdrawn by earlier data: counts as 0 left, same as used up.
    (fen("25000.00"), 1, fen("100001.00"), 0, fen("9900.00"), 0, fen("7862.50")),
    # Cap left 850.00 at 85% needs exactly 1000.00 of expense; above 4350 - 1000 + 4900 = 8250 x 0.85 = 7012.50.
    (fen("25000.00"), 1, fen("99150.00"), 0, fen("9900.00"), fen("850.00"), fen("7012.50")),
    # The same claim with 190000.00 of the 200000.00 large-amount cap used: 10000.00 left.
    (fen("100000.00"), 3, fen("89290.00"), fen("190000.00"), fen("29800.00"), fen("10710.00"), fen("10000.00")),
    # The same claim with the large-amount cap used up.
    (fen("100000.00"), 3, fen("89290.00"), fen("200000.00"), fen("29800.00"), fen("10710.00"), 0),
]


@pytest.mark.parametrize(("position", "admissions", "fund_paid", "hifob_paid", "inscp", "hifp", "hifob"), CAP_CASES)
def test_cap_and_large_amount(
    position: int, admissions: int, fund_paid: int, hifob_paid: int, inscp: int, hifp: int, hifob: int
) -> None:
    before = {
        "ip_admission_count": admissions,
        "ip_inscp_cum": position,
        "ip_fund_paid": fund_paid,
        "hifob_paid": hifob_paid,
    }
    result = settle(bj_inpatient(**LARGE_AMOUNT), in_scope(inscp), before)
    assert result.outputs.hifp_pay == hifp
    assert result.outputs.hifob_pay == hifob
    assert result.accumulators_after["ip_fund_paid"] == fund_paid + hifp
    assert result.accumulators_after["hifob_paid"] == hifob_paid + hifob


def test_cap_point_in_trace() -> None:
    before = {"ip_admission_count": 3, "ip_inscp_cum": fen("100000.00"), "ip_fund_paid": fen("89290.00")}
    trace = settle(bj_inpatient(**LARGE_AMOUNT), in_scope(fen("29800.00")), before).trace
    cap = [step for step in trace if step.step == "cap"]
    # Band index 2 (95%): expense 11273.69 used up the 10710.00 left; 17876.31 above the cap.
    assert cap == [TraceStep("cap", 2, fen("11273.69"), 9500, fen("17876.31"), fen("10710.00"))]


def test_cap_without_large_amount_leaves_rest_to_person() -> None:
    before = {"ip_admission_count": 3, "ip_inscp_cum": fen("100000.00"), "ip_fund_paid": fen("89290.00")}
    out = settle(bj_inpatient(), in_scope(fen("29800.00")), before, acct_used=False).outputs
    assert out.hifp_pay == fen("10710.00")
    assert out.hifob_pay == 0
    assert out.psn_part_amt == fen("29800.00") - fen("10710.00")  # 19090.00 in cash


def test_uncapped_fund_pays_every_band() -> None:
    before = {"ip_admission_count": 3, "ip_inscp_cum": fen("100000.00"), "ip_fund_paid": fen("89290.00")}
    out = settle(bj_inpatient(fund_cap=None), in_scope(fen("29800.00")), before).outputs
    assert out.hifp_pay == fen("27692.50")  # 29150.00 x 0.95


# ---------------------------------------------------------------------------
# Critical illness: base = in scope - hifp - hifob, placed on the cumulative base.

CRITICAL_ILLNESS_CASES = [
    # params, lines, accumulators -> hifp, hifmi, base after
    pytest.param(
        resident_inpatient(7500, "1300.00", "650.00"),
        RESIDENT_40000_LINES,
        {"ip_admission_count": 1, "ip_fund_paid": fen("20000.00"), "cii_base_cum": fen("25000.00"), "hifmi_paid": 0},
        # hifp (40000 - 650) x 0.75 = 29512.50; base 10487.50 -> [25000, 35487.50);
        # above 30404: 5083.50 x 0.60 = 3050.10.
        fen("29512.50"), fen("3050.10"), fen("35487.50"),
        id="starts-in-claim",
    ),
    pytest.param(
        resident_inpatient(
            7500, "1300.00", "650.00",
            critical_illness=CriticalIllnessParams(True, "cii_base_cum", "hifmi_paid",
                                                   (Band(fen("30404.00"), 6000), Band(fen("50000.00"), 7000)), None),
        ),
        RESIDENT_40000_LINES,
        {"ip_admission_count": 1, "ip_fund_paid": fen("20000.00"), "cii_base_cum": fen("25000.00"), "hifmi_paid": 0},
        # With first self-pay in the base: 10487.50 + 1000.00 = 11487.50 -> [25000, 36487.50);
        # 6083.50 x 0.60 = 3650.10.
        fen("29512.50"), fen("3650.10"), fen("36487.50"),
        id="base-includes-first-self-pay",
    ),
    pytest.param(
        resident_inpatient(7800, "800.00", "400.00"),
        RESIDENT_24450_LINES,
        {"ip_admission_count": 0, "ip_fund_paid": 0, "cii_base_cum": fen("45000.00"), "hifmi_paid": fen("8757.60")},
        # hifp (24450 - 800) x 0.78 = 18447.00; base 6003.00 -> [45000, 51003);
        # 5000 x 0.60 = 3000.00 + 1003 x 0.70 = 702.10 -> 3702.10.
        fen("18447.00"), fen("3702.10"), fen("51003.00"),
        id="crosses-50000",
    ),
    pytest.param(
        resident_inpatient(7800, "800.00", "400.00"),
        in_scope(fen("1000.00")),
        {"ip_admission_count": 0, "ip_fund_paid": 0, "cii_base_cum": 0, "hifmi_paid": 0},
        # hifp (1000 - 800) x 0.78 = 156.00; base 844.00 stays far below 30404: nothing paid.
        fen("156.00"), 0, fen("844.00"),
        id="below-threshold",
    ),
    pytest.param(
        resident_inpatient(
            7800, "800.00", "400.00",
            critical_illness=CriticalIllnessParams(False, "cii_base_cum", "hifmi_paid",
                                                   (Band(fen("30404.00"), 6000), Band(fen("50000.00"), 7000)),
                                                   fen("11181.60")),
        ),
        RESIDENT_24450_LINES,
        {"ip_admission_count": 0, "ip_fund_paid": 0, "cii_base_cum": fen("45000.00"), "hifmi_paid": fen("8757.60")},
        # Cap left 11181.60 - 8757.60 = 2424.00: band 1's 3000.00 is cut to 2424.00, band 2 gets nothing.
        fen("18447.00"), fen("2424.00"), fen("51003.00"),
        id="cap-reached",
    ),
]


@pytest.mark.parametrize(("params", "lines", "before", "hifp", "hifmi", "base_after"), CRITICAL_ILLNESS_CASES)
def test_critical_illness(
    params: SchemeParams, lines: tuple[FeeLine, ...], before: dict[str, int], hifp: int, hifmi: int, base_after: int
) -> None:
    result = settle(params, lines, before)
    assert result.outputs.hifp_pay == hifp
    assert result.outputs.hifmi_pay == hifmi
    assert result.accumulators_after["cii_base_cum"] == base_after
    assert result.accumulators_after["hifmi_paid"] == before["hifmi_paid"] + hifmi


# ---------------------------------------------------------------------------
# Civil servant subsidy: round(deductible x dedc_ratio) + round(co-payment x copay_ratio), within the cap.


def civil_servant_inpatient(dedc_ratio: int, copay_ratio: int, cap: int | None) -> SchemeParams:
    """Beijing employee inpatient at level 2 (87 / 92 / 97%) with a civil servant subsidy."""
    return bj_inpatient(
        (8700, 9200, 9700), civil_servant=CivilServantParams(dedc_ratio, copay_ratio, cap, "cvlserv_paid")
    )


FIRST_ADMISSION_BEFORE = {"ip_admission_count": 0, "ip_inscp_cum": 0, "ip_fund_paid": 0, "cvlserv_paid": 0}

CIVIL_SERVANT_CASES = [
    # dedc ratio, copay ratio, cap, paid before -> cvlserv
    (0, 6000, None, 0, fen("374.40")),  # co-payment 6100 - 1300 - 4176 = 624.00 x 0.60
    (5000, 6000, None, 0, fen("1024.40")),  # plus 1300.00 x 0.50 = 650.00
    (5000, 6000, fen("500.00"), 0, fen("500.00")),  # deductible part 650.00 cut to 500.00; nothing left for the rest
    (0, 6000, fen("1000.00"), fen("600.00"), fen("374.40")),  # 400.00 left covers 374.40
    (0, 6000, fen("1000.00"), fen("700.00"), fen("300.00")),  # 300.00 left
]


@pytest.mark.parametrize(("dedc_ratio", "copay_ratio", "cap", "paid", "cvlserv"), CIVIL_SERVANT_CASES)
def test_civil_servant(dedc_ratio: int, copay_ratio: int, cap: int | None, paid: int, cvlserv: int) -> None:
    before = dict(FIRST_ADMISSION_BEFORE, cvlserv_paid=paid)
    result = settle(civil_servant_inpatient(dedc_ratio, copay_ratio, cap), CIVIL_SERVANT_LINES, before)
    assert result.outputs.act_pay_dedc == fen("1300.00")
    assert result.outputs.hifp_pay == fen("4176.00")  # (6100 - 1300) x 0.87
    assert result.outputs.cvlserv_pay == cvlserv
    assert result.accumulators_after["cvlserv_paid"] == paid + cvlserv


def test_civil_servant_rounds_each_part() -> None:
    # In scope 1.02, deductible 0.01, hifp round(1.01 x 0.99 = 0.9999) = 1.00, co-payment 0.01.
    # Each part is 0.005 -> 0.01, so 0.02 (rounding the sum once would give 0.01).
    params = scheme(
        deductible_basis="annual",
        deductible_amount=1,
        deductible_accumulator="op_dedc_used",
        bands=(Band(0, 9900),),
        civil_servant=CivilServantParams(5000, 5000, None, "cvlserv_paid"),
    )
    out = settle(params, in_scope(102), {"op_dedc_used": 0}).outputs
    assert out.act_pay_dedc == 1
    assert out.hifp_pay == 100
    assert out.cvlserv_pay == 2


CIVIL_SERVANT_AFTER_CRITICAL_CASES = [
    # critical illness band ratio -> hifmi, cvlserv, fund total (one class A line of 100.00,
    # no deductible, basic fund at 0%, subsidy 50% of the deductible and 100% of the co-payment)
    (10000, fen("100.00"), fen("0.00"), fen("100.00")),  # critical illness took the whole burden
    (6000, fen("60.00"), fen("40.00"), fen("100.00")),  # the subsidy pays only the 40.00 left
    (0, fen("0.00"), fen("100.00"), fen("100.00")),  # nothing paid before, so the subsidy pays it all
]


@pytest.mark.parametrize(("critical_ratio", "hifmi", "cvlserv", "fund"), CIVIL_SERVANT_AFTER_CRITICAL_CASES)
def test_civil_servant_after_critical_illness(critical_ratio: int, hifmi: int, cvlserv: int, fund: int) -> None:
    params = scheme(
        bands=(Band(0, 0),),
        critical_illness=CriticalIllnessParams(False, "cii_base_cum", "hifmi_paid", (Band(0, critical_ratio),), None),
        civil_servant=CivilServantParams(5000, 10000, None, "cvlserv_paid"),
    )
    out = settle(params, in_scope(fen("100.00")), {"cii_base_cum": 0, "hifmi_paid": 0}).outputs
    assert out.hifmi_pay == hifmi
    assert out.cvlserv_pay == cvlserv
    assert out.fund_pay_sumamt == fund
    assert out.psn_part_amt == fen("100.00") - fund


# ---------------------------------------------------------------------------
# Medical assistance: round((in scope - hifp - hifob - hifmi - cvlserv) x ratio), within the cap.

RESIDENT_24450_BEFORE = {
    "ip_admission_count": 0,
    "ip_fund_paid": 0,
    "cii_base_cum": fen("45000.00"),
    "hifmi_paid": fen("8757.60"),
    "maf_paid": 0,
}

MEDICAL_ASSISTANCE_CASES = [
    # ratio, cap, paid before -> maf_pay
    (7000, fen("60000.00"), 0, fen("1610.63")),  # dibao: 24450 - 18447 - 3702.10 = 2300.90 x 0.70 = 1610.63
    (10000, fen("60000.00"), 0, fen("2300.90")),  # tekun at 100%
    (7000, fen("60000.00"), fen("59500.00"), fen("500.00")),  # 500.00 of the yearly 60000 left
    (7000, None, fen("99999.00"), fen("1610.63")),  # no cap
]


@pytest.mark.parametrize(("maf_ratio", "cap", "paid", "maf"), MEDICAL_ASSISTANCE_CASES)
def test_medical_assistance(maf_ratio: int, cap: int | None, paid: int, maf: int) -> None:
    params = resident_inpatient(7800, "800.00", "400.00", medical_assistance=MedicalAssistanceParams(maf_ratio, cap, "maf_paid"))
    result = settle(params, RESIDENT_24450_LINES, dict(RESIDENT_24450_BEFORE, maf_paid=paid))
    assert result.outputs.hifmi_pay == fen("3702.10")
    assert result.outputs.maf_pay == maf
    assert result.accumulators_after["maf_paid"] == paid + maf


def test_medical_assistance_after_civil_servant() -> None:
    # The civil servant claim plus assistance at 70%: 6100 - 4176 - 374.40 = 1549.60 x 0.70 = 1084.72.
    params = bj_inpatient(
        (8700, 9200, 9700),
        civil_servant=CivilServantParams(0, 6000, None, "cvlserv_paid"),
        medical_assistance=MedicalAssistanceParams(7000, None, "maf_paid"),
    )
    out = settle(params, CIVIL_SERVANT_LINES, FIRST_ADMISSION_BEFORE).outputs
    assert out.cvlserv_pay == fen("374.40")
    assert out.maf_pay == fen("1084.72")
    assert out.fund_pay_sumamt == fen("4176.00") + fen("374.40") + fen("1084.72")


# ---------------------------------------------------------------------------
# A scheme without any fund.


def test_fund_disabled_pays_nothing() -> None:
    # Pharmacy purchase: deductible and subsidy configured but fund off; account 35.47 of 58.30.
    params = scheme(
        med_type="pharmacy",
        fund_enabled=False,
        deductible_basis="annual",
        deductible_amount=fen("1800.00"),
        deductible_accumulator="op_dedc_used",
        civil_servant=CivilServantParams(5000, 5000, None, "cvlserv_paid"),
    )
    result = settle(params, PHARMACY_LINES, {"acct_balc": fen("35.47")})
    out = result.outputs
    assert (out.medfee_sumamt, out.preselfpay_amt, out.inscp_scp_amt) == (5830, 149, 4181)
    assert out.act_pay_dedc == 0
    assert out.fund_pay_sumamt == 0
    assert (out.acct_pay, out.psn_cash_pay, out.balc) == (3547, 2283, 0)
    assert result.accumulators_after == {"acct_balc": 0}
    assert result.fund_details[0].layer == "acct"


# ---------------------------------------------------------------------------
# Accounts: own account, then mutual aid; what the account may pay is a policy switch.

# The mixed-class claim at level 2: fund 251.16, personal part 417.84 of which 91.00 is class C.
ACCOUNT_CASES = [
    # account params, acct_used, own balance, family account, family balance -> acct_pay, mulaid, cash, balc
    (ACCOUNT, True, 10000, False, 0, (10000, 0, 31784, 0)),  # balance 100.00 runs out
    (ACCOUNT, True, 100000, False, 0, (41784, 0, 0, 58216)),  # balance covers all
    (AccountParams(True, False, True, True), True, 100000, False, 0, (32684, 0, 9100, 67316)),  # class C 91.00 in cash
    (ACCOUNT, False, 100000, False, 0, (0, 0, 41784, 100000)),  # account not used
    (NO_ACCOUNT, True, 100000, False, 0, (0, 0, 41784, 0)),  # no own account: balc 0
    (ACCOUNT, True, 10000, True, 50000, (41784, 31784, 0, 0)),  # relative pays what is left
    (AccountParams(True, True, True, False), True, 10000, True, 50000, (10000, 0, 31784, 0)),  # no mutual aid
    (ACCOUNT, True, 10000, True, 20000, (30000, 20000, 11784, 0)),  # relative's balance runs out too
    (NO_ACCOUNT, True, 0, True, 50000, (41784, 41784, 0, 0)),  # resident without an account: all by mutual aid
]


@pytest.mark.parametrize(("account", "acct_used", "balance", "family", "family_balance", "expected"), ACCOUNT_CASES)
def test_accounts(
    account: AccountParams, acct_used: bool, balance: int, family: bool, family_balance: int, expected: tuple
) -> None:
    params = scheme(
        deductible_basis="annual",
        deductible_amount=fen("1800.00"),
        deductible_accumulator="op_dedc_used",
        account=account,
    )
    before = {"op_dedc_used": fen("1600.00"), "acct_balc": balance, "family_acct_balc": family_balance}
    result = settle(params, MIXED_CLASS_LINES, before, acct_used=acct_used, family=family)
    out = result.outputs
    assert out.psn_part_amt == 41784
    assert (out.acct_pay, out.acct_mulaid_pay, out.psn_cash_pay, out.balc) == expected
    own = expected[0] - expected[1]
    assert result.accumulators_after["acct_balc"] == balance - own
    assert result.accumulators_after["family_acct_balc"] == family_balance - expected[1]


def test_account_excluding_over_cap_amounts() -> None:
    # The over-cap claim at level 3: personal part 202.40 includes 67.00 over the price cap, which stays cash.
    params = scheme(
        deductible_basis="annual",
        deductible_amount=fen("1800.00"),
        deductible_accumulator="op_dedc_used",
        account=AccountParams(True, True, False, True),
    )
    result = settle(params, OVER_CAP_LINES, {"op_dedc_used": fen("1800.00"), "acct_balc": fen("1000.00")})
    out = result.outputs
    assert out.hifp_pay == fen("222.60")
    assert (out.acct_pay, out.psn_cash_pay, out.balc) == (fen("135.40"), fen("67.00"), fen("864.60"))


def test_fund_details_rows() -> None:
    before = {"ip_admission_count": 3, "ip_inscp_cum": fen("100000.00"), "ip_fund_paid": fen("89290.00"),
              "hifob_paid": 0, "acct_balc": fen("3000.00")}
    result = settle(bj_inpatient(**LARGE_AMOUNT), in_scope(fen("29800.00")), before)
    rows = [(row.layer, row.inscp_scp_amt, row.crt_payb_lmt_amt, row.fund_payamt) for row in result.fund_details]
    assert rows == [
        ("hifp", fen("29800.00"), fen("10710.00"), fen("10710.00")),
        ("hifob", fen("17876.31"), fen("200000.00"), fen("15194.86")),
        ("acct", fen("3895.14"), fen("3000.00"), fen("3000.00")),  # personal part 29800 - 25904.86
    ]


# ---------------------------------------------------------------------------
# Cancel: negate everything, move accumulators back, return the account money.

CANCEL_BEFORE = {"acct_balc": fen("260.00"), "op_dedc_used": fen("1700.00"), "op_fund_paid": fen("500.00")}
CANCEL_LINES = (
    line("A", "50.00", sn="1"),
    line("A", "300.00", sn="2"),
    line("B", "120.00", selfpay="0.1000", sn="3"),
    line("C", "30.00", selfpay="1.0000", sn="4"),
)


def test_cancel_negates_and_restores() -> None:
    original = settle(BJ_OUTPATIENT, CANCEL_LINES, CANCEL_BEFORE)
    assert original.outputs.hifp_pay == fen("250.60")  # (458.00 - 100.00) x 0.70
    reversal = engine.cancel(original, CANCEL_BEFORE, original.accumulators_after)

    out = reversal.outputs
    assert (out.medfee_sumamt, out.inscp_scp_amt, out.act_pay_dedc) == (-50000, -45800, -10000)
    assert (out.hifp_pay, out.fund_pay_sumamt, out.psn_part_amt) == (-25060, -25060, -24940)
    assert (out.acct_pay, out.psn_cash_pay) == (-24940, 0)
    assert out.balc == fen("260.00")  # 10.60 + 249.40 back
    assert out.pool_prop_selfpay == 7000
    assert reversal.accumulators_after == CANCEL_BEFORE
    assert [split.amount for split in reversal.lines] == [-5000, -30000, -12000, -3000]
    assert [row.fund_payamt for row in reversal.fund_details] == [-25060, -24940]


def test_cancel_after_later_claims_keeps_their_effects() -> None:
    original = settle(BJ_OUTPATIENT, CANCEL_LINES, CANCEL_BEFORE)
    # A later claim added 100.00 of fund and took 5.00 from the account.
    now = dict(original.accumulators_after)
    now["op_fund_paid"] += fen("100.00")
    now["acct_balc"] -= fen("5.00")
    reversal = engine.cancel(original, CANCEL_BEFORE, now)
    assert reversal.accumulators_after["op_fund_paid"] == fen("600.00")  # 850.60 - 250.60
    assert reversal.accumulators_after["acct_balc"] == fen("255.00")  # 5.60 + 249.40
    assert reversal.accumulators_after["op_dedc_used"] == fen("1700.00")
    assert reversal.outputs.balc == fen("255.00")


def test_cancel_returns_mutual_aid() -> None:
    # A resident without an own account; the relative's 120.00 pays the 30.00 left after the 70% fund.
    before = {"family_acct_balc": fen("120.00")}
    original = settle(scheme(account=NO_ACCOUNT), in_scope(fen("100.00")), before, family=True)
    assert original.outputs.acct_mulaid_pay == fen("30.00")
    reversal = engine.cancel(original, before, original.accumulators_after)
    assert reversal.outputs.acct_mulaid_pay == -fen("30.00")
    assert reversal.outputs.acct_pay == -fen("30.00")
    assert reversal.accumulators_after["family_acct_balc"] == fen("120.00")
    assert reversal.outputs.balc == 0


def test_cancel_trace_states_reversal() -> None:
    original = settle(BJ_OUTPATIENT, CANCEL_LINES, CANCEL_BEFORE)
    reversal = engine.cancel(original, CANCEL_BEFORE, original.accumulators_after)
    assert reversal.trace[0] == TraceStep("reversal", -1, 50000, 0, -50000, -1)
    assert reversal.trace[1] == TraceStep("account", -1, 24940, 0, -24940, 1060)


def test_cancel_with_wrong_accumulators_rejected() -> None:
    original = settle(BJ_OUTPATIENT, CANCEL_LINES, CANCEL_BEFORE)
    # The "before" balance does not match the 249.40 the original took from the account.
    wrong_before = dict(CANCEL_BEFORE, acct_balc=fen("100.00"))
    with pytest.raises(SettlementError) as caught:
        engine.cancel(original, wrong_before, original.accumulators_after)
    assert caught.value.code is ErrorCode.INVALID_FIELD


# ---------------------------------------------------------------------------
# Partial refund: cancel the whole settlement, then settle the kept lines again.


def test_refund_partial() -> None:
    # 200 + 150 A + 100 B at 10%; 300.00 deductible left; the 200.00 line is handed back.
    lines = (line("A", "200.00", sn="1"), line("A", "150.00", sn="2"), line("B", "100.00", selfpay="0.1000", sn="3"))
    before = {"acct_balc": 0, "op_dedc_used": fen("1500.00"), "op_fund_paid": 0}
    claim = ClaimInput(BJ_OUTPATIENT, lines, before, True)
    original = engine.settle(claim)
    assert original.outputs.hifp_pay == fen("98.00")  # (440 - 300) x 0.70

    kept = engine.refunded_lines(claim, {"1"})
    reversal, again = engine.refund_partial(original, before, original.accumulators_after, kept)
    assert reversal.outputs.psn_cash_pay == -fen("352.00")
    assert reversal.outputs.hifp_pay == -fen("98.00")
    # Kept 240.00 in scope falls inside the restored 300.00 deductible: no fund, 250.00 cash.
    assert again.outputs.act_pay_dedc == fen("240.00")
    assert again.outputs.hifp_pay == 0
    assert again.outputs.psn_cash_pay == fen("250.00")
    assert again.accumulators_after == {"acct_balc": 0, "op_dedc_used": fen("1740.00"), "op_fund_paid": 0}


# ---------------------------------------------------------------------------
# Input the kernel cannot represent is rejected with a coded error, not a wrong amount.


def test_amount_overflow_rejected() -> None:
    huge = FeeLine("1", "T-1", ChargeClass.A, 9 * 10**18, 9 * 10**18)
    with pytest.raises(SettlementError) as caught:
        settle(scheme(), (huge,))
    assert caught.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE


def test_selfpay_ratio_out_of_range_rejected() -> None:
    bad = FeeLine("1", "T-1", ChargeClass.B, 1_000_000, 10_000, selfpay_prop=10_001)
    with pytest.raises(SettlementError) as caught:
        settle(scheme(), (line(), bad))
    assert caught.value.code is ErrorCode.INVALID_FIELD
    assert caught.value.field == "lines[1].selfpay_prop"


def test_band_ratio_out_of_range_rejected() -> None:
    with pytest.raises(SettlementError) as caught:
        settle(scheme(bands=(Band(0, 10_001),)), in_scope(100))
    assert caught.value.code is ErrorCode.RULE_FILE_INVALID
    assert caught.value.field == "bands[0].ratio"


def test_extreme_accumulators_do_not_overflow() -> None:
    # Stored counters far outside any real year: the cap left saturates instead of wrapping.
    params = bj_inpatient(**LARGE_AMOUNT)
    before = {"ip_admission_count": 1, "ip_inscp_cum": 0, "ip_fund_paid": -(2**63), "hifob_paid": 2**63 - 1}
    out = settle(params, in_scope(fen("9900.00")), before).outputs
    assert out.hifp_pay == fen("7862.50")  # (9900 - 650) x 0.85, nowhere near the cap
    assert out.hifob_pay == 0


def test_unknown_accumulator_rejected() -> None:
    with pytest.raises(SettlementError) as caught:
        settle(scheme(), in_scope(100), {"not_a_counter": 1})
    assert caught.value.code is ErrorCode.INVALID_FIELD


# ---------------------------------------------------------------------------
# An amount of record below the rounded capped product (found by a hypothesis property).


@pytest.mark.parametrize(
    "price, quantity, cap, amount, capped",
    [
        # 0.40 x 0.0126 = 0.504 fen, recorded as 0; capped 0.3996 x 0.0126 = 0.5035 rounds to 1.
        ("0.40", "0.0126", "0.3996", 0, 0),
        # The same line recorded as 1 fen: the capped product also gives 1, nothing is over the cap.
        ("0.40", "0.0126", "0.3996", 1, 1),
        # A refund of it: the capped part never goes past the refunded amount either.
        ("0.40", "-0.0126", "0.3996", 0, 0),
        ("0.40", "-0.0126", "0.3996", -1, -1),
        # An ordinary over-cap line is unchanged: 12.00 x 2 capped at 10.00 x 2.
        ("12.00", "2", "10.00", 2400, 2000),
    ],
)
def test_capped_part_within_amount(price, quantity, cap, amount, capped):
    result = settle(scheme(account=NO_ACCOUNT), (line("A", price, quantity, cap=cap, amount=amount),))

    split = result.lines[0]
    assert split.amount == amount
    assert split.overlmt_amt == amount - capped
    assert split.inscp_scp_amt == capped
    assert reference.split_line(line("A", price, quantity, cap=cap, amount=amount)).overlmt_amt == amount - capped
