"""Run generated claims through the GoRules zen-engine decision model in ``bench/zen/``.

The decision model resolves the Beijing employee policy itself, from decision tables on
the medical type, person group and hospital level, as a rules-engine user would write it.
It is therefore fed the claim as a request brings it: context fields, year-to-date
accumulators and fee lines in the parsed request's integer units.

The model returns the national output amounts and a list of accumulator moves
(``{"key", "amount"}``) for the caller to apply to its ledger. ``accumulators_after``
applies them here, so that the results can be compared with the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zen

from bench.workload import ClaimCase
from settlement.types import ACCUMULATOR_KEYS, SETTLEMENT_OUTPUT_FIELDS

__all__ = [
    "DECISION_PATH",
    "ZEN_OUTPUT_FIELDS",
    "accumulators_after",
    "load_decision",
    "request_context",
]

DECISION_PATH = Path(__file__).resolve().parent / "zen" / "settlement-decision.json"

# Outputs the model computes: the national amounts and the pooled fund ratio.
ZEN_OUTPUT_FIELDS = (*SETTLEMENT_OUTPUT_FIELDS, "pool_prop_selfpay")

_CLASS_LETTERS = {1: "A", 2: "B", 3: "C"}


def load_decision() -> zen.ZenDecision:
    """Compile the decision model once; evaluating it afterwards reuses the compiled graph."""
    engine = zen.ZenEngine()
    return engine.create_decision(DECISION_PATH.read_text(encoding="utf-8"))


def request_context(case: ClaimCase) -> dict[str, Any]:
    """Build the request the decision model reads for one claim.

    Every accumulator key is present (0 when the claim did not list it), because the
    model reads them by name and a missing key would be null, not 0.
    """
    claim = case.claim
    return {
        "visit": {"med_type": case.med_type, "hosp_lv": case.hosp_lv, "acct_used": claim.acct_used},
        "person": {"group": case.group, "cvlserv": case.cvlserv, "has_family_account": claim.has_family_account},
        "acc": {key: claim.accumulators.get(key, 0) for key in ACCUMULATOR_KEYS},
        "lines": [
            {
                "cls": _CLASS_LETTERS[int(line.charge_class)],
                "price_micro": line.price_micro,
                "quantity": line.quantity,
                "selfpay_prop": line.selfpay_prop,
                "price_cap_micro": line.price_cap_micro,
                "amount": line.amount,
            }
            for line in claim.lines
        ],
    }


def outputs_of(response: Mapping[str, Any]) -> dict[str, int]:
    """Return the model's outputs as integer fen (ratios in 1e-4).

    zen computes in decimal and hands whole numbers to Python as int, other numbers as
    float. A fractional output means the model skipped a rounding step, so it raises
    ValueError instead of truncating.
    """
    outputs = response["result"]["outputs"]
    values = {}
    for name in ZEN_OUTPUT_FIELDS:
        value = outputs[name]
        if value != int(value):
            raise ValueError(f"zen output {name} is not a whole number of fen: {value!r}")
        values[name] = int(value)
    return values


def accumulators_after(response: Mapping[str, Any], before: Mapping[str, int]) -> dict[str, int]:
    """Apply the model's accumulator moves to ``before`` and return every key of ``ACCUMULATOR_KEYS``."""
    after = {key: before.get(key, 0) for key in ACCUMULATOR_KEYS}
    for move in response["result"]["moves"]:
        amount = move["amount"]
        if amount != int(amount):
            raise ValueError(f"zen move of {move['key']} is not a whole number: {amount!r}")
        after[move["key"]] += int(amount)
    return after
