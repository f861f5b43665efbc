"""Run replay over work units: in this process, on a local process pool, or on a Dask cluster.

Persons are independent, so the records are cut into units of whole persons (byte
ranges of a grouped file, row ranges of a columnar folder, or in-memory partitions
encoded as JSON Lines), every unit is replayed where it lands, and the results are
merged. The hash chain needs all records
in ledger order, so units return each record's recomputed hash and the links are
checked here, once.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

import msgspec

from adapters.replay.columnar import person_ranges, read_columns, read_manifest
from adapters.replay.jsonl import file_chunks, read_header
from adapters.replay.progress import replay_progress
from adapters.replay.worker import UnitResult, WorkUnit, encode_records, run_unit
from settlement.replay.chain import ChainBreak, LinkColumns, check_link_columns
from settlement.replay.compare import PartitionResult
from settlement.replay.partition import partition_records
from settlement.replay.record import ReplayRecord
from settlement.replay.whatif import WhatIfResult

if TYPE_CHECKING:
    from dask.distributed import LocalCluster

__all__ = [
    "WORKER_MODULE",
    "ReplayOptions",
    "ReplayOutcome",
    "local_cluster",
    "run_replay",
    "units_from_columns",
    "units_from_file",
    "units_from_records",
]

# A file unit of about this many bytes keeps a worker's decoded records within a few
# hundred megabytes while leaving enough units to balance the workers.
_UNIT_BYTES = 32 << 20

# Rows of a columnar unit: about 60 MB of kernel line rows for 20-line claims, which
# bounds a worker's temporaries and still gives enough units to balance the workers.
_UNIT_ROWS = 1 << 16

# The module a Dask worker needs for ``run_unit``.
WORKER_MODULE = "adapters.replay.worker"

# Units per worker for in-memory records, so that a slow unit does not leave cores idle.
_UNITS_PER_WORKER = 4


class ReplayOptions(msgspec.Struct, kw_only=True):
    """How to run: rules, parallelism (local processes or a Dask scheduler) and mode."""

    rules_dir: str | None = None
    workers: int = 0
    dask: str | None = None
    what_if: bool = False
    reason: str = ""
    lang: str = "zh"
    progress: bool | None = None

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


class ReplayOutcome(msgspec.Struct, kw_only=True):
    """Merged results of a run; ``chain_layout`` is whole, window, gaps or none (no hashes checked)."""

    records: int
    replay: PartitionResult | None = None
    what_if: WhatIfResult | None = None
    breaks: list[ChainBreak] = []
    chain_checked: int = 0
    chain_layout: str = "none"
    seconds: float = 0.0
    runner: str = "local"


def balanced_pieces(units: int, workers: int) -> int:
    """Round a number of units up to a multiple of ``workers``, so that every worker gets as many.

    With 17 equal units on 2 workers, one worker runs 9 while the other idles for the last
    one: about 6% of the run lost. 18 slightly smaller units finish together.
    """
    workers = max(1, workers)
    return max(1, math.ceil(max(1, units) / workers)) * workers


def units_from_file(path: str, workers: int) -> tuple[list[WorkUnit], int | None, str]:
    """Return the units of a grouped record file, its record count (None if unknown) and chain layout."""
    header, _ = read_header(path)
    size = os.path.getsize(path)
    pieces = balanced_pieces(math.ceil(size / _UNIT_BYTES), workers)
    ranges = file_chunks(path, pieces)
    count = header.count if header is not None and header.count else None
    layout = header.chain if header is not None and header.chain else "whole"
    return [WorkUnit(path=path, start=start, end=end) for start, end in ranges], count, layout


def units_from_columns(path: str, workers: int) -> tuple[list[WorkUnit], int, str]:
    """Return the units of a columnar record folder (row ranges of whole persons), its record count and chain layout."""
    manifest = read_manifest(path)
    columns = read_columns(path)
    pieces = balanced_pieces(math.ceil(len(columns) / _UNIT_ROWS), workers)
    ranges = person_ranges(columns, pieces, grouped=manifest.grouped == "psn_no")
    units = [WorkUnit(columns=path, start=start, end=end, records=end - start) for start, end in ranges]
    return units, len(columns), manifest.chain or "whole"


def units_from_records(records: Sequence[ReplayRecord], workers: int) -> list[WorkUnit]:
    """Partition records by person and encode each partition as a unit."""
    pieces = max(1, min(len(records), workers * _UNITS_PER_WORKER))
    return [
        WorkUnit(data=encode_records(part), records=len(part))
        for part in partition_records(records, pieces)
        if part
    ]


def _run_local(units: Sequence[WorkUnit], options: ReplayOptions, work: Callable[..., UnitResult]) -> Iterator[UnitResult]:
    workers = options.worker_count()
    if workers <= 1 or len(units) <= 1:
        # One process: the kernel may still split each batch over the cores with threads.
        for unit in units:
            yield work(unit, threads=workers)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, unit) for unit in units]
        for future in as_completed(futures):
            yield future.result()


def local_cluster(workers: int) -> LocalCluster:
    """Start a Dask cluster of ``workers`` processes on 127.0.0.1, one thread each, with the replay code imported.

    The kernel's batch is the unit of parallelism, so each worker runs one task at a
    time. Dask sets ``MALLOC_TRIM_THRESHOLD_`` in its workers by default, which makes
    glibc map and fault fresh pages for every large numpy temporary. That made the
    columnar replay on 2 workers about 15% slower in a side-by-side run on the
    benchmark machine, so the variable is left unset.
    """
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, preload=[WORKER_MODULE])


def _run_dask(units: Sequence[WorkUnit], options: ReplayOptions, work: Callable[..., UnitResult]) -> Iterator[UnitResult]:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if options.dask == "local":
        cluster = local_cluster(options.worker_count())
        client = Client(cluster)
    else:
        client = Client(options.dask)
    try:
        # Units that carry their records are sent to the workers on their own first, not
        # inside the task graph, which Dask keeps small.
        carried = [client.scatter(unit) if unit.data else unit for unit in units]
        futures = client.map(work, carried, pure=False)
        for future in dask_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_replay(units: Sequence[WorkUnit], options: ReplayOptions, *, total: int | None = None,
               chain_layout: str = "whole") -> ReplayOutcome:
    """Replay every unit and merge the results; check the hash chain when the records carry one."""
    import functools

    work = functools.partial(
        run_unit, rules_dir=options.rules_dir, what_if=options.what_if, reason=options.reason,
        # A selection with gaps lacks some of each person's records, so their order cannot be checked.
        check_order=chain_layout != "gaps",
    )
    if total is None:
        total = sum(unit.records for unit in units) or None
    started = time.perf_counter()
    outcome = ReplayOutcome(records=0, runner="dask" if options.dask else "local")
    links: list[LinkColumns] = []
    runner = _run_dask if options.dask else _run_local
    with replay_progress(total, lang=options.lang, enabled=options.progress) as tracker:
        for result in runner(units, options, work):
            outcome.records += result.records
            _merge(outcome, result)
            if result.links:
                links.append(LinkColumns.from_links(result.links))
            if result.link_columns is not None and len(result.link_columns):
                links.append(result.link_columns)
            tracker.advance(result.records)

    if outcome.replay is not None:
        outcome.replay.discrepancies.sort(key=lambda row: (row.setl_date, row.setl_id, row.field))
    if outcome.what_if is not None:
        outcome.what_if.adjustments.sort(key=lambda row: (row.setl_date, row.setl_id))
        outcome.what_if.failures.sort()
    if links:
        merged = LinkColumns.concatenate(links)
        outcome.chain_checked = len(merged)
        outcome.chain_layout = chain_layout
        # Only the whole ledger is a run of consecutive links: a date window is not, because
        # records are linked in the order they were written, not by settlement time.
        whole = chain_layout == "whole"
        outcome.breaks = check_link_columns(merged, anchored=whole, contiguous=whole)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _merge(outcome: ReplayOutcome, result: UnitResult) -> None:
    if result.replay is not None:
        if outcome.replay is None:
            outcome.replay = PartitionResult()
        outcome.replay.merge(result.replay)
    if result.what_if is not None:
        if outcome.what_if is None:
            outcome.what_if = WhatIfResult()
        outcome.what_if.merge(result.what_if)
