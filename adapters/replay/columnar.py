"""Columnar replay record files: a folder of numpy ``.npy`` arrays that workers memory-map.

The folder has ``manifest.json`` (``{"format": "settlement-replay-columnar", "version": 1,
"grouped": "psn_no", "count": N, "chain": ...}``, with ``grouped`` and ``chain`` as in the
JSON Lines header), one ``NAME.npy`` per column of ``settlement.replay.columns`` and
``table.NAME.data.npy`` / ``table.NAME.offsets.npy`` per string table. A table listed
in the manifest's ``indexes`` also has its sorted key index, ``table.NAME.keys.npy`` and
``table.NAME.key_ids.npy`` (``StringTable.find``). ``.npy`` is numpy's own format, so
reading needs nothing beyond numpy and a reader opens each array with ``mmap_mode="r"``:
a worker touches only the pages of its rows. The manifest is written last, so a folder
without one is an unfinished export.

Folders written before the key index existed have no ``indexes`` and still replay: their
tables are looked up through a dict that each worker builds once. The format version
stays 1, because older readers ignore the extra manifest field and files.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import msgspec
import numpy as np

from settlement.replay.columns import ColumnBuilder, RecordColumns, StringTable
from settlement.replay.record import ReplayRecord

__all__ = ["COLUMNAR_FORMAT", "MANIFEST", "ColumnarWriter", "Manifest", "is_columnar", "person_ranges", "read_columns", "read_manifest"]

COLUMNAR_FORMAT = "settlement-replay-columnar"
VERSION = 1
MANIFEST = "manifest.json"
# Records turned into columns at a time.
_PIECE = 20_000


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The first file a reader opens: format, record count, grouping and chain layout (as ``FileHeader``)."""

    format: str
    version: int
    grouped: str = ""
    count: int = 0
    chain: str = ""
    columns: list[str] = []
    tables: list[str] = []
    indexes: list[str] = []


class ColumnarWriter:
    """Write a columnar record folder: records are added in pieces and the arrays written on ``close``.

    An existing columnar folder or empty folder at ``path`` is replaced. Any other
    existing path raises ``FileExistsError`` at once, so an export never deletes
    unrelated files. Records must be added in the order the file should have (each
    person's records together, by ``seq``, for a grouped file). Leaving the ``with``
    block on an exception writes nothing.
    """

    def __init__(self, path: str | Path, *, grouped: bool, chain: str = "whole") -> None:
        self.path = Path(path)
        if self.path.exists() and not (self.path.is_dir() and (is_columnar(self.path) or not any(self.path.iterdir()))):
            raise FileExistsError(f"{self.path} exists and is not a columnar record folder; give a new or empty folder")
        self._grouped = "psn_no" if grouped else ""
        self._chain = chain
        self._builder = ColumnBuilder()
        self._closed = False

    @property
    def count(self) -> int:
        return self._builder.count

    def write(self, records: Iterable[ReplayRecord]) -> None:
        # In pieces, so that the per-field lists built on the way stay small.
        iterator = iter(records)
        while piece := list(itertools.islice(iterator, _PIECE)):
            self._builder.add(piece)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        columns = self._builder.finish()
        if self.path.is_dir():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        for name, values in columns.arrays.items():
            np.save(self.path / f"{name}.npy", np.ascontiguousarray(values), allow_pickle=False)
        indexes = []
        for name, table in columns.tables.items():
            np.save(self.path / f"table.{name}.data.npy", table.data, allow_pickle=False)
            np.save(self.path / f"table.{name}.offsets.npy", table.offsets, allow_pickle=False)
            if table.keys is not None and table.key_ids is not None:
                np.save(self.path / f"table.{name}.keys.npy", table.keys, allow_pickle=False)
                np.save(self.path / f"table.{name}.key_ids.npy", table.key_ids, allow_pickle=False)
                indexes.append(name)
        manifest = Manifest(format=COLUMNAR_FORMAT, version=VERSION, grouped=self._grouped, count=self.count,
                            chain=self._chain, columns=sorted(columns.arrays), tables=sorted(columns.tables),
                            indexes=sorted(indexes))
        (self.path / MANIFEST).write_bytes(msgspec.json.encode(manifest) + b"\n")

    def __enter__(self) -> ColumnarWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()


def is_columnar(path: str | Path) -> bool:
    """Return True for a folder that contains a columnar record file."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: str | Path) -> Manifest:
    """Return a folder's manifest; raise ``ValueError`` when it is not a columnar record file of this version."""
    manifest = msgspec.json.decode((Path(path) / MANIFEST).read_bytes(), type=Manifest)
    if manifest.format != COLUMNAR_FORMAT or manifest.version != VERSION:
        raise ValueError(f"{path} is not a {COLUMNAR_FORMAT} folder of version {VERSION}")
    return manifest


def read_columns(path: str | Path) -> RecordColumns:
    """Open every column of a columnar folder memory-mapped (read only)."""
    folder = Path(path)
    manifest = read_manifest(folder)

    def load(name: str) -> np.ndarray:
        file = folder / f"{name}.npy"
        # np.load cannot map an empty array; such a column is read as it is. A plain ndarray
        # view of the map indexes several times faster than the np.memmap subclass.
        values = np.load(file, mmap_mode="r" if os.path.getsize(file) > 128 else None, allow_pickle=False)
        return values.view(np.ndarray)

    def table(name: str) -> StringTable:
        indexed = name in manifest.indexes
        return StringTable(load(f"table.{name}.data"), load(f"table.{name}.offsets"),
                           load(f"table.{name}.keys") if indexed else None, load(f"table.{name}.key_ids") if indexed else None)

    arrays = {name: load(name) for name in manifest.columns}
    tables = {name: table(name) for name in manifest.tables}
    return RecordColumns(arrays, tables)


def person_ranges(columns: RecordColumns, pieces: int, *, grouped: bool) -> list[tuple[int, int]]:
    """Cut the rows into about ``pieces`` ranges, each starting where the person changes.

    A file that is not grouped by person is one range, because a person's records may be anywhere in it.
    """
    count = len(columns)
    if not count:
        return []
    if not grouped or pieces <= 1:
        return [(0, count)]
    person = columns.arrays["psn_no"]
    cuts = [0]
    for piece in range(1, pieces):
        target = max(count * piece // pieces, cuts[-1] + 1)
        if target >= count:
            break
        # Move forward to the first row of the next person.
        same = np.nonzero(person[target:] != person[target - 1])[0]
        cut = target + int(same[0]) if len(same) else count
        if cuts[-1] < cut < count:
            cuts.append(cut)
    cuts.append(count)
    return list(zip(cuts, cuts[1:], strict=False))
