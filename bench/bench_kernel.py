"""Kernel benchmarks, with the reference model and a zen-engine decision model as peers.

Run from the repository root (the command and the recorded figures are in
docs/benchmarks.md)::

    python -m pytest bench/bench_kernel.py --benchmark-enable

Per-claim groups (``claim-1-line``, ``claim-20-lines``, ``claim-300-lines``) settle one
claim per call, taking the next claim of a pool each time:

* ``engine_settle``: ``settlement.engine.settle(ClaimInput)``, the path a server request
  takes once parsed: pack the claim into the kernel's arrays, run it, build the
  ``SettlementResult`` with line splits and trace;
* ``kernel_workspace``: the lowest entry the kernel exposes to Python,
  ``Workspace.settle`` on a workspace whose lines and accumulators are already filled;
* ``reference``: ``settle_reference``, the exact pure-Python model;
* ``zen``: the decision model of ``bench/zen`` on a prepared request dict.

``harness_overhead`` times the pool rotation alone (calling ``id`` on the next claim),
the part of every per-claim figure that is not settlement.

The batch groups settle 100,000 claims of 20 lines through ``settle_arrays`` on arrays
built beforehand. Plain ``settle_arrays`` allocates its output arrays on every call; one
variant passes ``out=`` so they are allocated once and reused. The peers settle
the first 1,000 of the same claims.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from bench import zen_peer
from bench.workload import BATCH_CLAIMS, POOL_CLAIMS
from settlement import _core, engine
from settlement.compiled import (
    accumulators_to_vector,
    claim_flags,
    compile_params,
    fill_lines,
)
from settlement.reference import settle_reference

LINE_COUNTS = tuple(POOL_CLAIMS)

# Claims of the batch that the peers settle in the batch groups: the slowest peer needs
# several milliseconds a claim, so all 100,000 would take minutes per round.
PEER_SAMPLE = 1_000


def group_of(line_count: int) -> str:
    return "claim-1-line" if line_count == 1 else f"claim-{line_count}-lines"


def apply_in_turn(function, items):
    """Return a no-argument callable that applies ``function`` to the next item, round robin."""
    next_item = itertools.cycle(items).__next__

    def call():
        return function(next_item())

    return call


def call_in_turn(calls):
    """Return a no-argument callable that runs the next of ``calls``, round robin."""
    next_call = itertools.cycle(calls).__next__

    def call():
        return next_call()()

    return call


def filled_workspaces(claims):
    """Return one ready call of ``Workspace.settle`` per claim, lines and accumulators already in place.

    Each claim gets its own workspace so that no copying happens inside the timed call.
    The trace is on, as in ``engine.settle``.
    """
    calls = []
    for claim in claims:
        workspace = _core.Workspace(max(1, len(claim.lines)))
        fill_lines(claim.lines, workspace.lines)
        accumulators_to_vector(claim.accumulators, out=workspace.accumulators_before)
        calls.append(functools.partial(workspace.settle, compile_params(claim.params), len(claim.lines), claim_flags(claim)))
    return calls


def check_status(status: int) -> None:
    assert status == _core.S_OK, f"kernel status {status}"


@pytest.fixture(scope="module")
def decision():
    return zen_peer.load_decision()


@pytest.fixture(scope="module")
def batch_arrays(batch_claims):
    return engine.build_batch([case.claim for case in batch_claims])


# ---------------------------------------------------------------------------
# One claim per call


@pytest.mark.parametrize("line_count", LINE_COUNTS, ids=lambda count: f"{count}lines")
def test_harness_overhead(bench, benchmark, claim_pools, line_count):
    benchmark.group = "harness"
    bench(apply_in_turn(id, [case.claim for case in claim_pools[line_count]]))


@pytest.mark.parametrize("line_count", LINE_COUNTS, ids=lambda count: f"{count}lines")
def test_engine_settle(bench, benchmark, claim_pools, line_count):
    benchmark.group = group_of(line_count)
    result = bench(apply_in_turn(engine.settle, [case.claim for case in claim_pools[line_count]]))
    assert len(result.lines) == line_count


@pytest.mark.parametrize("line_count", LINE_COUNTS, ids=lambda count: f"{count}lines")
def test_kernel_workspace(bench, benchmark, claim_pools, line_count):
    benchmark.group = group_of(line_count)
    calls = filled_workspaces([case.claim for case in claim_pools[line_count]])
    check_status(bench(call_in_turn(calls)))


@pytest.mark.parametrize("line_count", LINE_COUNTS, ids=lambda count: f"{count}lines")
def test_reference(bench, benchmark, claim_pools, line_count):
    benchmark.group = group_of(line_count)
    result = bench(apply_in_turn(settle_reference, [case.claim for case in claim_pools[line_count]]))
    assert len(result.lines) == line_count


@pytest.mark.parametrize("line_count", LINE_COUNTS, ids=lambda count: f"{count}lines")
def test_zen(bench, benchmark, claim_pools, decision, line_count):
    benchmark.group = group_of(line_count)
    contexts = [zen_peer.request_context(case) for case in claim_pools[line_count]]
    response = bench(apply_in_turn(decision.evaluate, contexts))
    assert "outputs" in response["result"]


# ---------------------------------------------------------------------------
# Batches of 20-line claims


def test_batch_kernel(bench, benchmark, batch_arrays):
    benchmark.group = "batch-100k-claims"
    result = bench(functools.partial(engine.settle_arrays, batch_arrays), claims=BATCH_CLAIMS)
    assert result.failures == 0


def test_batch_kernel_reused_buffers(bench, benchmark, batch_arrays):
    """Settle the batch into output arrays allocated once (``settle_arrays(out=...)``), not per call."""
    benchmark.group = "batch-100k-claims"
    reused = engine.settle_arrays(batch_arrays)
    result = bench(functools.partial(engine.settle_arrays, batch_arrays, out=reused), claims=BATCH_CLAIMS)
    assert result.failures == 0


def test_batch_kernel_without_line_results(bench, benchmark, batch_arrays):
    benchmark.group = "batch-100k-claims"
    result = bench(functools.partial(engine.settle_arrays, batch_arrays, with_line_results=False), claims=BATCH_CLAIMS)
    assert result.failures == 0


def test_batch_kernel_two_threads(bench, benchmark, batch_arrays):
    benchmark.group = "batch-100k-claims"
    result = bench(functools.partial(engine.settle_arrays, batch_arrays, threads=2), claims=BATCH_CLAIMS)
    assert result.failures == 0


def test_batch_build_arrays(bench, benchmark, batch_claims):
    benchmark.group = "batch-100k-claims"
    claims = [case.claim for case in batch_claims]
    bench(functools.partial(engine.build_batch, claims), claims=BATCH_CLAIMS, slow=True)


def settle_all(function, items):
    for item in items:
        function(item)


def test_batch_sample_engine_settle(bench, benchmark, batch_claims):
    benchmark.group = "batch-sample-1000-claims"
    claims = [case.claim for case in batch_claims[:PEER_SAMPLE]]
    bench(functools.partial(settle_all, engine.settle, claims), claims=PEER_SAMPLE)


def test_batch_sample_reference(bench, benchmark, batch_claims):
    benchmark.group = "batch-sample-1000-claims"
    claims = [case.claim for case in batch_claims[:PEER_SAMPLE]]
    bench(functools.partial(settle_all, settle_reference, claims), claims=PEER_SAMPLE, slow=True)


def test_batch_sample_zen(bench, benchmark, batch_claims, decision):
    benchmark.group = "batch-sample-1000-claims"
    contexts = [zen_peer.request_context(case) for case in batch_claims[:PEER_SAMPLE]]
    bench(functools.partial(settle_all, decision.evaluate, contexts), claims=PEER_SAMPLE, slow=True)
