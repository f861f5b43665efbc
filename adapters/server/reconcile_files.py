"""3202 file contents: unpacking an uploaded detail file and writing the result file.

An institution uploads a zip holding one text file, or the text itself. Lines are tab or
comma separated (regions differ), in the column order of ``adapters.replay.recon_files``.
The result file is a zip holding one tab-separated text file, one line per settlement
found on either side, with the columns ``psn_no, mdtrt_id, setl_id, msgid, stmt_rslt,
refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay``. The amounts are the
engine's, and are left empty for a settlement the engine does not have.
"""

from __future__ import annotations

import datetime
import io
import zipfile
import zlib
from collections.abc import Sequence

from adapters.replay.recon_files import parse_details
from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount
from settlement.replay.reconcile import DETAIL_AMOUNTS, DetailRow, ReconcileReport
from settlement.store import SettlementSummary

__all__ = ["MAX_DETAIL_BYTES", "pack_result", "result_lines", "unpack_details"]

# Upper bound on an unpacked detail file: about 300 000 lines of 100 bytes, well above a
# month of one institution's settlements, and small enough to parse in one request.
MAX_DETAIL_BYTES = 32 * 1024 * 1024


def _invalid(name: str, field: str, detail: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.CLAIM_FILE_INVALID, field=field, value=name, detail=detail, detail_en=detail_en)


def _unzip(content: bytes, name: str) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = [member for member in archive.infolist() if not member.is_dir()]
            if len(members) != 1:
                raise _invalid(name, "zip", f"应只含一个文本文件，实际 {len(members)} 个", f"must hold exactly one text file, found {len(members)}")
            member = members[0]
            # zipfile stops reading at the declared size, so checking it bounds the memory used.
            if member.file_size > MAX_DETAIL_BYTES:
                raise _invalid(name, member.filename, f"解压后 {member.file_size} 字节，超过上限 {MAX_DETAIL_BYTES}",
                               f"{member.file_size} bytes unpacked exceeds the limit of {MAX_DETAIL_BYTES}")
            return archive.read(member), member.filename
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as error:
        raise _invalid(name, "zip", f"无法解压：{error}", f"cannot be unpacked: {error}") from None


def unpack_details(content: bytes, filename: str) -> list[DetailRow]:
    """Return the detail rows of an uploaded file; raise CLAIM_FILE_INVALID or BAD_NUMBER naming the line."""
    data, name = _unzip(content, filename) if content[:4] == b"PK\x03\x04" else (content, filename)
    if len(data) > MAX_DETAIL_BYTES:
        raise _invalid(name, "size", f"{len(data)} 字节，超过上限 {MAX_DETAIL_BYTES}", f"{len(data)} bytes exceeds the limit of {MAX_DETAIL_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid(name, f"byte {error.start}", "不是 UTF-8 文本", "is not UTF-8 text") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    separator = "\t" if "\t" in first else ","
    return parse_details(text, name, separator)


def _difference_memo(differences: Sequence[list], english: bool) -> str:
    parts = []
    for _, field, ours, theirs in differences:
        if field in DETAIL_AMOUNTS:
            ours, theirs = format_amount(int(ours)), format_amount(int(theirs))
        parts.append(f"{field} engine {ours}, institution {theirs}" if english else f"{field} 本系统 {ours}，机构 {theirs}")
    return "; ".join(parts) if english else "；".join(parts)


def result_lines(ledger: Sequence[SettlementSummary], institution: Sequence[DetailRow], report: ReconcileReport, *, english: bool) -> list[str]:
    """Return the result file's lines: the engine's records in ledger order, then those only the institution has."""
    differences: dict[str, list[list]] = {}
    for difference in report.differing:
        differences.setdefault(str(difference[0]), []).append(difference)
    missing_in_file = set(report.missing_in_file)

    lines = []
    for summary in ledger:
        if summary.setl_id in missing_in_file:
            result, memo = "1", "missing from the institution's file" if english else "机构明细中无此结算"
        elif summary.setl_id in differences:
            result, memo = "1", _difference_memo(differences[summary.setl_id], english)
        else:
            result, memo = "0", ""
        flag = "1" if summary.kind == "cancel" else "0"
        lines.append("\t".join((
            summary.psn_no, summary.mdtrt_id, summary.setl_id, summary.msgid, result, flag, memo,
            format_amount(summary.medfee_sumamt), format_amount(summary.fund_pay_sumamt), format_amount(summary.acct_pay),
        )))

    by_id = {row.setl_id: row for row in institution}
    for setl_id in report.missing_in_ledger:
        row = by_id[setl_id]
        memo = "not a settlement of the engine" if english else "本系统无此结算"
        lines.append("\t".join((row.psn_no, row.mdtrt_id, row.setl_id, "", "1", row.refd_setl_flag, memo, "", "", "")))
    return lines


def pack_result(lines: Sequence[str], member_name: str, moment: datetime.datetime) -> bytes:
    """Zip the result lines as one UTF-8 text file stamped with ``moment``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member_name, date_time=moment.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, "".join(line + "\n" for line in lines).encode("utf-8"))
    return buffer.getvalue()
