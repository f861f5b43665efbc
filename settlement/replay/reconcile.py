"""Reconciliation figures (3201 totals, 3202 details) and the comparison with an institution's file.

The figures come from the ledger's settlement summaries. A settlement and the cancel
that reverses it are two records, each counted on the date of its own ``setl_time``
with its own sign, so cancelling later never changes the figures of an earlier day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from settlement.store import SettlementSummary

__all__ = [
    "DETAIL_AMOUNTS",
    "DetailRow",
    "ReconcileReport",
    "TotalsRow",
    "TOTAL_FIGURES",
    "compare_details",
    "compare_totals",
    "detail_rows",
    "key_totals",
    "select_summaries",
    "totals_rows",
]

# Amount columns of a 3202 detail row, compared one by one.
DETAIL_AMOUNTS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")

# The four figures of a 3201 totals row that an institution sends and the engine returns.
TOTAL_FIGURES = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt")


class DetailRow(msgspec.Struct, frozen=True, array_like=True):
    """One 3202 detail line: a settlement (``refd_setl_flag`` "0") or a cancel ("1"); amounts in fen."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    refd_setl_flag: str


class TotalsRow(msgspec.Struct, frozen=True, kw_only=True):
    """One 3201 totals line for an institution, period, insurance type and clearing type."""

    fixmedins_code: str
    stmt_begndate: str
    stmt_enddate: str
    insutype: str
    clr_type: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    fixmedins_setl_cnt: int
    refd_setl_flag: str


class ReconcileReport(msgspec.Struct, kw_only=True):
    """Settlements only in the ledger, only in the institution's file, and those whose amounts differ.

    ``differing`` rows are ``[setl_id, field, ledger value, file value]`` (amounts in fen).
    """

    ledger_count: int
    file_count: int
    missing_in_file: list[str]
    missing_in_ledger: list[str]
    differing: list[list[str | int]]

    @property
    def ok(self) -> bool:
        return not (self.missing_in_file or self.missing_in_ledger or self.differing)


def detail_rows(summaries: Iterable[SettlementSummary]) -> list[DetailRow]:
    """Return the 3202 detail rows of settlement summaries, in the given order."""
    return [
        DetailRow(
            setl_id=summary.setl_id, mdtrt_id=summary.mdtrt_id, psn_no=summary.psn_no,
            medfee_sumamt=summary.medfee_sumamt, fund_pay_sumamt=summary.fund_pay_sumamt, acct_pay=summary.acct_pay,
            refd_setl_flag="1" if summary.kind == "cancel" else "0",
        )
        for summary in summaries
    ]


def totals_rows(summaries: Sequence[SettlementSummary], fixmedins_code: str, begin: str, end: str, *,
                include_cancels: bool = True) -> list[TotalsRow]:
    """Return one 3201 totals row per insurance type and clearing type found in the period.

    ``include_cancels`` False leaves the cancel records out (``refd_setl_flag`` "0"),
    as some regions total only the settlements.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for summary in summaries:
        if summary.kind == "cancel" and not include_cancels:
            continue
        sums = groups.setdefault((summary.insutype, summary.clr_type), [0, 0, 0, 0])
        sums[0] += summary.medfee_sumamt
        sums[1] += summary.fund_pay_sumamt
        sums[2] += summary.acct_pay
        sums[3] += 1
    return [
        TotalsRow(
            fixmedins_code=fixmedins_code, stmt_begndate=begin, stmt_enddate=end, insutype=insutype, clr_type=clr_type,
            medfee_sumamt=sums[0], fund_pay_sumamt=sums[1], acct_pay=sums[2], fixmedins_setl_cnt=sums[3],
            refd_setl_flag="1" if include_cancels else "0",
        )
        for (insutype, clr_type), sums in sorted(groups.items())
    ]


def compare_details(ledger: Sequence[DetailRow], institution: Sequence[DetailRow]) -> ReconcileReport:
    """Compare the ledger's detail rows with an institution's, matching by ``setl_id``."""
    ours = {row.setl_id: row for row in ledger}
    theirs = {row.setl_id: row for row in institution}
    differing: list[list[str | int]] = []
    for setl_id in sorted(ours.keys() & theirs.keys()):
        mine, other = ours[setl_id], theirs[setl_id]
        for field in (*DETAIL_AMOUNTS, "refd_setl_flag", "mdtrt_id", "psn_no"):
            if getattr(mine, field) != getattr(other, field):
                differing.append([setl_id, field, getattr(mine, field), getattr(other, field)])
    return ReconcileReport(
        ledger_count=len(ours),
        file_count=len(theirs),
        missing_in_file=sorted(ours.keys() - theirs.keys()),
        missing_in_ledger=sorted(theirs.keys() - ours.keys()),
        differing=differing,
    )


def select_summaries(summaries: Iterable[SettlementSummary], *, clr_optins: str, insutype: str | None = None,
                     clr_type: str | None = None, include_cancels: bool = True) -> list[SettlementSummary]:
    """Keep the records of one clearing agency, and of one insurance and clearing type when given.

    This is the key of a 3201 request (clearing agency, insurance type, clearing type) and
    of a 3202 request (clearing agency, optionally clearing type). No other field, such as
    the medical type, splits it.
    """
    return [
        summary for summary in summaries
        if summary.clr_optins == clr_optins
        and (insutype is None or summary.insutype == insutype)
        and (clr_type is None or summary.clr_type == clr_type)
        and (include_cancels or summary.kind != "cancel")
    ]


def key_totals(summaries: Sequence[SettlementSummary], fixmedins_code: str, begin: str, end: str, *, clr_optins: str,
               insutype: str, clr_type: str, include_cancels: bool = True) -> TotalsRow:
    """Return the 3201 totals of one key over the period; a key with no records gives zeros."""
    selected = select_summaries(summaries, clr_optins=clr_optins, insutype=insutype, clr_type=clr_type, include_cancels=include_cancels)
    rows = totals_rows(selected, fixmedins_code, begin, end, include_cancels=include_cancels)
    if rows:
        return rows[0]
    return TotalsRow(
        fixmedins_code=fixmedins_code, stmt_begndate=begin, stmt_enddate=end, insutype=insutype, clr_type=clr_type,
        medfee_sumamt=0, fund_pay_sumamt=0, acct_pay=0, fixmedins_setl_cnt=0, refd_setl_flag="1" if include_cancels else "0",
    )


def compare_totals(ledger: TotalsRow, institution: TotalsRow) -> list[tuple[str, int, int]]:
    """Return ``(figure, ledger value, institution value)`` for each of ``TOTAL_FIGURES`` that differs."""
    return [
        (figure, getattr(ledger, figure), getattr(institution, figure))
        for figure in TOTAL_FIGURES
        if getattr(ledger, figure) != getattr(institution, figure)
    ]
