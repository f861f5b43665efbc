"""Domain steps of the outpatient and pharmacy flows, between checked requests and the kernel.

Pure functions. They split fee lines with the kernel by their catalogue terms (2204 ``result``),
check a refund line against its original, turn stored lines into kernel ``FeeLine``s, check a claim's totals
against its lines, and build the national output blocks from a ``SettlementResult``.
The server adapter does the reading and writing around them.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import msgspec

from settlement import engine, money
from settlement.catalog import Catalog, CatalogEntry
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Person
from settlement.protocol import codes, outputs
from settlement.protocol.requests import FeeLineIn, SplitAmounts
from settlement.types import ChargeClass, ClaimInput, FeeLine, FundDetail, SchemeParams, SettlementOutputs, SettlementResult

__all__ = [
    "CLR_TYPE_BY_MED_TYPE",
    "FUND_PAY_TYPE_NAMES",
    "LineSplit",
    "MED_TYPE_WORDS",
    "NO_PRICE_CAP_MICRO",
    "age_in_years",
    "check_claim_total",
    "check_credential",
    "check_refund",
    "claim_line",
    "fee_result",
    "fund_detail_rows",
    "negated_outputs",
    "setl_info",
    "catalog_entry",
    "catalog_line",
    "split_lines",
]

# National code of the engine's medical types, reversed: the rule files name schemes by word.
MED_TYPE_WORDS = {"11": "outpatient_general", "14": "outpatient_chronic", "21": "inpatient", "41": "pharmacy"}

# Clearing category of a settlement by medical type: 11 outpatient, 21 inpatient, 41 pharmacy.
CLR_TYPE_BY_MED_TYPE = {"11": "11", "14": "11", "21": "21", "41": "41"}

# A price cap of 999999 yuan is how the interface writes "no cap".
NO_PRICE_CAP_MICRO = 999_999_000_000

FUND_PAY_TYPE_NAMES = {
    "310100": "职工基本医疗保险统筹基金",
    "310200": "职工基本医疗保险个人账户基金",
    "320100": "公务员医疗补助资金",
    "330100": "职工大额医疗费用补助基金",
    "390100": "城乡居民基本医疗保险基金",
    "390200": "城乡居民大病医疗保险基金",
    "610100": "医疗救助基金",
}


class LineSplit(msgspec.Struct, frozen=True):
    """A fee line split by the catalogue; the four parts add up to ``amount`` (fen)."""

    charge_class: ChargeClass
    selfpay_prop: int
    price_cap_micro: int | None
    fulamt_ownpay_amt: int
    overlmt_amt: int
    preselfpay_amt: int
    inscp_scp_amt: int
    in_catalog: bool


def catalog_line(line: FeeLineIn, entry: CatalogEntry | None) -> FeeLine:
    """Turn a checked line and its catalogue version into the kernel's ``FeeLine``.

    An item outside the catalogue is settled as class C (fully self-paid). The sender's
    line total is kept as the amount of record.
    """
    if entry is None or entry.charge_class is ChargeClass.C:
        return FeeLine(
            feedetl_sn=line.feedetl_sn, med_list_codg=line.med_list_codg, charge_class=ChargeClass.C,
            price_micro=line.price_micro, quantity=line.quantity, selfpay_prop=0,
            price_cap_micro=None if entry is None else entry.price_cap_micro, amount=line.amount,
        )
    return FeeLine(
        feedetl_sn=line.feedetl_sn, med_list_codg=line.med_list_codg, charge_class=entry.charge_class,
        price_micro=line.price_micro, quantity=line.quantity,
        selfpay_prop=entry.selfpay_prop if entry.charge_class is ChargeClass.B else 0,
        price_cap_micro=entry.price_cap_micro, amount=line.amount,
    )


def split_lines(params: SchemeParams, lines: Sequence[FeeLineIn], entries: Sequence[CatalogEntry | None]) -> list[LineSplit]:
    """Split lines with the settlement kernel, so a 2204 result always equals the split of a later 2207.

    The lines are settled as one claim with empty accumulators and the account unused. Only
    the per-line results are kept, because those depend on the line and its catalogue terms alone.
    """
    fee_lines = tuple(catalog_line(line, entry) for line, entry in zip(lines, entries, strict=True))
    result = engine.settle(ClaimInput(params=params, lines=fee_lines, accumulators={}, acct_used=False))
    return [
        LineSplit(
            charge_class=fee_line.charge_class,
            selfpay_prop=10_000 if fee_line.charge_class is ChargeClass.C else fee_line.selfpay_prop,
            price_cap_micro=fee_line.price_cap_micro,
            fulamt_ownpay_amt=split.fulamt_ownpay_amt,
            overlmt_amt=split.overlmt_amt,
            preselfpay_amt=split.preselfpay_amt,
            inscp_scp_amt=split.inscp_scp_amt,
            in_catalog=entry is not None,
        )
        for fee_line, entry, split in zip(fee_lines, entries, result.lines, strict=True)
    ]


def catalog_entry(catalog: Catalog, line: FeeLineIn) -> CatalogEntry | None:
    """Return the catalogue version in force on the fee date, or None for an item outside it."""
    fee_date = datetime.date.fromisoformat(line.fee_ocur_time[:10])
    try:
        return catalog.lookup(line.med_list_codg, fee_date, field=f"{line.path}.med_list_codg")
    except SettlementError:
        return None


def fee_result(feedetl_sn: str, amount: int, price_micro: int, quantity: int, split: LineSplit, med_chrgitm_type: str) -> outputs.FeeResult:
    """Build one 2204 ``result`` row (also a pharmacy ``detlcutinfo`` row)."""
    cap = NO_PRICE_CAP_MICRO if split.price_cap_micro is None else split.price_cap_micro
    return outputs.FeeResult(
        feedetl_sn=feedetl_sn,
        det_item_fee_sumamt=outputs.yuan(amount),
        cnt=outputs.quantity(quantity),
        pric=outputs.price(price_micro),
        pric_uplmt_amt=outputs.price(cap),
        selfpay_prop=outputs.ratio(split.selfpay_prop),
        fulamt_ownpay_amt=outputs.yuan(split.fulamt_ownpay_amt),
        overlmt_amt=outputs.yuan(split.overlmt_amt),
        preselfpay_amt=outputs.yuan(split.preselfpay_amt),
        inscp_scp_amt=outputs.yuan(split.inscp_scp_amt),
        chrgitm_lv=f"{int(split.charge_class):02d}",
        med_chrgitm_type=med_chrgitm_type,
        lmt_used_flag="0",
        memo="" if split.in_catalog else "目录外项目，全额自付",
    )


def check_refund(line: FeeLineIn, original_quantity: int, original_amount: int, refunded_quantity: int, refunded_amount: int) -> None:
    """Check a refund line (negative ``cnt``) against what is left of its original line.

    ``refunded_*`` are the sums of the earlier refunds of that original (negative). The
    refund may not take more than is left, and the last refund must take exactly the amount
    that is left, so that no fen of rounding stays on a line with nothing left of it.
    """
    left_quantity = original_quantity + refunded_quantity
    left_amount = original_amount + refunded_amount
    if -line.quantity > left_quantity:
        raise SettlementError(
            ErrorCode.OVER_REFUND,
            field=f"{line.path}.cnt",
            value=line.init_feedetl_sn,
            detail=f"剩余数量 {money.format_quantity(left_quantity)}，本次退 {money.format_quantity(-line.quantity)}",
            detail_en=f"{money.format_quantity(left_quantity)} left, refund of {money.format_quantity(-line.quantity)}",
        )
    if -line.quantity == left_quantity and -line.amount != left_amount:
        raise SettlementError(
            ErrorCode.REFUND_RESIDUE,
            field=f"{line.path}.det_item_fee_sumamt",
            value=line.init_feedetl_sn,
            detail=f"{money.format_amount(left_amount + line.amount)}；最后一笔退费应为 {money.format_amount(-left_amount)}",
            detail_en=f"{money.format_amount(left_amount + line.amount)}; the last refund must be {money.format_amount(-left_amount)}",
        )


# Stored classes by value: a dict look-up costs a tenth of calling the enum, once per line of every settlement.
_CHARGE_CLASSES = {member.value: member for member in ChargeClass}


def claim_line(feedetl_sn: str, med_list_codg: str, amount: int, price_micro: int, quantity: int, charge_class: int,
               selfpay_prop: int, price_cap_micro: int | None) -> FeeLine:
    """Turn a stored, split line into the kernel's ``FeeLine`` (the sender's line total is kept)."""
    return FeeLine(
        feedetl_sn=feedetl_sn,
        med_list_codg=med_list_codg,
        charge_class=_CHARGE_CLASSES.get(charge_class) or ChargeClass(charge_class),
        price_micro=price_micro,
        quantity=quantity,
        selfpay_prop=selfpay_prop if charge_class == ChargeClass.B else 0,
        price_cap_micro=price_cap_micro,
        amount=amount,
    )


def check_claim_total(field: str, claimed: int, chrg_bchno: str, amounts: list[int]) -> None:
    """Reject a claim whose ``medfee_sumamt`` differs from the stored lines of its batch, with no tolerance."""
    total = sum(amounts)
    if claimed != total:
        raise SettlementError(
            ErrorCode.SUM_MISMATCH,
            field=field,
            value=money.format_amount(claimed),
            detail=(
                f"收费批次 {chrg_bchno} 的 {len(amounts)} 条明细合计 {money.format_amount(total)}，"
                f"差额 {money.format_amount(abs(claimed - total))}"
            ),
            detail_en=(
                f"the {len(amounts)} stored lines of {chrg_bchno} total {money.format_amount(total)}, "
                f"difference {money.format_amount(abs(claimed - total))}"
            ),
        )


def check_splits(splits: SplitAmounts, result: SettlementOutputs) -> None:
    """Reject a 2207 whose split amounts, when sent, differ from those recomputed from the details."""
    for name, computed in (
        ("fulamt_ownpay_amt", result.fulamt_ownpay_amt),
        ("overlmt_selfpay", result.overlmt_selfpay),
        ("preselfpay_amt", result.preselfpay_amt),
        ("inscp_scp_amt", result.inscp_scp_amt),
    ):
        sent = getattr(splits, name)
        if sent is not None and sent != computed:
            raise SettlementError(
                ErrorCode.SUM_MISMATCH,
                field=f"input.data.{name}",
                value=money.format_amount(sent),
                detail=f"按已上传明细计算为 {money.format_amount(computed)}",
                detail_en=f"the uploaded details give {money.format_amount(computed)}",
            )


def check_credential(person: Person | None, cert_type: str, cert_no: str, psn_no: str | None, field: str) -> Person:
    """Check that the credential of a request (ID number or card) belongs to the named person.

    ``person`` is the person the credential resolved to (None when it resolved to nobody).
    """
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field=field, value=cert_no, sensitive=True)
    if psn_no is not None and person.psn_no != psn_no:
        kind = "身份证号" if cert_type == codes.CERT_BY_ID else "卡号"
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field=field, value=cert_no, sensitive=True,
            detail=f"人员 {psn_no} 的{kind}", detail_en=f"the credential of person {psn_no}",
        )
    return person


def age_in_years(person: Person, on_date: datetime.date) -> int:
    birth = person.birth_date()
    had_birthday = (on_date.month, on_date.day) >= (birth.month, birth.day)
    return on_date.year - birth.year - (0 if had_birthday else 1)


def fund_detail_rows(details: tuple[FundDetail, ...], fund_pay_types: dict[str, str]) -> list[outputs.SetlDetail]:
    """Map the kernel's fund rows to ``setldetail`` rows with national fund codes; unpaid rows are left out."""
    rows = []
    for detail in details:
        if detail.fund_payamt == 0:
            continue
        code = fund_pay_types.get(detail.layer, detail.layer)
        limit = detail.crt_payb_lmt_amt
        rows.append(
            outputs.SetlDetail(
                fund_pay_type=code,
                inscp_scp_amt=outputs.yuan(detail.inscp_scp_amt),
                crt_payb_lmt_amt=outputs.yuan(limit if limit is not None else 0),
                fund_payamt=outputs.yuan(detail.fund_payamt),
                fund_pay_type_name=FUND_PAY_TYPE_NAMES.get(code, ""),
            )
        )
    return rows


def setl_info(
    *, result: SettlementOutputs, person: Person, mdtrt_id: str, med_type: str, insutype: str, cert_type: str,
    setl_time: str, msgid: str, clr_optins: str, setl_id: str | None,
) -> outputs.SetlInfo:
    """Build the national ``setlinfo`` block of a settlement or pre-settlement."""
    y = outputs.yuan
    on_date = datetime.date.fromisoformat(setl_time[:10])
    return outputs.SetlInfo(
        mdtrt_id=mdtrt_id,
        setl_id=setl_id,
        psn_no=person.psn_no,
        psn_name=person.psn_name,
        psn_cert_type=person.psn_cert_type,
        certno=person.certno,
        gend=person.gend,
        naty=person.naty,
        brdy=person.brdy,
        age=outputs.Decimal(age_in_years(person, on_date)).quantize(outputs.Decimal("0.1")),
        insutype=insutype,
        psn_type=person.psn_type,
        cvlserv_flag=person.cvlserv_flag,
        setl_time=setl_time,
        mdtrt_cert_type=cert_type,
        med_type=med_type,
        medfee_sumamt=y(result.medfee_sumamt),
        fulamt_ownpay_amt=y(result.fulamt_ownpay_amt),
        overlmt_selfpay=y(result.overlmt_selfpay),
        preselfpay_amt=y(result.preselfpay_amt),
        inscp_scp_amt=y(result.inscp_scp_amt),
        act_pay_dedc=y(result.act_pay_dedc),
        hifp_pay=y(result.hifp_pay),
        pool_prop_selfpay=outputs.ratio(result.pool_prop_selfpay),
        cvlserv_pay=y(result.cvlserv_pay),
        hifes_pay=y(0),
        hifmi_pay=y(result.hifmi_pay),
        hifob_pay=y(result.hifob_pay),
        maf_pay=y(result.maf_pay),
        oth_pay=y(0),
        fund_pay_sumamt=y(result.fund_pay_sumamt),
        psn_part_amt=y(result.psn_part_amt),
        acct_pay=y(result.acct_pay),
        psn_cash_pay=y(result.psn_cash_pay),
        hosp_part_amt=y(result.hosp_part_amt),
        balc=y(result.balc),
        acct_mulaid_pay=y(result.acct_mulaid_pay),
        medins_setl_id=msgid,
        clr_optins=clr_optins,
        clr_way="1",
        clr_type=CLR_TYPE_BY_MED_TYPE.get(med_type, "99"),
    )


def cancel_info(*, result: SettlementOutputs, mdtrt_id: str, setl_id: str, setl_time: str, msgid: str, clr_optins: str) -> outputs.SetlCancelInfo:
    """Build the 2208 block from the reversal's outputs (already negated, ``balc`` restored)."""
    y = outputs.yuan
    return outputs.SetlCancelInfo(
        mdtrt_id=mdtrt_id, setl_id=setl_id, clr_optins=clr_optins, setl_time=setl_time,
        medfee_sumamt=y(result.medfee_sumamt), fulamt_ownpay_amt=y(result.fulamt_ownpay_amt),
        overlmt_selfpay=y(result.overlmt_selfpay), preselfpay_amt=y(result.preselfpay_amt),
        inscp_scp_amt=y(result.inscp_scp_amt), act_pay_dedc=y(result.act_pay_dedc), hifp_pay=y(result.hifp_pay),
        pool_prop_selfpay=outputs.ratio(result.pool_prop_selfpay), cvlserv_pay=y(result.cvlserv_pay), hifes_pay=y(0),
        hifmi_pay=y(result.hifmi_pay), hifob_pay=y(result.hifob_pay), maf_pay=y(result.maf_pay), oth_pay=y(0),
        fund_pay_sumamt=y(result.fund_pay_sumamt), psn_part_amt=y(result.psn_part_amt), acct_pay=y(result.acct_pay),
        balc=y(result.balc), acct_mulaid_pay=y(result.acct_mulaid_pay), hosp_part_amt=y(result.hosp_part_amt),
        medins_setl_id=msgid, psn_cash_pay=y(result.psn_cash_pay),
    )


def drug_cancel_info(*, result: SettlementOutputs, mdtrt_id: str, setl_id: str, setl_time: str, msgid: str, clr_optins: str) -> outputs.DrugCancelSetlInfo:
    """Build the 2103 block, which names the person's part ``psn_pay`` and the cash ``cash_payamt``."""
    y = outputs.yuan
    return outputs.DrugCancelSetlInfo(
        mdtrt_id=mdtrt_id, setl_id=setl_id, clr_optins=clr_optins, medfee_sumamt=y(result.medfee_sumamt), setl_time=setl_time,
        fulamt_ownpay_amt=y(result.fulamt_ownpay_amt), overlmt_selfpay=y(result.overlmt_selfpay),
        preselfpay_amt=y(result.preselfpay_amt), inscp_scp_amt=y(result.inscp_scp_amt), act_pay_dedc=y(result.act_pay_dedc),
        hifp_pay=y(result.hifp_pay), pool_prop_selfpay=outputs.ratio(result.pool_prop_selfpay), cvlserv_pay=y(result.cvlserv_pay),
        hifes_pay=y(0), hifmi_pay=y(result.hifmi_pay), hifob_pay=y(result.hifob_pay), maf_pay=y(result.maf_pay), oth_pay=y(0),
        fund_pay_sumamt=y(result.fund_pay_sumamt), psn_pay=y(result.psn_part_amt), acct_pay=y(result.acct_pay),
        cash_payamt=y(result.psn_cash_pay), balc=y(result.balc), acct_mulaid_pay=y(result.acct_mulaid_pay), medins_setl_id=msgid,
    )


def negated_outputs(result: SettlementResult) -> SettlementOutputs:
    """Return outputs with every amount negated except ``balc`` and the pool ratio (used only for display checks)."""
    o = result.outputs
    values = {name: -getattr(o, name) for name in o.__struct_fields__ if name not in ("balc", "pool_prop_selfpay")}
    return SettlementOutputs(**values, balc=o.balc, pool_prop_selfpay=o.pool_prop_selfpay)
