"""The policy file format as msgspec Structs: the shape of the JSON, before any value is checked.

Unknown fields are rejected everywhere, so a misspelt key fails the load instead of being
ignored. Money, ratios and thresholds are decimal strings here, and ``compile.py``
parses them with ``settlement.money`` and checks every cross-field rule. ``rules/README.md``
documents each field.

msgspec reports an error inside a map as ``schemes[...]`` without the key. So maps whose
values are objects keep their values as ``msgspec.Raw``, and ``compile.py`` decodes each
value separately with the key in the error path.
"""

from __future__ import annotations

import datetime
import re
from typing import Literal

import msgspec

__all__ = [
    "AccountSpec",
    "AnnualDeductibleRuleSpec",
    "AnnualDeductibleSpec",
    "BandsSpec",
    "CivilServantSchemeSpec",
    "CivilServantSpec",
    "CriticalIllnessBandSpec",
    "CriticalIllnessSpec",
    "FundCapSpec",
    "LargeAmountRuleSpec",
    "LargeAmountSpec",
    "MedicalAssistanceSpec",
    "PerAdmissionDeductibleRuleSpec",
    "PerAdmissionDeductibleSpec",
    "PolicyFile",
    "RatioRuleSpec",
    "RatiosSpec",
    "SchemeSpec",
    "YEAR_RULES",
    "split_validation_error",
]

# Rules for the year whose accumulators a claim reads and writes. ``discharge_year`` uses
# the year of the settlement (discharge) date, ``admission_year`` the year of the admission
# date. They differ only for an inpatient stay across the new year.
YEAR_RULES = ("discharge_year", "admission_year")

# msgspec names the location of a validation error as "... - at `$.a.b[2]`".
_ERROR_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]+)`")


class _Spec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class AnnualDeductibleRuleSpec(_Spec):
    groups: list[str]
    levels: list[str]
    amount: str
    accumulator: str


class AnnualDeductibleSpec(_Spec, tag_field="basis", tag="annual"):
    rules: list[AnnualDeductibleRuleSpec]


class PerAdmissionDeductibleRuleSpec(_Spec):
    groups: list[str]
    levels: list[str]
    first: str
    subsequent: str


class PerAdmissionDeductibleSpec(_Spec, tag_field="basis", tag="per_admission"):
    counter: str
    rules: list[PerAdmissionDeductibleRuleSpec]


class BandsSpec(_Spec):
    accumulator: str
    lower_bounds: list[str]


class RatioRuleSpec(_Spec):
    groups: list[str]
    levels: list[str]
    ratios: list[str]


class RatiosSpec(_Spec):
    rules: list[RatioRuleSpec]


class FundCapSpec(_Spec):
    amount: str
    accumulator: str


class LargeAmountRuleSpec(_Spec):
    groups: list[str]
    levels: list[str]
    ratio: str


class LargeAmountSpec(_Spec):
    rules: list[LargeAmountRuleSpec]
    cap: str | None
    accumulator: str


class SchemeSpec(_Spec):
    med_type_code: str
    fund: bool = True
    deductible: AnnualDeductibleSpec | PerAdmissionDeductibleSpec | None = None
    bands: BandsSpec | None = None
    ratios: RatiosSpec | None = None
    fund_cap: FundCapSpec | None = None
    large_amount: LargeAmountSpec | None = None


class AccountSpec(_Spec):
    has_account: bool
    pays_fulamt: bool
    pays_overlmt: bool
    mutual_aid: bool


class CriticalIllnessBandSpec(_Spec, rename={"start": "from"}):
    start: str
    ratio: str


class CriticalIllnessSpec(_Spec):
    schemes: list[str]
    include_preselfpay: bool
    base_accumulator: str
    paid_accumulator: str
    bands: list[CriticalIllnessBandSpec]
    cap: str | None


class CivilServantSchemeSpec(_Spec):
    dedc_ratio: str
    copay_ratio: str


class CivilServantSpec(_Spec):
    # med_type -> CivilServantSchemeSpec, decoded per key.
    schemes: dict[str, msgspec.Raw]
    cap: str | None
    accumulator: str


class MedicalAssistanceSpec(_Spec):
    schemes: list[str]
    ratios: dict[str, str]
    cap: str | None
    accumulator: str


class PolicyFile(_Spec):
    """One policy version: the top-level object of ``rules/policies/**/*.json``."""

    policy_id: str
    title: str
    admdvs: str
    insutype: str
    effective_from: datetime.date
    # Last day in force, inclusive. Null means open-ended.
    effective_to: datetime.date | None
    year_rule: Literal["discharge_year", "admission_year"]
    fund_pay_types: dict[str, str]
    account: AccountSpec
    # med_type -> SchemeSpec, decoded per key.
    schemes: dict[str, msgspec.Raw]
    provenance: dict[str, str] = {}
    max_lines: int = 9999
    civil_servant: CivilServantSpec | None = None
    critical_illness: CriticalIllnessSpec | None = None
    medical_assistance: MedicalAssistanceSpec | None = None


def split_validation_error(message: str) -> tuple[str, str]:
    """Turn msgspec's "reason - at `$.path`" into ("path", "reason"), naming a missing or unknown field in the path."""
    match = _ERROR_PATH.match(message)
    assert match is not None
    reason = match.group("reason")
    path = (match.group("path") or "").lstrip(".")
    named = _NAMED_FIELD.search(reason)
    if named is not None:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return path or "(root)", reason
