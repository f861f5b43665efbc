"""Benchmark fixtures: one ``bench`` fixture that runs quick or calibrated, and the shared claims.

Quick mode (the default) keeps every benchmark short: at least 3 rounds, at most about
0.2 s each, no warm-up. It is for checking that the benchmarks run and for rough figures.
Calibrated mode is for the figures recorded in docs/benchmarks.md: at least 15 rounds,
up to 2 s each, a warm-up, and a finer timer calibration. Choose it with
``--bench-mode=calibrated`` or ``SETTLEMENT_BENCH_MODE=calibrated``; the option wins.
``--benchmark-*`` options given on the command line override both modes.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from bench.workload import BATCH_CLAIMS, BATCH_LINES, POOL_CLAIMS, generate_claims

BENCH_MODES = ("quick", "calibrated")
BENCH_MODE_ENV = "SETTLEMENT_BENCH_MODE"

# pytest-benchmark option -> (its own default, quick value, calibrated value).
# min_time makes each round long enough to hold many calls of a sub-microsecond target,
# because one call of time.perf_counter costs about 0.2 us on the benchmark machine.
MODE_SETTINGS = {
    "benchmark_min_time": (Decimal("0.000005"), Decimal("0.00002"), Decimal("0.0001")),
    "benchmark_min_rounds": (5, 3, 15),
    "benchmark_max_time": (Decimal("1.0"), Decimal("0.2"), Decimal("2.0")),
    "benchmark_warmup": ("auto", False, True),
    "benchmark_warmup_iterations": (100_000, 100_000, 10_000),
    "benchmark_calibration_precision": (10, 10, 100),
}

# Fixed rounds for targets that take seconds a call, where pytest-benchmark's own
# calibration would run for minutes: (quick, calibrated).
SLOW_ROUNDS = (2, 5)


_MODE_KEY = pytest.StashKey[str]()
_LOAD_KEY = pytest.StashKey[tuple[float, float, float]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-mode",
        choices=BENCH_MODES,
        default=None,
        help=f"run quick (default) or calibrated benchmarks; overrides ${BENCH_MODE_ENV}",
    )


def bench_mode(config: pytest.Config) -> str:
    """Return the mode chosen by the option, else the environment, else quick."""
    mode = config.getoption("--bench-mode") or os.environ.get(BENCH_MODE_ENV) or "quick"
    if mode not in BENCH_MODES:
        raise pytest.UsageError(f"{BENCH_MODE_ENV} must be one of {', '.join(BENCH_MODES)}, not {mode!r}")
    return mode


def same_setting(value, default) -> bool:
    """Tell whether an option still has its default, comparing times as Decimal seconds like pytest-benchmark."""
    if isinstance(default, Decimal) and value is not None:
        return Decimal(value) == default
    return value == default


def pytest_configure(config: pytest.Config) -> None:
    """Apply the mode's pytest-benchmark settings before pytest-benchmark reads them.

    pytest-benchmark builds its session in its own ``pytest_configure``, marked
    ``trylast``, so this hook runs first. A setting still at pytest-benchmark's default
    was not given on the command line and takes the mode's value.
    """
    mode = bench_mode(config)
    column = BENCH_MODES.index(mode) + 1
    for name, values in MODE_SETTINGS.items():
        if same_setting(getattr(config.option, name, None), values[0]):
            setattr(config.option, name, values[column])
    config.stash[_MODE_KEY] = mode
    config.stash[_LOAD_KEY] = os.getloadavg()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Record the 1, 5 and 15 minute load averages at the start and end of the run.

    The benchmark machine has 2 cores and is shared, so a load above about 1 means other
    processes competed for the CPU and the figures are slower than the machine can do.
    """
    machine_info["load_average_start"] = list(config.stash[_LOAD_KEY])
    machine_info["load_average_end"] = list(os.getloadavg())


@pytest.fixture
def bench(benchmark, request):
    """Return ``run(target, *, claims=1, slow=False)``: benchmark ``target`` and record claims per call.

    ``claims`` is how many claims one call settles. It goes into the saved JSON with the
    mode, so the report can turn the time per call into a time per claim and claims/s.
    ``slow`` runs a fixed number of single-call rounds (``SLOW_ROUNDS``) instead of
    letting pytest-benchmark calibrate, for targets that take seconds a call.
    """
    mode = request.config.stash[_MODE_KEY]

    def run(target, *, claims: int = 1, slow: bool = False):
        benchmark.extra_info["mode"] = mode
        benchmark.extra_info["claims_per_call"] = claims
        if slow:
            rounds = SLOW_ROUNDS[BENCH_MODES.index(mode)]
            result = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=0)
        else:
            result = benchmark(target)
        if benchmark.stats is not None:
            mean = benchmark.stats.stats.mean
            benchmark.extra_info["us_per_claim"] = mean / claims * 1e6
            benchmark.extra_info["claims_per_second"] = claims / mean
        return result

    return run


@pytest.fixture(scope="session")
def claim_pools():
    """Return ``{line_count: [ClaimCase, ...]}`` for the per-claim benchmarks, generated once.

    The 20-line pool is the first claims of the batch, since both use the default seed.
    """
    return {line_count: generate_claims(count, line_count) for line_count, count in POOL_CLAIMS.items()}


@pytest.fixture(scope="session")
def batch_claims():
    """Return the batch's claims, generated once (about 15 s on the benchmark machine)."""
    return generate_claims(BATCH_CLAIMS, BATCH_LINES)
