"""Turn claim vectors (worked examples with expected results) into replay records.

A vector's expected outputs and accumulators play the part of the ledger's record, so
replaying vectors checks the kernel against hand-derived figures with the same
comparison as a ledger. Each vector is its own person (its example id). A cancel
vector becomes the original settlement and its cancel; a partial refund adds the
resettlement of the kept lines. Vectors record no fund rows or postings.
"""

from __future__ import annotations

from collections.abc import Mapping

from settlement.claimfile import ClaimFile, SettleCase
from settlement.replay.record import OUTPUT_FIELDS, ReplayRecord, lines_of
from settlement.types import ACCUMULATOR_KEYS, ClaimInput

__all__ = ["vector_records"]


def _mask(keys: Mapping[str, int] | None, order: tuple[str, ...]) -> int:
    if not keys:
        return 0
    return sum(1 << order.index(key) for key in keys if key in order)


def _values(values: Mapping[str, int] | None, order: tuple[str, ...]) -> tuple[int, ...]:
    values = values or {}
    return tuple(values.get(key, 0) for key in order)


def _after(expected: Mapping[str, int] | None, family_after: int | None) -> tuple[tuple[int, ...], int]:
    after = dict(expected or {})
    if family_after is not None:
        after["family_acct_balc"] = family_after
    return _values(after, ACCUMULATOR_KEYS), _mask(after, ACCUMULATOR_KEYS)


def _settle_record(vector: ClaimFile, case: SettleCase, claim: ClaimInput, seq: int, suffix: str,
                   outputs: Mapping[str, int] | None, after: Mapping[str, int] | None, family_after: int | None) -> ReplayRecord:
    after_values, after_mask = _after(after, family_after)
    return ReplayRecord(
        seq=seq,
        setl_id=f"{vector.example_id}{suffix}",
        psn_no=vector.example_id,
        fixmedins_code="VECTORS",
        insutype="",
        setl_time=f"{case.setl_date.isoformat()} 00:00:00",
        year=case.setl_date.year,
        rule_version=vector.policy_id,
        params=claim.params,
        acct_used=claim.acct_used,
        has_family_account=claim.has_family_account,
        lines=lines_of(claim.lines),
        outputs=_values(outputs, OUTPUT_FIELDS),
        output_mask=_mask(outputs, OUTPUT_FIELDS),
        before=_values(claim.accumulators, ACCUMULATOR_KEYS),
        after=after_values,
        after_mask=after_mask,
    )


def _moved_back(before_cancel: Mapping[str, int], original: ClaimInput, original_after: Mapping[str, int]) -> dict[str, int]:
    """Return the accumulators after an exact reversal: each moves back by what the original added."""
    keys = set(before_cancel) | set(original_after)
    return {
        key: before_cancel.get(key, 0) - (original_after.get(key, original.accumulators.get(key, 0)) - original.accumulators.get(key, 0))
        for key in keys
    }


def vector_records(vector: ClaimFile) -> list[ReplayRecord]:
    """Return the replay records of one claim vector, in order."""
    case = vector.case
    if vector.operation == "settle":
        return [_settle_record(vector, case, case.claim, 1, "", case.expected_outputs, case.expected_accumulators_after,
                               case.expected_family_account_balc_after)]

    original = _settle_record(vector, case, case.claim, 1, "-original", case.expected_outputs,
                              case.expected_accumulators_after, case.expected_family_account_balc_after)
    before_cancel = dict(vector.accumulators_before or {})
    cancel_outputs = vector.expected_outputs.get("outputs") or vector.expected_outputs.get("reversal_outputs")
    records = [original]
    if vector.operation == "cancel":
        after_values, after_mask = _after(vector.expected_accumulators_after, vector.expected_family_account_balc_after)
    else:
        # A partial refund gives no state between its reversal and its resettlement, so the
        # reversal's state after is derived as the exact reversal and the resettlement must start from it.
        restored = _moved_back(before_cancel, case.claim, case.expected_accumulators_after or {})
        after_values, after_mask = _values(restored, ACCUMULATOR_KEYS), 0
    records.append(ReplayRecord(
        seq=2,
        setl_id=f"{vector.example_id}-cancel",
        kind="cancel",
        original_setl_id=original.setl_id,
        psn_no=vector.example_id,
        fixmedins_code="VECTORS",
        setl_time=original.setl_time,
        year=original.year,
        rule_version=vector.policy_id,
        params=case.claim.params,
        lines=original.lines,
        outputs=_values(cancel_outputs, OUTPUT_FIELDS),
        output_mask=_mask(cancel_outputs, OUTPUT_FIELDS),
        before=_values(before_cancel, ACCUMULATOR_KEYS),
        after=after_values,
        after_mask=after_mask,
    ))
    if vector.operation == "refund_partial":
        kept = tuple(line for line in case.claim.lines if line.feedetl_sn not in vector.refund_feedetl_sns)
        restored = dict(zip(ACCUMULATOR_KEYS, after_values, strict=True))
        claim = ClaimInput(params=case.claim.params, lines=kept, accumulators=restored, acct_used=case.claim.acct_used,
                           has_family_account=case.claim.has_family_account)
        records.append(_settle_record(vector, case, claim, 3, "-resettle", vector.expected_outputs.get("resettle_outputs"),
                                      vector.expected_accumulators_after, vector.expected_family_account_balc_after))
    return records
