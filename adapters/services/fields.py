"""Read request fields of the services API with coded errors (Chinese and English messages)."""

from __future__ import annotations

import datetime
import re
from typing import Any

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.services.card import CardRecord, CardStatus

__all__ = ["amount", "card_from", "date", "fee_lines", "integer", "period", "text"]

# Fee lines of one injury settlement, at most.
MAX_FEE_LINES = 500

_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def text(data: dict[str, Any], name: str, *, required: bool = True, max_len: int = 50, sensitive: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field=name)
        return None
    if not isinstance(value, str):
        raise SettlementError(ErrorCode.WRONG_TYPE, field=name, value=type(value).__name__, detail="字符串", detail_en="a string")
    if len(value) > max_len:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=name, value=value, sensitive=sensitive,
            detail=f"长度超过 {max_len}", detail_en=f"longer than {max_len} characters",
        )
    return value


def integer(data: dict[str, Any], name: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    value = data.get(name)
    if value is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettlementError(ErrorCode.WRONG_TYPE, field=name, value=type(value).__name__, detail="整数", detail_en="an integer")
    if not minimum <= value <= maximum:
        raise SettlementError(
            ErrorCode.AMOUNT_OUT_OF_RANGE, field=name, value=value, detail=f"应在 {minimum} 至 {maximum} 之间", detail_en=f"must be between {minimum} and {maximum}"
        )
    return value


def amount(data: dict[str, Any], name: str) -> int:
    """Read a money amount in yuan (a string or an exact JSON number) into fen."""
    return money.parse_amount(data.get(name), name)


def date(data: dict[str, Any], name: str, default: datetime.date | None = None) -> datetime.date:
    value = text(data, name, required=default is None, max_len=10)
    if value is None:
        assert default is not None
        return default
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise SettlementError(ErrorCode.INVALID_FIELD, field=name, value=value, detail="日期格式应为 yyyy-MM-dd", detail_en="date must be yyyy-MM-dd") from None


def period(data: dict[str, Any], name: str) -> str:
    value = text(data, name, max_len=7)
    if not _PERIOD.fullmatch(value):
        raise SettlementError(ErrorCode.INVALID_FIELD, field=name, value=value, detail="格式应为 yyyy-MM", detail_en="expected yyyy-MM")
    return value


def card_from(data: Any, where: str = "") -> CardRecord:
    """Read a new card's fields (``psn_no`` may be absent for a replacement, which takes the old card's)."""
    if not isinstance(data, dict):
        raise SettlementError(ErrorCode.WRONG_TYPE, field=where or "body", value=type(data).__name__, detail="对象", detail_en="an object")
    generation = integer(data, "generation", minimum=1, maximum=2)
    return CardRecord(
        card_no=text(data, "card_no", max_len=20, sensitive=True).upper(),
        psn_no=text(data, "psn_no", required=False, max_len=30) or "",
        application_no=text(data, "application_no", max_len=30),
        generation=generation,
        issuing_admdvs=text(data, "issuing_admdvs", max_len=6),
        status=CardStatus.APPLIED,
        chip_sn=text(data, "chip_sn", required=False, max_len=32),
        bank_code=text(data, "bank_code", required=False, max_len=12),
        bank_account=text(data, "bank_account", required=False, max_len=19, sensitive=True),
    )


def fee_lines(data: dict[str, Any], name: str) -> list[tuple[str, str, int, int]]:
    """Read fee lines ``{feedetl_sn, med_list_codg, pric, cnt}`` into (serial, code, price 1e-6 yuan, quantity 1e-4)."""
    rows = data.get(name)
    if not isinstance(rows, list) or not rows:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=name)
    if len(rows) > MAX_FEE_LINES:
        raise SettlementError(ErrorCode.TOO_MANY_LINES, value=len(rows), detail=str(MAX_FEE_LINES))
    lines, serials = [], set()
    for index, row in enumerate(rows):
        where = f"{name}[{index}]"
        if not isinstance(row, dict):
            raise SettlementError(ErrorCode.WRONG_TYPE, field=where, value=type(row).__name__, detail="对象", detail_en="an object")
        serial = text(row, "feedetl_sn", max_len=30)
        if serial in serials:
            raise SettlementError(ErrorCode.INVALID_FIELD, field=f"{where}.feedetl_sn", value=serial, detail="流水号重复", detail_en="duplicate serial")
        serials.add(serial)
        lines.append((
            serial,
            text(row, "med_list_codg", max_len=50),
            money.parse_price(row.get("pric"), f"{where}.pric"),
            money.parse_quantity(row.get("cnt"), f"{where}.cnt"),
        ))
    return lines
