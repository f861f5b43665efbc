"""Handlers of the queries of visits, settlements and accumulators (5201, 5203, 5204, 5205, 5206).

An institution reads only its own visits and settlement records. Another institution's
``setl_id`` is reported as unknown, and the lists leave other institutions' rows out. The
accumulators of 5206 are the person's across institutions, as the funds count them. Each
query reads, then records its output under the message id in one transaction, so that a
retried message gets the same output back. A rejected query writes nothing.

5205 is the chronic-disease drug record query in the national catalogue. This engine keeps
no prescription records apart from fee lines, so 5205 here returns the person's settlement
and cancel records at this institution whose settlement time is in [begntime, endtime]:
the "settlements over a period" that HIS systems ask for beside 5201.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from adapters.server import query_sql, state
from adapters.server.handlers_settle import check_settlement_ref
from adapters.server.handlers_visit import Call
from settlement import visits
from settlement.errors import ErrorCode, SettlementError
from settlement.ledger_posting import STORED_ACCUMULATOR_KEYS
from settlement.persons import Person
from settlement.protocol import outputs, query_outputs, query_requests
from settlement.store import SettlementRecord

__all__ = ["HANDLERS"]

logger = logging.getLogger("settlement.server")

# Accumulators that count events. Every other key is an amount in fen.
_COUNT_KEYS = frozenset({"ip_admission_count"})


async def _person(conn: state.Connection, psn_no: str) -> Person:
    person = await state.person_by_psn_no(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="input.data.psn_no", value=psn_no)
    return person


def _check_record(call: Call, record: SettlementRecord | None, query: query_requests.SettlementQuery) -> SettlementRecord:
    """Return the institution's record named by a 5203/5204 request after checking its visit and person."""
    if record is None or record.fixmedins_code != call.code:
        raise SettlementError(ErrorCode.UNKNOWN_SETTLEMENT, field="input.data.setl_id", value=query.setl_id)
    check_settlement_ref(record, mdtrt_id=query.mdtrt_id, psn_no=query.psn_no)
    return record


async def visit_list(call: Call) -> bytes:
    query = query_requests.read_visit_query(call.input)
    async with call.services.db.transaction() as conn:
        await _person(conn, query.psn_no)
        rows = await query_sql.visits_of_person(conn, call.code, query.psn_no, query.begin, query.end, query.med_type, query.mdtrt_id)
        output = query_outputs.VisitListOutput(mdtrtinfo=[_visit_record(call, row) for row in rows])
        encoded = outputs.encode_output(output)
        await call.record(conn, encoded)
    return encoded


def _visit_record(call: Call, row: Any) -> query_outputs.VisitRecord:
    detail = json.loads(row["detail"] or "{}")
    return query_outputs.VisitRecord(
        mdtrt_id=row["mdtrt_id"], psn_no=row["psn_no"], fixmedins_code=row["fixmedins_code"],
        fixmedins_name=call.institution.fixmedins_name, insutype=row["insutype"], med_type=row["med_type"],
        begntime=row["begntime"], mdtrt_cert_type=row["mdtrt_cert_type"], ipt_otp_no=row["ipt_otp_no"],
        dise_codg=row["dise_codg"], dise_name=row["dise_name"], atddr_no=detail.get("atddr_no"), dr_name=detail.get("dr_name"),
        dept_code=detail.get("dept_code"), dept_name=detail.get("dept_name"), caty=detail.get("caty"),
        vali_flag="0" if row["cancelled_by"] is not None else "1",
    )


async def settlement_info(call: Call) -> bytes:
    query = query_requests.read_settlement_query(call.input)
    stored = await call.services.ledger.get_settlement(query.setl_id)
    async with call.services.db.transaction() as conn:
        person = await _person(conn, query.psn_no)
        record = _check_record(call, stored, query)
        visit = await query_sql.visit_of_institution(conn, record.mdtrt_id, call.code)
        output = query_outputs.SettlementInfoOutput(
            setlinfo=_settlement_block(call, record, person, visit), setldetail=query_outputs.setl_details(record.setldetail)
        )
        encoded = outputs.encode_output(output)
        await call.record(conn, encoded)
    return encoded


def _settlement_block(call: Call, record: SettlementRecord, person: Person, visit: Any | None) -> query_outputs.SettlementQueryInfo:
    """Build the 5203 block from the stored record, the person and the visit as they are now.

    NOTE: the ledger does not keep the credential type a 2207 was sent with, so
    ``mdtrt_cert_type`` is the one the visit was registered with.
    """
    info = visits.setl_info(
        result=record.outputs, person=person, mdtrt_id=record.mdtrt_id, med_type=record.med_type, insutype=record.insutype,
        cert_type=visit["mdtrt_cert_type"] if visit is not None else "", setl_time=record.setl_time, msgid=record.msgid,
        clr_optins=record.clr_optins, setl_id=record.setl_id,
    )
    institution = call.institution
    return query_outputs.query_setl_info(
        info,
        clr_type=record.clr_type,
        insu_optins=record.insuplc_admdvs,
        emp_name=person.emp_name,
        fixmedins_code=institution.fixmedins_code,
        fixmedins_name=institution.fixmedins_name,
        fixmedins_poolarea=institution.admdvs,
        begndate=visit["begntime"][:10] if visit is not None else None,
        enddate=record.setl_time[:10],
        refd_setl_flag="1" if record.kind == "cancel" else "0",
        year=str(record.year),
        dise_codg=visit["dise_codg"] if visit is not None else None,
        dise_name=visit["dise_name"] if visit is not None else None,
        opt_time=record.setl_time,
    )


async def settlement_fee_lines(call: Call) -> bytes:
    query = query_requests.read_settlement_query(call.input)
    stored = await call.services.ledger.get_settlement(query.setl_id)
    async with call.services.db.transaction() as conn:
        await _person(conn, query.psn_no)
        record = _check_record(call, stored, query)
        rows = await query_sql.fee_lines_of_batch(conn, record.mdtrt_id, record.chrg_bchno)
        encoded = outputs.encode_output(_fee_line_records(record, rows))
        await call.record(conn, encoded)
    return encoded


def _fee_line_records(record: SettlementRecord, rows: list[Any]) -> list[query_outputs.FeeLineRecord]:
    """Return the stored lines the settlement covered, in its order, with a cancel record's amounts and quantities negated."""
    sign = -1 if record.kind == "cancel" else 1
    splits = {line.feedetl_sn: line for line in record.result.lines}
    candidates: dict[str, list[Any]] = {}
    for row in rows:
        candidates.setdefault(row["feedetl_sn"], []).append(row)

    records = []
    for feedetl_sn in record.feedetl_sns:
        row = _covered_row(candidates.get(feedetl_sn, []), splits.get(feedetl_sn), sign)
        if row is None:
            logger.warning("server: 5204 fee line missing setl_id=%s feedetl_sn=%s", record.setl_id, feedetl_sn)
            continue
        records.append(_fee_line_record(record, row, sign))
    return records


def _covered_row(rows: list[Any], split: Any, sign: int) -> Any | None:
    """Pick the stored line a settlement covered among the uploads of one serial.

    A serial can be withdrawn after its settlement was cancelled and uploaded again, so a
    batch may hold several rows of it. The row whose amount and split equal the settlement's
    line is the one it covered, and the live row wins a tie.
    NOTE: two uploads of a serial with the same amounts cannot be distinguished, although their
    fee times or prescription numbers may differ.
    """
    if split is not None:
        matching = [
            row for row in rows
            if (row["amount"], row["fulamt_ownpay_amt"], row["overlmt_amt"], row["preselfpay_amt"], row["inscp_scp_amt"])
            == (sign * split.amount, sign * split.fulamt_ownpay_amt, sign * split.overlmt_amt, sign * split.preselfpay_amt, sign * split.inscp_scp_amt)
        ]
        rows = matching or rows
    if not rows:
        return None
    live = [row for row in rows if row["cancelled_by"] is None]
    return (live or rows)[-1]


def _fee_line_record(record: SettlementRecord, row: Any, sign: int) -> query_outputs.FeeLineRecord:
    cap = row["price_cap_micro"]
    return query_outputs.FeeLineRecord(
        mdtrt_id=record.mdtrt_id,
        setl_id=record.setl_id,
        feedetl_sn=row["feedetl_sn"],
        init_feedetl_sn=row["init_feedetl_sn"],
        rx_drord_no=row["rxno"],
        med_type=record.med_type,
        fee_ocur_time=row["fee_ocur_time"],
        cnt=outputs.quantity(sign * row["quantity"]),
        pric=outputs.price(row["price_micro"]),
        det_item_fee_sumamt=outputs.yuan(sign * row["amount"]),
        pric_uplmt_amt=outputs.price(visits.NO_PRICE_CAP_MICRO if cap is None else cap),
        selfpay_prop=outputs.ratio(row["selfpay_prop"]),
        fulamt_ownpay_amt=outputs.yuan(sign * row["fulamt_ownpay_amt"]),
        overlmt_amt=outputs.yuan(sign * row["overlmt_amt"]),
        preselfpay_amt=outputs.yuan(sign * row["preselfpay_amt"]),
        inscp_scp_amt=outputs.yuan(sign * row["inscp_scp_amt"]),
        chrgitm_lv=f"{int(row['charge_class']):02d}",
        hilist_code=row["med_list_codg"],
        med_list_codg=row["med_list_codg"],
        medins_list_codg=row["medins_list_codg"],
    )


async def settlement_list(call: Call) -> bytes:
    query = query_requests.read_settlement_list(call.input)
    async with call.services.db.transaction() as conn:
        await _person(conn, query.psn_no)
        rows = await query_sql.settlements_of_person(conn, call.code, query.psn_no, query.begin, query.end)
        output = query_outputs.SettlementListOutput(setlinfo=[_summary_row(row) for row in rows])
        encoded = outputs.encode_output(output)
        await call.record(conn, encoded)
    return encoded


def _summary_row(row: Any) -> query_outputs.SettlementSummaryRow:
    y = outputs.yuan
    acct_pay, cash = int(row["acct_pay"]), int(row["psn_cash_pay"])
    return query_outputs.SettlementSummaryRow(
        setl_id=row["setl_id"], mdtrt_id=row["mdtrt_id"], psn_no=row["psn_no"], fixmedins_code=row["fixmedins_code"],
        insutype=row["insutype"], med_type=row["med_type"], clr_type=row["clr_type"], clr_optins=row["clr_optins"],
        setl_time=row["setl_time"], medfee_sumamt=y(int(row["medfee_sumamt"])), fund_pay_sumamt=y(int(row["fund_pay_sumamt"])),
        # The person's part is the account payment plus cash, the two amounts the ledger row stores.
        psn_pay=y(acct_pay + cash), acct_pay=y(acct_pay), cash_payamt=y(cash), medins_setl_id=row["msgid"],
        refd_setl_flag="1" if row["kind"] == "cancel" else "0", init_setl_id=row["original_setl_id"],
    )


async def cumulative(call: Call) -> bytes:
    """Return the person's year-to-date accumulators and the personal-account balance now.

    NOTE: the ledger keeps yearly totals, not monthly ones, so ``cum_ym`` selects its year and
    the totals are as of now, not as of the end of that month.
    """
    query = query_requests.read_cumulative_query(call.input)
    ledger = call.services.ledger
    values = await ledger.accumulators(query.psn_no, query.year)
    balance = await ledger.account_balance(f"personal:{query.psn_no}")
    rows = [
        query_outputs.CumulativeInfo(
            cum_type_code=key, cum=outputs.Decimal(values[key]) if key in _COUNT_KEYS else outputs.yuan(values[key])
        )
        for key in STORED_ACCUMULATOR_KEYS
    ]
    output = query_outputs.CumulativeOutput(
        psn_no=query.psn_no, year=f"{query.year:04d}", cum_ym=None if query.month is None else f"{query.year:04d}{query.month:02d}",
        balc=outputs.yuan(balance), cuminfo=rows,
    )
    async with call.services.db.transaction() as conn:
        await _person(conn, query.psn_no)
        encoded = outputs.encode_output(output)
        await call.record(conn, encoded)
    return encoded


HANDLERS = {
    "5201": visit_list,
    "5203": settlement_info,
    "5204": settlement_fee_lines,
    "5205": settlement_list,
    "5206": cumulative,
}
