"""Settle, cancel and partially refund claims through the Cython kernel.

This module turns ``ClaimInput`` values into the kernel's arrays (through
``settlement.compiled``), runs ``settlement._core`` and turns its arrays back into
``SettlementResult`` values. It also offers a batch API over flat numpy arrays, settled
with the GIL released.

Conventions of the results:

* ``accumulators_after`` has the keys of the input plus every accumulator the claim
  moves, even by 0: those the scheme names (deductible, band position, fund cap and each
  configured layer, only when the fund is enabled), ``acct_balc`` when the own account was
  allowed to pay, and ``family_acct_balc`` when mutual aid paid.
* ``fund_details`` has a ``hifp`` row whenever the fund is enabled, one row per configured
  top-up layer (``hifob``, ``hifmi``, ``cvlserv``, ``maf``) and an ``acct`` row when
  ``acct_pay`` is not 0. ``inscp_scp_amt`` is the base the layer worked on (the claim's
  in-scope amount for ``hifp``, what the accounts may pay for ``acct``),
  ``crt_payb_lmt_amt`` its cap left before the claim (None when uncapped; for ``acct`` the
  usable balances) and ``fund_payamt`` its payment (own plus mutual aid for ``acct``).

A kernel status other than S_OK raises: ``SettlementError`` for input the kernel cannot
represent (an amount outside int64, a line value out of range), ``KernelError`` for a
broken invariant, which is a bug.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import msgspec
import numpy as np

from settlement import _core
from settlement.compiled import (
    ParamTable,
    accumulators_to_vector,
    claim_flags,
    compile_params,
    line_rows,
    vector_to_accumulators,
)
from settlement.errors import ErrorCode, SettlementError
from settlement.types import (
    RATIO_SCALE,
    ClaimInput,
    FeeLine,
    FundDetail,
    LineResult,
    SchemeParams,
    SettlementOutputs,
    SettlementResult,
    TraceStep,
)

__all__ = [
    "BatchResult",
    "ClaimBatch",
    "KernelError",
    "batch_result",
    "build_batch",
    "cancel",
    "fund_layer_columns",
    "refund_partial",
    "refunded_lines",
    "settle",
    "settle_arrays",
    "settle_batch",
]

# Number of public output values: the setlinfo amounts plus pool_prop_selfpay.
PUBLIC_OUTPUTS = _core.O_POOL_PROP_SELFPAY + 1

STATUS_NAMES = {getattr(_core, name): name for name in dir(_core) if name.startswith("S_")}


class KernelError(RuntimeError):
    """The kernel found a broken money invariant: a bug in the engine, never bad input."""

    def __init__(self, status: int, operation: str) -> None:
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "unknown")
        super().__init__(
            f"settlement kernel {operation} failed with status {status} ({self.status_name}); "
            "this is an engine bug, report it with the claim"
        )


# ---------------------------------------------------------------------------
# Status handling


def _line_error(lines: Sequence[FeeLine]) -> SettlementError:
    """Return an error naming the first line the kernel cannot settle."""
    for number, line in enumerate(lines):
        if line.price_micro < 0:
            return SettlementError(ErrorCode.NEGATIVE_PRICE, field=f"lines[{number}].price_micro", value=line.price_micro)
        if not 0 <= line.selfpay_prop <= RATIO_SCALE:
            return SettlementError(
                ErrorCode.INVALID_FIELD, field=f"lines[{number}].selfpay_prop", value=line.selfpay_prop,
                detail=f"先行自付比例须在 0 到 {RATIO_SCALE} 之间",
                detail_en=f"the first self-pay ratio must lie between 0 and {RATIO_SCALE}",
            )
        if line.price_cap_micro is not None and line.price_cap_micro < 0:
            return SettlementError(ErrorCode.NEGATIVE_PRICE, field=f"lines[{number}].price_cap_micro", value=line.price_cap_micro)
    return SettlementError(ErrorCode.INVALID_FIELD, field="lines", value=len(lines), detail="明细的类别、单价或比例超出范围", detail_en="a line's class, price or ratio is out of range")


def _check_status(status: int, operation: str, lines: Sequence[FeeLine] = ()) -> None:
    if status == _core.S_OK:
        return
    if status == _core.S_OVERFLOW:
        raise SettlementError(
            ErrorCode.AMOUNT_OUT_OF_RANGE, field="claim", value=operation,
            detail="金额超出 64 位整数范围", detail_en="an amount is outside the 64-bit integer range",
        )
    if status == _core.S_BAD_LINE:
        raise _line_error(lines)
    if status == _core.S_REVERSAL_MISMATCH:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="accumulators_before_original", value=operation,
            detail="原结算前后的账户余额与原结算的账户支付不一致",
            detail_en="the account balances before and after the original disagree with its account payments",
        )
    raise KernelError(status, operation)


# ---------------------------------------------------------------------------
# Kernel arrays back to result values


def _limit(value: int) -> int | None:
    return None if value == _core.NO_LIMIT else value


@functools.lru_cache(maxsize=1024)
def fund_layer_columns(params: SchemeParams) -> tuple[tuple[str, int, int, int], ...]:
    """Return ``(layer, base column, cap-left column, payment column)`` of each fund layer a scheme has.

    The columns index the kernel's output row, in the order the layers pay.
    """
    if not params.fund_enabled:
        return ()
    layers = [("hifp", _core.O_INSCP_SCP_AMT, _core.O_HIFP_LIMIT, _core.O_HIFP_PAY)]
    if params.large_amount_ratio is not None:
        layers.append(("hifob", _core.O_HIFOB_BASE, _core.O_HIFOB_LIMIT, _core.O_HIFOB_PAY))
    if params.critical_illness is not None:
        layers.append(("hifmi", _core.O_HIFMI_BASE, _core.O_HIFMI_LIMIT, _core.O_HIFMI_PAY))
    if params.civil_servant is not None:
        layers.append(("cvlserv", _core.O_CVLSERV_BASE, _core.O_CVLSERV_LIMIT, _core.O_CVLSERV_PAY))
    if params.medical_assistance is not None:
        layers.append(("maf", _core.O_MAF_BASE, _core.O_MAF_LIMIT, _core.O_MAF_PAY))
    return tuple(layers)


def _fund_details(params: SchemeParams, out: Sequence[int]) -> tuple[FundDetail, ...]:
    """Return the setldetail rows of a settled claim (conventions in the module docstring)."""
    rows = [FundDetail(name, out[base], _limit(out[limit]), out[paid]) for name, base, limit, paid in fund_layer_columns(params)]
    if out[_core.O_ACCT_PAY] != 0:
        rows.append(FundDetail("acct", out[_core.O_ACCT_BASE], out[_core.O_ACCT_LIMIT], out[_core.O_ACCT_PAY]))
    return tuple(rows)


@functools.lru_cache(maxsize=1024)
def _scheme_keys(params: SchemeParams) -> frozenset[str]:
    """Return the accumulators a scheme's fund layers move, whatever the claim."""
    if not params.fund_enabled:
        return frozenset()
    keys = [params.band_accumulator, params.fund_cap_accumulator]
    if params.deductible_basis != "none":
        keys.append(params.deductible_accumulator)
    if params.large_amount_ratio is not None:
        keys.append(params.large_amount_accumulator)
    if params.critical_illness is not None:
        keys += [params.critical_illness.base_accumulator, params.critical_illness.paid_accumulator]
    if params.civil_servant is not None:
        keys.append(params.civil_servant.accumulator)
    if params.medical_assistance is not None:
        keys.append(params.medical_assistance.accumulator)
    return frozenset(key for key in keys if key is not None)


def _accumulators_after(claim: ClaimInput, out: Sequence[int], after: np.ndarray) -> dict[str, int]:
    keys = set(claim.accumulators) | _scheme_keys(claim.params)
    if claim.acct_used and claim.params.account.has_account:
        keys.add("acct_balc")
    if out[_core.O_ACCT_MULAID_PAY] != 0:
        keys.add("family_acct_balc")
    return vector_to_accumulators(after, keys)


def _result(
    claim: ClaimInput, outputs: np.ndarray, after: np.ndarray, line_results: np.ndarray, trace: np.ndarray
) -> SettlementResult:
    """Build the result of one settled claim from its kernel rows."""
    out = outputs.tolist()
    names = _core.TRACE_STEP_NAMES
    return SettlementResult(
        outputs=SettlementOutputs(*out[:PUBLIC_OUTPUTS]),
        lines=tuple(
            LineResult(line.feedetl_sn, *split) for line, split in zip(claim.lines, line_results.tolist(), strict=True)
        ),
        fund_details=_fund_details(claim.params, out),
        accumulators_after=_accumulators_after(claim, out, after),
        trace=tuple(TraceStep(names[step], index, base, ratio, amount, limit) for step, index, base, ratio, amount, limit in trace.tolist()),
    )


# ---------------------------------------------------------------------------
# Single claims


_local = threading.local()


def _workspace(n_lines: int) -> _core.Workspace:
    """Return this thread's kernel workspace with room for ``n_lines`` lines."""
    workspace = getattr(_local, "workspace", None)
    if workspace is None:
        workspace = _local.workspace = _core.Workspace()
    workspace.reserve(n_lines)
    return workspace


def settle(claim: ClaimInput) -> SettlementResult:
    """Settle one claim: line splits, deductible, funds by layer, accounts and accumulators after."""
    row = compile_params(claim.params)
    n_lines = len(claim.lines)
    workspace = _workspace(n_lines)
    set_line = workspace.set_line
    for index, line in enumerate(claim.lines):
        set_line(index, line.charge_class, line.price_micro, line.quantity, line.selfpay_prop, line.price_cap_micro, line.amount)
    accumulators_to_vector(claim.accumulators, out=workspace.accumulators_before)

    status = workspace.settle(row, n_lines, claim_flags(claim))
    _check_status(status, "settle", claim.lines)
    return _result(
        claim,
        workspace.outputs,
        workspace.accumulators_after,
        workspace.line_results[:n_lines],
        workspace.trace[: workspace.trace_len],
    )


def _negate_line(split: LineResult) -> LineResult:
    return LineResult(
        split.feedetl_sn,
        -split.amount,
        -split.fulamt_ownpay_amt,
        -split.overlmt_amt,
        -split.preselfpay_amt,
        -split.inscp_scp_amt,
    )


def _reversal_trace(original: SettlementOutputs, now: Mapping[str, int]) -> tuple[TraceStep, ...]:
    steps = [TraceStep("reversal", -1, original.medfee_sumamt, 0, -original.medfee_sumamt, _core.NO_LIMIT)]
    own = original.acct_pay - original.acct_mulaid_pay
    if own:
        steps.append(TraceStep("account", -1, own, 0, -own, now.get("acct_balc", 0)))
    if original.acct_mulaid_pay:
        mutual_aid = original.acct_mulaid_pay
        steps.append(TraceStep("mutual_aid", -1, mutual_aid, 0, -mutual_aid, now.get("family_acct_balc", 0)))
    return tuple(steps)


def cancel(
    original: SettlementResult,
    accumulators_before_original: Mapping[str, int],
    accumulators_now: Mapping[str, int],
) -> SettlementResult:
    """Reverse a settlement without recomputing it.

    Every amount of ``original`` is negated and each accumulator moves back from
    ``accumulators_now`` by exactly what the original added (its after minus
    ``accumulators_before_original``), so later claims keep their effects. The own account
    payment and the mutual-aid payment go back to their accounts; ``balc`` is the restored
    own balance. ``fund_details`` keep the original's ``crt_payb_lmt_amt``.
    """
    original_vector = np.zeros(_core.O_WIDTH, dtype=np.int64)
    original_vector[:PUBLIC_OUTPUTS] = msgspec.structs.astuple(original.outputs)
    outputs = np.zeros(_core.O_WIDTH, dtype=np.int64)
    after = np.zeros(_core.A_COUNT, dtype=np.int64)

    status = _core.cancel(
        original_vector,
        accumulators_to_vector(accumulators_before_original),
        accumulators_to_vector(original.accumulators_after),
        accumulators_to_vector(accumulators_now),
        outputs,
        after,
    )
    _check_status(status, "cancel")

    keys = set(accumulators_now) | set(original.accumulators_after)
    return SettlementResult(
        outputs=SettlementOutputs(*outputs[:PUBLIC_OUTPUTS].tolist()),
        lines=tuple(_negate_line(split) for split in original.lines),
        fund_details=tuple(
            FundDetail(row.layer, -row.inscp_scp_amt, row.crt_payb_lmt_amt, -row.fund_payamt)
            for row in original.fund_details
        ),
        accumulators_after=vector_to_accumulators(after, keys),
        trace=_reversal_trace(original.outputs, accumulators_now),
    )


def refund_partial(
    original: SettlementResult,
    accumulators_before_original: Mapping[str, int],
    accumulators_now: Mapping[str, int],
    kept_claim: ClaimInput,
) -> tuple[SettlementResult, SettlementResult]:
    """Cancel a whole settlement, then settle the kept lines again; return ``(reversal, resettlement)``.

    ``kept_claim`` contains the lines not handed back; its ``accumulators`` are replaced by
    the ones the reversal restores, so the kept lines go through the deductible and the
    bands again (the result is not a pro-rata share of the original).
    """
    reversal = cancel(original, accumulators_before_original, accumulators_now)
    resettle_claim = msgspec.structs.replace(kept_claim, accumulators=dict(reversal.accumulators_after))
    return reversal, settle(resettle_claim)


# ---------------------------------------------------------------------------
# Batches


class ClaimBatch(NamedTuple):
    """Flat int64 arrays for many independent claims, in the kernel's layouts.

    Claim ``c`` uses ``param_table[param_rows[c]]`` and the lines
    ``lines[line_offsets[c]:line_offsets[c + 1]]``.
    """

    param_table: np.ndarray     # (rows, P_WIDTH)
    param_rows: np.ndarray      # (claims,)
    line_offsets: np.ndarray    # (claims + 1,)
    lines: np.ndarray           # (total lines, L_WIDTH)
    flags: np.ndarray           # (claims,) F_* bits
    accumulators: np.ndarray    # (claims, A_COUNT)


class BatchResult(NamedTuple):
    """Kernel results of a batch; rows of a claim whose status is not S_OK are undefined."""

    outputs: np.ndarray             # (claims, O_WIDTH)
    accumulators_after: np.ndarray  # (claims, A_COUNT)
    line_results: np.ndarray        # (total lines, LR_WIDTH), or no rows when not requested
    status: np.ndarray              # (claims,) int32
    failures: int


def build_batch(claims: Sequence[ClaimInput]) -> ClaimBatch:
    """Compile many claims into one ClaimBatch; claims with equal schemes share a parameter row."""
    table = ParamTable()
    param_rows = np.fromiter((table.add(claim.params) for claim in claims), dtype=np.int64, count=len(claims))
    counts = np.fromiter((len(claim.lines) for claim in claims), dtype=np.int64, count=len(claims))
    line_offsets = np.zeros(len(claims) + 1, dtype=np.int64)
    np.cumsum(counts, out=line_offsets[1:])

    rows = [row for claim in claims for row in line_rows(claim.lines)]
    lines = np.array(rows, dtype=np.int64).reshape(len(rows), _core.L_WIDTH)
    accumulators = np.zeros((len(claims), _core.A_COUNT), dtype=np.int64)
    for index, claim in enumerate(claims):
        accumulators_to_vector(claim.accumulators, out=accumulators[index])
    flags = np.fromiter((claim_flags(claim) for claim in claims), dtype=np.int64, count=len(claims))
    return ClaimBatch(table.to_array(), param_rows, line_offsets, lines, flags, accumulators)


def settle_arrays(
    batch: ClaimBatch, *, with_line_results: bool = True, threads: int = 1, out: BatchResult | None = None
) -> BatchResult:
    """Settle every claim of a batch in the kernel, splitting the claims over ``threads`` threads.

    The kernel releases the GIL, so threads run in parallel on separate cores. ``out`` lends
    the arrays of an earlier result of the same shape to be overwritten: on large batches,
    fresh arrays cost more in page faults than the settling itself.
    """
    n_claims = len(batch.param_rows)
    line_count = len(batch.lines) if with_line_results else 0
    if out is None:
        outputs = np.zeros((n_claims, _core.O_WIDTH), dtype=np.int64)
        after = np.zeros((n_claims, _core.A_COUNT), dtype=np.int64)
        line_results = np.zeros((line_count, _core.LR_WIDTH), dtype=np.int64)
        status = np.zeros(n_claims, dtype=np.int32)
    else:
        outputs, after, line_results, status = out.outputs, out.accumulators_after, out.line_results, out.status
        if outputs.shape != (n_claims, _core.O_WIDTH) or after.shape != (n_claims, _core.A_COUNT):
            raise ValueError("out was made for a batch of another size")
        if line_results.shape != (line_count, _core.LR_WIDTH) or status.shape != (n_claims,):
            raise ValueError("out was made for a batch of another size or without line results")

    def run(start: int, stop: int) -> int:
        return _core.settle_batch(
            batch.param_table, batch.param_rows, batch.line_offsets, batch.lines, batch.flags,
            batch.accumulators, outputs, after, line_results, status, start, stop,
        )

    if threads <= 1 or n_claims < 2:
        failures = run(0, n_claims)
    else:
        edges = np.linspace(0, n_claims, threads + 1).astype(np.int64).tolist()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            failures = sum(pool.map(run, edges[:-1], edges[1:]))
    return BatchResult(outputs, after, line_results, status, failures)


def settle_batch(claims: Sequence[ClaimInput], *, threads: int = 1) -> BatchResult:
    """Build the arrays of many independent claims and settle them in one kernel call."""
    return settle_arrays(build_batch(claims), threads=threads)


def batch_result(claims: Sequence[ClaimInput], batch: ClaimBatch, result: BatchResult, index: int) -> SettlementResult:
    """Return claim ``index`` of a settled batch as a SettlementResult (with an empty trace).

    Raises like ``settle`` when that claim's status is not S_OK.
    """
    claim = claims[index]
    _check_status(int(result.status[index]), "settle_batch", claim.lines)
    first, last = batch.line_offsets[index], batch.line_offsets[index + 1]
    if len(result.line_results) == 0 and last > first:
        raise ValueError("the batch was settled without line results")
    empty_trace = np.zeros((0, _core.T_WIDTH), dtype=np.int64)
    return _result(claim, result.outputs[index], result.accumulators_after[index], result.line_results[first:last], empty_trace)


def refunded_lines(claim: ClaimInput, refunded_feedetl_sns: Collection[str]) -> ClaimInput:
    """Return the claim without the lines handed back, for ``refund_partial``."""
    kept = tuple(line for line in claim.lines if line.feedetl_sn not in refunded_feedetl_sns)
    return msgspec.structs.replace(claim, lines=kept)
