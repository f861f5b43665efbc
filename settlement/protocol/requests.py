"""Checked transaction requests: raw ``input`` Structs in, typed values with integer money out.

Each ``read_*`` function checks one transaction's input in the order the fields appear
in the interface and raises the first coded error it meets, with the field path.
"""

from __future__ import annotations

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import codes, inputs
from settlement.protocol.fields import FieldReader

__all__ = [
    "DrugSale",
    "FeeCancel",
    "FeeLineIn",
    "PersonQuery",
    "Registration",
    "RegistrationCancel",
    "SettleCancel",
    "SettleRequest",
    "SignIn",
    "SignOut",
    "SplitAmounts",
    "VisitInfoUpdate",
    "line_amount_from_price",
    "read_drug_sale",
    "read_fee_cancel",
    "read_fee_upload",
    "read_person_query",
    "read_registration",
    "read_registration_cancel",
    "read_settle",
    "read_settle_cancel",
    "read_sign_in",
    "read_sign_out",
    "read_visit_info",
]

# Field sizes from the interface: ids C(30), certificate numbers C(50), names C(50).
ID_LEN = 30
CERT_NO_LEN = 50
NAME_LEN = 50

# price (1e-6) x quantity (1e-4) is in 1e-10 yuan; one fen is 1e8 of those.
_PRODUCT_PER_FEN = 10**8


class SignIn(msgspec.Struct, frozen=True):
    opter_no: str
    mac: str | None
    ip: str


class SignOut(msgspec.Struct, frozen=True):
    sign_no: str
    opter_no: str


class PersonQuery(msgspec.Struct, frozen=True):
    cert_type: str
    cert_no: str
    card_sn: str | None
    psn_cert_type: str | None
    certno: str | None
    psn_name: str | None


class Registration(msgspec.Struct, frozen=True):
    psn_no: str
    insutype: str
    begntime: str
    cert_type: str
    cert_no: str
    ipt_otp_no: str
    atddr_no: str
    dr_name: str
    dept_code: str
    dept_name: str
    caty: str


class RegistrationCancel(msgspec.Struct, frozen=True):
    psn_no: str
    mdtrt_id: str
    ipt_otp_no: str


class VisitInfoUpdate(msgspec.Struct, frozen=True):
    mdtrt_id: str
    psn_no: str
    med_type: str
    begntime: str
    dise_codg: str | None
    dise_name: str | None
    diagnoses: tuple[dict, ...]


class FeeLineIn(msgspec.Struct, frozen=True):
    """One checked fee line: ``amount`` in fen, ``price_micro`` in 1e-6 yuan, ``quantity`` in 1e-4."""

    feedetl_sn: str
    init_feedetl_sn: str | None
    mdtrt_id: str | None
    psn_no: str | None
    chrg_bchno: str | None
    rxno: str | None
    fee_ocur_time: str
    med_list_codg: str
    medins_list_codg: str
    amount: int
    price_micro: int
    quantity: int
    path: str


class FeeCancel(msgspec.Struct, frozen=True):
    mdtrt_id: str
    chrg_bchno: str
    psn_no: str


class SplitAmounts(msgspec.Struct, frozen=True):
    """The four split amounts a 2207 may carry, copied by the HIS from its 2206 answer."""

    fulamt_ownpay_amt: int | None
    overlmt_selfpay: int | None
    preselfpay_amt: int | None
    inscp_scp_amt: int | None


class SettleRequest(msgspec.Struct, frozen=True):
    psn_no: str
    cert_type: str
    cert_no: str
    med_type: str
    medfee_sumamt: int
    psn_setlway: str
    mdtrt_id: str
    chrg_bchno: str
    acct_used: bool
    insutype: str
    invono: str | None
    splits: SplitAmounts


class SettleCancel(msgspec.Struct, frozen=True):
    setl_id: str
    mdtrt_id: str
    psn_no: str


class DrugSale(msgspec.Struct, frozen=True):
    psn_no: str
    cert_type: str
    cert_no: str
    begntime: str
    medfee_sumamt: int
    insutype: str
    med_type: str
    dise_codg: str | None
    acct_used: bool
    invono: str | None
    lines: tuple[FeeLineIn, ...]


def _node(reader: FieldReader, name: str, value: object) -> object:
    if value is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=reader.at(name))
    return value


def read_sign_in(raw: inputs.SignInInput) -> SignIn:
    root = FieldReader("input")
    data = _node(root, "signIn", raw.signIn)
    f = root.child("signIn")
    return SignIn(
        opter_no=f.text("opter_no", data.opter_no, max_len=20),
        mac=f.text("mac", data.mac, max_len=20, required=False),
        ip=f.text("ip", data.ip, max_len=20),
    )


def read_sign_out(raw: inputs.SignOutInput) -> SignOut:
    root = FieldReader("input")
    data = _node(root, "signOut", raw.signOut)
    f = root.child("signOut")
    return SignOut(
        sign_no=f.text("sign_no", data.sign_no, max_len=ID_LEN),
        opter_no=f.text("opter_no", data.opter_no, max_len=20),
    )


def read_person_query(raw: inputs.PersonQueryInput) -> PersonQuery:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    cert_type = f.code("mdtrt_cert_type", data.mdtrt_cert_type, codes.MDTRT_CERT_TYPE)
    return PersonQuery(
        cert_type=cert_type,
        cert_no=f.text("mdtrt_cert_no", data.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        card_sn=f.text("card_sn", data.card_sn, max_len=32, required=False),
        psn_cert_type=f.code("psn_cert_type", data.psn_cert_type, codes.PSN_CERT_TYPE, required=False),
        certno=f.text("certno", data.certno, max_len=CERT_NO_LEN, required=False, sensitive=True),
        psn_name=f.text("psn_name", data.psn_name, max_len=NAME_LEN, required=False, sensitive=True),
    )


def read_registration(raw: inputs.RegisterInput) -> Registration:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return Registration(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        insutype=f.code("insutype", data.insutype, codes.INSUTYPE),
        begntime=f.datetime("begntime", data.begntime),
        cert_type=f.code("mdtrt_cert_type", data.mdtrt_cert_type, codes.MDTRT_CERT_TYPE),
        cert_no=f.text("mdtrt_cert_no", data.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        ipt_otp_no=f.text("ipt_otp_no", data.ipt_otp_no, max_len=ID_LEN),
        atddr_no=f.text("atddr_no", data.atddr_no, max_len=ID_LEN),
        dr_name=f.text("dr_name", data.dr_name, max_len=NAME_LEN),
        dept_code=f.text("dept_code", data.dept_code, max_len=ID_LEN),
        dept_name=f.text("dept_name", data.dept_name, max_len=100),
        caty=f.text("caty", data.caty, max_len=6),
    )


def read_registration_cancel(raw: inputs.RegisterCancelInput) -> RegistrationCancel:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return RegistrationCancel(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        ipt_otp_no=f.text("ipt_otp_no", data.ipt_otp_no, max_len=ID_LEN),
    )


def read_visit_info(raw: inputs.VisitInfoInput) -> VisitInfoUpdate:
    root = FieldReader("input")
    info = _node(root, "mdtrtinfo", raw.mdtrtinfo)
    f = root.child("mdtrtinfo")
    update = VisitInfoUpdate(
        mdtrt_id=f.text("mdtrt_id", info.mdtrt_id, max_len=ID_LEN),
        psn_no=f.text("psn_no", info.psn_no, max_len=ID_LEN),
        med_type=f.code("med_type", info.med_type, codes.MED_TYPE),
        begntime=f.datetime("begntime", info.begntime),
        dise_codg=f.text("dise_codg", info.dise_codg, max_len=ID_LEN, required=False),
        dise_name=f.text("dise_name", info.dise_name, max_len=500, required=False),
        diagnoses=(),
    )

    diagnoses = []
    for index, row in enumerate(raw.diseinfo or ()):
        d = root.child(f"diseinfo[{index}]")
        diagnoses.append(
            {
                "diag_type": d.text("diag_type", row.diag_type, max_len=3),
                "diag_srt_no": d.require("diag_srt_no", row.diag_srt_no) and str(row.diag_srt_no),
                "diag_code": d.text("diag_code", row.diag_code, max_len=20),
                "diag_name": d.text("diag_name", row.diag_name, max_len=100),
                "diag_dept": d.text("diag_dept", row.diag_dept, max_len=50, required=False),
                "dise_dor_no": d.text("dise_dor_no", row.dise_dor_no, max_len=ID_LEN, required=False),
                "dise_dor_name": d.text("dise_dor_name", row.dise_dor_name, max_len=NAME_LEN, required=False),
                "diag_time": d.datetime("diag_time", row.diag_time, required=False),
                "vali_flag": d.code("vali_flag", row.vali_flag, codes.FLAG, required=False),
            }
        )
    return msgspec.structs.replace(update, diagnoses=tuple(diagnoses))


def line_amount_from_price(price_micro: int, quantity: int) -> int:
    """Return price x quantity in fen, rounded once, half away from zero."""
    return money.round_half_away(price_micro * quantity, _PRODUCT_PER_FEN)


def _read_line(f: FieldReader, row: inputs.FeeDetail, *, in_visit: bool, tolerance_fen: int, batch: bool = True) -> FeeLineIn:
    feedetl_sn = f.text("feedetl_sn", row.feedetl_sn, max_len=ID_LEN)
    init_feedetl_sn = f.text("init_feedetl_sn", row.init_feedetl_sn, max_len=ID_LEN, required=False)
    mdtrt_id = f.text("mdtrt_id", row.mdtrt_id, max_len=ID_LEN, required=in_visit)
    psn_no = f.text("psn_no", row.psn_no, max_len=ID_LEN, required=in_visit)
    # Inpatient lines (2301) carry no charge batch: the stay is their batch.
    chrg_bchno = f.text("chrg_bchno", row.chrg_bchno, max_len=ID_LEN, required=in_visit and batch)
    rxno = f.text("rxno", row.rxno, max_len=ID_LEN, required=False)
    f.code("rx_circ_flag", row.rx_circ_flag, codes.FLAG, required=False)
    fee_ocur_time = f.datetime("fee_ocur_time", row.fee_ocur_time)
    med_list_codg = f.text("med_list_codg", row.med_list_codg, max_len=50)
    medins_list_codg = f.text("medins_list_codg", row.medins_list_codg, max_len=150, required=in_visit) or med_list_codg

    # Price first: a negative price is its own error, and the sign of a refund is on cnt.
    price_micro = f.price("pric", row.pric)
    quantity = f.quantity("cnt", row.cnt, allow_negative=True)
    amount = f.amount("det_item_fee_sumamt", row.det_item_fee_sumamt, allow_negative=quantity < 0)
    if quantity < 0 and init_feedetl_sn is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=f.at("init_feedetl_sn"))

    expected = line_amount_from_price(price_micro, quantity)
    if abs(expected - amount) > tolerance_fen:
        raise SettlementError(
            ErrorCode.LINE_AMOUNT_MISMATCH,
            field=f.at("det_item_fee_sumamt"),
            value=f"{feedetl_sn}: {money.format_amount(amount)}",
            detail=(
                f"pric × cnt = {_plain(money.format_price(price_micro))} × {_plain(money.format_quantity(quantity))}"
                f" = {money.format_amount(expected)}，差额 {money.format_amount(abs(expected - amount))}"
                f" 超过允差 {money.format_amount(tolerance_fen)}；请按最多 6 位小数上传单价"
            ),
            detail_en=(
                f"pric x cnt = {_plain(money.format_price(price_micro))} x {_plain(money.format_quantity(quantity))}"
                f" = {money.format_amount(expected)}, gap {money.format_amount(abs(expected - amount))}"
                f" exceeds the tolerance of {money.format_amount(tolerance_fen)}; send pric with up to 6 decimals"
            ),
        )

    return FeeLineIn(
        feedetl_sn=feedetl_sn,
        init_feedetl_sn=init_feedetl_sn,
        mdtrt_id=mdtrt_id,
        psn_no=psn_no,
        chrg_bchno=chrg_bchno,
        rxno=rxno,
        fee_ocur_time=fee_ocur_time,
        med_list_codg=med_list_codg,
        medins_list_codg=medins_list_codg,
        amount=amount,
        price_micro=price_micro,
        quantity=quantity,
        path=f.path,
    )


def _read_lines(
    root: FieldReader, name: str, rows: list[inputs.FeeDetail] | None, *, in_visit: bool, max_lines: int, tolerance_fen: int,
    batch: bool = True,
) -> tuple[FeeLineIn, ...]:
    if not rows:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=root.at(name))
    if len(rows) > max_lines:
        raise SettlementError(ErrorCode.TOO_MANY_LINES, field=root.at(name), value=len(rows), detail=str(max_lines))

    lines = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        line = _read_line(root.child(f"{name}[{index}]"), row, in_visit=in_visit, tolerance_fen=tolerance_fen, batch=batch)
        if line.feedetl_sn in seen:
            raise SettlementError(ErrorCode.DUPLICATE_FEEDETL_SN, field=f"{line.path}.feedetl_sn", value=line.feedetl_sn)
        seen.add(line.feedetl_sn)
        lines.append(line)
    return tuple(lines)


def read_fee_upload(raw: inputs.FeeUploadInput, *, max_lines: int, tolerance_fen: int) -> tuple[FeeLineIn, ...]:
    """Check a 2204 upload; every line must name the same visit and person."""
    root = FieldReader("input")
    lines = _read_lines(root, "feedetail", raw.feedetail, in_visit=True, max_lines=max_lines, tolerance_fen=tolerance_fen)
    first = lines[0]
    for line in lines[1:]:
        if line.mdtrt_id != first.mdtrt_id:
            raise SettlementError(
                ErrorCode.PERSON_MISMATCH, field=f"{line.path}.mdtrt_id", value=line.mdtrt_id,
                detail=f"第一条明细的就诊 {first.mdtrt_id}", detail_en=f"the visit {first.mdtrt_id} of the first line",
            )
        if line.psn_no != first.psn_no:
            raise SettlementError(
                ErrorCode.PERSON_MISMATCH, field=f"{line.path}.psn_no", value=line.psn_no,
                detail=f"第一条明细的人员 {first.psn_no}", detail_en=f"the person {first.psn_no} of the first line",
            )
    return lines


def read_fee_cancel(raw: inputs.FeeCancelInput) -> FeeCancel:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return FeeCancel(
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        chrg_bchno=f.text("chrg_bchno", data.chrg_bchno, max_len=ID_LEN),
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
    )


def read_settle(raw: inputs.SettleInput) -> SettleRequest:
    """Check a 2206 or 2207 request; the split amounts are optional and checked later against the details."""
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return SettleRequest(
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
        cert_type=f.code("mdtrt_cert_type", data.mdtrt_cert_type, codes.MDTRT_CERT_TYPE),
        cert_no=f.text("mdtrt_cert_no", data.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        med_type=f.code("med_type", data.med_type, codes.MED_TYPE),
        medfee_sumamt=f.amount("medfee_sumamt", data.medfee_sumamt),
        psn_setlway=f.code("psn_setlway", data.psn_setlway, codes.PSN_SETLWAY),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        chrg_bchno=f.text("chrg_bchno", data.chrg_bchno, max_len=ID_LEN),
        acct_used=f.flag("acct_used_flag", data.acct_used_flag, codes.ACCT_USED_FLAG),
        insutype=f.code("insutype", data.insutype, codes.INSUTYPE),
        invono=f.text("invono", data.invono, max_len=20, required=False),
        splits=SplitAmounts(
            fulamt_ownpay_amt=f.amount("fulamt_ownpay_amt", data.fulamt_ownpay_amt, required=False),
            overlmt_selfpay=f.amount("overlmt_selfpay", data.overlmt_selfpay, required=False),
            preselfpay_amt=f.amount("preselfpay_amt", data.preselfpay_amt, required=False),
            inscp_scp_amt=f.amount("inscp_scp_amt", data.inscp_scp_amt, required=False),
        ),
    )


def read_settle_cancel(raw: inputs.SettleCancelInput) -> SettleCancel:
    root = FieldReader("input")
    data = _node(root, "data", raw.data)
    f = root.child("data")
    return SettleCancel(
        setl_id=f.text("setl_id", data.setl_id, max_len=ID_LEN),
        mdtrt_id=f.text("mdtrt_id", data.mdtrt_id, max_len=ID_LEN),
        psn_no=f.text("psn_no", data.psn_no, max_len=ID_LEN),
    )


def read_drug_sale(raw: inputs.DrugSaleInput, *, max_lines: int, tolerance_fen: int) -> DrugSale:
    """Check a 2101 or 2102 pharmacy sale with its drug lines."""
    root = FieldReader("input")
    info = _node(root, "druginfo", raw.druginfo)
    f = root.child("druginfo")
    sale = DrugSale(
        psn_no=f.text("psn_no", info.psn_no, max_len=ID_LEN),
        cert_type=f.code("mdtrt_cert_type", info.mdtrt_cert_type, codes.MDTRT_CERT_TYPE),
        cert_no=f.text("mdtrt_cert_no", info.mdtrt_cert_no, max_len=CERT_NO_LEN, sensitive=True),
        begntime=f.datetime("begntime", info.begntime),
        medfee_sumamt=f.amount("medfee_sumamt", info.medfee_sumamt),
        insutype=f.code("insutype", info.insutype, codes.INSUTYPE),
        med_type=f.code("med_type", info.med_type, codes.MED_TYPE, required=False) or "41",
        dise_codg=f.text("dise_codg", info.dise_codg, max_len=ID_LEN, required=False),
        acct_used=f.flag("acct_used_flag", info.acct_used_flag, codes.ACCT_USED_FLAG),
        invono=f.text("invono", info.invono, max_len=20, required=False),
        lines=(),
    )
    lines = _read_lines(root, "drugdetail", raw.drugdetail, in_visit=False, max_lines=max_lines, tolerance_fen=tolerance_fen)
    for line in lines:
        if line.quantity < 0:
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=f"{line.path}.cnt", value=money.format_quantity(line.quantity),
                detail="药店购药不接受退费明细，请用 2103 撤销整笔结算",
                detail_en="a pharmacy sale takes no refund lines; cancel the whole sale with 2103",
            )
    return msgspec.structs.replace(sale, lines=lines)


def _plain(number: str) -> str:
    """Drop trailing zeros of a formatted price or quantity, keeping at least two decimals ("3.330000" -> "3.33")."""
    whole, _, fraction = number.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"
