"""Employment status, unemployment benefit entitlement and retirement, as pure functions.

A person's employment status is one of ``EmploymentStatus``; registrations move it, and
a move that does not fit the current status raises ``EMPLOYMENT_STATE_CONFLICT``.
Retirement changes the person group the kernel settles with from its effective date on:
``psn_type_on`` gives the person type to use on a settlement date.
"""

from __future__ import annotations

import datetime
import enum

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.services.standards import UnemploymentStandard

__all__ = [
    "BenefitPlan",
    "EmploymentStatus",
    "Retirement",
    "benefit_months",
    "check_registration",
    "month_periods",
    "plan_benefit",
    "psn_type_on",
]

# National psn_type of a retiree (12xx: 退休); used when a retirement names no code.
DEFAULT_RETIRED_PSN_TYPE = "1201"


class EmploymentStatus(enum.StrEnum):
    NONE = "none"
    EMPLOYED = "employed"
    UNEMPLOYED = "unemployed"
    RETIRED = "retired"

    @property
    def name_zh(self) -> str:
        return {"none": "未登记", "employed": "就业", "unemployed": "失业", "retired": "退休"}[self.value]


# Registration kind -> (statuses it may start from, status after).
_REGISTRATIONS = {
    "job": ((EmploymentStatus.NONE, EmploymentStatus.UNEMPLOYED), EmploymentStatus.EMPLOYED),
    "unemployment": ((EmploymentStatus.NONE, EmploymentStatus.EMPLOYED), EmploymentStatus.UNEMPLOYED),
    "retirement": ((EmploymentStatus.NONE, EmploymentStatus.EMPLOYED, EmploymentStatus.UNEMPLOYED), EmploymentStatus.RETIRED),
}

_REGISTRATION_ZH = {"job": "就业登记", "unemployment": "失业登记", "retirement": "退休", "benefit": "失业保险金申领", "training": "就业培训登记"}


def check_registration(kind: str, status: EmploymentStatus, psn_no: str) -> EmploymentStatus:
    """Return the status after a ``job``, ``unemployment`` or ``retirement`` registration, or raise EMPLOYMENT_STATE_CONFLICT."""
    allowed, after = _REGISTRATIONS[kind]
    if status not in allowed:
        raise SettlementError(
            ErrorCode.EMPLOYMENT_STATE_CONFLICT, field=_REGISTRATION_ZH[kind], value=psn_no, detail=status.name_zh, detail_en=status.value
        )
    return after


def benefit_months(standard: UnemploymentStandard, contribution_months: int, psn_no: str) -> int:
    """Return the benefit months for whole contribution years (months // 12) from the region's table.

    Raises BENEFIT_NOT_ELIGIBLE below the minimum contribution years or the table's first row.
    """
    years = contribution_months // 12
    if years < standard.min_contribution_years:
        raise SettlementError(
            ErrorCode.BENEFIT_NOT_ELIGIBLE, value=psn_no,
            detail=f"缴费满 {years} 年，不足 {standard.min_contribution_years} 年",
            detail_en=f"{years} full contribution years, fewer than {standard.min_contribution_years}",
        )
    months = 0
    for band in standard.benefit_months:
        if years >= band.min_years:
            months = band.months
    if months == 0:
        raise SettlementError(
            ErrorCode.BENEFIT_NOT_ELIGIBLE, value=psn_no,
            detail=f"缴费满 {years} 年，不在领取期限表内", detail_en=f"{years} full contribution years is below the benefit table",
        )
    return months


def month_periods(first: str, count: int) -> list[str]:
    """Return ``count`` consecutive ``yyyy-MM`` periods starting at ``first``."""
    year, month = int(first[:4]), int(first[5:7])
    periods = []
    for _ in range(count):
        periods.append(f"{year:04d}-{month:02d}")
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return periods


class BenefitPlan(msgspec.Struct, frozen=True):
    """An approved benefit: months, the monthly amount and the medical contribution the fund pays, in fen."""

    months: int
    monthly_benefit: int
    medical_contribution_monthly: int
    periods: tuple[str, ...]

    @property
    def total_benefit(self) -> int:
        return self.months * self.monthly_benefit


def plan_benefit(standard: UnemploymentStandard, contribution_months: int, first_period: str, psn_no: str) -> BenefitPlan:
    """Plan an unemployment benefit from the region's standard."""
    months = benefit_months(standard, contribution_months, psn_no)
    return BenefitPlan(
        months=months,
        monthly_benefit=standard.monthly_benefit,
        medical_contribution_monthly=standard.medical_contribution_monthly,
        periods=tuple(month_periods(first_period, months)),
    )


class Retirement(msgspec.Struct, frozen=True):
    """A retirement effective on ``effective_date`` (the first day settled as a retiree)."""

    effective_date: datetime.date
    retired_psn_type: str = DEFAULT_RETIRED_PSN_TYPE


def psn_type_on(psn_type: str, retirement: Retirement | None, on_date: datetime.date) -> str:
    """Return the person type to settle with on ``on_date``: the retiree type from the effective date on."""
    if retirement is not None and on_date >= retirement.effective_date:
        return retirement.retired_psn_type
    return psn_type
