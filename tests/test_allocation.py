"""Claim amounts spread back over fee lines: exact shares by largest remainder."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement import engine
from settlement.allocation import FUND_LAYER_FIELDS, allocate_lines, largest_remainder
from tests.strategies import claims

LARGEST_REMAINDER_CASES = [
    # total, weights, keys -> shares
    pytest.param(3335, [1235, 1235, 1235], ["F04-001", "F04-002", "F04-003"], [1112, 1112, 1111], id="ties-by-serial"),
    pytest.param(3335, [1235, 1235, 1235], ["C", "B", "A"], [1111, 1112, 1112], id="ties-follow-serial-not-order"),
    pytest.param(100, [1, 2], ["a", "b"], [33, 67], id="largest-remainder-wins"),
    pytest.param(-3335, [1235, 1235, 1235], ["1", "2", "3"], [-1112, -1112, -1111], id="reversal-mirrors"),
    pytest.param(500, [0, 0], ["b", "a"], [0, 500], id="all-zero-weights-first-serial"),
    pytest.param(10, [-5, 5], ["a", "b"], [0, 10], id="negative-weight-counts-zero"),
    pytest.param(0, [], [], [], id="no-lines"),
]


@pytest.mark.parametrize(("total", "weights", "keys", "shares"), LARGEST_REMAINDER_CASES)
def test_largest_remainder_cases(total, weights, keys, shares):
    assert largest_remainder(total, weights, keys) == shares


def test_largest_remainder_rejects_amount_without_lines():
    with pytest.raises(ValueError):
        largest_remainder(1, [], [])


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(-10**12, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=40))
def test_largest_remainder_adds_up(total, weights):
    keys = [f"{index:03d}" for index in range(len(weights))]
    shares = largest_remainder(total, weights, keys)
    assert sum(shares) == total
    assert all((share >= 0) == (total >= 0) or share == 0 for share in shares)


@settings(max_examples=200, deadline=None, database=None)
@given(claims())
def test_line_allocations_add_up_to_claim(claim):
    result = engine.settle(claim)
    allocations = allocate_lines(result.outputs, result.lines)
    out = result.outputs

    for name in FUND_LAYER_FIELDS:
        assert sum(getattr(item, name) for item in allocations) == getattr(out, name), name
    assert sum(item.fund_pay_sumamt for item in allocations) == out.fund_pay_sumamt
    assert sum(item.acct_pay for item in allocations) == out.acct_pay
    assert sum(item.psn_cash_pay for item in allocations) == out.psn_cash_pay
    for item in allocations:
        parts = item.fund_pay_sumamt + item.hosp_part_amt + item.acct_pay + item.psn_cash_pay
        assert parts == item.amount, item.feedetl_sn


@settings(max_examples=200, deadline=None, database=None)
@given(claims())
def test_line_allocations_stay_within_each_line(claim):
    # Without refund lines no line is paid more than it costs, and none pays negative cash.
    if any(line.quantity < 0 for line in claim.lines):
        return
    result = engine.settle(claim)
    for item in allocate_lines(result.outputs, result.lines):
        assert 0 <= item.fund_pay_sumamt <= item.amount, item.feedetl_sn
        assert 0 <= item.acct_pay, item.feedetl_sn
        assert 0 <= item.psn_cash_pay, item.feedetl_sn


@settings(max_examples=100, deadline=None, database=None)
@given(claims())
def test_reversal_allocation_mirrors_original(claim):
    original = engine.settle(claim)
    if original.outputs.medfee_sumamt <= 0:
        return
    reversal = engine.cancel(original, dict(claim.accumulators), original.accumulators_after)
    forward = allocate_lines(original.outputs, original.lines)
    backward = allocate_lines(reversal.outputs, reversal.lines)
    for share, mirror in zip(forward, backward, strict=True):
        assert mirror.feedetl_sn == share.feedetl_sn
        assert mirror.fund_pay_sumamt == -share.fund_pay_sumamt
        assert mirror.psn_cash_pay == -share.psn_cash_pay
