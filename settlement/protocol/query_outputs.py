"""The ``output`` node of the query transactions 5201, 5203, 5204, 5205 and 5206.

Amounts are ``Decimal`` built from integer fen with ``outputs.yuan`` and encoded with
``outputs.encode_output``, so they keep their two decimals and never pass through float.
Fields left at ``None`` are omitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

from settlement.protocol import outputs
from settlement.store import SetlDetailRow

__all__ = [
    "CumulativeInfo",
    "CumulativeOutput",
    "FeeLineRecord",
    "SettlementInfoOutput",
    "SettlementListOutput",
    "SettlementQueryInfo",
    "SettlementSummaryRow",
    "VisitListOutput",
    "VisitRecord",
    "query_setl_info",
    "setl_details",
]


class _Out(msgspec.Struct, omit_defaults=True):
    # Each subclass sets kw_only=True, so that optional fields can keep their place in the national field order.
    pass


class VisitRecord(_Out, kw_only=True):
    """One 5201 ``mdtrtinfo`` row. ``vali_flag`` is 0 for a cancelled registration."""

    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    fixmedins_name: str
    insutype: str
    med_type: str
    begntime: str
    mdtrt_cert_type: str
    ipt_otp_no: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    atddr_no: str | None = None
    dr_name: str | None = None
    dept_code: str | None = None
    dept_name: str | None = None
    caty: str | None = None
    vali_flag: str


class VisitListOutput(_Out, kw_only=True):
    mdtrtinfo: list[VisitRecord]


class SettlementQueryInfo(_Out, kw_only=True):
    """The 5203 ``setlinfo``: the SETL block with ``psn_pay`` and ``cash_payamt``, plus the 5203 extras.

    ``refd_setl_flag`` is 1 on a cancel record, whose amounts are the original's negated.
    NOTE: flxempe_flag, nwb_flag, pay_loc, hosp_lv, lmtpric_hosp_lv, dedc_hosp_lv, invono,
    opter_id and opter_name are left out, because the engine stores no national value for them.
    """

    mdtrt_id: str
    setl_id: str
    psn_no: str
    psn_name: str
    psn_cert_type: str
    certno: str
    gend: str
    naty: str | None = None
    brdy: str | None = None
    age: Decimal | None = None
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
    psn_pay: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal
    hosp_part_amt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    medins_setl_id: str
    clr_optins: str
    clr_way: str
    clr_type: str
    insu_optins: str
    emp_name: str | None = None
    fixmedins_code: str
    fixmedins_name: str
    fixmedins_poolarea: str
    begndate: str | None = None
    enddate: str
    refd_setl_flag: str
    year: str
    dise_codg: str | None = None
    dise_name: str | None = None
    opt_time: str


class SettlementInfoOutput(_Out, kw_only=True):
    setlinfo: SettlementQueryInfo
    setldetail: list[outputs.SetlDetail]


class FeeLineRecord(_Out, kw_only=True):
    """One 5204 row: a stored fee line of the settlement with its split, negated on a cancel record."""

    mdtrt_id: str
    setl_id: str
    feedetl_sn: str
    init_feedetl_sn: str | None = None
    rx_drord_no: str | None = None
    med_type: str
    fee_ocur_time: str
    cnt: Decimal
    pric: Decimal
    det_item_fee_sumamt: Decimal
    pric_uplmt_amt: Decimal
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    chrgitm_lv: str
    hilist_code: str
    med_list_codg: str
    medins_list_codg: str


class SettlementSummaryRow(_Out, kw_only=True):
    """One 5205 row: a settlement or cancel record of the person; a cancel names its original in ``init_setl_id``."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    insutype: str
    med_type: str
    clr_type: str
    clr_optins: str
    setl_time: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    psn_pay: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal
    medins_setl_id: str
    refd_setl_flag: str
    init_setl_id: str | None = None


class SettlementListOutput(_Out, kw_only=True):
    setlinfo: list[SettlementSummaryRow]


class CumulativeInfo(_Out, kw_only=True):
    """One 5206 ``cuminfo`` row: ``cum_type_code`` is a name of ``ACCUMULATOR_KEYS``, ``cum`` its value."""

    cum_type_code: str
    cum: Decimal


class CumulativeOutput(_Out, kw_only=True):
    """5206: the year's accumulators and the personal-account balance now."""

    psn_no: str
    year: str
    cum_ym: str | None = None
    balc: Decimal
    cuminfo: list[CumulativeInfo]


def query_setl_info(info: outputs.SetlInfo, **extras: object) -> SettlementQueryInfo:
    """Turn a 2207-style SETL block into the 5203 block: rename the person's part and cash, add ``extras``."""
    fields = msgspec.structs.asdict(info)
    fields["psn_pay"] = fields.pop("psn_part_amt")
    fields["cash_payamt"] = fields.pop("psn_cash_pay")
    fields.update(extras)
    return SettlementQueryInfo(**fields)


def setl_details(rows: Iterable[SetlDetailRow]) -> list[outputs.SetlDetail]:
    """Build ``setldetail`` from a stored record's fund rows, leaving out the funds that paid nothing, as 2207 does."""
    return [
        outputs.SetlDetail(
            fund_pay_type=row.fund_pay_type,
            inscp_scp_amt=outputs.yuan(row.inscp_scp_amt),
            crt_payb_lmt_amt=outputs.yuan(row.crt_payb_lmt_amt or 0),
            fund_payamt=outputs.yuan(row.fund_payamt),
            fund_pay_type_name=row.fund_pay_type_name,
        )
        for row in rows
        if row.fund_payamt != 0
    ]
