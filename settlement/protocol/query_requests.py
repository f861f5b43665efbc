"""Checked requests of the query transactions 5201, 5203, 5204, 5205 and 5206.

Each ``read_*`` function checks the fields in the order the interface lists them and raises
the first coded error it meets, with the field path, as the readers in ``requests`` do.
"""

from __future__ import annotations

import re

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import codes, query_inputs
from settlement.protocol.fields import FieldReader
from settlement.protocol.requests import ID_LEN

__all__ = [
    "CumulativeQuery",
    "SettlementList",
    "SettlementQuery",
    "VisitQuery",
    "read_cumulative_query",
    "read_settlement_list",
    "read_settlement_query",
    "read_visit_query",
]

_YEAR_MONTH = re.compile(r"([0-9]{4})(0[1-9]|1[0-2])")
_YEAR = re.compile(r"[0-9]{4}")


class VisitQuery(msgspec.Struct, frozen=True):
    """5201: ``begin`` and ``end`` are ``yyyy-MM-dd HH:mm:ss``, inclusive."""

    psn_no: str
    begin: str
    end: str
    med_type: str | None
    mdtrt_id: str | None


class SettlementQuery(msgspec.Struct, frozen=True):
    psn_no: str
    setl_id: str
    mdtrt_id: str


class SettlementList(msgspec.Struct, frozen=True):
    """5205: ``begin`` and ``end`` are ``yyyy-MM-dd HH:mm:ss``, inclusive."""

    psn_no: str
    begin: str
    end: str


class CumulativeQuery(msgspec.Struct, frozen=True):
    """5206: the year whose accumulators are requested, and the month when ``cum_ym`` named one."""

    psn_no: str
    year: int
    month: int | None


def _data(raw: msgspec.Struct) -> tuple[FieldReader, msgspec.Struct]:
    root = FieldReader("input")
    if raw.data is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=root.at("data"))
    return root.child("data"), raw.data


def _moment(f: FieldReader, name: str, value: str | None, *, day_end: bool) -> str:
    """Read a period bound sent as a datetime or as a date. A date covers its whole day."""
    text = f.require(name, value)
    try:
        if len(text) == 10:
            f.date(name, text)
            return text + (" 23:59:59" if day_end else " 00:00:00")
        return f.datetime(name, text)
    except SettlementError:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f.at(name), value=text,
            detail="应为 yyyy-MM-dd HH:mm:ss 或 yyyy-MM-dd", detail_en="must be yyyy-MM-dd HH:mm:ss or yyyy-MM-dd",
        ) from None


def _period(f: FieldReader, begin_value: str | None, end_value: str | None) -> tuple[str, str]:
    begin = _moment(f, "begntime", begin_value, day_end=False)
    end = _moment(f, "endtime", end_value, day_end=True)
    if end < begin:
        raise SettlementError(
            ErrorCode.QUERY_PERIOD_INVALID, field=f.at("endtime"), value=end_value,
            detail=f"早于开始时间 {begin_value}", detail_en=f"is before the start {begin_value}",
        )
    return begin, end


def read_visit_query(raw: query_inputs.VisitQueryInput) -> VisitQuery:
    f, data = _data(raw)
    psn_no = f.text("psn_no", data.psn_no, max_len=ID_LEN)
    begin, end = _period(f, data.begntime, data.endtime)
    return VisitQuery(
        psn_no=psn_no,
        begin=begin,
        end=end,
        med_type=f.code("med_type", data.med_type, codes.MED_TYPE, required=False),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN, required=False),
    )


def read_settlement_query(raw: query_inputs.SettlementQueryInput) -> SettlementQuery:
    """Check a 5203 or 5204 request: all three ids are required, as in the interface."""
    f, data = _data(raw)
    return SettlementQuery(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        setl_id=f.text("setl_id", data.setl_id, max_len=ID_LEN),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
    )


def read_settlement_list(raw: query_inputs.SettlementListInput) -> SettlementList:
    f, data = _data(raw)
    psn_no = f.text("psn_no", data.psn_no, max_len=ID_LEN)
    begin, end = _period(f, data.begntime, data.endtime)
    return SettlementList(psn_no=psn_no, begin=begin, end=end)


def read_cumulative_query(raw: query_inputs.CumulativeQueryInput) -> CumulativeQuery:
    """Check a 5206 request: ``cum_ym`` (yyyyMM) or ``year`` (yyyy); when both are sent, their years must agree."""
    f, data = _data(raw)
    psn_no = f.text("psn_no", data.psn_no, max_len=ID_LEN)

    month_year = month = None
    if data.cum_ym not in (None, ""):
        match = _YEAR_MONTH.fullmatch(data.cum_ym)
        if match is None:
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=f.at("cum_ym"), value=data.cum_ym,
                detail="应为 yyyyMM 格式的年月", detail_en="must be a month written yyyyMM",
            )
        month_year, month = int(match.group(1)), int(match.group(2))

    year = None
    if data.year not in (None, ""):
        text = str(data.year)
        if _YEAR.fullmatch(text) is None:
            raise SettlementError(ErrorCode.INVALID_FIELD, field=f.at("year"), value=text, detail="应为 yyyy 格式的年份", detail_en="must be a year written yyyy")
        year = int(text)

    if month_year is None and year is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=f.at("cum_ym"))
    if month_year is not None and year is not None and month_year != year:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f.at("year"), value=str(year),
            detail=f"与 cum_ym 的年份 {month_year} 不一致", detail_en=f"differs from the year {month_year} of cum_ym",
        )
    return CumulativeQuery(psn_no=psn_no, year=month_year if month_year is not None else year, month=month)
