"""The batch entry point gives each claim exactly what settling it alone gives.

Random claims come from ``tests/strategies.py``; every property is bounded in examples and
runs without a Hypothesis database.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement import _core, engine
from settlement.types import AccountParams, Band, ChargeClass, ClaimInput, FeeLine, SchemeParams, SettlementResult
from tests.strategies import claims

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def without_trace(result: SettlementResult) -> SettlementResult:
    return msgspec.structs.replace(result, trace=())


def simple_claim(price_fen: int, balance: int) -> ClaimInput:
    """Return a one-line outpatient claim: 70% fund after an 1800.00 yearly deductible."""
    params = SchemeParams(
        policy_id="batch",
        med_type="outpatient_general",
        fund_enabled=True,
        deductible_basis="annual",
        deductible_amount=180_000,
        deductible_subsequent=0,
        deductible_accumulator="op_dedc_used",
        band_accumulator=None,
        bands=(Band(0, 7000),),
        fund_cap=2_000_000,
        fund_cap_accumulator="op_fund_paid",
        large_amount_ratio=None,
        large_amount_cap=None,
        large_amount_accumulator=None,
        critical_illness=None,
        civil_servant=None,
        medical_assistance=None,
        account=AccountParams(True, True, True, False),
    )
    line = FeeLine("1", "T-1", ChargeClass.A, price_fen * 10_000, 10_000)
    return ClaimInput(params, (line,), {"acct_balc": balance, "op_dedc_used": 170_000}, True)


SIMPLE_CLAIMS = [simple_claim(price, balance) for price in (0, 5_000, 10_000, 55_880) for balance in (0, 10_000)]


@BOUNDED
@given(st.lists(claims(), min_size=1, max_size=6))
def test_batch_matches_single_claims(batch_claims: list[ClaimInput]) -> None:
    batch = engine.build_batch(batch_claims)
    result = engine.settle_arrays(batch)
    assert result.failures == 0
    for index, claim in enumerate(batch_claims):
        assert engine.batch_result(batch_claims, batch, result, index) == without_trace(engine.settle(claim))


def test_batch_simple_claims_match() -> None:
    result = engine.settle_batch(SIMPLE_CLAIMS)
    batch = engine.build_batch(SIMPLE_CLAIMS)
    assert result.status.tolist() == [_core.S_OK] * len(SIMPLE_CLAIMS)
    for index, claim in enumerate(SIMPLE_CLAIMS):
        assert engine.batch_result(SIMPLE_CLAIMS, batch, result, index) == without_trace(engine.settle(claim))


def test_batch_shares_rows_of_equal_schemes() -> None:
    batch = engine.build_batch(SIMPLE_CLAIMS)
    assert batch.param_table.shape == (1, _core.P_WIDTH)
    assert batch.param_rows.tolist() == [0] * len(SIMPLE_CLAIMS)


def test_batch_threads_agree() -> None:
    many = SIMPLE_CLAIMS * 125
    batch = engine.build_batch(many)
    one = engine.settle_arrays(batch, threads=1)
    two = engine.settle_arrays(batch, threads=2)
    assert np.array_equal(one.outputs, two.outputs)
    assert np.array_equal(one.accumulators_after, two.accumulators_after)
    assert np.array_equal(one.line_results, two.line_results)
    assert np.array_equal(one.status, two.status)


def test_batch_without_line_results() -> None:
    batch = engine.build_batch(SIMPLE_CLAIMS)
    full = engine.settle_arrays(batch)
    bare = engine.settle_arrays(batch, with_line_results=False)
    assert bare.line_results.shape == (0, _core.LR_WIDTH)
    assert np.array_equal(full.outputs, bare.outputs)
    assert np.array_equal(full.accumulators_after, bare.accumulators_after)


def test_batch_empty() -> None:
    result = engine.settle_batch([])
    assert result.outputs.shape == (0, _core.O_WIDTH)
    assert result.failures == 0


def test_batch_bad_claims_fail_alone() -> None:
    four = SIMPLE_CLAIMS[:4]
    batch = engine.build_batch(four)
    rows = batch.param_rows.copy()
    rows[0] = 7  # no such parameter row
    offsets = batch.line_offsets.copy()
    offsets[2] = 9  # claim 1 ends past the last line and claim 2 ends before it starts
    broken = batch._replace(param_rows=rows, line_offsets=offsets)

    result = engine.settle_arrays(broken)
    assert result.status.tolist() == [_core.S_BAD_PARAMS, _core.S_BAD_SHAPE, _core.S_BAD_SHAPE, _core.S_OK]
    assert result.failures == 3
    assert engine.batch_result(four, broken, result, 3) == without_trace(engine.settle(four[3]))


def test_batch_rejects_wrong_shapes() -> None:
    batch = engine.build_batch(SIMPLE_CLAIMS[:2])
    short_offsets = batch._replace(line_offsets=batch.line_offsets[:-1].copy())
    with pytest.raises(ValueError, match="line_offsets"):
        engine.settle_arrays(short_offsets)


def test_batch_result_raises_for_failed_claim() -> None:
    batch = engine.build_batch(SIMPLE_CLAIMS[:1])
    rows = batch.param_rows.copy()
    rows[0] = 5
    broken = batch._replace(param_rows=rows)
    result = engine.settle_arrays(broken)
    with pytest.raises(engine.KernelError, match="S_BAD_PARAMS"):
        engine.batch_result(SIMPLE_CLAIMS[:1], broken, result, 0)


def test_batch_reuses_output_arrays():
    claims = [simple_claim(amount, 5_000) for amount in (10_000, 250_000, 1_234_567)]
    batch = engine.build_batch(claims)
    first = engine.settle_arrays(batch)
    second = engine.settle_arrays(batch, out=first)
    assert second.outputs is first.outputs
    assert second.failures == 0
    for index, claim in enumerate(claims):
        assert engine.batch_result(claims, batch, second, index) == engine.batch_result(claims, batch, engine.settle_arrays(batch), index)


def test_batch_rejects_output_arrays_of_other_shape():
    batch = engine.build_batch([simple_claim(10_000, 5_000)])
    other = engine.settle_arrays(engine.build_batch([simple_claim(10_000, 5_000), simple_claim(20_000, 5_000)]))
    with pytest.raises(ValueError):
        engine.settle_arrays(batch, out=other)
