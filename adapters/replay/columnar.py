"""Columnar replay record files: a folder of numpy ``.npy`` arrays that workers memory-map.

The folder has ``manifest.json`` (``{"format": "settlement-replay-columnar", "version": 1,
"grouped": "psn_no", "count": N, "chain": ...}``, with ``grouped`` and ``chain`` as in the
JSON Lines header), one ``NAME.npy`` per column of ``settlement.replay.columns`` and
``table.NAME.data.npy`` / ``table.NAME.offsets.npy`` per string table. A table listed
in the manifest's ``indexes`` also has its sorted key index, ``table.NAME.keys.npy`` and
``table.NAME.key_ids.npy`` (``StringTable.find``). ``.npy`` is numpy's own format, so
reading needs nothing beyond numpy and a reader opens each array with ``mmap_mode="r"``:
a worker touches only the pages of its rows. The manifest is written last, and the
folder is built under a temporary name beside its own and renamed when finished, so a
folder without a manifest is an unfinished export.

Folders written before the key index existed have no ``indexes`` and still replay: their
tables are looked up through a dict that each worker builds once. The format version
stays 1, because older readers ignore the extra manifest field and files.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import msgspec
import numpy as np

from settlement.replay.columns import OFFSET_COLUMNS, ColumnBuilder, RecordColumns, StringTable
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
    """Write a columnar record folder: records are added in pieces, put on disk as they come, and the folder finished on ``close``.

    An existing columnar folder or empty folder at ``path`` is replaced. Any other
    existing path raises ``FileExistsError`` at once, so an export never deletes
    unrelated files. Records must be added in the order the file should have (each
    person's records together, by ``seq``, for a grouped file).

    Each piece's columns are appended to files in a staging folder beside ``path``, so
    memory keeps only one piece and the string tables, whatever the number of records.
    ``close`` turns the staged columns into ``.npy`` files and moves the folder into
    place. Leaving the ``with`` block on an exception, or ``discard``, removes the staging
    folder and writes nothing.
    """

    def __init__(self, path: str | Path, *, grouped: bool, chain: str = "whole") -> None:
        self.path = Path(path)
        if self.path.exists() and not (self.path.is_dir() and (is_columnar(self.path) or not any(self.path.iterdir()))):
            raise FileExistsError(f"{self.path} 已存在且不是按列导出的目录，请指定新的或空的目录 "
                                  f"({self.path} exists and is not a columnar record folder; give a new or empty folder)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent))
        self._grouped = "psn_no" if grouped else ""
        self._chain = chain
        self._builder = ColumnBuilder()
        self._staged: dict[str, _StagedColumn] = {}
        self._closed = False

    @property
    def count(self) -> int:
        return self._builder.count

    def write(self, records: Iterable[ReplayRecord]) -> None:
        # In pieces, so that the per-field lists built on the way stay small.
        iterator = iter(records)
        while piece := list(itertools.islice(iterator, _PIECE)):
            self._builder.add(piece)
            for name, arrays in self._builder.drain().items():
                column = self._staged.get(name)
                if column is None:
                    column = self._staged[name] = _StagedColumn(self._staging / f"{name}.staged", arrays[0])
                column.append(arrays)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.count:
            # No record: the in-memory path gives every column its dtype and width.
            self._staging_close()
            columns = ColumnBuilder().finish()
            arrays, tables = columns.arrays, columns.tables
        else:
            original_row, tables = self._builder.finish_drained()
            arrays = {"original_row": original_row}
            for name, column in self._staged.items():
                column.save(self._staging / f"{name}.npy", leading_zero=name in OFFSET_COLUMNS)
        for name, values in arrays.items():
            np.save(self._staging / f"{name}.npy", np.ascontiguousarray(values), allow_pickle=False)
        indexes = []
        for name, table in tables.items():
            np.save(self._staging / f"table.{name}.data.npy", table.data, allow_pickle=False)
            np.save(self._staging / f"table.{name}.offsets.npy", table.offsets, allow_pickle=False)
            if table.keys is not None and table.key_ids is not None:
                np.save(self._staging / f"table.{name}.keys.npy", table.keys, allow_pickle=False)
                np.save(self._staging / f"table.{name}.key_ids.npy", table.key_ids, allow_pickle=False)
                indexes.append(name)
        names = sorted(set(arrays) | set(self._staged))
        manifest = Manifest(format=COLUMNAR_FORMAT, version=VERSION, grouped=self._grouped, count=self.count,
                            chain=self._chain, columns=names, tables=sorted(tables), indexes=sorted(indexes))
        (self._staging / MANIFEST).write_bytes(msgspec.json.encode(manifest) + b"\n")
        if self.path.is_dir():
            shutil.rmtree(self.path)
        self._staging.rename(self.path)

    def _staging_close(self) -> None:
        for column in self._staged.values():
            column.remove()
        self._staged = {}

    def discard(self) -> None:
        """Remove everything staged; the folder at ``path`` is left as it was."""
        self._closed = True
        self._staging_close()
        shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> ColumnarWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class _StagedColumn:
    """One column's pieces appended to a file as raw bytes, later written out as one ``.npy`` array."""

    def __init__(self, path: Path, first: np.ndarray) -> None:
        self.path = path
        self.dtype = first.dtype
        self.width = first.shape[1:]
        self.rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed by save() or remove()

    def append(self, arrays: list[np.ndarray]) -> None:
        for values in arrays:
            if values.dtype != self.dtype or values.shape[1:] != self.width:
                raise ValueError(f"{self.path.stem}: a piece of {values.dtype}{values.shape[1:]} after {self.dtype}{self.width}")
            self._file.write(np.ascontiguousarray(values).data)
            self.rows += len(values)

    def save(self, target: Path, *, leading_zero: bool) -> None:
        """Write the column as ``target`` (``.npy``), with a first row of zero for an offsets column; then drop the staged bytes."""
        self._file.close()
        rows = self.rows + (1 if leading_zero else 0)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (rows, *self.width)}
        with open(target, "wb") as out, open(self.path, "rb") as staged:
            np.lib.format.write_array_header_1_0(out, header)
            if leading_zero:
                out.write(np.zeros(1, dtype=self.dtype).tobytes())
            shutil.copyfileobj(staged, out, 16 << 20)
        self.path.unlink()

    def remove(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


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
