"""The ``output`` node of each transaction, and exact encoding of amounts.

Amounts leave the engine as ``Decimal`` built from integer fen (``yuan(1234)`` is
``Decimal("12.34")``) and are written by an encoder with ``decimal_format="number"``,
so the JSON carries ``12.34`` exactly, with its two decimals, and no float is involved.
Fields left at ``None`` are omitted (``setl_id`` of a pre-settlement, for example).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = [
    "BaseInfo",
    "DrugCancelSetlInfo",
    "FeeResult",
    "InsuInfo",
    "PersonInfoOutput",
    "RegisterOutput",
    "RegisterOutputData",
    "SetlCancelInfo",
    "SetlDetail",
    "SetlInfo",
    "SettleCancelOutput",
    "SettleOutput",
    "SignInOutput",
    "SignInOutputBlock",
    "SignOutOutput",
    "SignOutOutputBlock",
    "DrugSaleOutput",
    "DrugCancelOutput",
    "FeeUploadOutput",
    "encode_output",
    "price",
    "quantity",
    "ratio",
    "yuan",
]


def yuan(fen: int) -> Decimal:
    """Return fen as an exact two-decimal yuan amount."""
    return Decimal(fen).scaleb(-2)


def ratio(units: int) -> Decimal:
    """Return a 1e-4 ratio with four decimals (``7000`` gives ``0.7000``)."""
    return Decimal(units).scaleb(-4)


def price(micro: int) -> Decimal:
    """Return a 1e-6 yuan price with six decimals."""
    return Decimal(micro).scaleb(-6)


def quantity(units: int) -> Decimal:
    """Return a 1e-4 quantity with four decimals."""
    return Decimal(units).scaleb(-4)


class _Out(msgspec.Struct, omit_defaults=True):
    pass


class SignInOutputBlock(_Out):
    sign_time: str
    sign_no: str


class SignInOutput(_Out):
    signinoutb: SignInOutputBlock


class SignOutOutputBlock(_Out):
    sign_time: str


class SignOutOutput(_Out):
    signoutoutb: SignOutOutputBlock


class BaseInfo(_Out):
    psn_no: str
    psn_cert_type: str
    certno: str
    psn_name: str
    gend: str
    naty: str | None = None
    brdy: str | None = None
    age: Decimal | None = None


class InsuInfo(_Out):
    balc: Decimal
    insutype: str
    psn_type: str
    psn_insu_stas: str
    cvlserv_flag: str
    insuplc_admdvs: str
    psn_insu_date: str | None = None
    paus_insu_date: str | None = None
    emp_name: str | None = None


class PersonInfoOutput(_Out):
    baseinfo: BaseInfo
    insuinfo: list[InsuInfo]
    idetinfo: list[dict]


class RegisterOutputData(_Out):
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str


class RegisterOutput(_Out):
    data: RegisterOutputData


class FeeResult(_Out):
    feedetl_sn: str
    det_item_fee_sumamt: Decimal
    cnt: Decimal
    pric: Decimal
    pric_uplmt_amt: Decimal
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    chrgitm_lv: str
    med_chrgitm_type: str
    bas_medn_flag: str = "0"
    hi_nego_drug_flag: str = "0"
    chld_medc_flag: str = "0"
    list_sp_item_flag: str = "0"
    lmt_used_flag: str | None = None
    drt_reim_flag: str = "0"
    memo: str = ""


class FeeUploadOutput(_Out):
    result: list[FeeResult]


class SetlInfo(_Out):
    """The national SETL block of 2206/2207/2101/2102; ``setl_id`` only on a real settlement."""

    mdtrt_id: str
    psn_no: str
    psn_name: str
    psn_cert_type: str
    certno: str
    gend: str
    naty: str | None
    brdy: str | None
    age: Decimal | None
    insutype: str
    psn_type: str
    cvlserv_flag: str
    setl_time: str
    mdtrt_cert_type: str
    med_type: str
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    hosp_part_amt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    medins_setl_id: str
    clr_optins: str
    clr_way: str
    clr_type: str
    setl_id: str | None = None


class SetlDetail(_Out):
    fund_pay_type: str
    inscp_scp_amt: Decimal
    crt_payb_lmt_amt: Decimal
    fund_payamt: Decimal
    fund_pay_type_name: str
    setl_proc_info: str = ""


class SettleOutput(_Out):
    setlinfo: SetlInfo
    setldetail: list[SetlDetail]


class SetlCancelInfo(_Out):
    """The short block of a 2208 cancel: the original's amounts negated, ``balc`` restored."""

    mdtrt_id: str
    setl_id: str
    clr_optins: str
    setl_time: str
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    hosp_part_amt: Decimal
    medins_setl_id: str
    psn_cash_pay: Decimal


class SettleCancelOutput(_Out):
    setlinfo: SetlCancelInfo
    setldetail: list[SetlDetail]


class DrugSaleOutput(_Out):
    setlinfo: SetlInfo
    setldetail: list[SetlDetail]
    detlcutinfo: list[FeeResult]


class DrugCancelSetlInfo(_Out):
    """2103 block: as 2208 but with ``psn_pay`` and ``cash_payamt`` for the person's part and cash."""

    mdtrt_id: str
    setl_id: str
    clr_optins: str
    medfee_sumamt: Decimal
    setl_time: str
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_pay: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    medins_setl_id: str


class DrugCancelOutput(_Out):
    setlinfo: DrugCancelSetlInfo
    setldetail: list[SetlDetail]


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode_output(output: object) -> bytes:
    """Encode an output node; Decimal amounts become JSON numbers with their exact decimals."""
    return _ENCODER.encode(output)
