"""Handlers of reconciliation (3201 totals, 3202 details) and file transfer (9101 upload, 9102 download).

The figures come from the ledger's settlement summaries through the same functions as
``settlement reconcile`` (``settlement.replay.reconcile``), so the server and the command
line give the same numbers. A settlement and its cancel are two records, each counted on
the day of its own ``setl_time``, so a later cancel never changes an earlier day.
"""

from __future__ import annotations

import base64
import datetime

from adapters.server import stored_files
from adapters.server.handlers_visit import Call
from adapters.server.language import english
from adapters.server.reconcile_files import pack_result, result_lines, unpack_details
from adapters.server.stored_files import StoredFile
from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount
from settlement.protocol import outputs
from settlement.protocol import reconcile_io
from settlement.replay.reconcile import TotalsRow, compare_details, compare_totals, detail_rows, key_totals, select_summaries

__all__ = ["HANDLERS"]

# How long a stored file can be used or downloaded.
# NOTE: the interface reference gives dld_endtime but no retention period; seven days is a choice.
FILE_RETENTION = datetime.timedelta(days=7)


def _figure(name: str, value: int) -> str:
    return str(value) if name == "fixmedins_setl_cnt" else format_amount(value)


def _totals_description(ours: TotalsRow, differences: list[tuple[str, int, int]]) -> str:
    """Describe a 3201 outcome, naming the engine's figure and the institution's for each one that differs."""
    in_english = english()
    if not differences:
        if in_english:
            return (f"balanced: {ours.fixmedins_setl_cnt} records, medfee_sumamt {format_amount(ours.medfee_sumamt)}, "
                    f"fund_pay_sumamt {format_amount(ours.fund_pay_sumamt)}, acct_pay {format_amount(ours.acct_pay)}")
        return (f"对账平衡：共 {ours.fixmedins_setl_cnt} 笔，medfee_sumamt {format_amount(ours.medfee_sumamt)}，"
                f"fund_pay_sumamt {format_amount(ours.fund_pay_sumamt)}，acct_pay {format_amount(ours.acct_pay)}")
    if in_english:
        return "not balanced: " + "; ".join(
            f"{name} engine {_figure(name, mine)}, institution {_figure(name, theirs)}" for name, mine, theirs in differences
        )
    return "对账不平：" + "；".join(f"{name} 本系统 {_figure(name, mine)}，机构 {_figure(name, theirs)}" for name, mine, theirs in differences)


async def reconcile_totals(call: Call) -> bytes:
    query = reconcile_io.read_totals_query(call.input)
    summaries = await call.services.ledger.settlements_in_period(call.code, query.begin, query.end)
    ours = key_totals(
        summaries, call.code, query.begin, query.end, clr_optins=query.setl_optins, insutype=query.insutype,
        clr_type=query.clr_type, include_cancels=query.include_cancels,
    )
    theirs = TotalsRow(
        fixmedins_code=call.code, stmt_begndate=query.begin, stmt_enddate=query.end, insutype=query.insutype, clr_type=query.clr_type,
        medfee_sumamt=query.medfee_sumamt, fund_pay_sumamt=query.fund_pay_sumamt, acct_pay=query.acct_pay,
        fixmedins_setl_cnt=query.fixmedins_setl_cnt, refd_setl_flag=ours.refd_setl_flag,
    )
    differences = compare_totals(ours, theirs)
    output = outputs.encode_output(reconcile_io.TotalsOutput(reconcile_io.StmtInfo(
        setl_optins=query.setl_optins, stmt_rslt="1" if differences else "0", stmt_rslt_dscr=_totals_description(ours, differences),
    )))
    async with call.services.db.transaction() as conn:
        await call.record(conn, output)
    return output


def _check_institution(call: Call, field: str, value: str | None) -> None:
    if value not in (None, call.code):
        raise SettlementError(ErrorCode.INSTITUTION_MISMATCH, field=field, value=value, detail=call.code)


def _deadline(call: Call) -> str:
    return f"{call.now + FILE_RETENTION:%Y-%m-%d %H:%M:%S}"


async def upload_file(call: Call) -> bytes:
    upload = reconcile_io.read_upload(call.input)
    _check_institution(call, "input.fsUploadIn.fixmedins_code", upload.fixmedins_code)
    stored = StoredFile(
        file_qury_no=call.services.new_id("F", call.now), fixmedins_code=call.code, kind="upload", filename=upload.filename,
        content=upload.content, dld_endtime=_deadline(call),
    )
    output = outputs.encode_output(reconcile_io.UploadOutput(
        file_qury_no=stored.file_qury_no, filename=stored.filename, fixmedins_code=call.code, dld_endtime=stored.dld_endtime,
    ))
    async with call.services.db.transaction() as conn:
        await stored_files.insert_file(conn, stored, stored_at=call.stamp, stored_by=call.msgid)
        await call.record(conn, output)
    return output


async def _own_file(call: Call, file_qury_no: str, field: str, kind: str | None) -> StoredFile:
    """Return a live file of the calling institution, or raise UNKNOWN_FILE."""
    async with call.services.db.transaction() as conn:
        stored = await stored_files.find_file(conn, file_qury_no)
    if stored is None or stored.fixmedins_code != call.code or (kind is not None and stored.kind != kind):
        detail = "请先用 9101 上传明细文件" if kind == "upload" else "请使用 9101 或 3202 返回的文件查询号"
        detail_en = "upload the detail file with 9101 first" if kind == "upload" else "use a file_qury_no returned by 9101 or 3202"
        raise SettlementError(ErrorCode.UNKNOWN_FILE, field=field, value=file_qury_no, detail=detail, detail_en=detail_en)
    if stored.dld_endtime < call.stamp:
        raise SettlementError(
            ErrorCode.UNKNOWN_FILE, field=field, value=file_qury_no,
            detail=f"已于 {stored.dld_endtime} 过期", detail_en=f"it expired at {stored.dld_endtime}",
        )
    return stored


def _check_file_totals(query: reconcile_io.DetailQuery, rows) -> None:
    """Check that the file's rows add up to the request's totals (the file and its header must agree).

    NOTE: cash_payamt is not checked, because regions fill it differently (the sum of
    psn_part_amt in one, of the cash payment in another) and the file has no cash column.
    """
    figures = (
        ("medfee_sumamt", query.medfee_sumamt, sum(row.medfee_sumamt for row in rows), format_amount),
        ("fund_pay_sumamt", query.fund_pay_sumamt, sum(row.fund_pay_sumamt for row in rows), format_amount),
        ("fixmedins_setl_cnt", query.fixmedins_setl_cnt, len(rows), str),
    )
    for name, stated, in_file, formatter in figures:
        if stated != in_file:
            raise SettlementError(
                ErrorCode.DETAIL_TOTALS_MISMATCH, field=f"input.data.{name}", value=formatter(stated),
                detail=f"明细文件合计为 {formatter(in_file)}", detail_en=f"the file's rows add up to {formatter(in_file)}",
            )


async def reconcile_details(call: Call) -> bytes:
    query = reconcile_io.read_detail_query(call.input)
    upload = await _own_file(call, query.file_qury_no, "input.data.file_qury_no", "upload")
    theirs = unpack_details(upload.content, upload.filename)
    _check_file_totals(query, theirs)

    summaries = await call.services.ledger.settlements_in_period(call.code, query.begin, query.end)
    ours = select_summaries(summaries, clr_optins=query.setl_optins, clr_type=query.clr_type, include_cancels=query.include_cancels)
    report = compare_details(detail_rows(ours), theirs)

    file_qury_no = call.services.new_id("F", call.now)
    lines = result_lines(ours, theirs, report, english=english())
    stored = StoredFile(
        file_qury_no=file_qury_no, fixmedins_code=call.code, kind="result", filename=f"{file_qury_no}.zip",
        content=pack_result(lines, f"{file_qury_no}.txt", call.now), dld_endtime=_deadline(call),
    )
    output = outputs.encode_output(reconcile_io.DetailOutput(reconcile_io.FileInfo(file_qury_no=file_qury_no, filename=stored.filename, dld_endtime=stored.dld_endtime)))
    async with call.services.db.transaction() as conn:
        await stored_files.insert_file(conn, stored, stored_at=call.stamp, stored_by=call.msgid)
        await call.record(conn, output)
    return output


async def download_file(call: Call) -> bytes:
    """Return a stored file. Nothing is recorded: a download reads only, and a retry reads again."""
    request = reconcile_io.read_download(call.input)
    _check_institution(call, "input.fsDownloadIn.fixmedins_code", request.fixmedins_code)
    stored = await _own_file(call, request.file_qury_no, "input.fsDownloadIn.file_qury_no", None)
    return outputs.encode_output(reconcile_io.DownloadOutput(
        file_qury_no=stored.file_qury_no, filename=stored.filename, fixmedins_code=stored.fixmedins_code,
        content=base64.b64encode(stored.content).decode("ascii"),
    ))


HANDLERS = {
    "3201": reconcile_totals,
    "3202": reconcile_details,
    "9101": upload_file,
    "9102": download_file,
}
