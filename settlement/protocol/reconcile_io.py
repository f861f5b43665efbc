"""Inputs, checks and outputs of reconciliation (3201, 3202) and file transfer (9101, 9102).

3201 compares an institution's totals of one clearing agency, insurance type and clearing
type over whole days with the engine's. 3202 compares a detail file uploaded by 9101 with
the engine's records and leaves a result file to download by 9102. Amounts are fen here.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import codes, inputs
from settlement.protocol.fields import FieldReader

__all__ = [
    "DetailQuery",
    "DetailOutput",
    "Download",
    "DownloadOutput",
    "FileInfo",
    "INPUT_TYPES",
    "StmtInfo",
    "TotalsOutput",
    "TotalsQuery",
    "Upload",
    "UploadOutput",
    "read_detail_query",
    "read_download",
    "read_totals_query",
    "read_upload",
]

Text = str | None

# Field sizes from the interface: ids C(30), divisions C(6), codes C(6). The interface gives file names no size.
ID_LEN = 30
ADMDVS_LEN = 6
CODE_LEN = 6
FILENAME_LEN = 200

_DATETIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T].*")


# ---------------------------------------------------------------------------
# Raw input nodes


class TotalsData(msgspec.Struct):
    insutype: Text = None
    clr_type: Text = None
    setl_optins: Text = None
    stmt_begndate: Text = None
    stmt_enddate: Text = None
    medfee_sumamt: Any = None
    fund_pay_sumamt: Any = None
    acct_pay: Any = None
    fixmedins_setl_cnt: Any = None
    # Client programs differ in the key's case (refd_setl_flag or REFD_SETL_FLAG), so both are read.
    refd_setl_flag: Text = None
    REFD_SETL_FLAG: Text = None


class TotalsInput(msgspec.Struct):
    """3201 totals reconciliation."""

    data: TotalsData | None = None


class DetailData(msgspec.Struct):
    setl_optins: Text = None
    file_qury_no: Text = None
    stmt_begndate: Text = None
    stmt_enddate: Text = None
    medfee_sumamt: Any = None
    fund_pay_sumamt: Any = None
    cash_payamt: Any = None
    fixmedins_setl_cnt: Any = None
    clr_type: Text = None
    refd_setl_flag: Text = None
    REFD_SETL_FLAG: Text = None


class DetailInput(msgspec.Struct):
    """3202 detail reconciliation of a file uploaded by 9101."""

    data: DetailData | None = None


class UploadIn(msgspec.Struct):
    content: Any = msgspec.field(default=None, name="in")
    filename: Text = None
    fixmedins_code: Text = None


class UploadInput(msgspec.Struct):
    """9101 file upload."""

    fsUploadIn: UploadIn | None = None


class DownloadIn(msgspec.Struct):
    file_qury_no: Text = None
    filename: Text = None
    fixmedins_code: Text = None


class DownloadInput(msgspec.Struct):
    """9102 file download."""

    fsDownloadIn: DownloadIn | None = None


# infno -> Struct of its ``input`` node, registered with ``settlement.protocol.inputs``.
INPUT_TYPES: dict[str, type[msgspec.Struct]] = {
    "3201": TotalsInput,
    "3202": DetailInput,
    "9101": UploadInput,
    "9102": DownloadInput,
}

inputs.register_inputs(INPUT_TYPES)


# ---------------------------------------------------------------------------
# Checked requests


class TotalsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A checked 3201 request, with ``include_cancels`` False for ``refd_setl_flag`` "0"."""

    insutype: str
    clr_type: str
    setl_optins: str
    begin: str
    end: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    fixmedins_setl_cnt: int
    include_cancels: bool


class DetailQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A checked 3202 request. A ``clr_type`` of None covers every clearing type of the agency."""

    setl_optins: str
    file_qury_no: str
    begin: str
    end: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    cash_payamt: int
    fixmedins_setl_cnt: int
    clr_type: str | None
    include_cancels: bool


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    content: bytes
    filename: str
    fixmedins_code: str | None


class Download(msgspec.Struct, frozen=True, kw_only=True):
    file_qury_no: str
    filename: str | None
    fixmedins_code: str | None


def _node(reader: FieldReader, name: str, value: Any) -> Any:
    if value is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=reader.at(name))
    return value


def _day(f: FieldReader, name: str, value: str | None) -> str:
    """Check a whole-day date. A date with a time of day raises BAD_DATE_RANGE, because reconciliation covers whole days."""
    if isinstance(value, str) and _DATETIME_SHAPE.fullmatch(value):
        raise SettlementError(
            ErrorCode.BAD_DATE_RANGE, field=f.at(name), value=value,
            detail="对账按整日进行，日期格式应为 yyyy-MM-dd", detail_en="reconciliation covers whole days; the date must be yyyy-MM-dd",
        )
    return f.date(name, value)


def _period(f: FieldReader, begin: str | None, end: str | None) -> tuple[str, str]:
    first = _day(f, "stmt_begndate", begin)
    last = _day(f, "stmt_enddate", end)
    # ISO dates order as text, so a string comparison orders the days.
    if last < first:
        raise SettlementError(
            ErrorCode.BAD_DATE_RANGE, field=f.at("stmt_enddate"), value=last,
            detail=f"早于起始日期 {first}", detail_en=f"is before the first day {first}",
        )
    return first, last


def _count(f: FieldReader, name: str, value: Any) -> int:
    """Read a settlement count sent as a JSON integer or as a string of digits."""
    f.require(name, value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return money.parse_count(value, f.at(name))


def _include_cancels(f: FieldReader, lower: str | None, upper: str | None) -> bool:
    """Read ``refd_setl_flag`` in either spelling. "0" leaves cancel records out, and "1" or no value counts them."""
    name, value = ("REFD_SETL_FLAG", upper) if lower in (None, "") else ("refd_setl_flag", lower)
    return f.code(name, value, codes.FLAG, required=False) != "0"


def _agency(f: FieldReader, value: str | None) -> str:
    agency = f.text("setl_optins", value, max_len=ADMDVS_LEN)
    if not (len(agency) == ADMDVS_LEN and agency.isdigit()):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field=f.at("setl_optins"), value=agency,
            detail="清算经办机构应为 6 位行政区划代码", detail_en="the clearing agency must be a 6-digit division code",
        )
    return agency


def read_totals_query(raw: TotalsInput) -> TotalsQuery:
    """Check a 3201 request. Totals may be negative, because a day can hold only cancels."""
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    insutype = f.code("insutype", data.insutype, codes.INSUTYPE)
    clr_type = f.text("clr_type", data.clr_type, max_len=CODE_LEN)
    setl_optins = _agency(f, data.setl_optins)
    begin, end = _period(f, data.stmt_begndate, data.stmt_enddate)
    return TotalsQuery(
        insutype=insutype, clr_type=clr_type, setl_optins=setl_optins, begin=begin, end=end,
        medfee_sumamt=f.amount("medfee_sumamt", data.medfee_sumamt, allow_negative=True),
        fund_pay_sumamt=f.amount("fund_pay_sumamt", data.fund_pay_sumamt, allow_negative=True),
        acct_pay=f.amount("acct_pay", data.acct_pay, allow_negative=True),
        fixmedins_setl_cnt=_count(f, "fixmedins_setl_cnt", data.fixmedins_setl_cnt),
        include_cancels=_include_cancels(f, data.refd_setl_flag, data.REFD_SETL_FLAG),
    )


def read_detail_query(raw: DetailInput) -> DetailQuery:
    """Check a 3202 request. Whether the uploaded file adds up to it is checked once the file is read."""
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    setl_optins = _agency(f, data.setl_optins)
    file_qury_no = f.text("file_qury_no", data.file_qury_no, max_len=ID_LEN)
    begin, end = _period(f, data.stmt_begndate, data.stmt_enddate)
    return DetailQuery(
        setl_optins=setl_optins, file_qury_no=file_qury_no, begin=begin, end=end,
        medfee_sumamt=f.amount("medfee_sumamt", data.medfee_sumamt, allow_negative=True),
        fund_pay_sumamt=f.amount("fund_pay_sumamt", data.fund_pay_sumamt, allow_negative=True),
        cash_payamt=f.amount("cash_payamt", data.cash_payamt, allow_negative=True),
        fixmedins_setl_cnt=_count(f, "fixmedins_setl_cnt", data.fixmedins_setl_cnt),
        clr_type=f.text("clr_type", data.clr_type, max_len=CODE_LEN, required=False),
        include_cancels=_include_cancels(f, data.refd_setl_flag, data.REFD_SETL_FLAG),
    )


def _file_bytes(f: FieldReader, value: Any) -> bytes:
    """Decode the uploaded bytes: a base64 string (Jackson's default form of a Java byte[]) or a JSON array of bytes.

    Array items may be signed (-128..127, Java's byte) or unsigned (0..255).
    """
    f.require("in", value)
    if isinstance(value, str):
        try:
            content = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=f.at("in"), value=value,
                detail="应为 base64 编码的文件内容或字节数组", detail_en="must be the file content in base64 or an array of bytes",
            ) from None
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not -128 <= item <= 255:
                raise SettlementError(
                    ErrorCode.INVALID_FIELD, field=f"{f.at('in')}[{index}]", value=item,
                    detail="字节应为 -128 到 255 的整数", detail_en="a byte must be an integer from -128 to 255",
                )
        content = bytes(item & 0xFF for item in value)
    else:
        raise SettlementError(ErrorCode.WRONG_TYPE, field=f.at("in"), value=type(value).__name__, detail="string | array")
    if not content:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=f.at("in"))
    return content


def read_upload(raw: UploadInput) -> Upload:
    root = FieldReader("input")
    node = _node(root, "fsUploadIn", raw.fsUploadIn)
    f = root.child("fsUploadIn")
    return Upload(
        content=_file_bytes(f, node.content),
        filename=f.text("filename", node.filename, max_len=FILENAME_LEN),
        fixmedins_code=f.text("fixmedins_code", node.fixmedins_code, max_len=ID_LEN, required=False),
    )


def read_download(raw: DownloadInput) -> Download:
    root = FieldReader("input")
    node = _node(root, "fsDownloadIn", raw.fsDownloadIn)
    f = root.child("fsDownloadIn")
    return Download(
        file_qury_no=f.text("file_qury_no", node.file_qury_no, max_len=ID_LEN),
        filename=f.text("filename", node.filename, max_len=FILENAME_LEN, required=False),
        fixmedins_code=f.text("fixmedins_code", node.fixmedins_code, max_len=ID_LEN, required=False),
    )


# ---------------------------------------------------------------------------
# Outputs


class StmtInfo(msgspec.Struct):
    setl_optins: str
    stmt_rslt: str
    stmt_rslt_dscr: str


class TotalsOutput(msgspec.Struct):
    stmtinfo: StmtInfo


class FileInfo(msgspec.Struct):
    file_qury_no: str
    filename: str
    dld_endtime: str


class DetailOutput(msgspec.Struct):
    fileinfo: FileInfo


class UploadOutput(msgspec.Struct):
    file_qury_no: str
    filename: str
    fixmedins_code: str
    dld_endtime: str


class DownloadOutput(msgspec.Struct):
    """9102: the stored file, base64 in ``in`` like the upload's byte field.

    NOTE: the interface reference names the 9102 output only as the file content. This
    server returns the content base64-encoded inside the JSON envelope, like every output.
    """

    file_qury_no: str
    filename: str
    fixmedins_code: str
    content: str = msgspec.field(name="in")

