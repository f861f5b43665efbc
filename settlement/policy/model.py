"""A loaded policy version with every value parsed, and its resolution into ``SchemeParams``.

Amounts are fen and ratios 1e-4, as in ``settlement.types``. ``Policy.resolve`` picks,
for one claim, the first rule of each list whose groups and levels match; ``"*"`` in a
rule's list matches anything. The loader has already checked every value, so resolving
can fail only on the claim's own context (medical type, group, level, assistance type).
"""

from __future__ import annotations

import datetime
from typing import Literal, TypeVar

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.types import (
    HOSPITAL_LEVELS,
    MEDICAL_ASSISTANCE_TYPES,
    PERSON_GROUPS,
    AccountParams,
    Band,
    CivilServantParams,
    CriticalIllnessParams,
    MedicalAssistanceParams,
    SchemeParams,
)

__all__ = [
    "CivilServant",
    "CriticalIllness",
    "DeductibleRule",
    "LargeAmountRule",
    "MedicalAssistance",
    "Policy",
    "RatioRule",
    "Scheme",
]

_R = TypeVar("_R", bound="_Rule")


class _Rule(msgspec.Struct, frozen=True):
    """Groups and levels a rule applies to. An empty set means ``"*"``, which matches anything."""

    groups: frozenset[str]
    levels: frozenset[str]

    def matches(self, group: str, level: str) -> bool:
        return (not self.groups or group in self.groups) and (not self.levels or level in self.levels)


class DeductibleRule(_Rule, frozen=True):
    """Deductible in fen: ``amount`` for the annual basis, ``first``/``subsequent`` per admission."""

    amount: int
    subsequent: int
    accumulator: str


class RatioRule(_Rule, frozen=True):
    """Fund ratios in 1e-4, one per band."""

    ratios: tuple[int, ...]


class LargeAmountRule(_Rule, frozen=True):
    ratio: int


class Scheme(msgspec.Struct, frozen=True):
    """The rules of one medical type. ``deductible_rules`` is empty when there is no deductible."""

    med_type: str
    med_type_code: str
    fund_enabled: bool
    deductible_basis: Literal["none", "annual", "per_admission"]
    deductible_rules: tuple[DeductibleRule, ...]
    band_accumulator: str | None
    band_lower_bounds: tuple[int, ...]
    ratio_rules: tuple[RatioRule, ...]
    fund_cap: int | None
    fund_cap_accumulator: str | None
    large_amount_rules: tuple[LargeAmountRule, ...]
    large_amount_cap: int | None
    large_amount_accumulator: str | None


class CriticalIllness(msgspec.Struct, frozen=True):
    med_types: frozenset[str]
    params: CriticalIllnessParams


class CivilServant(msgspec.Struct, frozen=True):
    # med_type -> (deductible ratio, co-payment ratio)
    ratios: dict[str, tuple[int, int]]
    cap: int | None
    accumulator: str


class MedicalAssistance(msgspec.Struct, frozen=True):
    med_types: frozenset[str]
    ratios: dict[str, int]
    cap: int | None
    accumulator: str


class Policy(msgspec.Struct, frozen=True):
    """One version of one policy, in force from ``effective_from`` to ``effective_to`` inclusive.

    ``effective_to`` None means open-ended. ``source`` is the file it was loaded from.
    ``fund_pay_types`` maps a fund layer (``hifp``, ``hifob``, ``hifmi``, ``cvlserv``,
    ``maf``, ``acct``) to its national ``fund_pay_type`` code.
    """

    policy_id: str
    title: str
    admdvs: str
    insutype: str
    effective_from: datetime.date
    effective_to: datetime.date | None
    year_rule: Literal["discharge_year", "admission_year"]
    max_lines: int
    provenance: dict[str, str]
    fund_pay_types: dict[str, str]
    account: AccountParams
    schemes: dict[str, Scheme]
    critical_illness: CriticalIllness | None
    civil_servant: CivilServant | None
    medical_assistance: MedicalAssistance | None
    source: str

    def in_force(self, on_date: datetime.date) -> bool:
        """Tell whether ``on_date`` falls inside this version's effective dates."""
        if on_date < self.effective_from:
            return False
        return self.effective_to is None or on_date <= self.effective_to

    def accumulator_year(self, admission_date: datetime.date | None, settlement_date: datetime.date) -> int:
        """Return the year whose accumulators a claim uses, by ``year_rule``.

        Without an admission date (an outpatient claim) the settlement date decides.
        """
        if self.year_rule == "admission_year" and admission_date is not None:
            return admission_date.year
        return settlement_date.year

    def resolve(self, med_type: str, group: str, level: str, cvlserv: bool, maf_type: str | None) -> SchemeParams:
        """Resolve the scheme for one claim's medical type, person group and hospital level.

        Raises ``NO_SCHEME`` when the policy does not cover ``med_type``,
        ``UNKNOWN_PERSON_GROUP`` / ``INVALID_CODE`` for a group, level or assistance type
        outside its code table, and ``NO_MATCHING_RULE`` when no rule of a needed list
        matches.
        """
        scheme = self.schemes.get(med_type)
        if scheme is None:
            raise SettlementError(ErrorCode.NO_SCHEME, field=med_type, value=self.policy_id)
        if group not in PERSON_GROUPS:
            raise SettlementError(
                ErrorCode.UNKNOWN_PERSON_GROUP,
                field="group",
                value=group,
                detail="可选值：" + "、".join(PERSON_GROUPS),
                detail_en="expected one of " + ", ".join(PERSON_GROUPS),
            )
        if level not in HOSPITAL_LEVELS:
            raise SettlementError(
                ErrorCode.INVALID_CODE,
                field="hosp_lv",
                value=level,
                detail="可选值：" + "、".join(HOSPITAL_LEVELS),
                detail_en="expected one of " + ", ".join(HOSPITAL_LEVELS),
            )
        if maf_type is not None and maf_type not in MEDICAL_ASSISTANCE_TYPES:
            raise SettlementError(
                ErrorCode.INVALID_CODE,
                field="maf_type",
                value=maf_type,
                detail="可选值：" + "、".join(MEDICAL_ASSISTANCE_TYPES),
                detail_en="expected one of " + ", ".join(MEDICAL_ASSISTANCE_TYPES),
            )

        context = f"group={group}, level={level}"
        path = f"schemes.{med_type}"

        basis = scheme.deductible_basis
        deductible_amount = deductible_subsequent = 0
        deductible_accumulator = None
        if basis != "none":
            deductible = _first_match(scheme.deductible_rules, group, level, self.policy_id, f"{path}.deductible.rules", context)
            deductible_amount = deductible.amount
            deductible_subsequent = deductible.subsequent
            deductible_accumulator = deductible.accumulator

        if scheme.fund_enabled:
            ratio_rule = _first_match(scheme.ratio_rules, group, level, self.policy_id, f"{path}.ratios.rules", context)
            bands = tuple(Band(lower=lower, ratio=ratio) for lower, ratio in zip(scheme.band_lower_bounds, ratio_rule.ratios))
        else:
            bands = (Band(lower=0, ratio=0),)

        large_amount_ratio = None
        if scheme.large_amount_rules:
            large = _first_match(scheme.large_amount_rules, group, level, self.policy_id, f"{path}.large_amount.rules", context)
            large_amount_ratio = large.ratio

        return SchemeParams(
            policy_id=self.policy_id,
            med_type=med_type,
            fund_enabled=scheme.fund_enabled,
            deductible_basis=basis,
            deductible_amount=deductible_amount,
            deductible_subsequent=deductible_subsequent,
            deductible_accumulator=deductible_accumulator,
            band_accumulator=scheme.band_accumulator,
            bands=bands,
            fund_cap=scheme.fund_cap,
            fund_cap_accumulator=scheme.fund_cap_accumulator,
            large_amount_ratio=large_amount_ratio,
            large_amount_cap=scheme.large_amount_cap if scheme.large_amount_rules else None,
            large_amount_accumulator=scheme.large_amount_accumulator if scheme.large_amount_rules else None,
            critical_illness=self._critical_illness_for(med_type),
            civil_servant=self._civil_servant_for(med_type, cvlserv),
            medical_assistance=self._medical_assistance_for(med_type, maf_type),
            account=self.account,
        )

    def _critical_illness_for(self, med_type: str) -> CriticalIllnessParams | None:
        layer = self.critical_illness
        if layer is None or med_type not in layer.med_types:
            return None
        return layer.params

    def _civil_servant_for(self, med_type: str, cvlserv: bool) -> CivilServantParams | None:
        layer = self.civil_servant
        if not cvlserv or layer is None or med_type not in layer.ratios:
            return None
        dedc_ratio, copay_ratio = layer.ratios[med_type]
        return CivilServantParams(dedc_ratio=dedc_ratio, copay_ratio=copay_ratio, cap=layer.cap, accumulator=layer.accumulator)

    def _medical_assistance_for(self, med_type: str, maf_type: str | None) -> MedicalAssistanceParams | None:
        layer = self.medical_assistance
        if maf_type is None or layer is None or med_type not in layer.med_types:
            return None
        ratio = layer.ratios.get(maf_type)
        if ratio is None:
            raise SettlementError(
                ErrorCode.NO_MATCHING_RULE,
                field="medical_assistance.ratios",
                value=self.policy_id,
                detail=f"maf_type={maf_type}",
            )
        return MedicalAssistanceParams(ratio=ratio, cap=layer.cap, accumulator=layer.accumulator)


def _first_match(rules: tuple[_R, ...], group: str, level: str, policy_id: str, path: str, context: str) -> _R:
    for rule in rules:
        if rule.matches(group, level):
            return rule
    raise SettlementError(ErrorCode.NO_MATCHING_RULE, field=path, value=policy_id, detail=context)
