"""Replay throughput: settlements per second from an exported record file, beside the kernel's raw batch rate.

Usage::

    python bench/bench_replay.py --records 1000000 --file /tmp/replay-1m.jsonl

The JSON Lines file is generated once (``bench/replay_workload.py``: persons with several
settlements of 20 lines each through 2024, some cancelled) and reused when it exists
with the same record count. It is converted once into a columnar folder beside it
(``--columns``, default the file name with ``.columns``), as ``settlement export
--format columnar`` writes it. Then the rates are measured end to end (reading,
decoding, resolving rules and catalogue, kernel, comparison, merging) for each format
in ``--formats`` and each run not in ``--skip``:

* one process (``--workers 1``),
* a local process pool with one process per core (``--workers N``),
* a Dask local cluster on 127.0.0.1 with N worker processes, one thread each, as
  ``--dask local`` starts it. The cluster is started before the clock starts, as an
  auditor's cluster would already be running, and its start time is printed apart.

Each replay runs ``--repeat`` times and the best run is compared (a busy machine only
slows runs down), all runs being printed. A Dask cluster's first run, which includes
each new worker's one-time work, is printed apart. Also measured: the kernel's raw
batch rate on arrays built from a sample of the same records (``settle_arrays``, one
thread and N threads), the ceiling for the replay. The generated
file has no hash chain, so the cost of the chain check is measured apart, on a ledger
export of ``--chain-claims`` settlements (``chain_rate``). Timings are
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

from adapters.replay.columnar import ColumnarWriter, is_columnar, read_manifest  # noqa: E402
from adapters.replay.jsonl import RecordWriter, file_chunks, read_chunk, read_header  # noqa: E402
from adapters.replay.runner import ReplayOptions, local_cluster, run_replay, units_from_columns, units_from_file  # noqa: E402
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


def convert(path: Path, columns: Path) -> int:
    """Write the records of a grouped JSON Lines file as a columnar folder; return the record count."""
    header, _ = read_header(path)
    assert header is not None
    with ColumnarWriter(columns, grouped=True, chain=header.chain or "whole") as writer:
        for start, end in file_chunks(path, max(1, path.stat().st_size // (64 << 20))):
            writer.write(read_chunk(path, start, end))
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


def chain_rate(claims: int, seed: int) -> tuple[float, int, float]:
    """Return the rate (records/s) of hashing a columnar export's stored record bytes for the chain check.

    The generated record file has no chain, because no ledger wrote it. So ``claims``
    settlements of the same workload are settled through a SQLite ledger in a temporary
    folder, exported with their stored bytes as ``settlement export --format columnar``
    does, and ``column_links`` (SHA-256 of every record's bytes) timed over the export.
    Returns the rate, the record count and the mean stored bytes per record.
    """
    import asyncio
    import tempfile

    from adapters.ledger import migrate_ledger, open_store
    from adapters.replay.columnar import read_columns
    from adapters.replay.ledger_reader import LedgerFilter, read_ledger_records
    from bench.replay_workload import apply_history
    from settlement.replay.chain import column_links

    rules = load_history_rules()
    with tempfile.TemporaryDirectory() as folder:
        dsn = f"sqlite://{folder}/ledger.sqlite3"

        async def build() -> None:
            await migrate_ledger(dsn)
            store = await open_store(dsn)
            try:
                await apply_history(store, generate_history(claims, seed=seed, rules=rules), rules, concurrency=256)
            finally:
                await store.close()

        asyncio.run(build())
        records = asyncio.run(read_ledger_records(dsn, LedgerFilter(), rules))
        records.sort(key=lambda record: (record.psn_no, record.seq))
        with ColumnarWriter(f"{folder}/records", grouped=True) as writer:
            writer.write(records)
        columns = read_columns(f"{folder}/records")
        started = time.perf_counter()
        links = column_links(columns, 0, len(columns))
        elapsed = time.perf_counter() - started
        assert len(links) == len(columns)
        body_bytes = float(np.diff(columns.arrays["body_offsets"]).mean())
        return len(columns) / elapsed, len(columns), body_bytes


def replay_rate(path: Path, workers: int, dask: str | None, runs: int = 1) -> list[tuple[float, float, int]]:
    """Replay the whole file or columnar folder ``runs`` times; return (records/s, seconds, records) of each run.

    Fails on any discrepancy. ``dask`` "local" starts a local cluster first (not timed),
    as ``--dask local`` starts it, and every run uses it.
    """
    cluster = None
    if dask == "local":
        started = time.perf_counter()
        cluster = local_cluster(workers)
        dask = cluster.scheduler_address
        print(f"Dask local cluster of {workers} workers started in {time.perf_counter() - started:.1f} s (not timed)")
    units, total, layout = (units_from_columns if is_columnar(path) else units_from_file)(str(path), workers)
    options = ReplayOptions(workers=workers, dask=dask, progress=False)
    measured = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            outcome = run_replay(units, options, total=total, chain_layout=layout)
            elapsed = time.perf_counter() - started
            assert outcome.replay is not None and not outcome.replay.discrepancies, "the generated file must replay cleanly"
            measured.append((outcome.records / elapsed, elapsed, outcome.records))
    finally:
        if cluster is not None:
            cluster.close()
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="settlements in the generated file")
    parser.add_argument("--file", type=Path, default=Path("/tmp/settlement-replay-bench.jsonl"), help="record file (generated if missing)")
    parser.add_argument("--columns", type=Path, help="columnar folder (converted from --file if missing); default FILE.columns")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel runs")
    parser.add_argument("--sample", type=int, default=200_000, help="settlements for the kernel ceiling")
    parser.add_argument("--formats", nargs="+", default=["columnar", "jsonl"], choices=("columnar", "jsonl"),
                        help="record formats to replay, in this order")
    parser.add_argument("--skip", nargs="*", default=[], choices=("single", "pool", "dask", "kernel", "chain"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each replay; the best is compared, because other jobs on the machine only slow runs down")
    parser.add_argument("--chain-claims", type=int, default=20_000, help="settlements in the ledger for the chain hashing rate")
    args = parser.parse_args()
    columns = args.columns or args.file.with_suffix(".columns")

    header = read_header(args.file)[0] if args.file.exists() else None
    if header is None or header.count < args.records:
        started = time.perf_counter()
        count = generate(args.file, args.records, args.seed)
        print(f"generated {count:,} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    count = read_header(args.file)[0].count
    if "columnar" in args.formats and (not is_columnar(columns) or read_manifest(columns).count != count):
        started = time.perf_counter()
        convert(args.file, columns)
        print(f"converted to {columns} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    size = args.file.stat().st_size
    print(f"file: {args.file} ({size / 1e9:.2f} GB, {count:,} records)")
    if "columnar" in args.formats:
        folder_size = sum(item.stat().st_size for item in columns.iterdir())
        print(f"columnar folder: {columns} ({folder_size / 1e9:.2f} GB)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    if "kernel" not in args.skip:
        for threads in (1, args.workers):
            rate, claims = kernel_ceiling(args.file, args.sample, threads)
            print(f"kernel settle_arrays, {threads} thread(s), {claims:,} claims: {rate:,.0f} claims/s")
    if "chain" not in args.skip:
        rate, records, body_bytes = chain_rate(args.chain_claims, args.seed)
        print(f"chain check, SHA-256 of stored record bytes ({body_bytes:,.0f} bytes a record), one process: "
              f"{records:,} records at {rate:,.0f} records/s")
    runs = [("single", 1, None), ("pool", args.workers, None), ("dask", args.workers, "local")]
    for fmt in args.formats:
        path = columns if fmt == "columnar" else args.file
        single = None
        for name, workers, dask in runs:
            if name in args.skip:
                continue
            label = {"single": "one process", "pool": f"{workers} local processes", "dask": f"Dask local cluster, {workers} workers"}[name]
            # A Dask cluster's first run includes each new worker's one-time work, so it is
            # reported on its own and the repeats follow it on the same workers.
            measured = replay_rate(path, workers, dask, runs=args.repeat + (1 if dask else 0))
            if dask:
                rate, seconds, records = measured.pop(0)
                share = f", {rate / workers / single:.0%} of one process per core" if single else ""
                print(f"replay {fmt}, {label}, first run of the workers: {records:,} records in {seconds:.1f} s = "
                      f"{rate:,.0f} records/s ({rate / workers:,.0f} per worker{share})")
            rate, seconds, records = max(measured)
            share = f", {rate / workers / single:.0%} of one process per core" if single and name != "single" else ""
            runs = ", ".join(f"{item[0]:,.0f}" for item in measured)
            print(f"replay {fmt}, {label}, best of {len(measured)}: {records:,} records in {seconds:.1f} s = {rate:,.0f} records/s "
                  f"({rate / workers:,.0f} per worker{share}); all runs {runs} records/s; load average {os.getloadavg()[0]:.2f}")
            if name == "single":
                single = rate
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
