"""Replay records as columns: flat int64 arrays that a file can hold and a worker can memory-map.

The columnar export has the same facts as the JSON Lines export, one array per field,
so that replay reads a partition without decoding a record at a time. Strings are
dictionary encoded: a field stores an id per record (-1 for None) into a ``StringTable``
of distinct values. ``setl_id`` and ``original_setl_id`` share one table, and so do
``psn_no`` and ``family_psn_no``. ``resolution`` and ``params`` store the msgspec JSON of
their struct in a table. Variable-length parts (fee lines, fund rows, postings, stored
record bytes) are flat arrays cut by an offsets array of ``count + 1`` entries.

Two columns are derived by the writer and not part of a ``ReplayRecord``:
``setl_date`` (the first ten characters of ``setl_time``) and ``original_row`` (the row
of the record whose ``setl_id`` a cancel's ``original_setl_id`` names, -1 if none).
``record(row)`` rebuilds the exact ``ReplayRecord`` of a row; replay uses it only for
rows whose figures differ.

The tables of ``INDEXED_TABLES`` also carry a sorted key index (``StringTable.keys`` and
``StringTable.key_ids``): the strings as fixed-width bytes in byte order, and each one's
id. A worker finds the ids of many strings with one ``np.searchsorted`` over the mapped
index, instead of first decoding the whole table into a dict. A table without an index
(a folder written before the index existed) is looked up through such a dict.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import msgspec
import numpy as np

from settlement import _core
from settlement.replay.record import OUTPUT_FIELDS, FundRow, Lines, PostingRow, ReplayRecord, Resolution, body_raw, stored_body
from settlement.types import ACCUMULATOR_KEYS, SchemeParams

__all__ = ["INDEXED_TABLES", "OFFSET_COLUMNS", "ColumnBuilder", "RecordColumns", "StringTable", "TABLE_OF_FIELD", "TABLES"]

# String fields of a record and the table each is encoded into.
TABLE_OF_FIELD = {
    "setl_id": "setl_id", "original_setl_id": "setl_id", "psn_no": "person", "family_psn_no": "person",
    "fixmedins_code": "fixmedins_code", "insuplc_admdvs": "insuplc_admdvs", "insutype": "insutype",
    "med_type": "med_type", "clr_type": "clr_type", "clr_optins": "clr_optins", "mdtrt_id": "mdtrt_id",
    "msgid": "msgid", "setl_time": "setl_time", "rule_version": "rule_version", "catalog_version": "catalog_version",
    "setl_date": "setl_date", "resolution": "resolution", "params": "params",
}
# Tables of every dictionary-encoded column, including the per-line and per-row ones.
TABLES = tuple(dict.fromkeys([*TABLE_OF_FIELD.values(), "line_sn", "line_code", "fund_layer", "posting_account"]))
# Tables written with a sorted key index: replay looks up the ledger's account names in
# ``posting_account``, which has an entry per person.
INDEXED_TABLES = ("posting_account",)

# Bits of the per-record ``bits`` column.
BIT_CANCEL = 1
BIT_ACCT_USED = 2
BIT_FAMILY_ACCOUNT = 4
BIT_CONTEXT_ONLY = 8
BIT_HAS_FUND_DETAILS = 16
BIT_HAS_POSTINGS = 32

N_ACCUMULATORS = len(ACCUMULATOR_KEYS)
# Kernel line columns that hold a record's four line values (class, price, quantity, ratio).
_VALUE_COLUMNS = [_core.L_CLASS, _core.L_PRICE, _core.L_QUANTITY, _core.L_SELFPAY_PROP]
# Width of the stored hash strings (lowercase hex SHA-256).
HASH_WIDTH = 64

_STRUCT_TYPES = {"resolution": Resolution, "params": SchemeParams}
_ENCODER = msgspec.json.Encoder()


class StringTable:
    """Distinct strings as one UTF-8 byte array and ``len + 1`` offsets, so a file can hold them as arrays.

    ``keys`` and ``key_ids``, when given, are the sorted key index that ``find`` searches.
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray, keys: np.ndarray | None = None,
                 key_ids: np.ndarray | None = None) -> None:
        self.data = data
        self.offsets = offsets
        self.keys = keys
        self.key_ids = key_ids
        self._cache: dict[int, str] = {}
        self._ids: dict[str, int] | None = None

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> StringTable:
        encoded = [value.encode("utf-8") for value in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def with_index(self) -> StringTable:
        """Return the table with a sorted key index, or unchanged when a string ends in a NUL byte.

        Fixed-width bytes drop trailing NULs, so such a string would compare equal to the
        same string without them.
        """
        strings = [self.data[first:last].tobytes() for first, last in itertools.pairwise(self.offsets.tolist())]
        if any(value.endswith(b"\x00") for value in strings):
            return self
        width = max(1, max(map(len, strings), default=1))
        keys = np.array(strings, dtype=f"S{width}")
        order = np.argsort(keys, kind="stable")
        return StringTable(self.data, self.offsets, keys[order], order.astype(np.int64))

    def find(self, values: Sequence[str]) -> np.ndarray:
        """Return the id of each string (-1 for one not in the table), by the sorted key index when there is one."""
        if self.keys is None or self.key_ids is None:
            ids = self._dict()
            return np.array([ids.get(value, -1) for value in values], dtype=np.int64)
        if not len(self.keys):
            return np.full(len(values), -1, dtype=np.int64)
        encoded = [value.encode("utf-8") for value in values]
        width = self.keys.dtype.itemsize
        # A longer string would be cut to the width, and one ending in NUL would lose it,
        # so either could wrongly match. Neither is in the table, which has no such key.
        absent = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)) > width
        if b"\x00" in b"".join(encoded):
            absent |= np.fromiter((value.endswith(b"\x00") for value in encoded), dtype=bool, count=len(encoded))
        probes = np.array(encoded, dtype=f"S{width}")
        places = np.minimum(np.searchsorted(self.keys, probes), len(self.keys) - 1)
        found = (self.keys[places] == probes) & ~absent
        return np.where(found, self.key_ids[places], -1).astype(np.int64, copy=False)

    def _dict(self) -> dict[str, int]:
        # Only for a table without an index; built once per table object.
        if self._ids is None:
            strings = self.all()
            self._ids = dict(zip(strings, range(len(strings)), strict=True))
        return self._ids

    def get(self, index: int) -> str | None:
        """Return the string of an id; None for -1."""
        if index < 0:
            return None
        found = self._cache.get(index)
        if found is None:
            first, last = int(self.offsets[index]), int(self.offsets[index + 1])
            found = self._cache[index] = self.data[first:last].tobytes().decode("utf-8")
        return found

    def all(self) -> list[str]:
        """Return every string of the table, in id order."""
        return self.strings(0, len(self))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Return the strings of many ids without keeping them, for ids that are each needed once."""
        data, offsets = self.data, self.offsets
        return [data[offsets[index]:offsets[index + 1]].tobytes().decode("utf-8") for index in ids]

    def strings(self, first: int, last: int) -> list[str]:
        """Return the strings of ids ``first`` to ``last`` (exclusive), decoding their bytes at once."""
        bounds = self.offsets[first:last + 1]
        if not len(bounds):
            return []
        base = int(bounds[0])
        raw = self.data[base:int(bounds[-1])].tobytes()
        cuts = (bounds - base).tolist()
        if raw.isascii():
            # Byte offsets are character offsets, so one decode serves every string.
            text = raw.decode("ascii")
            return [text[start:end] for start, end in itertools.pairwise(cuts)]
        return [raw[start:end].decode("utf-8") for start, end in itertools.pairwise(cuts)]


class RecordColumns:
    """The columns of a record file: ``arrays`` by column name and ``tables`` by table name."""

    def __init__(self, arrays: Mapping[str, np.ndarray], tables: Mapping[str, StringTable]) -> None:
        self.arrays = dict(arrays)
        self.tables = dict(tables)
        self._structs: dict[tuple[str, int], object] = {}
        # Values derived from whole tables (catalogue matrices), kept for the next range.
        self.cache: dict[object, object] = {}

    def __len__(self) -> int:
        return len(self.arrays["seq"])

    def string(self, field: str, row: int) -> str | None:
        """Return a record's string field (None when it has none)."""
        return self.tables[TABLE_OF_FIELD[field]].get(int(self.arrays[field][row]))

    def struct(self, field: str, row: int) -> object:
        """Return a record's ``resolution`` or ``params`` struct (None when it has none)."""
        index = int(self.arrays[field][row])
        return None if index < 0 else self.struct_of_id(field, index)

    def struct_of_id(self, field: str, index: int) -> object:
        """Return the struct of a table id of ``resolution`` or ``params``."""
        key = (field, index)
        found = self._structs.get(key)
        if found is None:
            raw = self.tables[field].get(index)
            assert raw is not None
            found = self._structs[key] = msgspec.json.decode(raw, type=_STRUCT_TYPES[field])
        return found

    def record(self, row: int) -> ReplayRecord:
        """Rebuild the ``ReplayRecord`` of one row exactly as it was written."""
        a = self.arrays
        bits = int(a["bits"][row])

        first, last = int(a["line_offsets"][row]), int(a["line_offsets"][row + 1])
        sns, codes = self.tables["line_sn"], self.tables["line_code"]
        kernel_rows = a["lines"][first:last]
        amounts = kernel_rows[:, _core.L_AMOUNT].tolist()
        lines = Lines(
            sns=tuple(sns.get(index) for index in a["line_sn"][first:last].tolist()),  # type: ignore[misc]
            codes=tuple(codes.get(index) for index in a["line_code"][first:last].tolist()),  # type: ignore[misc]
            values=tuple(kernel_rows[:, _VALUE_COLUMNS].reshape(-1).tolist()),
            caps=tuple(kernel_rows[:, _core.L_PRICE_CAP].tolist()),
            amounts=tuple((index, amount) for index, amount in enumerate(amounts) if amount != _core.AMOUNT_NOT_GIVEN),
        )

        fund_details = None
        if bits & BIT_HAS_FUND_DETAILS:
            first, last = int(a["fund_offsets"][row]), int(a["fund_offsets"][row + 1])
            layers = self.tables["fund_layer"]
            fund_details = tuple(
                FundRow(layers.get(layer), base, None if none else limit, paid)  # type: ignore[arg-type]
                for layer, base, limit, none, paid in zip(
                    a["fund_layer"][first:last].tolist(), a["fund_base"][first:last].tolist(),
                    a["fund_limit"][first:last].tolist(), a["fund_limit_none"][first:last].tolist(),
                    a["fund_paid"][first:last].tolist(), strict=True)
            )

        postings = None
        if bits & BIT_HAS_POSTINGS:
            first, last = int(a["posting_offsets"][row]), int(a["posting_offsets"][row + 1])
            accounts = self.tables["posting_account"]
            postings = tuple(
                PostingRow(accounts.get(account), debit, credit)  # type: ignore[arg-type]
                for account, debit, credit in zip(a["posting_account"][first:last].tolist(), a["posting_debit"][first:last].tolist(),
                                                  a["posting_credit"][first:last].tolist(), strict=True)
            )

        body_first, body_last = int(a["body_offsets"][row]), int(a["body_offsets"][row + 1])
        strings = {field: self.string(field, row) for field in TABLE_OF_FIELD if field not in ("setl_date", "resolution", "params")}
        return ReplayRecord(
            seq=int(a["seq"][row]),
            kind="cancel" if bits & BIT_CANCEL else "settle",
            year=int(a["year"][row]),
            resolution=self.struct("resolution", row),  # type: ignore[arg-type]
            params=self.struct("params", row),  # type: ignore[arg-type]
            acct_used=bool(bits & BIT_ACCT_USED),
            has_family_account=bool(bits & BIT_FAMILY_ACCOUNT),
            lines=lines,
            outputs=tuple(a["outputs"][row].tolist()),
            output_mask=int(a["output_mask"][row]),
            fund_details=fund_details,
            before=tuple(a["before"][row].tolist()),
            after=tuple(a["after"][row].tolist()),
            after_mask=int(a["after_mask"][row]),
            postings=postings,
            context_only=bool(bits & BIT_CONTEXT_ONLY),
            chain_seq=int(a["chain_seq"][row]),
            prev_hash=a["prev_hash"][row].decode("ascii"),
            record_hash=a["record_hash"][row].decode("ascii"),
            ledger_body=body_raw(a["body"][body_first:body_last].tobytes()),
            **strings,  # type: ignore[arg-type]
        )


class ColumnBuilder:
    """Collect records into columns, a piece at a time, so a large export never keeps every record as objects."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = {name: {} for name in TABLES}
        self._pieces: dict[str, list[np.ndarray]] = {}
        self.count = 0
        self._sizes = {"line": 0, "fund": 0, "posting": 0, "body": 0}
        # What finish needs after drain has handed the pieces on: the ids behind original_row.
        self._original_ids: dict[str, list[np.ndarray]] = {"setl_id": [], "original_setl_id": []}
        self._drained = False

    def _id(self, table: str, value: str | None) -> int:
        if value is None:
            return -1
        ids = self._ids[table]
        found = ids.get(value)
        if found is None:
            found = ids[value] = len(ids)
        return found

    def _struct_id(self, table: str, value: object) -> int:
        return -1 if value is None else self._id(table, _ENCODER.encode(value).decode("utf-8"))

    def _put(self, name: str, values: np.ndarray) -> None:
        self._pieces.setdefault(name, []).append(values)

    def add(self, records: list[ReplayRecord]) -> None:
        """Append records (in the order given) to the columns."""
        n = len(records)
        if not n:
            return
        ids = self._id
        for field, table in TABLE_OF_FIELD.items():
            if field == "setl_date":
                values = [ids(table, record.setl_time[:10]) for record in records]
            elif field in _STRUCT_TYPES:
                values = [self._struct_id(table, getattr(record, field)) for record in records]
            else:
                values = [ids(table, getattr(record, field)) for record in records]
            self._put(field, np.array(values, dtype=np.int64))

        self._put("seq", np.array([record.seq for record in records], dtype=np.int64))
        self._put("year", np.array([record.year for record in records], dtype=np.int64))
        self._put("bits", np.array([_bits(record) for record in records], dtype=np.int64))
        self._put("output_mask", np.array([record.output_mask for record in records], dtype=np.int64))
        self._put("after_mask", np.array([record.after_mask for record in records], dtype=np.int64))
        self._put("chain_seq", np.array([record.chain_seq for record in records], dtype=np.int64))
        self._put("outputs", np.array([record.outputs for record in records], dtype=np.int64).reshape(n, -1))
        self._put("before", np.array([record.before for record in records], dtype=np.int64).reshape(n, N_ACCUMULATORS))
        self._put("after", np.array([record.after for record in records], dtype=np.int64).reshape(n, N_ACCUMULATORS))
        for field in ("prev_hash", "record_hash"):
            values = [getattr(record, field) for record in records]
            if any(len(value) > HASH_WIDTH or not value.isascii() for value in values):
                raise ValueError(f"{field} must be at most {HASH_WIDTH} ASCII characters")
            self._put(field, np.array(values, dtype=f"S{HASH_WIDTH}"))

        self._add_lines(records)
        self._add_rows(records)
        bodies = [stored_body(record.ledger_body) for record in records]
        self._put("body", np.frombuffer(b"".join(bodies), dtype=np.uint8).copy())
        self._put("body_offsets", self._offsets("body", [len(body) for body in bodies]))
        self.count += n

    def _offsets(self, kind: str, counts: list[int]) -> np.ndarray:
        """Return the end offsets of a piece, continuing from the pieces before it."""
        ends = np.cumsum(np.array(counts, dtype=np.int64)) + self._sizes[kind]
        if len(ends):
            self._sizes[kind] = int(ends[-1])
        return ends

    def _add_lines(self, records: list[ReplayRecord]) -> None:
        chain = itertools.chain.from_iterable
        counts = [len(record.lines.codes) for record in records]
        total = sum(counts)
        self._put("line_sn", np.array([self._id("line_sn", sn) for sn in chain(r.lines.sns for r in records)], dtype=np.int64))
        self._put("line_code", np.array([self._id("line_code", code) for code in chain(r.lines.codes for r in records)],
                                        dtype=np.int64))
        rows = np.empty((total, _core.L_WIDTH), dtype=np.int64)
        rows[:, _VALUE_COLUMNS] = np.fromiter(chain(r.lines.values for r in records), dtype=np.int64, count=4 * total).reshape(total, 4)
        rows[:, _core.L_PRICE_CAP] = np.fromiter(chain(r.lines.caps for r in records), dtype=np.int64, count=total)
        rows[:, _core.L_AMOUNT] = _core.AMOUNT_NOT_GIVEN
        start = 0
        for record, count in zip(records, counts, strict=True):
            for index, amount in record.lines.amounts:
                rows[start + index, _core.L_AMOUNT] = amount
            start += count
        self._put("lines", rows)
        self._put("line_offsets", self._offsets("line", counts))

    def _add_rows(self, records: list[ReplayRecord]) -> None:
        funds = [record.fund_details or () for record in records]
        flat_funds = list(itertools.chain.from_iterable(funds))
        self._put("fund_layer", np.array([self._id("fund_layer", row.layer) for row in flat_funds], dtype=np.int64))
        self._put("fund_base", np.array([row.inscp_scp_amt for row in flat_funds], dtype=np.int64))
        self._put("fund_limit", np.array([row.crt_payb_lmt_amt or 0 for row in flat_funds], dtype=np.int64))
        self._put("fund_limit_none", np.array([row.crt_payb_lmt_amt is None for row in flat_funds], dtype=np.bool_))
        self._put("fund_paid", np.array([row.fund_payamt for row in flat_funds], dtype=np.int64))
        self._put("fund_offsets", self._offsets("fund", [len(rows) for rows in funds]))

        postings = [record.postings or () for record in records]
        flat_postings = list(itertools.chain.from_iterable(postings))
        self._put("posting_account", np.array([self._id("posting_account", row.account) for row in flat_postings], dtype=np.int64))
        self._put("posting_debit", np.array([row.debit for row in flat_postings], dtype=np.int64))
        self._put("posting_credit", np.array([row.credit for row in flat_postings], dtype=np.int64))
        self._put("posting_offsets", self._offsets("posting", [len(rows) for rows in postings]))

    def drain(self) -> dict[str, list[np.ndarray]]:
        """Hand over the pieces built so far, so a writer can put them on disk; then finish with ``finish_drained``."""
        self._drained = True
        pieces, self._pieces = self._pieces, {}
        for name, ids in self._original_ids.items():
            ids.extend(pieces.get(name, ()))
        return pieces

    def finish_drained(self) -> tuple[np.ndarray, dict[str, StringTable]]:
        """Return ``original_row`` and the string tables of every record added, after ``drain``."""
        if self._pieces:
            raise RuntimeError("drain the pieces added since the last drain first")
        ids = {name: np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64) for name, pieces in self._original_ids.items()}
        return self._original_rows(ids["setl_id"], ids["original_setl_id"]), self._tables()

    def _original_rows(self, setl_ids: np.ndarray, originals: np.ndarray) -> np.ndarray:
        # A setl_id that occurs twice names its last record, as the JSON Lines replay's lookup does.
        row_of_id = np.full(len(self._ids["setl_id"]), -1, dtype=np.int64)
        row_of_id[setl_ids] = np.arange(len(setl_ids), dtype=np.int64)
        return np.where(originals >= 0, row_of_id[np.maximum(originals, 0)], -1)

    def _tables(self) -> dict[str, StringTable]:
        tables = {name: StringTable.from_strings(ids) for name, ids in self._ids.items()}
        for name in INDEXED_TABLES:
            tables[name] = tables[name].with_index()
        return tables

    def finish(self) -> RecordColumns:
        """Return the columns of every record added, with ``original_row`` resolved."""
        if self._drained:
            raise RuntimeError("the pieces were drained; use finish_drained")
        arrays: dict[str, np.ndarray] = {}
        for name, pieces in self._pieces.items():
            arrays[name] = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        for kind in ("line", "fund", "posting", "body"):
            name = f"{kind}_offsets"
            arrays[name] = np.concatenate([np.zeros(1, dtype=np.int64), arrays.get(name, np.zeros(0, dtype=np.int64))])
        _ensure_shapes(arrays)
        arrays["original_row"] = self._original_rows(arrays["setl_id"], arrays["original_setl_id"])
        return RecordColumns(arrays, self._tables())


OFFSET_COLUMNS = ("line_offsets", "fund_offsets", "posting_offsets", "body_offsets")


def _ensure_shapes(arrays: dict[str, np.ndarray]) -> None:
    """Give every column its dtype and width when no record was added (an export may select none)."""
    if len(arrays.get("seq", ())):
        return
    per_record = [*TABLE_OF_FIELD, "seq", "year", "bits", "output_mask", "after_mask", "chain_seq"]
    flat = ["line_sn", "line_code", "fund_layer", "fund_base", "fund_limit", "fund_paid", "posting_account", "posting_debit",
            "posting_credit"]
    for name in per_record + flat:
        arrays[name] = np.zeros(0, dtype=np.int64)
    for name, width in (("outputs", len(OUTPUT_FIELDS)), ("before", N_ACCUMULATORS), ("after", N_ACCUMULATORS),
                        ("lines", _core.L_WIDTH)):
        arrays[name] = np.zeros((0, width), dtype=np.int64)
    for name in ("prev_hash", "record_hash"):
        arrays[name] = np.zeros(0, dtype=f"S{HASH_WIDTH}")
    arrays["body"] = np.zeros(0, dtype=np.uint8)
    arrays["fund_limit_none"] = np.zeros(0, dtype=np.bool_)


def _bits(record: ReplayRecord) -> int:
    bits = 0
    if record.kind == "cancel":
        bits |= BIT_CANCEL
    if record.acct_used:
        bits |= BIT_ACCT_USED
    if record.has_family_account:
        bits |= BIT_FAMILY_ACCOUNT
    if record.context_only:
        bits |= BIT_CONTEXT_ONLY
    if record.fund_details is not None:
        bits |= BIT_HAS_FUND_DETAILS
    if record.postings is not None:
        bits |= BIT_HAS_POSTINGS
    return bits
