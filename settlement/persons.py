"""Insured persons, their cards and the institutions that serve them, as plain records.

Records come from a JSON or CSV file (``read_persons`` takes already-decoded rows) and
are checked here with coded errors naming the row and field. Money is integer fen.
Nothing here does I/O.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import codes
from settlement.signing import ALGORITHMS
from settlement.types import HOSPITAL_LEVELS, MEDICAL_ASSISTANCE_TYPES

__all__ = ["Card", "Institution", "Person", "PERSON_COLUMNS", "read_institutions", "read_persons"]

# Columns of a persons CSV file; ``card_no``/``card_sn`` give at most one card per row.
PERSON_COLUMNS = (
    "psn_no",
    "psn_cert_type",
    "certno",
    "psn_name",
    "gend",
    "naty",
    "brdy",
    "insutype",
    "psn_type",
    "cvlserv_flag",
    "maf_type",
    "insuplc_admdvs",
    "emp_name",
    "psn_insu_date",
    "acct_balc",
    "card_no",
    "card_sn",
)

_ADMDVS = re.compile(r"[0-9]{6}")


class Card(msgspec.Struct, frozen=True):
    card_no: str
    card_sn: str | None = None


class Person(msgspec.Struct, frozen=True):
    """One insured person; ``acct_balc`` is the personal-account balance to fund, in fen."""

    psn_no: str
    psn_cert_type: str
    certno: str
    psn_name: str
    gend: str
    brdy: str
    insutype: str
    psn_type: str
    insuplc_admdvs: str
    naty: str | None = None
    cvlserv_flag: str = "0"
    maf_type: str | None = None
    emp_name: str | None = None
    psn_insu_date: str | None = None
    psn_insu_stas: str = "1"
    acct_balc: int = 0
    cards: tuple[Card, ...] = ()

    def birth_date(self) -> datetime.date:
        return datetime.date.fromisoformat(self.brdy)


class Institution(msgspec.Struct, frozen=True):
    """A designated institution and the key it signs requests with."""

    fixmedins_code: str
    fixmedins_name: str
    kind: str
    hosp_lv: str
    admdvs: str
    secret: str
    sign_algorithm: str = "HMAC-SHA256"


def _text(row: dict[str, Any], name: str, where: str, *, required: bool = True, max_len: int = 50) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        if required:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field=f"{where}.{name}")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f"{where}.{name}", value=value,
            detail=f"应为不超过 {max_len} 个字符的字符串", detail_en=f"must be a string of at most {max_len} characters",
        )
    return value


def _code(row: dict[str, Any], name: str, where: str, table: codes.CodeTable, *, required: bool = True) -> str | None:
    value = _text(row, name, where, required=required)
    if value is not None and value not in table:
        raise SettlementError(
            ErrorCode.INVALID_CODE, field=f"{where}.{name}", value=value,
            detail=f"{table.name_zh}应为 {table.describe()}", detail_en=f"must be one of {', '.join(table.codes)}",
        )
    return value


def _date(row: dict[str, Any], name: str, where: str, *, required: bool) -> str | None:
    value = _text(row, name, where, required=required, max_len=10)
    if value is None:
        return None
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f"{where}.{name}", value=value, detail="日期格式应为 yyyy-MM-dd", detail_en="date must be yyyy-MM-dd"
        ) from None
    return value


def _admdvs(row: dict[str, Any], name: str, where: str) -> str:
    value = _text(row, name, where, max_len=6)
    if not _ADMDVS.fullmatch(value):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f"{where}.{name}", value=value, detail="应为 6 位行政区划代码", detail_en="must be a 6-digit division code"
        )
    return value


def _read_person(row: Any, where: str) -> Person:
    if not isinstance(row, dict):
        raise SettlementError(ErrorCode.INVALID_FIELD, field=where, value=type(row).__name__, detail="应为对象", detail_en="must be an object")

    maf_type = _text(row, "maf_type", where, required=False)
    if maf_type is not None and maf_type not in MEDICAL_ASSISTANCE_TYPES:
        raise SettlementError(
            ErrorCode.INVALID_CODE, field=f"{where}.maf_type", value=maf_type,
            detail="应为 " + "、".join(MEDICAL_ASSISTANCE_TYPES), detail_en="must be one of " + ", ".join(MEDICAL_ASSISTANCE_TYPES),
        )

    balance = row.get("acct_balc")
    acct_balc = 0 if balance in (None, "") else money.parse_amount(balance, f"{where}.acct_balc")

    cards = []
    for index, card in enumerate(row.get("cards") or ()):
        card_where = f"{where}.cards[{index}]"
        if not isinstance(card, dict):
            raise SettlementError(ErrorCode.INVALID_FIELD, field=card_where, value=type(card).__name__, detail="应为对象", detail_en="must be an object")
        cards.append(Card(card_no=_text(card, "card_no", card_where), card_sn=_text(card, "card_sn", card_where, required=False, max_len=32)))
    if row.get("card_no"):
        cards.append(Card(card_no=_text(row, "card_no", where), card_sn=_text(row, "card_sn", where, required=False, max_len=32)))

    return Person(
        psn_no=_text(row, "psn_no", where, max_len=30),
        psn_cert_type=_code(row, "psn_cert_type", where, codes.PSN_CERT_TYPE, required=False) or "01",
        certno=_text(row, "certno", where),
        psn_name=_text(row, "psn_name", where),
        gend=_code(row, "gend", where, codes.GEND),
        naty=_text(row, "naty", where, required=False, max_len=3),
        brdy=_date(row, "brdy", where, required=True),
        insutype=_code(row, "insutype", where, codes.INSUTYPE),
        psn_type=_text(row, "psn_type", where, max_len=6),
        cvlserv_flag=_code(row, "cvlserv_flag", where, codes.FLAG, required=False) or "0",
        maf_type=maf_type,
        insuplc_admdvs=_admdvs(row, "insuplc_admdvs", where),
        emp_name=_text(row, "emp_name", where, required=False, max_len=200),
        psn_insu_date=_date(row, "psn_insu_date", where, required=False),
        acct_balc=acct_balc,
        cards=tuple(cards),
    )


def read_persons(rows: Any, source: str) -> list[Person]:
    """Check decoded person rows (a list, or an object with a ``persons`` list).

    Raises a coded error whose field names ``source`` and the row, such as
    ``demo.json:persons[3].gend``. Duplicate ``psn_no``, ``certno`` or card numbers are rejected.
    """
    if isinstance(rows, dict):
        rows = rows.get("persons")
    if not isinstance(rows, list):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f"{source}:persons", value="", detail="应为人员列表", detail_en="must be a list of persons"
        )

    persons = [_read_person(row, f"{source}:persons[{index}]") for index, row in enumerate(rows)]
    _reject_duplicates(persons, source)
    return persons


def _reject_duplicates(persons: list[Person], source: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for index, person in enumerate(persons):
        keys = [("psn_no", person.psn_no), ("certno", person.certno)] + [("card_no", card.card_no) for card in person.cards]
        for key in keys:
            if key in seen:
                raise SettlementError(
                    ErrorCode.INVALID_FIELD,
                    field=f"{source}:persons[{index}].{key[0]}",
                    value=key[1],
                    detail=f"与 persons[{seen[key]}] 重复",
                    detail_en=f"duplicates persons[{seen[key]}]",
                    sensitive=key[0] != "psn_no",
                )
            seen[key] = index


def read_institutions(rows: Any, source: str) -> list[Institution]:
    """Check decoded institution rows (a list, or an object with an ``institutions`` list)."""
    if isinstance(rows, dict):
        rows = rows.get("institutions")
    if not isinstance(rows, list):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f"{source}:institutions", value="", detail="应为机构列表", detail_en="must be a list of institutions"
        )

    institutions = []
    for index, row in enumerate(rows):
        where = f"{source}:institutions[{index}]"
        if not isinstance(row, dict):
            raise SettlementError(ErrorCode.INVALID_FIELD, field=where, value=type(row).__name__, detail="应为对象", detail_en="must be an object")
        kind = _text(row, "kind", where, required=False) or "hospital"
        if kind not in ("hospital", "pharmacy"):
            raise SettlementError(ErrorCode.INVALID_CODE, field=f"{where}.kind", value=kind, detail="应为 hospital 或 pharmacy", detail_en="must be hospital or pharmacy")
        level = _text(row, "hosp_lv", where, required=False) or ("pharmacy" if kind == "pharmacy" else "level2")
        if level not in HOSPITAL_LEVELS:
            raise SettlementError(
                ErrorCode.INVALID_CODE, field=f"{where}.hosp_lv", value=level,
                detail="应为 " + "、".join(HOSPITAL_LEVELS), detail_en="must be one of " + ", ".join(HOSPITAL_LEVELS),
            )
        algorithm = _text(row, "sign_algorithm", where, required=False) or "HMAC-SHA256"
        if algorithm not in ALGORITHMS:
            raise SettlementError(
                ErrorCode.INVALID_CODE, field=f"{where}.sign_algorithm", value=algorithm,
                detail="应为 " + "、".join(ALGORITHMS), detail_en="must be one of " + ", ".join(ALGORITHMS),
            )
        secret = _text(row, "secret", where, max_len=200)
        if len(secret) < 16:
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=f"{where}.secret", value="***",
                detail="密钥至少 16 个字符", detail_en="the secret must have at least 16 characters",
            )
        institutions.append(
            Institution(
                fixmedins_code=_text(row, "fixmedins_code", where, max_len=30),
                fixmedins_name=_text(row, "fixmedins_name", where, max_len=200),
                kind=kind,
                hosp_lv=level,
                admdvs=_admdvs(row, "admdvs", where),
                secret=secret,
                sign_algorithm=algorithm,
            )
        )
    return institutions
