"""Turn settlements, cancels and deposits into balanced journal postings; pure functions only.

Accounts are named by keys, one kind per prefix:

=============================================  ======  =====================================
key                                            normal  balance means
=============================================  ======  =====================================
``fund:{admdvs}:{insutype}:{fund_pay_type}``   debit   what the fund paid out
``personal:{psn_no}``                          credit  the personal account balance (>= 0)
``personal_funding:{admdvs}:{insutype}``       debit   what was injected into accounts
``medins_payable:{fixmedins_code}``            credit  what funds and accounts owe the institution
``medins_cash:{fixmedins_code}``               credit  cash the institution collected
``psn_cash:{admdvs}:{insutype}``               debit   cash paid by insured persons
=============================================  ======  =====================================

A settlement debits each paying fund, the personal account (own and mutual-aid part)
and the persons' cash account, and credits the institution with what the funds and
accounts owe it and with the cash it collected. ``hosp_part_amt`` moves no money, so it
has no posting. A cancel posts the original's lines with debit and credit swapped.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.store import (
    AccumulatorDelta,
    CancelRequest,
    DepositRequest,
    Posting,
    SetlDetailRow,
    SettlementPlan,
    SettlementRecord,
    SettlementRequest,
)
from settlement.types import ACCUMULATOR_KEYS, FundDetail, LineResult, SettlementOutputs, SettlementResult

__all__ = [
    "ACCOUNT_BALANCE_KEYS",
    "ACCOUNT_KINDS",
    "FUND_LAYERS",
    "STORED_ACCUMULATOR_KEYS",
    "AccountSpec",
    "accumulator_delta_rows",
    "build_cancel_record",
    "build_settlement_record",
    "check_balanced",
    "check_request",
    "deposit_postings",
    "fund_pay_type",
    "lock_key",
    "make_setl_id",
    "parse_account",
    "request_digest",
    "reverse_postings",
    "reverse_result",
    "settlement_posting_sides",
    "settlement_postings",
    "stored_deltas",
]

# Kinds of account and whether debits may exceed credits (only a personal account may not go below zero).
ACCOUNT_KINDS = {
    "fund": ("debit", 3),
    "personal": ("credit", 1),
    "personal_funding": ("debit", 2),
    "medins_payable": ("credit", 1),
    "medins_cash": ("credit", 1),
    "psn_cash": ("debit", 2),
}

# Personal-account balances come from the journal, so they are not stored as counters.
ACCOUNT_BALANCE_KEYS = ("acct_balc", "family_acct_balc")
STORED_ACCUMULATOR_KEYS = tuple(key for key in ACCUMULATOR_KEYS if key not in ACCOUNT_BALANCE_KEYS)

# National fund_pay_type per settlement layer and insurance type (310 employees, 390 residents).
_FUND_PAY_TYPES = {
    ("hifp", "310"): "310100",
    ("hifp", "390"): "390100",
    ("hifob", "310"): "330100",
    ("hifob", "390"): "330100",
    ("hifmi", "310"): "390200",
    ("hifmi", "390"): "390200",
    ("cvlserv", "310"): "320100",
    ("cvlserv", "390"): "320100",
    ("maf", "310"): "610100",
    ("maf", "390"): "610100",
    ("acct", "310"): "310200",
    ("acct", "390"): "310200",
}

_FUND_PAY_TYPE_NAMES = {
    "310100": "职工基本医疗保险统筹基金",
    "310200": "职工基本医疗保险个人账户基金",
    "320100": "公务员医疗补助资金",
    "330100": "职工大额医疗费用补助基金",
    "390100": "城乡居民基本医疗保险基金",
    "390200": "城乡居民大病医疗保险资金",
    "610100": "医疗救助基金",
}

# Settlement output field paid by each fund layer, in setldetail order.
FUND_LAYERS = (
    ("hifp", "hifp_pay"),
    ("hifob", "hifob_pay"),
    ("hifmi", "hifmi_pay"),
    ("cvlserv", "cvlserv_pay"),
    ("maf", "maf_pay"),
)


class AccountSpec(msgspec.Struct, frozen=True):
    """The parts of an account key, as stored in the accounts table."""

    key: str
    kind: str
    admdvs: str
    insutype: str
    owner: str
    fund_pay_type: str
    debits_must_not_exceed_credits: bool


def fund_pay_type(layer: str, insutype: str) -> str:
    """Return the national fund_pay_type of a settlement layer, or raise INVALID_CODE."""
    code = _FUND_PAY_TYPES.get((layer, insutype))
    if code is None:
        raise SettlementError(
            ErrorCode.INVALID_CODE,
            field="insutype",
            value=insutype,
            detail=f"账本不支持该险种的 {layer} 基金",
            detail_en=f"the ledger has no {layer} fund for this insurance type",
        )
    return code


def parse_account(key: str, field: str = "account") -> AccountSpec:
    """Split an account key into its parts, or raise UNKNOWN_ACCOUNT."""
    parts = key.split(":")
    rule = ACCOUNT_KINDS.get(parts[0])
    if rule is None or len(parts) != rule[1] + 1 or not all(parts[1:]):
        raise SettlementError(
            ErrorCode.UNKNOWN_ACCOUNT,
            field=field,
            value=key,
            detail="格式应为 种类:部分…，种类为 " + "、".join(ACCOUNT_KINDS),
            detail_en="expected kind:part..., kind one of " + ", ".join(ACCOUNT_KINDS),
        )

    kind = parts[0]
    admdvs = insutype = owner = code = ""
    if kind == "fund":
        admdvs, insutype, code = parts[1:]
    elif kind in ("personal_funding", "psn_cash"):
        admdvs, insutype = parts[1:]
    else:
        owner = parts[1]
    if kind == "personal":
        code = "310200"
    return AccountSpec(key, kind, admdvs, insutype, owner, code, kind == "personal")


_SETL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def check_request(request: SettlementRequest | CancelRequest | DepositRequest) -> None:
    """Raise REQUIRED_FIELD or INVALID_FIELD for an identifier the ledger cannot key or lock on.

    Identifiers become parts of account keys, which use ``:`` as separator, so they may not contain it.
    """
    names = {
        SettlementRequest: ("fixmedins_code", "msgid", "mdtrt_id", "chrg_bchno", "psn_no", "insuplc_admdvs", "insutype"),
        CancelRequest: ("fixmedins_code", "msgid", "setl_id", "mdtrt_id", "psn_no"),
        DepositRequest: ("msgid", "psn_no", "insuplc_admdvs", "insutype", "origin"),
    }[type(request)]
    for name in names:
        value = getattr(request, name)
        if not value:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field=name)
        if ":" in value and name not in ("msgid", "origin"):
            raise SettlementError(ErrorCode.INVALID_FIELD, field=name, value=value, detail="不能包含冒号", detail_en="must not contain a colon")
    family = getattr(request, "family_psn_no", None)
    if family is not None and (not family or ":" in family or family == request.psn_no):
        raise SettlementError(ErrorCode.INVALID_FIELD, field="family_psn_no", value=family, detail="须为他人的人员编号", detail_en="must be another person's psn_no")
    setl_time = getattr(request, "setl_time", None)
    if setl_time is not None and not _SETL_TIME.fullmatch(setl_time):
        raise SettlementError(ErrorCode.INVALID_FIELD, field="setl_time", value=setl_time, detail="格式应为 yyyy-MM-dd HH:mm:ss", detail_en="expected yyyy-MM-dd HH:mm:ss")


def lock_key(psn_no: str) -> int:
    """Return the signed 64-bit lock number of a person (a stable hash, the same in every process)."""
    digest = hashlib.blake2b(psn_no.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def make_setl_id(admdvs: str, txn_id: int) -> str:
    """Return the settlement id: the pooling region then the journal transaction id, 26 digits."""
    return f"{admdvs}{txn_id:020d}"


def request_digest(request: SettlementRequest | CancelRequest | DepositRequest | msgspec.Struct) -> str:
    """Return the SHA-256 of the request's content, leaving out ``msgid`` and ``setl_time``.

    Keys are sorted so that equal content always gives equal bytes.
    """
    fields = msgspec.structs.asdict(request)
    fields.pop("msgid", None)
    fields.pop("setl_time", None)
    if fields.get("year", 0) is None:
        # Absent means the year of setl_time; leaving it out keeps the digests of earlier records.
        del fields["year"]
    return hashlib.sha256(msgspec.json.encode(fields, order="sorted")).hexdigest()


def check_balanced(postings: Iterable[Posting], txn: object) -> None:
    """Raise UNBALANCED_TRANSACTION unless every line has exactly one positive side and the sides add up."""
    debits = credits = 0
    for posting in postings:
        one_side = (posting.debit > 0) != (posting.credit > 0)
        if not one_side or posting.debit < 0 or posting.credit < 0:
            raise SettlementError(
                ErrorCode.UNBALANCED_TRANSACTION,
                value=txn,
                detail=f"账户 {posting.account} 的分录借 {posting.debit} 贷 {posting.credit} 须恰有一方为正",
                detail_en=f"line of {posting.account} has debit {posting.debit} and credit {posting.credit}; exactly one must be positive",
            )
        debits += posting.debit
        credits += posting.credit
    if debits != credits:
        raise SettlementError(
            ErrorCode.UNBALANCED_TRANSACTION,
            value=txn,
            detail=f"借方合计 {debits} 分，贷方合计 {credits} 分",
            detail_en=f"debits total {debits} fen, credits total {credits} fen",
        )


def _line(account: str, amount: int, normal_debit: bool) -> Posting | None:
    """Post ``amount`` on the given side, or on the other side when it is negative; None for zero."""
    if amount == 0:
        return None
    if (amount > 0) == normal_debit:
        return Posting(account, debit=abs(amount))
    return Posting(account, credit=abs(amount))


@functools.lru_cache(maxsize=1024)
def _fund_accounts(admdvs: str, insutype: str) -> tuple[tuple[str, str], ...]:
    """Return (account key, output field) of each fund layer of a region and insurance type."""
    return tuple((f"fund:{admdvs}:{insutype}:{fund_pay_type(layer, insutype)}", field) for layer, field in FUND_LAYERS)


def settlement_posting_sides(
    admdvs: str,
    insutype: str,
    psn_no: str,
    family_psn_no: str | None,
    fixmedins_code: str,
    amount: Callable[[str], int],
) -> list[tuple[str, int, int]]:
    """Return ``(account, debit, credit)`` of each line a settlement posts; zero amounts give no line.

    ``amount(field)`` returns a national output field in fen. Replay reads it straight from
    the kernel's output row, and the ledger from the output struct, so both post by the
    same rules.
    """
    mutual_aid = amount("acct_mulaid_pay")
    cash = amount("psn_cash_pay")
    lines = [(account, amount(field), True) for account, field in _fund_accounts(admdvs, insutype)]
    lines.append((f"personal:{psn_no}", amount("acct_pay") - mutual_aid, True))
    if mutual_aid:
        lines.append((f"personal:{family_psn_no}", mutual_aid, True))
    lines.append((f"psn_cash:{admdvs}:{insutype}", cash, True))
    lines.append((f"medins_payable:{fixmedins_code}", amount("fund_pay_sumamt") + amount("acct_pay"), False))
    lines.append((f"medins_cash:{fixmedins_code}", cash, False))

    sides = []
    for account, value, normal_debit in lines:
        if value == 0:
            continue
        # A negative amount (a reversal) goes on the other side.
        if (value > 0) == normal_debit:
            sides.append((account, abs(value), 0))
        else:
            sides.append((account, 0, abs(value)))
    return sides


def settlement_postings(request: SettlementRequest, outputs: SettlementOutputs) -> tuple[Posting, ...]:
    """Return the postings of a settlement from its national outputs (zero amounts give no line)."""
    sides = settlement_posting_sides(
        request.insuplc_admdvs,
        request.insutype,
        request.psn_no,
        request.family_psn_no,
        request.fixmedins_code,
        functools.partial(getattr, outputs),
    )
    return tuple(Posting(account, debit=debit, credit=credit) for account, debit, credit in sides)


def deposit_postings(request: DepositRequest) -> tuple[Posting, ...]:
    """Return the two lines of a personal-account deposit (or withdrawal, when the amount is negative)."""
    funding = _line(f"personal_funding:{request.insuplc_admdvs}:{request.insutype}", request.amount, True)
    personal = _line(f"personal:{request.psn_no}", request.amount, False)
    return tuple(posting for posting in (funding, personal) if posting is not None)


def reverse_postings(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    """Return the postings with debit and credit swapped."""
    return tuple(Posting(p.account, debit=p.credit, credit=p.debit) for p in postings)


def stored_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Return the non-zero changes of the stored counters (the account balances are left out)."""
    changes = {}
    for key in STORED_ACCUMULATOR_KEYS:
        delta = after[key] - before[key]
        if delta:
            changes[key] = delta
    return changes


def _inconsistent(request_id: str, field: str, detail: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.PLAN_INCONSISTENT, field=field, value=request_id, detail=detail, detail_en=detail_en)


def _check_outputs(request_id: str, outputs: SettlementOutputs) -> None:
    """Check the identities that make the postings balance.

    The fund total is the sum of the five fund layers, the person's part is account plus
    cash, the medical fee is fund plus person plus hospital part, and the mutual-aid part
    is within the account payment.
    """
    fund_total = sum(getattr(outputs, field) for _, field in FUND_LAYERS)
    identities = (
        ("fund_pay_sumamt", outputs.fund_pay_sumamt, fund_total),
        ("psn_part_amt", outputs.psn_part_amt, outputs.acct_pay + outputs.psn_cash_pay),
        ("medfee_sumamt", outputs.medfee_sumamt, outputs.fund_pay_sumamt + outputs.psn_part_amt + outputs.hosp_part_amt),
    )
    for field, stated, computed in identities:
        if stated != computed:
            raise _inconsistent(request_id, field, f"为 {stated}，各部分之和为 {computed}", f"is {stated} but its parts add up to {computed}")
    if abs(outputs.acct_mulaid_pay) > abs(outputs.acct_pay):
        raise _inconsistent(request_id, "acct_mulaid_pay", "超过 acct_pay", "exceeds acct_pay")


_ACCUMULATOR_KEY_SET = frozenset(ACCUMULATOR_KEYS)


def _check_accumulators(request_id: str, before: Mapping[str, int], after: Mapping[str, int]) -> None:
    unknown = sorted(after.keys() - _ACCUMULATOR_KEY_SET)
    if unknown:
        raise _inconsistent(request_id, "accumulators_after", f"含未知累计项 {unknown}", f"has unknown keys {unknown}")
    negative = sorted(key for key in STORED_ACCUMULATOR_KEYS if after.get(key, before[key]) < 0)
    if negative:
        raise _inconsistent(request_id, "accumulators_after", f"累计项 {negative} 为负数", f"keys {negative} would be negative")


def _full_after(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {key: after.get(key, before[key]) for key in ACCUMULATOR_KEYS}


def _setldetail(insutype: str, details: Iterable[FundDetail]) -> tuple[SetlDetailRow, ...]:
    rows = []
    for detail in details:
        code = fund_pay_type(detail.layer, insutype)
        rows.append(
            SetlDetailRow(
                fund_pay_type=code,
                fund_pay_type_name=_FUND_PAY_TYPE_NAMES.get(code, ""),
                layer=detail.layer,
                inscp_scp_amt=detail.inscp_scp_amt,
                crt_payb_lmt_amt=detail.crt_payb_lmt_amt,
                fund_payamt=detail.fund_payamt,
            )
        )
    return tuple(rows)


def build_settlement_record(
    request: SettlementRequest,
    plan: SettlementPlan,
    before: Mapping[str, int],
    *,
    txn_id: int,
    batch_attempt: int,
    digest: str,
) -> SettlementRecord:
    """Check a computed plan against the ledger state and return the record to store.

    ``before`` has every key of ACCUMULATOR_KEYS as committed. Raises PLAN_INCONSISTENT
    when the plan breaks an identity, moves an account balance by other than what it
    paid from the account, or leaves a counter below zero.
    """
    outputs = plan.result.outputs
    _check_outputs(request.msgid, outputs)
    _check_accumulators(request.msgid, before, plan.result.accumulators_after)
    after = _full_after(before, plan.result.accumulators_after)

    own_acct_pay = outputs.acct_pay - outputs.acct_mulaid_pay
    expected_balances = (
        ("acct_balc", before["acct_balc"] - own_acct_pay),
        ("family_acct_balc", before["family_acct_balc"] - outputs.acct_mulaid_pay),
    )
    for key, expected in expected_balances:
        if after[key] != expected:
            raise _inconsistent(request.msgid, key, f"应为 {expected}，结果为 {after[key]}", f"should be {expected}, the result has {after[key]}")
    if outputs.balc != after["acct_balc"]:
        raise _inconsistent(request.msgid, "balc", f"{outputs.balc} 与账户余额 {after['acct_balc']} 不符", f"{outputs.balc} differs from the account balance {after['acct_balc']}")
    if outputs.acct_mulaid_pay and not request.family_psn_no:
        raise _inconsistent(request.msgid, "acct_mulaid_pay", "请求未绑定共济账户", "the request names no mutual-aid account")

    postings = settlement_postings(request, outputs)
    check_balanced(postings, request.msgid)
    return SettlementRecord(
        txn_id=txn_id,
        setl_id=make_setl_id(request.insuplc_admdvs, txn_id),
        kind="settle",
        fixmedins_code=request.fixmedins_code,
        msgid=request.msgid,
        mdtrt_id=request.mdtrt_id,
        chrg_bchno=request.chrg_bchno,
        batch_attempt=batch_attempt,
        psn_no=request.psn_no,
        family_psn_no=request.family_psn_no,
        insuplc_admdvs=request.insuplc_admdvs,
        insutype=request.insutype,
        med_type=request.med_type,
        clr_type=request.clr_type,
        clr_optins=request.clr_optins,
        setl_time=request.setl_time,
        year=request.accumulator_year,
        feedetl_sns=request.feedetl_sns,
        original_setl_id=None,
        request_digest=digest,
        rule_version=plan.rule_version,
        catalog_version=plan.catalog_version,
        setldetail=_setldetail(request.insutype, plan.result.fund_details),
        setlinfo_extra=plan.setlinfo_extra,
        result=plan.result,
        claim=plan.claim,
        accumulators_before=dict(before),
        accumulators_after=after,
        postings=postings,
        request_input=request.input,
    )


def _negate_outputs(outputs: SettlementOutputs, balc_after: int) -> SettlementOutputs:
    negated = {field: -value for field, value in msgspec.structs.asdict(outputs).items()}
    # The ratio is not an amount, and balc is the restored balance, not a movement.
    negated["pool_prop_selfpay"] = outputs.pool_prop_selfpay
    negated["balc"] = balc_after
    return SettlementOutputs(**negated)


def reverse_result(original: SettlementRecord, now: Mapping[str, int]) -> SettlementResult:
    """Return the exact reversal of a stored settlement, given the accumulators now.

    Every amount is negated, each counter moves back by what the original added, and the
    money taken from the accounts returns to them. Nothing is recomputed.
    """
    added = {key: original.accumulators_after[key] - original.accumulators_before[key] for key in ACCUMULATOR_KEYS}
    after = {key: now[key] - added[key] for key in ACCUMULATOR_KEYS}
    result = original.result
    lines = tuple(
        LineResult(
            feedetl_sn=line.feedetl_sn,
            amount=-line.amount,
            fulamt_ownpay_amt=-line.fulamt_ownpay_amt,
            overlmt_amt=-line.overlmt_amt,
            preselfpay_amt=-line.preselfpay_amt,
            inscp_scp_amt=-line.inscp_scp_amt,
        )
        for line in result.lines
    )
    details = tuple(
        FundDetail(d.layer, -d.inscp_scp_amt, d.crt_payb_lmt_amt, -d.fund_payamt) for d in result.fund_details
    )
    return SettlementResult(
        outputs=_negate_outputs(result.outputs, after["acct_balc"]),
        lines=lines,
        fund_details=details,
        accumulators_after=after,
        trace=(),
    )


def build_cancel_record(
    request: CancelRequest,
    original: SettlementRecord,
    result: SettlementResult,
    now: Mapping[str, int],
    *,
    txn_id: int,
    digest: str,
) -> SettlementRecord:
    """Check a cancel result against the exact reversal and return the cancel record to store."""
    expected = reverse_result(original, now)
    if result.outputs != expected.outputs:
        raise _inconsistent(request.msgid, "outputs", "不是原结算的取反", "are not the original's amounts negated")
    after = _full_after(now, result.accumulators_after)
    if after != expected.accumulators_after:
        raise _inconsistent(request.msgid, "accumulators_after", "未按原结算的增量回退", "do not move back by what the original added")
    _check_accumulators(request.msgid, now, after)

    postings = reverse_postings(original.postings)
    check_balanced(postings, request.msgid)
    return msgspec.structs.replace(
        original,
        txn_id=txn_id,
        setl_id=make_setl_id(original.insuplc_admdvs, txn_id),
        kind="cancel",
        msgid=request.msgid,
        setl_time=request.setl_time,
        original_setl_id=original.setl_id,
        request_digest=digest,
        setldetail=tuple(
            msgspec.structs.replace(row, inscp_scp_amt=-row.inscp_scp_amt, fund_payamt=-row.fund_payamt)
            for row in original.setldetail
        ),
        result=result,
        accumulators_before=dict(now),
        accumulators_after=after,
        postings=postings,
        request_input={},
    )


def accumulator_delta_rows(record: SettlementRecord) -> tuple[AccumulatorDelta, ...]:
    """Return the stored-counter changes of a settlement or cancel record."""
    changes = stored_deltas(record.accumulators_before, record.accumulators_after)
    return tuple(AccumulatorDelta(record.psn_no, record.year, key, delta) for key, delta in changes.items())
