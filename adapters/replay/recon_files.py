"""Reconciliation text files: 3201 totals and 3202 details, as institutions exchange them.

One line per row, no header, fields joined by the chosen separator (tab by default;
some clients use commas). Amounts are yuan with two decimals (``-12.30`` for a cancel).
Details: ``setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay,
refd_setl_flag``. Totals: ``fixmedins_code, stmt_begndate, stmt_enddate, insutype,
clr_type, medfee_sumamt, fund_pay_sumamt, acct_pay, fixmedins_setl_cnt, refd_setl_flag``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount, parse_amount, parse_count
from settlement.replay.reconcile import DetailRow, TotalsRow

__all__ = ["SEPARATORS", "parse_details", "read_details", "read_totals", "write_details", "write_totals"]

SEPARATORS = {"tab": "\t", "comma": ",", "pipe": "|"}

_DETAIL_COLUMNS = len(DetailRow.__struct_fields__)
_TOTALS_COLUMNS = len(TotalsRow.__struct_fields__)


def write_details(path: str | Path, rows: Sequence[DetailRow], separator: str) -> None:
    lines = [
        separator.join((row.setl_id, row.mdtrt_id, row.psn_no, format_amount(row.medfee_sumamt),
                        format_amount(row.fund_pay_sumamt), format_amount(row.acct_pay), row.refd_setl_flag))
        for row in rows
    ]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_totals(path: str | Path, rows: Sequence[TotalsRow], separator: str) -> None:
    lines = [
        separator.join((row.fixmedins_code, row.stmt_begndate, row.stmt_enddate, row.insutype, row.clr_type,
                        format_amount(row.medfee_sumamt), format_amount(row.fund_pay_sumamt), format_amount(row.acct_pay),
                        str(row.fixmedins_setl_cnt), row.refd_setl_flag))
        for row in rows
    ]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _fields(name: str, line_number: int, line: str, separator: str, expected: int) -> list[str]:
    fields = [field.strip() for field in line.split(separator)]
    if len(fields) != expected:
        raise SettlementError(
            ErrorCode.CLAIM_FILE_INVALID, field=f"line {line_number}", value=name,
            detail=f"应有 {expected} 列，实际 {len(fields)} 列（分隔符是否正确？）",
            detail_en=f"expected {expected} columns, found {len(fields)} (is the separator right?)",
        )
    return fields


def _lines(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def read_details(path: str | Path, separator: str) -> list[DetailRow]:
    """Read a 3202 detail file; raise CLAIM_FILE_INVALID or BAD_NUMBER naming the line."""
    path = Path(path)
    return parse_details(path.read_text(encoding="utf-8-sig"), path.name, separator)


def parse_details(text: str, name: str, separator: str) -> list[DetailRow]:
    """Parse the text of a 3202 detail file called ``name``; raise CLAIM_FILE_INVALID or BAD_NUMBER naming the line."""
    rows = []
    for number, line in _lines(text):
        setl_id, mdtrt_id, psn_no, medfee, fund, acct, flag = _fields(name, number, line, separator, _DETAIL_COLUMNS)
        where = f"{name}:{number}"
        rows.append(DetailRow(
            setl_id=setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no,
            medfee_sumamt=parse_amount(medfee, f"{where}:medfee_sumamt", allow_negative=True),
            fund_pay_sumamt=parse_amount(fund, f"{where}:fund_pay_sumamt", allow_negative=True),
            acct_pay=parse_amount(acct, f"{where}:acct_pay", allow_negative=True),
            refd_setl_flag=flag,
        ))
    return rows


def read_totals(path: str | Path, separator: str) -> list[TotalsRow]:
    """Read a 3201 totals file; raise CLAIM_FILE_INVALID or BAD_NUMBER naming the line."""
    path = Path(path)
    rows = []
    for number, line in _lines(path.read_text(encoding="utf-8-sig")):
        code, begin, end, insutype, clr_type, medfee, fund, acct, count, flag = _fields(path.name, number, line, separator, _TOTALS_COLUMNS)
        where = f"{path.name}:{number}"
        rows.append(TotalsRow(
            fixmedins_code=code, stmt_begndate=begin, stmt_enddate=end, insutype=insutype, clr_type=clr_type,
            medfee_sumamt=parse_amount(medfee, f"{where}:medfee_sumamt", allow_negative=True),
            fund_pay_sumamt=parse_amount(fund, f"{where}:fund_pay_sumamt", allow_negative=True),
            acct_pay=parse_amount(acct, f"{where}:acct_pay", allow_negative=True),
            fixmedins_setl_cnt=parse_count(int(count) if count.isdigit() else count, f"{where}:fixmedins_setl_cnt"), refd_setl_flag=flag,
        ))
    return rows
