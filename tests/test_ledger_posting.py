"""Turning settlements into postings: pure checks, no database."""

from __future__ import annotations

import msgspec
import pytest

from ledger_support import settle_request, toy_compute
from settlement.errors import ErrorCode, SettlementError
from settlement.ledger_posting import (
    build_settlement_record,
    check_balanced,
    fund_pay_type,
    lock_key,
    parse_account,
    request_digest,
    reverse_result,
    settlement_postings,
)
from settlement.store import Posting
from settlement.types import ACCUMULATOR_KEYS


def zero_accumulators(**values: int) -> dict[str, int]:
    return {key: values.get(key, 0) for key in ACCUMULATOR_KEYS}


def record_for(amount: int, before: dict[str, int], **request_changes):
    request = settle_request(1, **request_changes)
    plan = toy_compute(amount, mutual_aid=bool(request.family_psn_no))(before)
    return build_settlement_record(request, plan, before, txn_id=7, batch_attempt=0, digest=request_digest(request))


def test_settlement_postings_balance():
    before = zero_accumulators(acct_balc=1_000, family_acct_balc=500)
    record = record_for(10_000, before, family_psn_no="PARENT")

    assert record.postings == (
        Posting("fund:110100:310:310100", debit=7_000),
        Posting("personal:P0001", debit=1_000),
        Posting("personal:PARENT", debit=500),
        Posting("psn_cash:110100:310", debit=1_500),
        Posting("medins_payable:H11010100001", credit=8_500),
        Posting("medins_cash:H11010100001", credit=1_500),
    )
    check_balanced(record.postings, "t")
    assert record.setl_id == "110100" + "7".zfill(20)


def test_negative_amounts_post_on_the_other_side():
    before = zero_accumulators()
    plan = toy_compute(10_000, acct_used=False)(before)
    outputs = msgspec.structs.replace(
        plan.result.outputs, medfee_sumamt=-100, inscp_scp_amt=-100, hifp_pay=-70, fund_pay_sumamt=-70, psn_part_amt=-30, psn_cash_pay=-30
    )
    postings = settlement_postings(settle_request(1), outputs)
    assert Posting("fund:110100:310:310100", credit=70) in postings
    assert Posting("medins_payable:H11010100001", debit=70) in postings
    check_balanced(postings, "t")


def test_unbalanced_or_two_sided_lines_are_rejected():
    with pytest.raises(SettlementError) as unbalanced:
        check_balanced((Posting("a", debit=5), Posting("b", credit=4)), "t1")
    assert unbalanced.value.code is ErrorCode.UNBALANCED_TRANSACTION
    with pytest.raises(SettlementError):
        check_balanced((Posting("a", debit=5, credit=5),), "t2")
    with pytest.raises(SettlementError):
        check_balanced((Posting("a", debit=0),), "t3")


def test_digest_ignores_msgid_and_time_only():
    base = settle_request(1)
    assert request_digest(base) == request_digest(msgspec.structs.replace(base, msgid="other", setl_time="2024-06-01 11:00:00"))
    assert request_digest(base) != request_digest(msgspec.structs.replace(base, feedetl_sns=("1-1",)))
    assert request_digest(base) != request_digest(msgspec.structs.replace(base, input={"invono": "X"}))


def test_plan_breaking_an_identity_is_rejected():
    before = zero_accumulators(acct_balc=1_000)
    request = settle_request(1)
    plan = toy_compute(10_000)(before)
    digest = request_digest(request)

    broken_total = msgspec.structs.replace(plan.result.outputs, fund_pay_sumamt=plan.result.outputs.fund_pay_sumamt + 1)
    wrong_balance = dict(plan.result.accumulators_after, acct_balc=999)
    negative = dict(plan.result.accumulators_after, op_dedc_used=-1)
    cases = {
        "fund_pay_sumamt": msgspec.structs.replace(plan.result, outputs=broken_total),
        "acct_balc": msgspec.structs.replace(plan.result, accumulators_after=wrong_balance),
        "accumulators_after": msgspec.structs.replace(plan.result, accumulators_after=negative),
    }
    for field, result in cases.items():
        with pytest.raises(SettlementError) as error:
            build_settlement_record(request, msgspec.structs.replace(plan, result=result), before, txn_id=1, batch_attempt=0, digest=digest)
        assert error.value.code is ErrorCode.PLAN_INCONSISTENT
        assert error.value.field == field


def test_reversal_negates_and_moves_counters_back():
    before = zero_accumulators(acct_balc=26_000, op_dedc_used=170_000, op_fund_paid=50_000)
    original = record_for(50_000, before)
    later = dict(original.accumulators_after, op_fund_paid=original.accumulators_after["op_fund_paid"] + 1_000, acct_balc=100)

    reversal = reverse_result(original, later)
    assert reversal.outputs.medfee_sumamt == -50_000
    assert reversal.outputs.hifp_pay == -original.outputs.hifp_pay
    assert reversal.outputs.pool_prop_selfpay == original.outputs.pool_prop_selfpay
    assert reversal.accumulators_after["op_fund_paid"] == 50_000 + 1_000
    assert reversal.accumulators_after["acct_balc"] == 100 + original.outputs.acct_pay
    assert reversal.outputs.balc == reversal.accumulators_after["acct_balc"]
    assert all(line.amount == -orig.amount for line, orig in zip(reversal.lines, original.result.lines, strict=True))


def test_account_keys_and_fund_codes():
    assert parse_account("fund:110100:390:390200").fund_pay_type == "390200"
    personal = parse_account("personal:P1")
    assert personal.debits_must_not_exceed_credits
    assert personal.owner == "P1"
    for bad in ("fund:110100:310", "personal:", "bank:1", "medins_cash:H1:extra"):
        with pytest.raises(SettlementError) as error:
            parse_account(bad)
        assert error.value.code is ErrorCode.UNKNOWN_ACCOUNT
    assert fund_pay_type("hifp", "310") == "310100"
    assert fund_pay_type("hifp", "390") == "390100"
    assert fund_pay_type("hifob", "310") == "330100"
    with pytest.raises(SettlementError) as unsupported:
        fund_pay_type("hifp", "510")
    assert unsupported.value.code is ErrorCode.INVALID_CODE


def test_lock_key_is_stable_signed_64_bit():
    assert lock_key("P0001") == lock_key("P0001")
    assert lock_key("P0001") != lock_key("P0002")
    assert -(2**63) <= lock_key("P0001") < 2**63
