"""Turn a pytest-benchmark JSON file from bench/bench_kernel.py into the Markdown tables of docs/benchmarks.md.

Usage, from the repository root::

    python -m bench.report bench/results/kernel.json

Every figure is the median over the rounds, divided by the claims one call settles. The
median is used because the benchmark machine is a shared virtual machine whose rare
scheduling stalls pull the mean up. Ratios divide the peer's time per claim by the
kernel's, both from the same run.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

# Targets for a 20-line claim and for the batch.
TARGET_CLAIM_US = 2.0
TARGET_ZEN_RATIO = 25.0
TARGET_REFERENCE_RATIO = 5.0
TARGET_BATCH_CLAIMS_PER_SECOND = 2_000_000

PER_CLAIM_TESTS = ("engine_settle", "kernel_workspace", "reference", "zen")
BATCH_TESTS = (
    ("batch_kernel", "`settle_arrays`, 1 thread, with line splits"),
    ("batch_kernel_reused_buffers", "`settle_arrays(out=...)`, 1 thread, with line splits, output arrays reused"),
    ("batch_kernel_without_line_results", "`settle_arrays`, 1 thread, no line splits"),
    ("batch_kernel_two_threads", "`settle_arrays`, 2 threads, with line splits"),
    ("batch_build_arrays", "`build_batch` (ClaimInput objects to arrays)"),
    ("batch_sample_engine_settle", "`engine.settle` in a loop (first 1,000 claims)"),
    ("batch_sample_reference", "`settle_reference` in a loop (first 1,000 claims)"),
    ("batch_sample_zen", "zen `evaluate` in a loop (first 1,000 claims)"),
)

_PARAM = re.compile(r"^test_(?P<name>[a-z_]+?)(?:\[(?P<lines>\d+)lines\])?$")


def us_per_claim(bench: dict) -> float:
    claims = bench["extra_info"].get("claims_per_call", 1)
    return bench["stats"]["median"] / claims * 1e6


def index(benchmarks: list[dict]) -> dict[tuple[str, int | None], dict]:
    """Map (test name without ``test_``, line count or None) to its benchmark record."""
    found = {}
    for bench in benchmarks:
        match = _PARAM.match(bench["name"])
        if match is None:
            continue
        lines = match.group("lines")
        found[(match.group("name"), int(lines) if lines else None)] = bench
    return found


def format_us(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def per_claim_table(found: dict) -> list[str]:
    rows = [
        (
            "| lines | engine.settle (µs) | kernel Workspace.settle (µs) | reference (µs) | zen (µs) "
            "| reference / engine | zen / engine | reference / kernel | zen / kernel | harness (µs) |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    line_counts = sorted({lines for (name, lines) in found if lines is not None})
    for lines in line_counts:
        times = {name: us_per_claim(found[(name, lines)]) for name in PER_CLAIM_TESTS if (name, lines) in found}
        if len(times) < len(PER_CLAIM_TESTS):
            continue
        harness = found.get(("harness_overhead", lines))
        engine, kernel = times["engine_settle"], times["kernel_workspace"]
        rows.append(
            f"| {lines} | {format_us(engine)} | {format_us(kernel)} | {format_us(times['reference'])} "
            f"| {format_us(times['zen'])} | {times['reference'] / engine:.1f}× | {times['zen'] / engine:.1f}× "
            f"| {times['reference'] / kernel:,.0f}× | {times['zen'] / kernel:,.0f}× "
            f"| {format_us(us_per_claim(harness)) if harness else '-'} |"
        )
    return rows


def batch_table(found: dict) -> list[str]:
    rows = ["| what | claims per call | µs per claim | claims/s |", "| --- | ---: | ---: | ---: |"]
    for name, label in BATCH_TESTS:
        bench = found.get((name, None))
        if bench is None:
            continue
        per_claim = us_per_claim(bench)
        claims = bench["extra_info"].get("claims_per_call", 1)
        rows.append(f"| {label} | {claims:,} | {format_us(per_claim)} | {1e6 / per_claim:,.0f} |")
    return rows


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def targets(found: dict) -> list[str]:
    lines = []
    need = [("engine_settle", 20), ("kernel_workspace", 20), ("reference", 20), ("zen", 20)]
    if all(key in found for key in need):
        engine, kernel, reference, zen = (us_per_claim(found[key]) for key in need)
        lines.append(
            f"* 20-line claim ≤ {TARGET_CLAIM_US:g} µs: `engine.settle` {format_us(engine)} µs, {verdict(engine <= TARGET_CLAIM_US)}; "
            f"kernel call alone {format_us(kernel)} µs, {verdict(kernel <= TARGET_CLAIM_US)}."
        )
        lines.append(
            f"* ≥ {TARGET_ZEN_RATIO:g}× faster than zen: `engine.settle` {zen / engine:.1f}×, {verdict(zen / engine >= TARGET_ZEN_RATIO)}; "
            f"kernel call {zen / kernel:,.0f}×, {verdict(zen / kernel >= TARGET_ZEN_RATIO)}."
        )
        lines.append(
            f"* ≥ {TARGET_REFERENCE_RATIO:g}× faster than the reference: `engine.settle` {reference / engine:.1f}×, "
            f"{verdict(reference / engine >= TARGET_REFERENCE_RATIO)}; kernel call {reference / kernel:,.0f}×, "
            f"{verdict(reference / kernel >= TARGET_REFERENCE_RATIO)}."
        )
    for name, label in (("batch_kernel", "`settle_arrays`"), ("batch_kernel_reused_buffers", "`settle_arrays(out=...)` with reused output arrays")):
        batch = found.get((name, None))
        if batch is None:
            continue
        rate = 1e6 / us_per_claim(batch)
        lines.append(
            f"* Batch ≥ {TARGET_BATCH_CLAIMS_PER_SECOND:,} claims/s on one core, {label}: {rate:,.0f} claims/s, "
            f"{verdict(rate >= TARGET_BATCH_CLAIMS_PER_SECOND)}."
        )
    return lines


def format_load(load: list[float] | None) -> str:
    return "?" if load is None else ", ".join(f"{value:.2f}" for value in load)


def timer_of(data: dict) -> str:
    return next((b["options"].get("timer", "?") for b in data["benchmarks"]), "?")


def render(data: dict) -> str:
    found = index(data["benchmarks"])
    machine = data.get("machine_info", {})
    mode = next((b["extra_info"].get("mode") for b in data["benchmarks"] if "mode" in b["extra_info"]), "unknown")
    load_start = format_load(machine.get("load_average_start"))
    load_end = format_load(machine.get("load_average_end"))
    header = [
        (
            f"Run {data.get('datetime', '?')}, mode {mode}, Python {machine.get('python_version', '?')}, "
            f"CPU {machine.get('cpu', {}).get('brand_raw', '?')}, timer {timer_of(data)}."
        ),
        f"Load average (1, 5, 15 min) at start {load_start}, at end {load_end}.",
        "",
    ]
    sections = [
        "Per claim (median µs per claim; ratios are peer time / kernel time):",
        "",
        *per_claim_table(found),
        "",
        "Batch of 100,000 claims of 20 lines:",
        "",
        *batch_table(found),
        "",
        "Targets:",
        "",
        *targets(found),
    ]
    return "\n".join(header + sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the benchmark tables of docs/benchmarks.md from a pytest-benchmark JSON file.")
    parser.add_argument("json_file", type=Path, help="file written by --benchmark-json")
    args = parser.parse_args()
    print(render(json.loads(args.json_file.read_text(encoding="utf-8"))), end="")


if __name__ == "__main__":
    main()
