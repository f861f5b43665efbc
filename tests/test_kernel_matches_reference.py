"""Randomised checks that the Cython kernel agrees with the reference model to the fen and keeps the money invariants.

The claims come from ``tests/strategies.py``: random policies, 0 to 330 lines, and
accumulators placed at band edges, deductibles and caps. Every property is bounded to a
few hundred examples with no example database, so the file takes about a minute of CPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from settlement import engine
from settlement.reference import cancel_reference, refund_partial_reference, settle_reference
from settlement.types import SETTLEMENT_OUTPUT_FIELDS, ClaimInput, FeeLine, SchemeParams, SettlementResult, TraceStep
from tests.strategies import claims, line_lists

# A failing 300-line claim prints a long example, and Hypothesis warns about its size.
# That warning must not turn into an error that hides the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

# Drawing a claim costs far more than settling it, so the example counts are set by
# drawing time. The 300-line claims are slow to build, and the health checks would
# otherwise reject them.
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BOUNDED_COMPARE = settings(BOUNDED, max_examples=250)
BOUNDED_MAIN = settings(BOUNDED, max_examples=500)

# Output fields that are not amounts, so a cancel does not negate them.
NOT_NEGATED = {"balc", "pool_prop_selfpay"}


# ---------------------------------------------------------------------------
# Comparison helpers: one assert per field, so a failure names it.


def assert_same_outputs(kernel: SettlementResult, model: SettlementResult) -> None:
    for field in kernel.outputs.__struct_fields__:
        assert getattr(kernel.outputs, field) == getattr(model.outputs, field), f"output {field}"


def assert_same_lines(kernel: SettlementResult, model: SettlementResult) -> None:
    assert len(kernel.lines) == len(model.lines)
    for kernel_line, model_line in zip(kernel.lines, model.lines, strict=True):
        assert kernel_line == model_line, f"line {model_line.feedetl_sn}"


def assert_same_fund_details(kernel: SettlementResult, model: SettlementResult) -> None:
    assert [row.layer for row in kernel.fund_details] == [row.layer for row in model.fund_details]
    for kernel_row, model_row in zip(kernel.fund_details, model.fund_details, strict=True):
        assert kernel_row == model_row, f"fund detail {model_row.layer}"


def comparable_step(step: TraceStep) -> tuple[object, ...]:
    """Return a trace step without the fields the two sides define differently.

    NOTE: on a ``cap`` step the kernel reports the fund's cap left before the claim, the
    model the cap left when the capped band starts, from which ``base`` is computed. They
    differ only when earlier bands of the same claim paid, so ``limit`` of that step is left out.
    """
    if step.step == "cap":
        return (step.step, step.index, step.base, step.ratio, step.amount)
    return (step.step, step.index, step.base, step.ratio, step.amount, step.limit)


def assert_same_trace(kernel: SettlementResult, model: SettlementResult) -> None:
    assert [step.step for step in kernel.trace] == [step.step for step in model.trace]
    for kernel_step, model_step in zip(kernel.trace, model.trace, strict=True):
        assert comparable_step(kernel_step) == comparable_step(model_step), f"trace step {model_step}"


def assert_same_settlement(kernel: SettlementResult, model: SettlementResult) -> None:
    assert_same_outputs(kernel, model)
    assert_same_lines(kernel, model)
    assert kernel.accumulators_after == model.accumulators_after
    assert_same_fund_details(kernel, model)
    assert_same_trace(kernel, model)


# ---------------------------------------------------------------------------
# Caps of a policy, as (accumulator key, cap) pairs.


def capped_accumulators(params: SchemeParams) -> Iterator[tuple[str, int]]:
    pairs = [(params.fund_cap_accumulator, params.fund_cap), (params.large_amount_accumulator, params.large_amount_cap)]
    if params.critical_illness is not None:
        pairs.append((params.critical_illness.paid_accumulator, params.critical_illness.cap))
    if params.civil_servant is not None:
        pairs.append((params.civil_servant.accumulator, params.civil_servant.cap))
    if params.medical_assistance is not None:
        pairs.append((params.medical_assistance.accumulator, params.medical_assistance.cap))
    for key, cap in pairs:
        if key is not None and cap is not None:
            yield key, cap


# ---------------------------------------------------------------------------
# Kernel against the reference model.


@BOUNDED_MAIN
@given(claims())
def test_kernel_settle_matches_reference(claim: ClaimInput) -> None:
    assert_same_settlement(engine.settle(claim), settle_reference(claim))


@BOUNDED_COMPARE
@given(claims(), line_lists())
def test_kernel_cancel_matches_reference(claim: ClaimInput, later_lines: tuple[FeeLine, ...]) -> None:
    original = engine.settle(claim)
    # A later claim of the same person moves the accumulators before the cancel arrives.
    later = engine.settle(replace(claim, lines=later_lines, accumulators=original.accumulators_after))
    now = later.accumulators_after

    kernel = engine.cancel(original, claim.accumulators, now)
    model = cancel_reference(original, claim.accumulators, now)

    assert_same_outputs(kernel, model)
    assert_same_lines(kernel, model)
    assert kernel.accumulators_after == model.accumulators_after
    assert_same_fund_details(kernel, model)


@BOUNDED_COMPARE
@given(claims(), st.data())
def test_kernel_refund_partial_matches_reference(claim: ClaimInput, data: st.DataObject) -> None:
    original = engine.settle(claim)
    serials = [line.feedetl_sn for line in claim.lines]
    refunded = data.draw(st.sets(st.sampled_from(serials)) if serials else st.just(set()), label="refunded")

    kept = replace(claim, lines=tuple(line for line in claim.lines if line.feedetl_sn not in refunded))

    now = original.accumulators_after
    kernel_reversal, kernel_resettle = engine.refund_partial(original, claim.accumulators, now, kept)
    model_reversal, model_resettle = refund_partial_reference(original, claim.accumulators, now, kept)

    assert_same_outputs(kernel_reversal, model_reversal)
    assert_same_lines(kernel_reversal, model_reversal)
    assert kernel_reversal.accumulators_after == model_reversal.accumulators_after
    assert_same_settlement(kernel_resettle, model_resettle)


# ---------------------------------------------------------------------------
# Invariants of the kernel on its own.


@BOUNDED
@given(claims())
def test_kernel_line_parts_add_up(claim: ClaimInput) -> None:
    result = engine.settle(claim)
    for split in result.lines:
        parts = split.fulamt_ownpay_amt + split.overlmt_amt + split.preselfpay_amt + split.inscp_scp_amt
        assert parts == split.amount, f"line {split.feedetl_sn}"

    out = result.outputs
    assert out.medfee_sumamt == sum(split.amount for split in result.lines)
    assert out.fulamt_ownpay_amt + out.overlmt_selfpay + out.preselfpay_amt + out.inscp_scp_amt == out.medfee_sumamt


@BOUNDED
@given(claims())
def test_kernel_basic_fund_within_scope(claim: ClaimInput) -> None:
    out = engine.settle(claim).outputs
    assert 0 <= out.act_pay_dedc <= max(0, out.inscp_scp_amt)
    assert 0 <= out.hifp_pay <= out.inscp_scp_amt - out.act_pay_dedc


@BOUNDED
@given(claims())
def test_kernel_funds_never_pay_past_burden(claim: ClaimInput) -> None:
    # Every layer works on what the layers before it left, so together the funds pay at
    # most the in-scope amount, plus the first self-pay when critical illness counts it.
    out = engine.settle(claim).outputs
    critical = claim.params.critical_illness
    ceiling = max(0, out.inscp_scp_amt)
    if critical is not None and critical.include_preselfpay:
        ceiling += max(0, out.preselfpay_amt)
    assert out.fund_pay_sumamt <= ceiling


@BOUNDED
@given(claims())
def test_kernel_funds_stay_within_caps(claim: ClaimInput) -> None:
    after = engine.settle(claim).accumulators_after
    for key, cap in capped_accumulators(claim.params):
        assert after.get(key, 0) <= cap, f"{key} passed its cap {cap}"


@BOUNDED
@given(claims())
def test_kernel_balances_never_negative(claim: ClaimInput) -> None:
    result = engine.settle(claim)
    assert result.outputs.balc >= 0
    assert result.accumulators_after.get("acct_balc", 0) >= 0
    assert result.accumulators_after.get("family_acct_balc", 0) >= 0
    assert 0 <= result.outputs.acct_mulaid_pay <= result.outputs.acct_pay


@BOUNDED
@given(claims())
def test_kernel_personal_part_splits(claim: ClaimInput) -> None:
    out = engine.settle(claim).outputs
    assert out.psn_part_amt == out.acct_pay + out.psn_cash_pay
    assert out.psn_part_amt == out.medfee_sumamt - out.fund_pay_sumamt - out.hosp_part_amt
    assert out.hosp_part_amt == 0


@BOUNDED
@given(claims())
def test_kernel_fund_total_is_sum_of_layers(claim: ClaimInput) -> None:
    result = engine.settle(claim)
    out = result.outputs
    assert out.fund_pay_sumamt == out.hifp_pay + out.hifob_pay + out.hifmi_pay + out.cvlserv_pay + out.maf_pay
    fund_rows = sum(row.fund_payamt for row in result.fund_details if row.layer != "acct")
    assert fund_rows == out.fund_pay_sumamt


@BOUNDED
@given(claims())
def test_kernel_cancel_restores_and_negates(claim: ClaimInput) -> None:
    original = engine.settle(claim)
    reversal = engine.cancel(original, claim.accumulators, original.accumulators_after)

    for key, value in claim.accumulators.items():
        assert reversal.accumulators_after.get(key, 0) == value, f"accumulator {key}"
    for key, value in reversal.accumulators_after.items():
        assert value == claim.accumulators.get(key, 0), f"accumulator {key}"

    for field in SETTLEMENT_OUTPUT_FIELDS:
        if field not in NOT_NEGATED:
            assert getattr(reversal.outputs, field) == -getattr(original.outputs, field), f"output {field}"
    if claim.params.account.has_account:
        own_payment = original.outputs.acct_pay - original.outputs.acct_mulaid_pay
        assert reversal.outputs.balc == original.outputs.balc + own_payment
    assert [split.amount for split in reversal.lines] == [-split.amount for split in original.lines]


@BOUNDED
@given(claims())
def test_kernel_settle_after_cancel_repeats(claim: ClaimInput) -> None:
    first = engine.settle(claim)
    reversal = engine.cancel(first, claim.accumulators, first.accumulators_after)
    again = engine.settle(replace(claim, accumulators=reversal.accumulators_after))

    assert again.outputs == first.outputs
    assert again.lines == first.lines
    assert again.fund_details == first.fund_details
    for key, value in first.accumulators_after.items():
        assert again.accumulators_after.get(key, 0) == value, f"accumulator {key}"
