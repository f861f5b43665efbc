"""Name the calculation step where a recorded figure and the replay part.

The kernel's trace lists steps in calculation order (lines, deductible, bands, cap, the
top-up layers, accounts). Each output field and accumulator is produced by one kind of
step; the first trace step of that kind, with its base, ratio and amount, is where a
reader starts looking.
"""

from __future__ import annotations

from collections.abc import Sequence

from settlement.types import TraceStep

__all__ = ["FIELD_STEPS", "fund_of_field", "parting_step"]

# Steps that produce each figure, in the order the kernel runs them.
FIELD_STEPS: dict[str, tuple[str, ...]] = {
    "medfee_sumamt": ("line",),
    "fulamt_ownpay_amt": ("line",),
    "overlmt_selfpay": ("line",),
    "preselfpay_amt": ("line",),
    "inscp_scp_amt": ("line",),
    "act_pay_dedc": ("deductible",),
    "hifp_pay": ("band", "cap"),
    "pool_prop_selfpay": ("band",),
    "hifob_pay": ("large_amount",),
    "hifmi_pay": ("critical_illness",),
    "cvlserv_pay": ("civil_servant",),
    "maf_pay": ("medical_assistance",),
    "fund_pay_sumamt": ("band", "cap", "large_amount", "critical_illness", "civil_servant", "medical_assistance"),
    "psn_part_amt": ("band", "cap", "large_amount", "critical_illness", "civil_servant", "medical_assistance"),
    "acct_pay": ("account", "mutual_aid"),
    "acct_mulaid_pay": ("mutual_aid",),
    "psn_cash_pay": ("account", "mutual_aid"),
    "balc": ("account",),
    "hosp_part_amt": ("line",),
    "accumulators_after.acct_balc": ("account",),
    "accumulators_after.family_acct_balc": ("mutual_aid",),
    "accumulators_after.op_dedc_used": ("deductible",),
    "accumulators_after.op_dedc_used_primary": ("deductible",),
    "accumulators_after.op_dedc_used_hospital": ("deductible",),
    "accumulators_after.chronic_dedc_used": ("deductible",),
    "accumulators_after.ip_admission_count": ("deductible",),
    "accumulators_after.ip_inscp_cum": ("band",),
    "accumulators_after.op_fund_paid": ("band", "cap"),
    "accumulators_after.ip_fund_paid": ("band", "cap"),
    "accumulators_after.hifob_paid": ("large_amount",),
    "accumulators_after.cii_base_cum": ("critical_illness",),
    "accumulators_after.hifmi_paid": ("critical_illness",),
    "accumulators_after.cvlserv_paid": ("civil_servant",),
    "accumulators_after.maf_paid": ("medical_assistance",),
    "fund_details[hifp]": ("band", "cap"),
    "fund_details[hifob]": ("large_amount",),
    "fund_details[hifmi]": ("critical_illness",),
    "fund_details[cvlserv]": ("civil_servant",),
    "fund_details[maf]": ("medical_assistance",),
    "fund_details[acct]": ("account", "mutual_aid"),
}

# Fund (or "account"/"other") that a differing figure concerns, for the chart by fund.
_FUND_BY_PREFIX = (
    ("hifp", "hifp"), ("fund_details[hifp]", "hifp"), ("accumulators_after.op_fund_paid", "hifp"),
    ("accumulators_after.ip_fund_paid", "hifp"), ("hifob", "hifob"), ("fund_details[hifob]", "hifob"),
    ("accumulators_after.hifob_paid", "hifob"), ("hifmi", "hifmi"), ("fund_details[hifmi]", "hifmi"),
    ("accumulators_after.hifmi_paid", "hifmi"), ("accumulators_after.cii_base_cum", "hifmi"),
    ("cvlserv", "cvlserv"), ("fund_details[cvlserv]", "cvlserv"), ("accumulators_after.cvlserv_paid", "cvlserv"),
    ("maf", "maf"), ("fund_details[maf]", "maf"), ("accumulators_after.maf_paid", "maf"),
    ("acct", "acct"), ("balc", "acct"), ("fund_details[acct]", "acct"), ("accumulators_after.acct_balc", "acct"),
    ("postings[fund:", "fund"), ("postings[personal:", "acct"),
)


def fund_of_field(field: str) -> str:
    """Return the fund a discrepancy field concerns: hifp, hifob, hifmi, cvlserv, maf, acct, fund or other."""
    for prefix, fund in _FUND_BY_PREFIX:
        if field.startswith(prefix):
            return fund
    if field.startswith("postings[fund:"):
        return "fund"
    return "other"


def parting_step(field: str, trace: Sequence[TraceStep]) -> str:
    """Return ``step#index (base=..., ratio=..., amount=...)`` of the first trace step behind ``field``.

    Falls back to the step name alone when the replay's trace has no such step (a layer
    that did not run), and to ``other`` for a field no step produces.
    """
    names = FIELD_STEPS.get(field)
    if names is None:
        return "other"
    for step in trace:
        if step.step in names:
            return f"{step.step}#{step.index} (base={step.base}, ratio={step.ratio}, amount={step.amount})"
    return names[0]
