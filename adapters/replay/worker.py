"""The work one partition needs, runnable in this process, a process pool or on a Dask worker.

A ``WorkUnit`` names its records as a byte range of a grouped record file or a row range
of a columnar record folder (the worker reads it, so only the range travels), or carries
them as JSON Lines bytes. The worker loads the rules once per process, maps a columnar
folder once per process, and returns plain msgspec values and numpy arrays.
"""

from __future__ import annotations

import functools
import gc
from pathlib import Path

import msgspec

from adapters.replay.columnar import MANIFEST, read_columns
from adapters.replay.jsonl import read_chunk
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules
from settlement.replay.chain import ChainLink, LinkColumns, chain_links, column_links
from settlement.replay.columns import RecordColumns
from settlement.replay.compare import PartitionResult, replay_partition
from settlement.replay.compare_columns import replay_columns
from settlement.replay.record import ReplayRecord
from settlement.replay.resolve import Resolver
from settlement.replay.whatif import WhatIfResult, what_if_partition

__all__ = ["UnitResult", "WorkUnit", "encode_records", "run_unit"]

_DECODER = msgspec.json.Decoder(ReplayRecord)
_ENCODER = msgspec.json.Encoder()


class WorkUnit(msgspec.Struct, frozen=True, kw_only=True):
    """Records of whole persons, named by where the worker reads them.

    ``path`` with ``start``/``end`` byte offsets (a grouped JSON Lines file), ``columns``
    with ``start``/``end`` rows (a columnar folder), or ``data`` (JSON Lines bytes).
    """

    path: str | None = None
    columns: str | None = None
    start: int = 0
    end: int = 0
    data: bytes | None = None
    records: int = 0


class UnitResult(msgspec.Struct, kw_only=True):
    """Output of one unit: the replay comparison or the what-if result, and its hash links (as structs or as columns)."""

    records: int
    replay: PartitionResult | None = None
    what_if: WhatIfResult | None = None
    links: list[ChainLink] = []
    link_columns: LinkColumns | None = None


def encode_records(records: list[ReplayRecord]) -> bytes:
    """Encode records as JSON Lines for a ``WorkUnit``."""
    buffer = bytearray()
    for record in records:
        _ENCODER.encode_into(record, buffer, -1)
        buffer.extend(b"\n")
    return bytes(buffer)


@functools.lru_cache(maxsize=8)
def _resolver(rules_dir: str | None) -> Resolver:
    return Resolver(load_rules(Path(rules_dir) if rules_dir else bundled_rules_dir()))


def _columns(path: str) -> RecordColumns:
    return _open_columns(path, (Path(path) / MANIFEST).stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _open_columns(path: str, manifest_time: int) -> RecordColumns:
    # ``manifest_time`` is only part of the cache key: a folder written again at the same
    # path is opened afresh instead of reusing the old mapping.
    return read_columns(path)


def _records(unit: WorkUnit) -> list[ReplayRecord]:
    if unit.data is not None:
        return _DECODER.decode_lines(unit.data)
    if unit.columns is not None:
        columns = _columns(unit.columns)
        return [columns.record(row) for row in range(unit.start, unit.end)]
    assert unit.path is not None
    return read_chunk(unit.path, unit.start, unit.end)


def run_unit(unit: WorkUnit, *, rules_dir: str | None, what_if: bool = False, threads: int = 1,
             reason: str = "", check_order: bool = True) -> UnitResult:
    """Replay (or what-if replay) one unit's records and hash their content for the chain check."""
    # Decoding a unit allocates millions of small objects, none of them in cycles. The
    # cycle collector would only rescan them again and again, so it waits until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(unit, rules_dir=rules_dir, what_if=what_if, threads=threads, reason=reason, check_order=check_order)
    finally:
        if collecting:
            gc.enable()


def _run(unit: WorkUnit, *, rules_dir: str | None, what_if: bool, threads: int, reason: str, check_order: bool) -> UnitResult:
    resolver = _resolver(rules_dir)
    if unit.columns is not None and not what_if:
        columns = _columns(unit.columns)
        return UnitResult(
            records=unit.end - unit.start,
            replay=replay_columns(columns, unit.start, unit.end, resolver, threads=threads, check_order=check_order),
            link_columns=column_links(columns, unit.start, unit.end),
        )
    records = _records(unit)
    if what_if:
        return UnitResult(records=len(records), what_if=what_if_partition(records, resolver, threads=threads, reason=reason))
    return UnitResult(
        records=len(records),
        replay=replay_partition(records, resolver, threads=threads, check_order=check_order),
        links=chain_links(record for record in records if not record.context_only),
    )
