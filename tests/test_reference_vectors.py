"""The reference model reproduces every worked claim vector to the fen.

Vectors are read with ``settlement.claimfile`` against the bundled rules, from the folder
named by SETTLEMENT_EXAMPLES, by default ``<repo>/../shared/reference/examples``. An
empty or missing folder fails the run instead of skipping it, so a checkout without the
vectors cannot pass by accident.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from settlement.claimfile import ClaimFile, read_claim_file
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import RuleSet, load_rules
from settlement.reference import cancel_reference, refund_partial_reference, settle_reference
from settlement.types import ClaimInput, SettlementResult

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = Path(os.environ.get("SETTLEMENT_EXAMPLES", REPO.parent / "shared" / "reference" / "examples"))


def vector_paths(operation: str) -> list[Path]:
    """Return the vectors of one operation, reading only their ``operation`` field."""
    paths = sorted(EXAMPLES.glob("ex*.json"))
    if not paths:
        raise FileNotFoundError(f"claim vectors ex*.json not found in {EXAMPLES}. Set SETTLEMENT_EXAMPLES to the folder that contains them.")
    return [path for path in paths if json.loads(path.read_bytes())["operation"] == operation]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(bundled_rules_dir())


# ---------------------------------------------------------------------------
# Comparisons, one assertion per field so a failure names the field.


def assert_outputs(result: SettlementResult, expected: dict[str, int], label: str) -> None:
    for field, value in expected.items():
        actual = getattr(result.outputs, field)
        assert actual == value, f"{label}: {field} is {actual} fen, expected {value}"


def assert_accumulators(after: dict[str, int], expected: dict[str, int], label: str) -> None:
    for key, value in expected.items():
        assert after.get(key) == value, f"{label}: accumulator {key} is {after.get(key)}, expected {value}"

    # The vectors report the relative's balance outside accumulators_after.
    extra = set(after) - set(expected) - {"family_acct_balc"}
    assert not extra, f"{label}: accumulators the vector does not list: {sorted(extra)}"


def assert_lines_add_up(result: SettlementResult) -> None:
    for split in result.lines:
        parts = split.fulamt_ownpay_amt + split.overlmt_amt + split.preselfpay_amt + split.inscp_scp_amt
        assert parts == split.amount, f"line {split.feedetl_sn}: parts {parts} != amount {split.amount}"


def settle_original(vector: ClaimFile) -> SettlementResult:
    """Settle the vector's original claim and check it against the original's expected outputs."""
    original = settle_reference(vector.case.claim)
    assert vector.case.expected_outputs is not None
    assert_outputs(original, vector.case.expected_outputs, f"{vector.example_id} original")
    return original


def kept_lines(claim: ClaimInput, refunded: tuple[str, ...]) -> ClaimInput:
    return ClaimInput(
        params=claim.params,
        lines=tuple(line for line in claim.lines if line.feedetl_sn not in refunded),
        accumulators=claim.accumulators,
        acct_used=claim.acct_used,
        has_family_account=claim.has_family_account,
    )


# ---------------------------------------------------------------------------
# Tests.


def test_vector_folder_has_every_operation() -> None:
    for operation in ("settle", "cancel", "refund_partial"):
        assert vector_paths(operation), f"no {operation} vector in {EXAMPLES}"


@pytest.mark.parametrize("path", vector_paths("settle"), ids=lambda p: p.stem)
def test_reference_settles_vector(path: Path, rules: RuleSet) -> None:
    vector = read_claim_file(path, rules)
    assert vector.operation == "settle"
    case = vector.case
    result = settle_reference(case.claim)

    assert case.expected_outputs is not None and case.expected_accumulators_after is not None
    assert_outputs(result, case.expected_outputs, vector.example_id)
    assert_accumulators(result.accumulators_after, case.expected_accumulators_after, vector.example_id)
    assert_lines_add_up(result)
    if case.expected_family_account_balc_after is not None:
        assert result.accumulators_after["family_acct_balc"] == case.expected_family_account_balc_after


@pytest.mark.parametrize("path", vector_paths("cancel"), ids=lambda p: p.stem)
def test_reference_cancels_vector(path: Path, rules: RuleSet) -> None:
    vector = read_claim_file(path, rules)
    assert vector.operation == "cancel"
    original = settle_original(vector)
    assert vector.accumulators_before is not None and vector.expected_accumulators_after is not None

    reversal = cancel_reference(original, vector.case.claim.accumulators, vector.accumulators_before)

    assert_outputs(reversal, vector.expected_outputs["outputs"], f"{vector.example_id} reversal")
    assert_accumulators(reversal.accumulators_after, vector.expected_accumulators_after, vector.example_id)
    assert [split.amount for split in reversal.lines] == [-split.amount for split in original.lines]


@pytest.mark.parametrize("path", vector_paths("refund_partial"), ids=lambda p: p.stem)
def test_reference_refunds_vector_partially(path: Path, rules: RuleSet) -> None:
    vector = read_claim_file(path, rules)
    assert vector.operation == "refund_partial"
    original = settle_original(vector)
    assert vector.accumulators_before is not None and vector.expected_accumulators_after is not None

    claim = vector.case.claim
    kept = kept_lines(claim, vector.refund_feedetl_sns)
    reversal, resettled = refund_partial_reference(original, claim.accumulators, vector.accumulators_before, kept)

    assert_outputs(reversal, vector.expected_outputs["reversal_outputs"], f"{vector.example_id} reversal")
    assert_outputs(resettled, vector.expected_outputs["resettle_outputs"], f"{vector.example_id} resettle")
    assert_accumulators(resettled.accumulators_after, vector.expected_accumulators_after, vector.example_id)
    assert {split.feedetl_sn for split in resettled.lines}.isdisjoint(vector.refund_feedetl_sns)
