"""Employment operations: job and unemployment registration, benefit, training and retirement.

Benefit months are paid one period at a time as ledger adjustments (see
``settlement.services.postings``), each with the medical contribution the unemployment
fund pays for that month. The journal write comes first and is idempotent by its msgid,
so when the services row after it fails, repeating the request completes it without a
second journal transaction.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from adapters.server import state
from adapters.services import store
from adapters.services.context import ServiceContext
from settlement.errors import ErrorCode, SettlementError
from settlement.services.employment import (
    EmploymentStatus,
    Retirement,
    check_registration,
    plan_benefit,
)
from settlement.services.postings import benefit_month_request

__all__ = ["apply_benefit", "employment_view", "pay_benefit", "register", "register_training", "retire"]

logger = logging.getLogger("settlement.services")


async def _person(conn: Any, psn_no: str) -> Any:
    person = await state.person_by_psn_no(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
    return person


async def register(ctx: ServiceContext, psn_no: str, kind: str, date: datetime.date, detail: dict[str, Any]) -> EmploymentStatus:
    """Record a ``job`` or ``unemployment`` registration and move the status."""
    async with ctx.db.transaction() as conn:
        await _person(conn, psn_no)
        await store.lock_person(conn, ctx.db.dialect, psn_no)
        status, _ = await store.employment_status(conn, psn_no)
        after = check_registration(kind, status, psn_no)
        await store.set_employment_status(conn, psn_no, after, date)
        await store.add_employment_event(conn, psn_no, kind, date, detail)
    logger.info("employment: %s registered psn_no=%s status=%s", kind, psn_no, after.value)
    return after


async def register_training(ctx: ServiceContext, psn_no: str, date: datetime.date, course: str) -> int:
    """Record an employment training registration; a retiree cannot register."""
    async with ctx.db.transaction() as conn:
        await _person(conn, psn_no)
        await store.lock_person(conn, ctx.db.dialect, psn_no)
        status, _ = await store.employment_status(conn, psn_no)
        if status is EmploymentStatus.RETIRED:
            raise SettlementError(ErrorCode.EMPLOYMENT_STATE_CONFLICT, field="就业培训登记", value=psn_no, detail=status.name_zh, detail_en=status.value)
        return await store.add_employment_event(conn, psn_no, "training", date, {"course": course})


async def apply_benefit(ctx: ServiceContext, psn_no: str, contribution_months: int, first_period: str) -> dict[str, Any]:
    """Approve an unemployment benefit for an unemployed person with no benefit running; return the claim."""
    async with ctx.db.transaction() as conn:
        person = await _person(conn, psn_no)
        await store.lock_person(conn, ctx.db.dialect, psn_no)
        status, _ = await store.employment_status(conn, psn_no)
        if status is not EmploymentStatus.UNEMPLOYED:
            raise SettlementError(ErrorCode.BENEFIT_NOT_ELIGIBLE, value=psn_no, detail="未办理失业登记", detail_en="no unemployment registration")
        running = await conn.fetchval(
            "SELECT claim_id FROM svc_benefit_claim WHERE psn_no = $1 AND last_period >= $2", psn_no, first_period
        )
        if running is not None:
            raise SettlementError(
                ErrorCode.BENEFIT_NOT_ELIGIBLE, value=psn_no, detail=f"已有领取中的失业保险金 {running}", detail_en=f"benefit {running} is still running"
            )
        standard = ctx.standards.on(person.insuplc_admdvs, datetime.date.fromisoformat(first_period + "-01"), "失业保险").unemployment
        plan = plan_benefit(standard, contribution_months, first_period, psn_no)
        claim_id = f"UB{psn_no}-{first_period.replace('-', '')}"
        await conn.execute(
            "INSERT INTO svc_benefit_claim (claim_id, psn_no, admdvs, contribution_months, months, monthly_benefit, "
            "medical_contribution_monthly, first_period, last_period) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            claim_id, psn_no, person.insuplc_admdvs, contribution_months, plan.months, plan.monthly_benefit,
            plan.medical_contribution_monthly, plan.periods[0], plan.periods[-1],
        )
        await store.add_employment_event(conn, psn_no, "benefit", ctx.today(), {"claim_id": claim_id, "months": plan.months})
    logger.info("employment: benefit approved psn_no=%s claim=%s months=%d", psn_no, claim_id, plan.months)
    return {
        "claim_id": claim_id, "months": plan.months, "monthly_benefit": plan.monthly_benefit,
        "medical_contribution_monthly": plan.medical_contribution_monthly, "total_benefit": plan.total_benefit,
        "first_period": plan.periods[0], "last_period": plan.periods[-1],
    }


async def pay_benefit(ctx: ServiceContext, claim_id: str, period: str) -> dict[str, Any]:
    """Pay one month of a benefit from the unemployment fund, with its medical contribution.

    The person must still be unemployed: after a job registration the remaining months stop.
    """
    async with ctx.db.transaction() as conn:
        claim = await conn.fetchrow(
            "SELECT psn_no, admdvs, monthly_benefit, medical_contribution_monthly, first_period, last_period FROM svc_benefit_claim WHERE claim_id = $1",
            claim_id,
        )
        if claim is None:
            raise SettlementError(ErrorCode.INVALID_FIELD, field="claim_id", value=claim_id, detail="失业保险金申领记录不存在", detail_en="no such benefit claim")
        if not claim["first_period"] <= period <= claim["last_period"]:
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field="period", value=period,
                detail=f"不在领取期 {claim['first_period']} 至 {claim['last_period']} 内", detail_en=f"outside the benefit period {claim['first_period']} to {claim['last_period']}",
            )
        status, _ = await store.employment_status(conn, claim["psn_no"])
        paid = await conn.fetchrow("SELECT benefit, medical_contribution, txn_id FROM svc_benefit_payment WHERE claim_id = $1 AND period = $2", claim_id, period)
    if paid is not None:
        return {"claim_id": claim_id, "period": period, "benefit": int(paid["benefit"]), "medical_contribution": int(paid["medical_contribution"]), "txn_id": int(paid["txn_id"])}
    if status is not EmploymentStatus.UNEMPLOYED:
        raise SettlementError(ErrorCode.BENEFIT_NOT_ELIGIBLE, value=claim["psn_no"], detail=f"就业状态为{status.name_zh}", detail_en=f"employment status is {status.value}")

    benefit, medical = int(claim["monthly_benefit"]), int(claim["medical_contribution_monthly"])
    entry = await ctx.ledger.adjust(benefit_month_request(claim_id, period, claim["admdvs"], benefit, medical))
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO svc_benefit_payment (claim_id, period, benefit, medical_contribution, txn_id) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (claim_id, period) DO NOTHING",
            claim_id, period, benefit, medical, entry.txn_id,
        )
    logger.info("employment: benefit paid claim=%s period=%s txn_id=%d", claim_id, period, entry.txn_id)
    return {"claim_id": claim_id, "period": period, "benefit": benefit, "medical_contribution": medical, "txn_id": entry.txn_id}


async def retire(ctx: ServiceContext, psn_no: str, effective_date: datetime.date, retired_psn_type: str) -> Retirement:
    """Move a person to retirement from ``effective_date``; settlements from that day use the retired group."""
    if not (len(retired_psn_type) in (2, 4, 6) and retired_psn_type.isdigit() and retired_psn_type.startswith("12")):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="retired_psn_type", value=retired_psn_type,
            detail="退休人员类别代码应以 12 开头", detail_en="a retiree psn_type code starts with 12",
        )
    async with ctx.db.transaction() as conn:
        person = await _person(conn, psn_no)
        await store.lock_person(conn, ctx.db.dialect, psn_no)
        existing = await store.retirement_of(conn, psn_no)
        if existing is not None:
            raise SettlementError(ErrorCode.ALREADY_RETIRED, value=psn_no, detail=existing.effective_date.isoformat())
        status, _ = await store.employment_status(conn, psn_no)
        after = check_registration("retirement", status, psn_no)
        await conn.execute(
            "INSERT INTO svc_retirement (psn_no, effective_date, retired_psn_type, previous_psn_type) VALUES ($1, $2, $3, $4)",
            psn_no, effective_date.isoformat(), retired_psn_type, person.psn_type,
        )
        await store.set_employment_status(conn, psn_no, after, effective_date)
        await store.add_employment_event(conn, psn_no, "retirement", effective_date, {"retired_psn_type": retired_psn_type})
    logger.info("employment: retirement psn_no=%s effective=%s", psn_no, effective_date.isoformat())
    return Retirement(effective_date, retired_psn_type)


async def employment_view(ctx: ServiceContext, psn_no: str) -> dict[str, Any]:
    """Return the status, registrations, benefit claims and payments of a person."""
    async with ctx.db.transaction() as conn:
        await _person(conn, psn_no)
        status, since = await store.employment_status(conn, psn_no)
        events = await store.employment_events(conn, psn_no)
        retirement = await store.retirement_of(conn, psn_no)
        claims = await conn.fetch(
            "SELECT claim_id, months, monthly_benefit, first_period, last_period FROM svc_benefit_claim WHERE psn_no = $1 ORDER BY first_period", psn_no
        )
        payments = await conn.fetch(
            "SELECT p.claim_id, p.period, p.benefit, p.medical_contribution, p.txn_id FROM svc_benefit_payment p "
            "JOIN svc_benefit_claim c ON c.claim_id = p.claim_id WHERE c.psn_no = $1 ORDER BY p.period", psn_no
        )
    return {
        "psn_no": psn_no,
        "status": status.value,
        "status_name": status.name_zh,
        "since": since,
        "retirement_date": retirement.effective_date.isoformat() if retirement else None,
        "events": events,
        "benefit_claims": [
            {"claim_id": c["claim_id"], "months": int(c["months"]), "monthly_benefit": int(c["monthly_benefit"]),
             "first_period": c["first_period"], "last_period": c["last_period"]}
            for c in claims
        ],
        "benefit_payments": [
            {"claim_id": p["claim_id"], "period": p["period"], "benefit": int(p["benefit"]),
             "medical_contribution": int(p["medical_contribution"]), "txn_id": int(p["txn_id"])}
            for p in payments
        ],
    }
