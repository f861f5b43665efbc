"""Replay throughput: settlements per second from an exported record file, beside the kernel's raw batch rate.

Usage::

    python bench/bench_replay.py --records 1000000 --file /tmp/replay-1m.jsonl

The file is generated once (``bench/replay_workload.py``: persons with several
settlements of 20 lines each through 2024, some cancelled) and reused when it exists
with the same record count. Then three rates are measured on the same file, end to end
(reading, decoding, resolving rules and catalogue, kernel, comparison, merging):

* one process (``--workers 1``),
* a local process pool with one process per core (``--workers N``),
* a Dask local cluster on 127.0.0.1 with N worker processes (``--dask local``),

and the kernel's raw batch rate on arrays built from a sample of the same records
(``settle_arrays``, one thread and N threads), the ceiling for the replay. Timings are
wall-clock; every run must report zero discrepancies or the benchmark fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.replay.jsonl import RecordWriter, read_chunk, read_header  # noqa: E402
from adapters.replay.runner import ReplayOptions, run_replay, units_from_file  # noqa: E402
from bench.replay_workload import generate_history, history_records, load_history_rules  # noqa: E402
from settlement import _core  # noqa: E402
from settlement.compiled import ParamTable  # noqa: E402
from settlement.engine import ClaimBatch, settle_arrays  # noqa: E402
from settlement.replay.resolve import Resolver  # noqa: E402

# Claims generated per piece, so memory stays bounded while the file is written.
PIECE = 20_000


def generate(path: Path, claims: int, seed: int) -> int:
    """Write a grouped record file of ``claims`` settlements (plus their cancels); return the record count."""
    rules = load_history_rules()
    first_person, first_txn = 1, 1
    with RecordWriter(path, grouped=True, chain="whole") as writer:
        done = 0
        while done < claims:
            size = min(PIECE, claims - done)
            history = generate_history(size, seed=seed + done, rules=rules, first_person=first_person)
            records = history_records(history, rules, first_txn=first_txn)
            writer.write(records)
            first_person += len(history.balances)
            first_txn += len(history.events)
            done += size
            print(f"generated {done:,} of {claims:,} settlements", file=sys.stderr)
    return writer.count


def kernel_ceiling(path: Path, sample: int, threads: int, repeats: int = 3) -> tuple[float, int]:
    """Return the best settle_arrays rate (claims/s) on arrays built from the file's first ``sample`` settlements."""
    _, offset = read_header(path)
    with open(path, "rb") as file:
        file.seek(offset)
        data = b"".join(file.readline() for _ in range(sample))
    records = [record for record in read_chunk_bytes(data) if record.kind == "settle"]
    resolver = Resolver(load_history_rules())
    table = ParamTable()
    rows = np.array([table.add(resolver.params(record)[0]) for record in records], dtype=np.int64)
    lines, offsets, _ = resolver.line_arrays(records)
    flags = np.array([_core.F_ACCT_USED if record.acct_used else 0 for record in records], dtype=np.int64)
    before = np.array([record.before for record in records], dtype=np.int64)
    batch = ClaimBatch(table.to_array(), rows, offsets, lines, flags, before)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        result = settle_arrays(batch, with_line_results=False, threads=threads)
        elapsed = time.perf_counter() - started
        assert result.failures == 0
        best = max(best, len(records) / elapsed)
    return best, len(records)


def read_chunk_bytes(data: bytes):
    import msgspec

    from settlement.replay.record import ReplayRecord

    return msgspec.json.Decoder(ReplayRecord).decode_lines(data)


def replay_rate(path: Path, workers: int, dask: str | None) -> tuple[float, float, int]:
    """Replay the whole file; return (records/s, seconds, records) and fail on any discrepancy."""
    units, total, layout = units_from_file(str(path), workers)
    options = ReplayOptions(workers=workers, dask=dask, progress=False)
    started = time.perf_counter()
    outcome = run_replay(units, options, total=total, chain_layout=layout)
    elapsed = time.perf_counter() - started
    assert outcome.replay is not None and not outcome.replay.discrepancies, "the generated file must replay cleanly"
    return outcome.records / elapsed, elapsed, outcome.records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="settlements in the generated file")
    parser.add_argument("--file", type=Path, default=Path("/tmp/settlement-replay-bench.jsonl"), help="record file (generated if missing)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel runs")
    parser.add_argument("--sample", type=int, default=200_000, help="settlements for the kernel ceiling")
    parser.add_argument("--skip", nargs="*", default=[], choices=("single", "pool", "dask", "kernel"))
    args = parser.parse_args()

    header = read_header(args.file)[0] if args.file.exists() else None
    if header is None or header.count < args.records:
        started = time.perf_counter()
        count = generate(args.file, args.records, args.seed)
        print(f"generated {count:,} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    size = args.file.stat().st_size
    print(f"file: {args.file} ({size / 1e9:.2f} GB, {read_header(args.file)[0].count:,} records)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    if "kernel" not in args.skip:
        for threads in (1, args.workers):
            rate, claims = kernel_ceiling(args.file, args.sample, threads)
            print(f"kernel settle_arrays, {threads} thread(s), {claims:,} claims: {rate:,.0f} claims/s")
    runs = [("single", 1, None), ("pool", args.workers, None), ("dask", args.workers, "local")]
    for name, workers, dask in runs:
        if name in args.skip:
            continue
        rate, seconds, records = replay_rate(args.file, workers, dask)
        label = {"single": "one process", "pool": f"{workers} local processes", "dask": f"Dask local cluster, {workers} workers"}[name]
        print(f"replay, {label}: {records:,} records in {seconds:.1f} s = {rate:,.0f} records/s ({rate / workers:,.0f} per worker)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
