"""Inputs, checked requests and outputs of the inpatient transactions and of 2601 reversal.

2401 admission, 2402 discharge, 2404 admission cancel, 2405 discharge cancel, 2301 fee
upload, 2302 fee cancel, 2303 pre-settlement, 2304 settlement and 2305 settlement cancel
(which reads like 2208). 2303 and 2304 carry no ``chrg_bchno``: a stay settles every live
line uploaded for it, and the engine keys the stay's lines under its ``mdtrt_id``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import codes, inputs
from settlement.protocol.fields import FieldReader
from settlement.protocol.outputs import _Out
from settlement.protocol.requests import (
    CERT_NO_LEN,
    ID_LEN,
    NAME_LEN,
    FeeLineIn,
    SettleRequest,
    SplitAmounts,
    _node,
    _read_lines,
)

__all__ = [
    "Admission",
    "AdmissionInput",
    "AdmissionOutput",
    "Discharge",
    "DischargeInput",
    "Reversal",
    "ReversalInput",
    "StayFeeCancel",
    "StayFeeCancelInput",
    "StayRef",
    "StayRefInput",
    "read_admission",
    "read_discharge",
    "read_reversal",
    "read_stay_fee_cancel",
    "read_stay_ref",
    "read_stay_settle",
    "read_stay_upload",
]

Text = str | None


# ---------------------------------------------------------------------------
# Raw input nodes


class AdmissionData(msgspec.Struct):
    psn_no: Text = None
    insutype: Text = None
    coner_name: Text = None
    tel: Text = None
    begntime: Text = None
    mdtrt_cert_type: Text = None
    mdtrt_cert_no: Text = None
    med_type: Text = None
    ipt_no: Text = None
    medrcdno: Text = None
    atddr_no: Text = None
    chfpdr_name: Text = None
    adm_diag_dscr: Text = None
    adm_dept_codg: Text = None
    adm_dept_name: Text = None
    adm_bed: Text = None
    dscg_maindiag_code: Text = None
    dscg_maindiag_name: Text = None
    dise_codg: Text = None
    dise_name: Text = None


class AdmissionInput(msgspec.Struct):
    """2401 admission."""

    mdtrtinfo: AdmissionData | None = None
    diseinfo: list[dict[str, Any]] | None = None


class DischargeData(msgspec.Struct):
    mdtrt_id: Text = None
    psn_no: Text = None
    insutype: Text = None
    endtime: Text = None
    dise_codg: Text = None
    dise_name: Text = None
    dscg_dept_codg: Text = None
    dscg_dept_name: Text = None
    dscg_bed: Text = None
    dscg_way: Text = None
    die_date: Text = None


class DischargeInput(msgspec.Struct):
    """2402 discharge."""

    dscginfo: DischargeData | None = None
    diseinfo: list[dict[str, Any]] | None = None


class StayRefData(msgspec.Struct):
    mdtrt_id: Text = None
    psn_no: Text = None


class StayRefInput(msgspec.Struct):
    """2404 admission cancel and 2405 discharge cancel."""

    data: StayRefData | None = None


class StayFeeCancelData(msgspec.Struct):
    feedetl_sn: Text = None
    mdtrt_id: Text = None
    psn_no: Text = None


class StayFeeCancelInput(msgspec.Struct):
    """2302 inpatient fee cancel; ``feedetl_sn`` ``"0000"`` withdraws every unsettled line."""

    data: StayFeeCancelData | None = None


class ReversalData(msgspec.Struct):
    psn_no: Text = None
    omsgid: Text = None
    oinfno: Text = None


class ReversalInput(msgspec.Struct):
    """2601 reversal of a message whose outcome the client does not know."""

    data: ReversalData | None = None


INPUT_TYPES: dict[str, type[msgspec.Struct]] = {
    "2401": AdmissionInput,
    "2402": DischargeInput,
    "2404": StayRefInput,
    "2405": StayRefInput,
    "2301": inputs.FeeUploadInput,
    "2302": StayFeeCancelInput,
    "2303": inputs.SettleInput,
    "2304": inputs.SettleInput,
    "2305": inputs.SettleCancelInput,
    "2601": ReversalInput,
}
inputs.register_inputs(INPUT_TYPES)


# ---------------------------------------------------------------------------
# Checked requests


class Admission(msgspec.Struct, frozen=True):
    psn_no: str
    insutype: str
    begntime: str
    cert_type: str
    cert_no: str
    med_type: str
    ipt_no: str
    detail: dict[str, Any]


class Discharge(msgspec.Struct, frozen=True):
    mdtrt_id: str
    psn_no: str
    insutype: str
    endtime: str
    detail: dict[str, Any]


class StayRef(msgspec.Struct, frozen=True):
    mdtrt_id: str
    psn_no: str


class StayFeeCancel(msgspec.Struct, frozen=True):
    feedetl_sn: str
    mdtrt_id: str
    psn_no: str


class Reversal(msgspec.Struct, frozen=True):
    psn_no: str
    omsgid: str
    oinfno: str


def read_admission(raw: AdmissionInput) -> Admission:
    root = FieldReader("input")
    data = _node(root, "mdtrtinfo", raw.mdtrtinfo)
    f = root.child("mdtrtinfo")
    admission = Admission(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        insutype=f.code("insutype", data.insutype, codes.INSUTYPE),
        begntime=f.datetime("begntime", data.begntime),
        cert_type=f.code("mdtrt_cert_type", data.mdtrt_cert_type, codes.MDTRT_CERT_TYPE),
        cert_no=f.text("mdtrt_cert_no", data.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        med_type=f.code("med_type", data.med_type, codes.MED_TYPE),
        ipt_no=f.text("ipt_no", data.ipt_no, max_len=ID_LEN),
        detail={
            "atddr_no": f.text("atddr_no", data.atddr_no, max_len=ID_LEN),
            "chfpdr_name": f.text("chfpdr_name", data.chfpdr_name, max_len=NAME_LEN),
            "adm_diag_dscr": f.text("adm_diag_dscr", data.adm_diag_dscr, max_len=200),
            "adm_dept_codg": f.text("adm_dept_codg", data.adm_dept_codg, max_len=ID_LEN),
            "adm_dept_name": f.text("adm_dept_name", data.adm_dept_name, max_len=100),
            "adm_bed": f.text("adm_bed", data.adm_bed, max_len=ID_LEN),
            "dscg_maindiag_code": f.text("dscg_maindiag_code", data.dscg_maindiag_code, max_len=20),
            "dscg_maindiag_name": f.text("dscg_maindiag_name", data.dscg_maindiag_name, max_len=300),
            "diseinfo": list(raw.diseinfo or []),
        },
    )
    if not admission.med_type.startswith("2"):
        raise SettlementError(
            ErrorCode.INVALID_CODE, field="input.mdtrtinfo.med_type", value=admission.med_type,
            detail="入院登记的医疗类别应为住院类（2 开头）", detail_en="an admission takes an inpatient medical type (starting with 2)",
        )
    return admission


def read_discharge(raw: DischargeInput) -> Discharge:
    root = FieldReader("input")
    data = _node(root, "dscginfo", raw.dscginfo)
    f = root.child("dscginfo")
    return Discharge(
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        insutype=f.code("insutype", data.insutype, codes.INSUTYPE),
        endtime=f.datetime("endtime", data.endtime),
        detail={
            "dscg_dept_codg": f.text("dscg_dept_codg", data.dscg_dept_codg, max_len=ID_LEN),
            "dscg_dept_name": f.text("dscg_dept_name", data.dscg_dept_name, max_len=100),
            "dscg_way": f.text("dscg_way", data.dscg_way, max_len=3),
            "dscg_bed": f.text("dscg_bed", data.dscg_bed, max_len=ID_LEN, required=False),
            "dise_codg": f.text("dise_codg", data.dise_codg, max_len=20, required=False),
            "dise_name": f.text("dise_name", data.dise_name, max_len=300, required=False),
            "diseinfo": list(raw.diseinfo or []),
        },
    )


def read_stay_ref(raw: StayRefInput) -> StayRef:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return StayRef(mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN), psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN))


def read_stay_fee_cancel(raw: StayFeeCancelInput) -> StayFeeCancel:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return StayFeeCancel(
        feedetl_sn=f.text("feedetl_sn", data.feedetl_sn, max_len=ID_LEN),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
    )


def read_stay_upload(raw: inputs.FeeUploadInput, *, max_lines: int, tolerance_fen: int) -> tuple[FeeLineIn, ...]:
    """Check a 2301 upload: every line names the same stay and person; the stay is the lines' batch."""
    root = FieldReader("input")
    lines = _read_lines(root, "feedetail", raw.feedetail, in_visit=True, max_lines=max_lines, tolerance_fen=tolerance_fen, batch=False)
    first = lines[0]
    for line in lines[1:]:
        for name in ("mdtrt_id", "psn_no"):
            if getattr(line, name) != getattr(first, name):
                raise SettlementError(
                    ErrorCode.PERSON_MISMATCH, field=f"{line.path}.{name}", value=getattr(line, name),
                    detail=f"第一条明细的 {name} {getattr(first, name)}", detail_en=f"the {name} {getattr(first, name)} of the first line",
                )
    return tuple(msgspec.structs.replace(line, chrg_bchno=line.mdtrt_id) for line in lines)


def read_stay_settle(raw: inputs.SettleInput) -> SettleRequest:
    """Check a 2303 or 2304 request.

    The request names no medical type: the stay's own, from its admission, settles it, so
    ``med_type`` is left empty here. ``chrg_bchno`` is the stay, the batch of its lines.
    """
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    mdtrt_id = f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN)
    request = SettleRequest(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        cert_type=f.code("mdtrt_cert_type", data.mdtrt_cert_type, codes.MDTRT_CERT_TYPE),
        cert_no=f.text("mdtrt_cert_no", data.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        med_type="",
        medfee_sumamt=f.amount("medfee_sumamt", data.medfee_sumamt),
        psn_setlway=f.code("psn_setlway", data.psn_setlway, codes.PSN_SETLWAY),
        mdtrt_id=mdtrt_id,
        chrg_bchno=mdtrt_id,
        acct_used=f.flag("acct_used_flag", data.acct_used_flag, codes.ACCT_USED_FLAG, default="0"),
        insutype=f.code("insutype", data.insutype, codes.INSUTYPE),
        invono=f.text("invono", data.invono, max_len=20, required=False),
        splits=SplitAmounts(
            fulamt_ownpay_amt=f.amount("fulamt_ownpay_amt", data.fulamt_ownpay_amt, required=False),
            overlmt_selfpay=f.amount("overlmt_selfpay", data.overlmt_selfpay, required=False),
            preselfpay_amt=f.amount("preselfpay_amt", data.preselfpay_amt, required=False),
            inscp_scp_amt=f.amount("inscp_scp_amt", data.inscp_scp_amt, required=False),
        ),
    )
    # Interim settlement (中途结算) would settle part of a stay and leave the rest open. This
    # engine settles a stay once, at discharge, so it rejects the flag instead of guessing.
    mid = f.code("mid_setl_flag", data.mid_setl_flag, codes.FLAG, required=False)
    if mid == "1":
        raise SettlementError(
            ErrorCode.INVALID_CODE, field="input.data.mid_setl_flag", value=mid,
            detail="不支持中途结算，请出院时一次结算", detail_en="interim settlement is not supported; settle the stay at discharge",
        )
    return request


def read_reversal(raw: ReversalInput) -> Reversal:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return Reversal(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        omsgid=f.text("omsgid", data.omsgid, max_len=ID_LEN),
        oinfno=f.text("oinfno", data.oinfno, max_len=6),
    )


# ---------------------------------------------------------------------------
# Outputs


class AdmissionResult(_Out):
    mdtrt_id: str


class AdmissionOutput(_Out):
    result: AdmissionResult
