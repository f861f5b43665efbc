"""The ``input`` node of each transaction, as the HIS or pharmacy system sends it.

Every field is optional in shape so that a missing, ``null`` or ``""`` value reaches
``fields`` and is reported alike, with its path. Numeric fields are typed ``object``:
the decoder hands them over as ``JsonDecimal`` (JSON numbers, exact, with their literal text) or ``str`` (numbers
sent as strings), and the money parser decides. Unknown keys, such as regional
``exp_content`` extensions, are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from settlement.money import JsonDecimal
from settlement.protocol.envelope import validation_error

__all__ = [
    "DiagnosisInfo",
    "DrugInfo",
    "DrugSaleInput",
    "FeeCancelData",
    "FeeCancelInput",
    "FeeDetail",
    "FeeUploadInput",
    "INPUT_TYPES",
    "PersonQueryData",
    "PersonQueryInput",
    "RegisterCancelData",
    "RegisterCancelInput",
    "RegisterData",
    "RegisterInput",
    "SettleCancelData",
    "SettleCancelInput",
    "SettleData",
    "SettleInput",
    "SignInData",
    "SignInInput",
    "SignOutData",
    "register_inputs",
    "SignOutInput",
    "VisitInfo",
    "VisitInfoInput",
    "decode_input",
]

Text = str | None


class SignInData(msgspec.Struct):
    opter_no: Text = None
    mac: Text = None
    ip: Text = None


class SignInInput(msgspec.Struct):
    """9001 sign-in."""

    signIn: SignInData | None = None


class SignOutData(msgspec.Struct):
    sign_no: Text = None
    opter_no: Text = None


class SignOutInput(msgspec.Struct):
    """9002 sign-out."""

    signOut: SignOutData | None = None


class PersonQueryData(msgspec.Struct):
    mdtrt_cert_type: Text = None
    mdtrt_cert_no: Text = None
    card_sn: Text = None
    begntime: Text = None
    psn_cert_type: Text = None
    certno: Text = None
    psn_name: Text = None


class PersonQueryInput(msgspec.Struct):
    """1101 person information."""

    data: PersonQueryData | None = None


class RegisterData(msgspec.Struct):
    psn_no: Text = None
    insutype: Text = None
    begntime: Text = None
    mdtrt_cert_type: Text = None
    mdtrt_cert_no: Text = None
    ipt_otp_no: Text = None
    atddr_no: Text = None
    dr_name: Text = None
    dept_code: Text = None
    dept_name: Text = None
    caty: Text = None


class RegisterInput(msgspec.Struct):
    """2201 outpatient registration."""

    data: RegisterData | None = None


class RegisterCancelData(msgspec.Struct):
    psn_no: Text = None
    mdtrt_id: Text = None
    ipt_otp_no: Text = None


class RegisterCancelInput(msgspec.Struct):
    """2202 registration cancel."""

    data: RegisterCancelData | None = None


class VisitInfo(msgspec.Struct):
    mdtrt_id: Text = None
    psn_no: Text = None
    med_type: Text = None
    begntime: Text = None
    main_cond_dscr: Text = None
    dise_codg: Text = None
    dise_name: Text = None
    birctrl_type: Text = None
    birctrl_matn_date: Text = None
    matn_type: Text = None
    geso_val: Any = None


class DiagnosisInfo(msgspec.Struct):
    diag_type: Text = None
    diag_srt_no: Any = None
    diag_code: Text = None
    diag_name: Text = None
    diag_dept: Text = None
    dise_dor_no: Text = None
    dise_dor_name: Text = None
    diag_time: Text = None
    vali_flag: Text = None


class VisitInfoInput(msgspec.Struct):
    """2203 visit information (diagnoses and medical type)."""

    mdtrtinfo: VisitInfo | None = None
    diseinfo: list[DiagnosisInfo] | None = None


class FeeDetail(msgspec.Struct):
    """One row of 2204 ``feedetail`` or of pharmacy ``drugdetail``."""

    feedetl_sn: Text = None
    init_feedetl_sn: Text = None
    mdtrt_id: Text = None
    psn_no: Text = None
    chrg_bchno: Text = None
    dise_codg: Text = None
    rxno: Text = None
    rx_circ_flag: Text = None
    fee_ocur_time: Text = None
    med_list_codg: Text = None
    medins_list_codg: Text = None
    det_item_fee_sumamt: Any = None
    cnt: Any = None
    pric: Any = None
    sin_dos_dscr: Text = None
    used_frqu_dscr: Text = None
    prd_days: Any = None
    medc_way_dscr: Text = None
    bilg_dept_codg: Text = None
    bilg_dept_name: Text = None
    bilg_dr_codg: Text = None
    bilg_dr_name: Text = None
    acord_dept_codg: Text = None
    acord_dept_name: Text = None
    orders_dr_code: Text = None
    orders_dr_name: Text = None
    hosp_appr_flag: Text = None
    tcmdrug_used_way: Text = None
    etip_flag: Text = None
    etip_hosp_code: Text = None
    dscg_tkdrug_flag: Text = None
    matn_fee_flag: Text = None


class FeeUploadInput(msgspec.Struct):
    """2204 fee-detail upload."""

    feedetail: list[FeeDetail] | None = None


class FeeCancelData(msgspec.Struct):
    mdtrt_id: Text = None
    chrg_bchno: Text = None
    psn_no: Text = None


class FeeCancelInput(msgspec.Struct):
    """2205 fee-detail cancel."""

    data: FeeCancelData | None = None


class SettleData(msgspec.Struct):
    """2206 and 2207 ``data``; the four split amounts are sent with 2207 only."""

    psn_no: Text = None
    mdtrt_cert_type: Text = None
    mdtrt_cert_no: Text = None
    med_type: Text = None
    medfee_sumamt: Any = None
    psn_setlway: Text = None
    mdtrt_id: Text = None
    chrg_bchno: Text = None
    acct_used_flag: Text = None
    insutype: Text = None
    invono: Text = None
    mid_setl_flag: Text = None
    fulamt_ownpay_amt: Any = None
    overlmt_selfpay: Any = None
    preselfpay_amt: Any = None
    inscp_scp_amt: Any = None


class SettleInput(msgspec.Struct):
    """2206 pre-settlement and 2207 settlement."""

    data: SettleData | None = None


class SettleCancelData(msgspec.Struct):
    setl_id: Text = None
    mdtrt_id: Text = None
    psn_no: Text = None


class SettleCancelInput(msgspec.Struct):
    """2208 settlement cancel and 2103 pharmacy settlement cancel."""

    data: SettleCancelData | None = None


class DrugInfo(msgspec.Struct):
    psn_no: Text = None
    mdtrt_cert_type: Text = None
    mdtrt_cert_no: Text = None
    begntime: Text = None
    medfee_sumamt: Any = None
    insutype: Text = None
    dise_codg: Text = None
    dise_name: Text = None
    acct_used_flag: Text = None
    med_type: Text = None
    invono: Text = None


class DrugSaleInput(msgspec.Struct):
    """2101 pharmacy pre-settlement and 2102 pharmacy settlement, drug lines inline."""

    druginfo: DrugInfo | None = None
    drugdetail: list[FeeDetail] | None = None


class EmptyInput(msgspec.Struct):
    """Transactions whose input is not read."""


# infno -> Struct of its ``input`` node.
INPUT_TYPES: dict[str, type[msgspec.Struct]] = {
    "9001": SignInInput,
    "9002": SignOutInput,
    "1101": PersonQueryInput,
    "2201": RegisterInput,
    "2202": RegisterCancelInput,
    "2203": VisitInfoInput,
    "2203A": VisitInfoInput,
    "2204": FeeUploadInput,
    "2205": FeeCancelInput,
    "2206": SettleInput,
    "2207": SettleInput,
    "2208": SettleCancelInput,
    "2101": DrugSaleInput,
    "2102": DrugSaleInput,
    "2103": SettleCancelInput,
}

_DECODERS = {infno: msgspec.json.Decoder(kind, float_hook=JsonDecimal) for infno, kind in INPUT_TYPES.items()}


def register_inputs(types: dict[str, type[msgspec.Struct]]) -> None:
    """Add the input Structs of transactions defined in other protocol modules (inpatient, queries...)."""
    for infno, kind in types.items():
        INPUT_TYPES[infno] = kind
        _DECODERS[infno] = msgspec.json.Decoder(kind, float_hook=JsonDecimal)


def decode_input(infno: str, raw: bytes) -> msgspec.Struct:
    """Decode ``input`` for ``infno``; wrong JSON types raise a coded error with an ``input.`` path."""
    try:
        return _DECODERS[infno].decode(raw)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "input") from None
