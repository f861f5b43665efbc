"""Replay record files (JSON Lines): writing, reading, and cutting into chunks of whole persons.

A file starts with a header line ``{"format": "settlement-replay", "version": 1,
"grouped": "psn_no"}``; each further line is one ``ReplayRecord``. ``settlement export``
writes each person's records together, in ledger order, and marks this with ``grouped``, so
a file can be cut at person boundaries and each piece replayed on its own. A file
without that header (or not grouped) is read whole and partitioned in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from settlement.replay.record import ReplayRecord

__all__ = ["FORMAT", "FileHeader", "RecordWriter", "file_chunks", "read_chunk", "read_header", "read_records"]

FORMAT = "settlement-replay"
VERSION = 1

_DECODER = msgspec.json.Decoder(ReplayRecord)
_ENCODER = msgspec.json.Encoder()

# Bytes read at a time when looking back for the start of a line.
_LOOKBACK = 1 << 16


class FileHeader(msgspec.Struct, frozen=True, kw_only=True):
    """First line of a replay record file.

    ``grouped`` is "psn_no" when each person's records are adjacent. ``chain`` describes how
    the records relate to the ledger's hash chain: ``whole`` (all of it, so every link is
    checked), ``window`` (a date range, which has every record of each person in it but
    not consecutive links) or ``gaps`` (a selection by institution or region). For a
    window or gaps only each record's own hash can be checked.
    """

    format: str
    version: int
    grouped: str = ""
    count: int = 0
    chain: str = ""


class _PersonOnly(msgspec.Struct):
    psn_no: str


_PERSON_DECODER = msgspec.json.Decoder(_PersonOnly)


# The header is padded with spaces to this width so that close() can write the final
# record count over it in place.
_HEADER_WIDTH = 160


class RecordWriter:
    """Write a replay record file: the header, then records in the order given.

    The records go to ``PATH.partial`` first, which becomes ``PATH`` when the writer is
    closed. Leaving the ``with`` block on an exception removes it, so a failed export never
    leaves a file that looks whole.
    """

    def __init__(self, path: str | Path, *, grouped: bool, chain: str = "whole") -> None:
        self.path = Path(path)
        if self.path.exists() and not _is_record_file(self.path):
            # Only an earlier export is replaced: a mistyped -o must not overwrite a ledger.
            raise FileExistsError(f"{self.path} 已存在且不是导出的记录文件，请另选输出路径 "
                                  f"({self.path} exists and is not a replay record file; give another output path)")
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed by close() or the context manager
        self._grouped = "psn_no" if grouped else ""
        self._chain = chain
        self.count = 0
        self._write_header()

    def _write_header(self) -> None:
        header = _ENCODER.encode(FileHeader(format=FORMAT, version=VERSION, grouped=self._grouped, count=self.count,
                                              chain=self._chain))
        self._file.write(header.ljust(_HEADER_WIDTH) + b"\n")

    def write(self, records: Iterable[ReplayRecord]) -> None:
        buffer = bytearray()
        for record in records:
            _ENCODER.encode_into(record, buffer, -1)
            buffer.extend(b"\n")
            self.count += 1
        self._file.write(buffer)

    def close(self) -> None:
        if not self._file.closed:
            self._file.seek(0)
            self._write_header()
            self._file.close()
            self._partial.replace(self.path)

    def discard(self) -> None:
        """Close and remove the unfinished file."""
        self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def _is_record_file(path: Path) -> bool:
    """Return whether ``path`` is a file that starts with a replay record file's header."""
    if not path.is_file():
        return False
    with open(path, "rb") as file:
        first = file.readline(_HEADER_WIDTH + 1)
    try:
        return msgspec.json.decode(first, type=FileHeader).format == FORMAT
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False


def read_header(path: str | Path) -> tuple[FileHeader | None, int]:
    """Return the file's header (None when the first line is a record) and the offset of the first record."""
    with open(path, "rb") as file:
        first = file.readline()
    if not first.strip():
        return None, 0
    try:
        header = msgspec.json.decode(first, type=FileHeader)
    except msgspec.ValidationError:
        return None, 0
    if header.format != FORMAT:
        return None, 0
    return header, len(first)


def read_chunk(path: str | Path, start: int, end: int) -> list[ReplayRecord]:
    """Decode the records between two line starts of a file."""
    with open(path, "rb") as file:
        file.seek(start)
        data = file.read(end - start)
    return _DECODER.decode_lines(data)


def read_records(path: str | Path) -> list[ReplayRecord]:
    """Decode every record of a file."""
    _, offset = read_header(path)
    return read_chunk(path, offset, os.path.getsize(path))


def _line_at(file, offset: int) -> bytes:
    file.seek(offset)
    return file.readline()


def _previous_line_start(file, offset: int, floor: int) -> int:
    """Return the start of the line that ends just before ``offset`` (a line start)."""
    position = offset - 1  # the newline that ends the previous line
    while position > floor:
        window_start = max(floor, position - _LOOKBACK)
        file.seek(window_start)
        window = file.read(position - window_start)
        newline = window.rfind(b"\n")
        if newline >= 0:
            return window_start + newline + 1
        position = window_start
    return floor


def _person(line: bytes) -> str:
    return _PERSON_DECODER.decode(line).psn_no


def _align(file, offset: int, floor: int, size: int) -> int:
    """Move ``offset`` to a line start where the person changes (or to the end of the file)."""
    file.seek(offset)
    if offset > floor:
        file.readline()  # finish the line the offset fell into
    position = file.tell()
    if position >= size:
        return size
    previous = _person(_line_at(file, _previous_line_start(file, position, floor)))
    while position < size:
        line = _line_at(file, position)
        if _person(line) != previous:
            return position
        position += len(line)
    return size


def file_chunks(path: str | Path, pieces: int) -> list[tuple[int, int]]:
    """Cut a grouped file into about ``pieces`` byte ranges, each holding whole persons.

    Raises ``ValueError`` for a file whose header does not say it is grouped by person.
    """
    header, floor = read_header(path)
    if header is None or header.grouped != "psn_no":
        raise ValueError(f"{path} is not grouped by person; read it whole")
    size = os.path.getsize(path)
    cuts = [floor]
    with open(path, "rb") as file:
        for piece in range(1, pieces):
            target = floor + (size - floor) * piece // pieces
            cut = _align(file, max(target, cuts[-1]), floor, size)
            if cut > cuts[-1] and cut < size:
                cuts.append(cut)
    cuts.append(size)
    return [(start, end) for start, end in zip(cuts, cuts[1:]) if end > start]


