"""Checks that turn raw interface fields into values, with coded errors naming the field path.

``""``, ``null`` and an absent key mean the same thing everywhere: no value. A required
field with no value raises ``REQUIRED_FIELD``; an optional one gives ``None``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol.codes import CodeTable

__all__ = ["FieldReader"]

_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class FieldReader:
    """Reads the fields of one node (``input.data``, ``input.feedetail[3]``...) of a request."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def at(self, name: str) -> str:
        """Return the full path of ``name`` inside this node."""
        return f"{self.path}.{name}" if self.path else name

    def child(self, name: str) -> FieldReader:
        return FieldReader(self.at(name))

    def require(self, name: str, value: Any) -> Any:
        """Return ``value``, raising ``REQUIRED_FIELD`` when it is missing, null or empty."""
        if value is None or value == "":
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
        return value

    def text(self, name: str, value: str | None, *, max_len: int, required: bool = True, sensitive: bool = False) -> str | None:
        """Check a string field's presence and its maximum length in characters."""
        if value is None or value == "":
            if required:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
            return None
        if len(value) > max_len:
            raise SettlementError(
                ErrorCode.INVALID_FIELD,
                field=self.at(name),
                value=value,
                detail=f"长度 {len(value)} 超过上限 {max_len}",
                detail_en=f"length {len(value)} exceeds the maximum of {max_len}",
                sensitive=sensitive,
            )
        return value

    def code(self, name: str, value: str | None, table: CodeTable, *, required: bool = True) -> str | None:
        """Check a coded field against its national code table."""
        if value is None or value == "":
            if required:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
            return None
        if value not in table:
            raise SettlementError(
                ErrorCode.INVALID_CODE,
                field=self.at(name),
                value=value,
                detail=f"{table.name_zh}应为 {table.describe()}",
                detail_en=f"{table.name} must be one of {', '.join(table.codes)}",
            )
        return value

    def flag(self, name: str, value: str | None, table: CodeTable, *, default: str | None = None) -> bool:
        """Read a 0/1 flag; with a ``default`` the field may be left out."""
        code = self.code(name, value, table, required=default is None)
        return (code or default) == "1"

    def datetime(self, name: str, value: str | None, *, required: bool = True) -> str | None:
        """Check a ``yyyy-MM-dd HH:mm:ss`` datetime and return it unchanged."""
        if value is None or value == "":
            if required:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
            return None
        if not _DATETIME.fullmatch(value) or not _valid(value, "%Y-%m-%d %H:%M:%S"):
            raise SettlementError(
                ErrorCode.INVALID_FIELD,
                field=self.at(name),
                value=value,
                detail="日期时间格式应为 yyyy-MM-dd HH:mm:ss",
                detail_en="datetime must be yyyy-MM-dd HH:mm:ss",
            )
        return value

    def date(self, name: str, value: str | None, *, required: bool = True) -> str | None:
        """Check a ``yyyy-MM-dd`` date and return it unchanged."""
        if value is None or value == "":
            if required:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
            return None
        if not _DATE.fullmatch(value) or not _valid(value, "%Y-%m-%d"):
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=self.at(name), value=value, detail="日期格式应为 yyyy-MM-dd", detail_en="date must be yyyy-MM-dd"
            )
        return value

    def amount(self, name: str, value: Any, *, required: bool = True, allow_negative: bool = False) -> int | None:
        """Parse money into fen; numbers sent as strings are accepted when exact."""
        if value is None or value == "":
            if required:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(name))
            return None
        return money.parse_amount(value, self.at(name), allow_negative=allow_negative)

    def price(self, name: str, value: Any) -> int:
        """Parse a unit price into 1e-6 yuan; a negative price raises ``NEGATIVE_PRICE``."""
        self.require(name, value)
        return money.parse_price(value, self.at(name))

    def quantity(self, name: str, value: Any, *, allow_negative: bool) -> int:
        """Parse a quantity into 1e-4 units; zero is rejected."""
        self.require(name, value)
        return money.parse_quantity(value, self.at(name), allow_negative=allow_negative)


def _valid(text: str, pattern: str) -> bool:
    try:
        datetime.datetime.strptime(text, pattern)
    except ValueError:
        return False
    return True
