"""The medical list catalogue (医保目录): class, first self-pay ratio and price cap of each item, by date.

One code may have several versions, each in force from ``begndate`` to ``enddate``
inclusive (``enddate`` None is open-ended), and versions of one code must not overlap. A
lookup is a dict access followed by a bisect over that code's few versions, so its cost
does not grow with the size of the catalogue.

Catalogue files are UTF-8 CSV (a byte-order mark is allowed) with this header, in any
column order::

    med_list_codg,name,chrgitm_lv,selfpay_prop,pric_uplmt_amt,begndate,enddate

``chrgitm_lv`` is the national class code (``01`` 甲类, ``02`` 乙类, ``03`` 丙类).
``selfpay_prop`` is the class-B first self-pay ratio, which must be 0 for class A and is
ignored for class C. ``pric_uplmt_amt`` is the per-unit price cap in yuan with up to 6
decimals, empty for none. Dates are ``YYYY-MM-DD``, and an empty ``enddate`` is open-ended.
"""

from __future__ import annotations

import bisect
import csv
import datetime
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.types import ChargeClass

__all__ = ["CATALOG_COLUMNS", "Catalog", "CatalogEntry", "read_catalog_csv"]

CATALOG_COLUMNS = ("med_list_codg", "name", "chrgitm_lv", "selfpay_prop", "pric_uplmt_amt", "begndate", "enddate")

_CLASS_CODES = {"01": ChargeClass.A, "02": ChargeClass.B, "03": ChargeClass.C}

# Maximum code length. National list codes are far shorter, so a longer code means a broken row.
_MAX_CODE_CHARS = 64


# gc=False: entries hold only scalars, so the cycle collector need not track the
# hundreds of thousands of them a national catalogue has.
class CatalogEntry(msgspec.Struct, frozen=True, gc=False):
    """One version of one catalogue item.

    ``selfpay_prop`` is in 1e-4 and ``price_cap_micro`` in 1e-6 yuan per unit (None: no cap).
    ``source`` names where the version was read (``file:line``), for messages.
    """

    med_list_codg: str
    name: str
    charge_class: ChargeClass
    selfpay_prop: int
    price_cap_micro: int | None
    begndate: datetime.date
    enddate: datetime.date | None
    source: str = ""

    def in_force(self, on_date: datetime.date) -> bool:
        """Tell whether ``on_date`` falls inside this version's dates."""
        return self.begndate <= on_date and (self.enddate is None or on_date <= self.enddate)


class Catalog:
    """Catalogue versions indexed by code, each code's versions sorted by ``begndate``."""

    __slots__ = ("_starts", "_versions")

    def __init__(self, entries: Iterable[CatalogEntry] = ()) -> None:
        """Index ``entries``. Raises ``RULE_FILE_INVALID`` when two versions of one code overlap."""
        grouped: dict[str, list[CatalogEntry]] = {}
        for entry in entries:
            grouped.setdefault(entry.med_list_codg, []).append(entry)

        self._versions: dict[str, tuple[CatalogEntry, ...]] = {}
        self._starts: dict[str, tuple[datetime.date, ...]] = {}
        for code, versions in grouped.items():
            # Most codes have a single version, which needs no sorting or overlap check.
            if len(versions) > 1:
                versions.sort(key=lambda entry: entry.begndate)
                _check_no_overlap(versions)
            self._versions[code] = tuple(versions)
            self._starts[code] = tuple(entry.begndate for entry in versions)

    def __len__(self) -> int:
        """Return the number of distinct codes."""
        return len(self._versions)

    def __contains__(self, code: object) -> bool:
        return code in self._versions

    def versions(self, code: str) -> tuple[CatalogEntry, ...]:
        """Return every version of ``code`` sorted by date (empty when the code is unknown)."""
        return self._versions.get(code, ())

    def lookup(self, code: str, on_date: datetime.date, *, field: str = "med_list_codg") -> CatalogEntry:
        """Return the version of ``code`` in force on ``on_date``.

        Raises ``UNKNOWN_CATALOG_CODE`` naming ``field``, the code and the date when the
        code is unknown or has no version in force that day.
        """
        versions = self._versions.get(code)
        if versions is not None:
            index = bisect.bisect_right(self._starts[code], on_date) - 1
            if index >= 0 and versions[index].in_force(on_date):
                return versions[index]
        raise SettlementError(ErrorCode.UNKNOWN_CATALOG_CODE, field=field, value=code, detail=on_date.isoformat())


def _check_no_overlap(versions: list[CatalogEntry]) -> None:
    for earlier, later in zip(versions, versions[1:]):
        if earlier.enddate is None or earlier.enddate >= later.begndate:
            raise SettlementError(
                ErrorCode.RULE_FILE_INVALID,
                field=f"{later.med_list_codg}.begndate",
                value=later.source,
                detail=f"与 {earlier.source} 的同一编码版本日期重叠",
                detail_en=f"dates overlap the version of the same code at {earlier.source}",
            )


def read_catalog_csv(path: Path, source: str | None = None) -> list[CatalogEntry]:
    """Read one catalogue CSV file. Raises ``RULE_FILE_INVALID`` naming the file, line and column.

    ``source`` is the file name used in messages and in each entry's ``source`` (default: ``path``).
    """
    source = str(path) if source is None else source
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(csv.reader(handle, strict=True), source)
    except UnicodeDecodeError as error:
        raise SettlementError(
            ErrorCode.RULE_FILE_INVALID, field=f"byte {error.start}", value=source, detail="不是 UTF-8 编码", detail_en="not UTF-8"
        ) from error
    except csv.Error as error:
        raise SettlementError(ErrorCode.RULE_FILE_INVALID, field="csv", value=source, detail=str(error)) from error


def _read_rows(reader: Iterable[list[str]], source: str) -> list[CatalogEntry]:
    rows = iter(reader)
    header = next(rows, None)
    if header is None or sorted(header) != sorted(CATALOG_COLUMNS):
        raise SettlementError(
            ErrorCode.RULE_FILE_INVALID,
            field="line 1",
            value=source,
            detail="表头必须是 " + ",".join(CATALOG_COLUMNS),
            detail_en="the header must be " + ",".join(CATALOG_COLUMNS),
        )
    index = {name: header.index(name) for name in CATALOG_COLUMNS}
    code_at, name_at, class_at = index["med_list_codg"], index["name"], index["chrgitm_lv"]
    prop_at, cap_at, begin_at, end_at = index["selfpay_prop"], index["pric_uplmt_amt"], index["begndate"], index["enddate"]

    # Ratios, caps and dates repeat across thousands of rows, so each distinct text is parsed once.
    parsed: dict[tuple[str, str], Any] = {}

    entries = []
    for line_number, row in enumerate(rows, start=2):
        if not row:
            continue
        where = f"line {line_number}"
        if len(row) != len(CATALOG_COLUMNS):
            raise _row_error(source, where, f"有 {len(row)} 列，应为 {len(CATALOG_COLUMNS)} 列", f"has {len(row)} columns, expected {len(CATALOG_COLUMNS)}")
        entries.append(
            _parse_row(
                source,
                where,
                parsed,
                code=row[code_at],
                name=row[name_at],
                class_code=row[class_at],
                selfpay_prop=row[prop_at],
                price_cap=row[cap_at],
                begndate=row[begin_at],
                enddate=row[end_at],
            )
        )
    return entries


def _parse_row(
    source: str,
    where: str,
    parsed: dict[tuple[str, str], Any],
    *,
    code: str,
    name: str,
    class_code: str,
    selfpay_prop: str,
    price_cap: str,
    begndate: str,
    enddate: str,
) -> CatalogEntry:
    if not code or len(code) > _MAX_CODE_CHARS or code != code.strip():
        raise _row_error(source, f"{where}: med_list_codg", f"编码 {code!r} 为空、过长或带空格", f"code {code!r} is empty, too long or has spaces")

    charge_class = _CLASS_CODES.get(class_code)
    if charge_class is None:
        raise _row_error(source, f"{where}: chrgitm_lv", f"{class_code!r} 不是 01、02 或 03", f"{class_code!r} is not 01, 02 or 03")

    prop = _cached(parsed, "selfpay_prop", selfpay_prop, lambda: _parse_value(money.parse_ratio, selfpay_prop, source, f"{where}: selfpay_prop"))
    if charge_class is ChargeClass.A and prop != 0:
        raise _row_error(source, f"{where}: selfpay_prop", "甲类项目的先行自付比例必须为 0", "a class A item must have a first self-pay ratio of 0")

    cap = None
    if price_cap != "":
        cap = _cached(parsed, "pric_uplmt_amt", price_cap, lambda: _parse_value(money.parse_price, price_cap, source, f"{where}: pric_uplmt_amt"))

    begin = _cached(parsed, "date", begndate, lambda: _parse_date(begndate, source, f"{where}: begndate"))
    end = None if enddate == "" else _cached(parsed, "date", enddate, lambda: _parse_date(enddate, source, f"{where}: enddate"))
    if end is not None and end < begin:
        raise _row_error(source, f"{where}: enddate", "终止日期早于开始日期", "is before begndate")

    return CatalogEntry(
        med_list_codg=code,
        name=name,
        charge_class=charge_class,
        selfpay_prop=prop,
        price_cap_micro=cap,
        begndate=begin,
        enddate=end,
        source=f"{source}:{where.removeprefix('line ')}",
    )


def _cached(parsed: dict[tuple[str, str], Any], kind: str, text: str, parse: Callable[[], Any]) -> Any:
    key = (kind, text)
    value = parsed.get(key)
    if value is None:
        value = parsed[key] = parse()
    return value


def _parse_value(parser: object, text: str, source: str, where: str) -> int:
    try:
        return int(parser(text, where))  # type: ignore[operator]
    except SettlementError as error:
        raise _row_error(source, where, f"{text!r}: {error.detail or error.message_zh}", f"{text!r}: {error.detail_en or error.message_en}") from error


def _parse_date(text: str, source: str, where: str) -> datetime.date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return datetime.date.fromisoformat(text)
    except ValueError as error:
        raise _row_error(source, where, f"{text!r} 不是 YYYY-MM-DD 日期", f"{text!r} is not a YYYY-MM-DD date") from error


def _row_error(source: str, where: str, detail_zh: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.RULE_FILE_INVALID, field=where, value=source, detail=detail_zh, detail_en=detail_en)
