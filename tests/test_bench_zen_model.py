"""The zen-engine decision model used as a benchmark peer settles claims exactly as the kernel does.

A peer that computes something else is no peer, so this runs benchmark claims through
both and compares every output amount and every accumulator after the claim. It also
checks the model's own policy tables against the bundled policy file, row by row, and
that the sample of claims reaches every step the model implements.
"""

from __future__ import annotations

import itertools

import pytest

from bench import zen_peer
from bench.workload import LEVEL_WEIGHTS, generate_claims, load_bench_policy
from settlement.engine import settle
from settlement.types import ACCUMULATOR_KEYS, PERSON_GROUPS

# Claims per line count: enough to reach the cap, the large-amount layer, the civil
# servant subsidy and mutual aid, yet quick (zen needs 1 to 3 ms for a 20-line claim on
# the 2-core benchmark machine).
SAMPLE = ((1, 300), (20, 300), (300, 12))


@pytest.fixture(scope="module")
def decision():
    return zen_peer.load_decision()


@pytest.fixture(scope="module")
def sample():
    return {line_count: generate_claims(count, line_count, seed=7 + line_count) for line_count, count in SAMPLE}


def kernel_outputs(result) -> dict[str, int]:
    return {name: getattr(result.outputs, name) for name in zen_peer.ZEN_OUTPUT_FIELDS}


def every_accumulator(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, before.get(key, 0)) for key in ACCUMULATOR_KEYS}


@pytest.mark.parametrize("line_count", [line_count for line_count, _ in SAMPLE])
def test_zen_outputs_match_kernel(decision, sample, line_count):
    for index, case in enumerate(sample[line_count]):
        result = settle(case.claim)
        response = decision.evaluate(zen_peer.request_context(case))
        label = f"claim {index} ({case.med_type}, {case.group}, {case.hosp_lv}, cvlserv={case.cvlserv})"
        assert zen_peer.outputs_of(response) == kernel_outputs(result), label


@pytest.mark.parametrize("line_count", [line_count for line_count, _ in SAMPLE])
def test_zen_accumulators_match_kernel(decision, sample, line_count):
    for index, case in enumerate(sample[line_count]):
        before = case.claim.accumulators
        result = settle(case.claim)
        response = decision.evaluate(zen_peer.request_context(case))
        label = f"claim {index} ({case.med_type}, {case.group}, {case.hosp_lv})"
        assert zen_peer.accumulators_after(response, before) == every_accumulator(result.accumulators_after, before), label


def test_sample_reaches_every_step(sample):
    results = [settle(case.claim) for cases in sample.values() for case in cases]
    reached = {
        "deductible finished inside the claim": any(0 < r.outputs.act_pay_dedc < r.outputs.inscp_scp_amt for r in results),
        "over the price cap": any(r.outputs.overlmt_selfpay > 0 for r in results),
        "class-B first self-pay": any(r.outputs.preselfpay_amt > 0 for r in results),
        "fully self-paid": any(r.outputs.fulamt_ownpay_amt > 0 for r in results),
        "more than one band": any(sum(step.step == "band" for step in r.trace) > 1 for r in results),
        "pooled cap reached": any(step.step == "cap" for r in results for step in r.trace),
        "large-amount layer": any(r.outputs.hifob_pay > 0 for r in results),
        "civil servant subsidy": any(r.outputs.cvlserv_pay > 0 for r in results),
        "account short of the personal part": any(0 < r.outputs.acct_pay < r.outputs.psn_part_amt for r in results),
        "mutual aid": any(r.outputs.acct_mulaid_pay > 0 for r in results),
        "no fund (pharmacy)": any(r.outputs.fund_pay_sumamt == 0 and r.outputs.medfee_sumamt > 0 for r in results),
    }
    assert [step for step, seen in reached.items() if not seen] == []


def scheme_contexts():
    """Yield every medical type, group, level and civil servant flag the benchmark can draw."""
    for med_type, levels in LEVEL_WEIGHTS.items():
        for group, level, cvlserv in itertools.product(PERSON_GROUPS[:3], levels, (False, True)):
            yield med_type, group, level, cvlserv


def zen_tables(decision, med_type: str, group: str, level: str, cvlserv: bool) -> tuple[dict, dict]:
    """Return what the model's scheme and civil servant tables give for one context."""
    context = {
        "visit": {"med_type": med_type, "hosp_lv": level, "acct_used": True},
        "person": {"group": group, "cvlserv": cvlserv, "has_family_account": False},
        "acc": dict.fromkeys(ACCUMULATOR_KEYS, 0),
        "lines": [],
    }
    trace = decision.evaluate(context, {"trace": True})["trace"]
    return trace["scheme"]["output"]["scheme"], trace["civil_servant"]["output"]["cvl"]


def test_zen_tables_match_policy_file(decision):
    policy = load_bench_policy()
    for med_type, group, level, cvlserv in scheme_contexts():
        params = policy.resolve(med_type, group, level, cvlserv, None)
        scheme, cvl = zen_tables(decision, med_type, group, level, cvlserv)
        label = f"{med_type}, {group}, {level}, cvlserv={cvlserv}"

        assert scheme["fund"] == params.fund_enabled, label
        if not params.fund_enabled:
            continue
        assert scheme["dedc_basis"] == params.deductible_basis, label
        assert scheme["dedc_first"] == params.deductible_amount, label
        if params.deductible_basis == "per_admission":
            assert scheme["dedc_next"] == params.deductible_subsequent, label
        assert scheme["dedc_key"] == params.deductible_accumulator, label
        assert scheme["band_key"] == params.band_accumulator, label
        assert [(band["lower"], band["ratio"]) for band in scheme["bands"]] == [(b.lower, b.ratio) for b in params.bands], label
        assert [band["upper"] for band in scheme["bands"]] == [b.lower for b in params.bands[1:]] + [None], label
        assert (scheme["cap"], scheme["cap_key"]) == (params.fund_cap, params.fund_cap_accumulator), label
        assert scheme["la_ratio"] == params.large_amount_ratio, label
        assert (scheme["la_cap"], scheme["la_key"]) == (params.large_amount_cap, params.large_amount_accumulator), label

        servant = params.civil_servant
        assert cvl["enabled"] == (servant is not None), label
        if servant is not None:
            assert (cvl["dedc_ratio"], cvl["copay_ratio"]) == (servant.dedc_ratio, servant.copay_ratio), label
            assert (cvl["cap"], cvl["key"]) == (servant.cap, servant.accumulator), label


def test_zen_account_rules_match_policy(decision):
    account = load_bench_policy().account
    context = {
        "visit": {"med_type": "pharmacy", "hosp_lv": "pharmacy", "acct_used": True},
        "person": {"group": "active", "cvlserv": False, "has_family_account": False},
        "acc": dict.fromkeys(ACCUMULATOR_KEYS, 0),
        "lines": [],
    }
    trace = decision.evaluate(context, {"trace": True})["trace"]
    rules = trace["account_policy"]["output"]["account"]
    assert rules == {
        "has_account": account.has_account,
        "pays_fulamt": account.pays_fulamt,
        "pays_overlmt": account.pays_overlmt,
        "mutual_aid": account.mutual_aid,
    }
