"""Recorded totals per day, institution and fund, for the replay report.

Totals are kept as ``{"yyyy-MM-dd|institution": [count, amounts...]}`` with the amounts
in ``TOTAL_FIELDS`` order, so partitions merge by adding lists and the dict encodes to
JSON as is. A cancel counts on its own date with its negative amounts.
"""

from __future__ import annotations

from collections.abc import Iterable

from settlement.replay.record import OUTPUT_FIELDS, ReplayRecord

__all__ = ["TOTAL_FIELDS", "Totals", "add_record_totals", "total_key"]

TOTAL_FIELDS = (
    "medfee_sumamt", "hifp_pay", "hifob_pay", "hifmi_pay", "cvlserv_pay", "maf_pay",
    "fund_pay_sumamt", "acct_pay", "psn_cash_pay",
)
_COLUMNS = tuple(OUTPUT_FIELDS.index(field) for field in TOTAL_FIELDS)

Totals = dict[str, list[int]]


def total_key(date: str, institution: str) -> str:
    return f"{date}|{institution}"


def add_record_totals(totals: Totals, records: Iterable[ReplayRecord]) -> None:
    """Add each record's count and recorded amounts to its day and institution."""
    for record in records:
        key = total_key(record.setl_date, record.fixmedins_code)
        row = totals.get(key)
        if row is None:
            row = totals[key] = [0] * (len(TOTAL_FIELDS) + 1)
        row[0] += 1
        outputs = record.outputs
        for position, column in enumerate(_COLUMNS, start=1):
            row[position] += outputs[column]
