"""Resolve the policy of a claim and split fee lines with the kernel, for the handlers."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from settlement import visits
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Person
from settlement.policy import Policy, person_group
from settlement.protocol.requests import FeeLineIn
from settlement.types import ClaimInput, FeeLine, SchemeParams

if TYPE_CHECKING:
    from adapters.server.handlers_visit import Call

__all__ = ["Claim", "resolve_claim", "split_lines"]


@dataclass
class Claim:
    """Everything about one claim except the accumulators, which the ledger supplies under its lock."""

    person: Person
    policy: Policy
    params: SchemeParams
    lines: tuple[FeeLine, ...]
    year: int
    med_type: str

    def input(self, accumulators: dict[str, int], acct_used: bool) -> ClaimInput:
        return ClaimInput(params=self.params, lines=self.lines, accumulators=accumulators, acct_used=acct_used)


def resolve_claim(
    call: Call, person: Person, insutype: str, med_type: str, lines: tuple[FeeLine, ...], field: str, *, admission: datetime.date | None = None
) -> Claim:
    """Pick the person's policy and resolve the scheme of ``med_type``.

    The policy in force today decides, by its ``year_rule``, whose year's accumulators the
    claim uses. That rule can pick the year of an earlier ``admission``: a stay across the
    new year under ``admission_year``. The policy in force on the admission date then
    settles the whole stay, so the limits and the accumulators belong to the same year.
    """
    if insutype != person.insutype:
        raise SettlementError(ErrorCode.NOT_ENROLLED, field=f"{field}.insutype", value=insutype)
    word = visits.MED_TYPE_WORDS.get(med_type)
    if word is None:
        raise SettlementError(
            ErrorCode.INVALID_CODE, field=f"{field}.med_type", value=med_type,
            detail="本引擎结算的医疗类别为 " + "、".join(visits.MED_TYPE_WORDS), detail_en="settled types are " + ", ".join(visits.MED_TYPE_WORDS),
        )
    today = call.now.date()
    policy = call.services.rules.policy_for(person.insuplc_admdvs, insutype, today)
    year = policy.accumulator_year(admission, today)
    if admission is not None and year != today.year:
        policy = call.services.rules.policy_for(person.insuplc_admdvs, insutype, admission)
    group = person_group(person.psn_type, visits.age_in_years(person, today))
    params = policy.resolve(word, group, call.institution.hosp_lv, person.cvlserv_flag == "1", person.maf_type)
    return Claim(person=person, policy=policy, params=params, lines=lines, year=year, med_type=med_type)


def split_lines(call: Call, person: Person, insutype: str, med_type: str, lines: Sequence[FeeLineIn], field: str) -> list[visits.LineSplit]:
    """Split checked lines by the catalogue in force on each fee date, through the kernel."""
    catalog = call.services.rules.catalog
    entries = [visits.catalog_entry(catalog, line) for line in lines]
    claim = resolve_claim(call, person, insutype, med_type, (), field)
    return visits.split_lines(claim.params, lines, entries)
