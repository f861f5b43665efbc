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
file has no hash chain, because no ledger wrote it. So the replay that checks the chain
is measured on a real ledger: ``--chain-claims`` settlements of the same workload are
settled through a SQLite ledger (``--chain-ledger``, built once and reused), exported
with ``settlement export --format columnar`` (stored record bytes included), and that
export is replayed end to end in the same runs as above. The hashing of the stored
bytes is also timed alone. Timings are wall-clock; every run must report zero
discrepancies and an intact chain, or the benchmark fails.

The chained export of 200,000 settlements, as recorded in ``bench/results/replay.md``::

    python bench/bench_replay.py --formats --chain-claims 200000 --chain-ledger /tmp/replay-chain.sqlite3

(``--formats`` with no format leaves out the generated file and the kernel ceiling.)
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


def chain_ledger(path: Path | None, claims: int, seed: int) -> str:
    """Return the DSN of a SQLite ledger of ``claims`` settlements of the workload (and their cancels).

    A ledger at ``path`` that already contains ``claims`` settlements is reused; otherwise
    it is built there (about 2,700 records/s here). Without ``path`` a temporary folder
    is used, removed at exit.
    """
    import asyncio
    import atexit
    import shutil
    import sqlite3
    import tempfile

    from adapters.ledger import migrate_ledger, open_store
    from bench.replay_workload import apply_history

    if path is None:
        folder = tempfile.mkdtemp(prefix="replay-chain-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "ledger.sqlite3"
    dsn = f"sqlite://{path}"
    if path.exists():
        conn = sqlite3.connect(path)
        try:
            settled = conn.execute("SELECT count(*) FROM ledger_settlements WHERE kind = 'settle'").fetchone()[0]
        finally:
            conn.close()
        if settled == claims:
            return dsn
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    rules = load_history_rules()

    async def build() -> None:
        await migrate_ledger(dsn)
        store = await open_store(dsn)
        try:
            await apply_history(store, generate_history(claims, seed=seed, rules=rules), rules, concurrency=256)
        finally:
            await store.close()

    started = time.perf_counter()
    asyncio.run(build())
    print(f"built a ledger of {claims:,} settlements in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return dsn


def chain_export(dsn: str, folder: Path) -> None:
    """Export a ledger as ``settlement export --format columnar`` does, stored record bytes included.

    An export newer than the ledger file is reused.
    """
    from adapters.cli import main as cli_main

    ledger = Path(dsn.removeprefix("sqlite://"))
    if is_columnar(folder) and (folder / "manifest.json").stat().st_mtime > ledger.stat().st_mtime:
        return
    started = time.perf_counter()
    assert cli_main(["export", "--ledger", dsn, "-o", str(folder), "--format", "columnar", "--lang", "en"]) == 0
    print(f"exported the ledger to {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def hash_rate(folder: Path) -> tuple[float, int, float]:
    """Return the rate (records/s) of ``column_links`` (SHA-256 of every record's stored bytes) alone, in this process.

    Also returns the record count and the mean stored bytes per record.
    """
    from adapters.replay.columnar import read_columns
    from settlement.replay.chain import column_links

    columns = read_columns(folder)
    started = time.perf_counter()
    links = column_links(columns, 0, len(columns))
    elapsed = time.perf_counter() - started
    assert len(links) == len(columns)
    body_bytes = float(np.diff(columns.arrays["body_offsets"]).mean())
    return len(columns) / elapsed, len(columns), body_bytes


def replay_rate(path: Path, workers: int, dask: str | None, runs: int = 1, *,
                chained: bool = False) -> list[tuple[float, float, int]]:
    """Replay the whole file or columnar folder ``runs`` times; return (records/s, seconds, records) of each run.

    Fails on any discrepancy or chain break, and for a ``chained`` export also when a
    record's link was not checked. ``dask`` "local" starts a local cluster first (not
    timed), as ``--dask local`` starts it, and every run uses it.
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
            assert outcome.replay is not None and not outcome.replay.discrepancies, "the records must replay cleanly"
            assert not outcome.breaks, f"the hash chain must be intact: {outcome.breaks}"
            if chained:
                assert outcome.chain_checked == outcome.records, "every record's link must be checked"
            measured.append((outcome.records / elapsed, elapsed, outcome.records))
    finally:
        if cluster is not None:
            cluster.close()
    return measured


def prepare_generated(args: argparse.Namespace, columns: Path) -> None:
    """Generate the JSON Lines file and convert it to a columnar folder, each only when missing or of another size."""
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


def report_replays(label: str, path: Path, replays: list[tuple[str, int, str | None]], repeat: int, *, chained: bool = False) -> None:
    """Time each replay of ``path`` and print its rate, per worker and against one process."""
    single = None
    for name, workers, dask in replays:
        where = {"single": "one process", "pool": f"{workers} local processes", "dask": f"Dask local cluster, {workers} workers"}[name]
        load = os.getloadavg()[0]
        # A Dask cluster's first run includes each new worker's one-time work, so it is
        # reported on its own and the repeats follow it on the same workers.
        measured = replay_rate(path, workers, dask, runs=repeat + (1 if dask else 0), chained=chained)
        if dask:
            rate, seconds, records = measured.pop(0)
            share = f", {rate / workers / single:.0%} of one process per core" if single else ""
            print(f"replay {label}, {where}, first run of the workers: {records:,} records in {seconds:.1f} s = "
                  f"{rate:,.0f} records/s ({rate / workers:,.0f} per worker{share})")
        rate, seconds, records = max(measured)
        share = f", {rate / workers / single:.0%} of one process per core" if single and name != "single" else ""
        runs = ", ".join(f"{item[0]:,.0f}" for item in measured)
        print(f"replay {label}, {where}, best of {len(measured)}: {records:,} records in {seconds:.1f} s = {rate:,.0f} records/s "
              f"({rate / workers:,.0f} per worker{share}); all runs {runs} records/s; "
              f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
        if name == "single":
            single = rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="settlements in the generated file")
    parser.add_argument("--file", type=Path, default=Path("/tmp/settlement-replay-bench.jsonl"), help="record file (generated if missing)")
    parser.add_argument("--columns", type=Path, help="columnar folder (converted from --file if missing); default FILE.columns")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel runs")
    parser.add_argument("--sample", type=int, default=200_000, help="settlements for the kernel ceiling")
    parser.add_argument("--formats", nargs="*", default=["columnar", "jsonl"], choices=("columnar", "jsonl"),
                        help="formats of the generated file to replay, in this order; none: only the chained ledger export")
    parser.add_argument("--skip", nargs="*", default=[], choices=("single", "pool", "dask", "kernel", "chain"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each replay; the best is compared, because other jobs on the machine only slow runs down")
    parser.add_argument("--chain-claims", type=int, default=20_000, help="settlements in the ledger whose export is replayed with the chain check")
    parser.add_argument("--chain-ledger", type=Path,
                        help="SQLite ledger file for the chain runs, built if missing and reused; its export goes to the same name "
                             "with .columns (default: a temporary folder)")
    args = parser.parse_args()
    columns = args.columns or args.file.with_suffix(".columns")

    if args.formats:
        prepare_generated(args, columns)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    if args.formats and "kernel" not in args.skip:
        for threads in (1, args.workers):
            rate, claims = kernel_ceiling(args.file, args.sample, threads)
            print(f"kernel settle_arrays, {threads} thread(s), {claims:,} claims: {rate:,.0f} claims/s")
    replays = [("single", 1, None), ("pool", args.workers, None), ("dask", args.workers, "local")]
    replays = [run for run in replays if run[0] not in args.skip]
    for fmt in args.formats:
        report_replays(fmt, columns if fmt == "columnar" else args.file, replays, args.repeat)
    if "chain" not in args.skip:
        dsn = chain_ledger(args.chain_ledger, args.chain_claims, args.seed)
        folder = args.chain_ledger.with_suffix(".columns") if args.chain_ledger else Path(dsn.removeprefix("sqlite://")).with_suffix(".columns")
        chain_export(dsn, folder)
        folder_size = sum(item.stat().st_size for item in folder.iterdir())
        print(f"chained ledger export: {folder} ({folder_size / 1e9:.2f} GB); load average {os.getloadavg()[0]:.2f}")
        rate, records, body_bytes = hash_rate(folder)
        print(f"chain check alone, SHA-256 of stored record bytes ({body_bytes:,.0f} bytes a record), one process: "
              f"{records:,} records at {rate:,.0f} records/s")
        report_replays("columnar with chain check", folder, replays, args.repeat, chained=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
