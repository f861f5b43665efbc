"""Endowment personal-account operations: monthly contribution, yearly interest, balance and records.

Each entry is a ledger adjustment first (idempotent by its msgid) and a
``svc_pension_entry`` row after it, so repeating a request after a failure in between
completes it without a second journal transaction.
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

from adapters.server import state
from adapters.services import store
from adapters.services.context import ServiceContext
from settlement.errors import ErrorCode, SettlementError
from settlement.services.pension import check_base, contribution_amount, yearly_interest
from settlement.services.postings import (
    pension_contribution_request,
    pension_interest_request,
)

__all__ = ["contribute", "credit_interest", "payment_records", "pension_view"]

logger = logging.getLogger("settlement.services")

_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def check_period(period: str, field: str = "period") -> str:
    """Raise INVALID_FIELD unless ``period`` is ``yyyy-MM``."""
    if not isinstance(period, str) or not _PERIOD.fullmatch(period):
        raise SettlementError(ErrorCode.INVALID_FIELD, field=field, value=period, detail="格式应为 yyyy-MM", detail_en="expected yyyy-MM")
    return period


async def _person(conn: Any, psn_no: str) -> Any:
    person = await state.person_by_psn_no(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
    return person


async def contribute(ctx: ServiceContext, psn_no: str, period: str, base: int) -> dict[str, Any]:
    """Record the contribution of one month: ``base`` (fen) times the region's rate."""
    check_period(period)
    async with ctx.db.transaction() as conn:
        person = await _person(conn, psn_no)
        retirement = await store.retirement_of(conn, psn_no)
        stored = await conn.fetchrow(
            "SELECT base, rate, amount, txn_id FROM svc_pension_entry WHERE psn_no = $1 AND kind = 'contribution' AND period = $2", psn_no, period
        )
    first_day = datetime.date.fromisoformat(period + "-01")
    if retirement is not None and first_day >= retirement.effective_date.replace(day=1):
        raise SettlementError(
            ErrorCode.EMPLOYMENT_STATE_CONFLICT, field="养老保险缴费", value=psn_no,
            detail=f"退休（{retirement.effective_date.isoformat()} 起）", detail_en=f"retired from {retirement.effective_date.isoformat()}",
        )
    standard = ctx.standards.on(person.insuplc_admdvs, first_day, "养老保险").pension
    check_base(standard, base)
    amount = contribution_amount(base, standard.contribution_rate)
    if stored is not None:
        if int(stored["base"]) != base:
            raise SettlementError(ErrorCode.DUPLICATE_CONTRIBUTION, value=psn_no, detail=period)
        return {"psn_no": psn_no, "period": period, "base": base, "rate": int(stored["rate"]), "amount": int(stored["amount"]), "txn_id": int(stored["txn_id"])}

    entry = await ctx.ledger.adjust(pension_contribution_request(psn_no, period, person.insuplc_admdvs, amount))
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO svc_pension_entry (psn_no, kind, period, admdvs, base, rate, amount, txn_id) "
            "VALUES ($1, 'contribution', $2, $3, $4, $5, $6, $7) ON CONFLICT (psn_no, kind, period) DO NOTHING",
            psn_no, period, person.insuplc_admdvs, base, standard.contribution_rate, amount, entry.txn_id,
        )
    logger.info("pension: contribution psn_no=%s period=%s txn_id=%d", psn_no, period, entry.txn_id)
    return {"psn_no": psn_no, "period": period, "base": base, "rate": standard.contribution_rate, "amount": amount, "txn_id": entry.txn_id}


async def credit_interest(ctx: ServiceContext, psn_no: str, year: int) -> dict[str, Any]:
    """Credit a year's interest on the balance at the start of the year and the year's contributions."""
    async with ctx.db.transaction() as conn:
        person = await _person(conn, psn_no)
        if await conn.fetchval("SELECT 1 FROM svc_pension_entry WHERE psn_no = $1 AND kind = 'interest' AND period = $2", psn_no, str(year)):
            raise SettlementError(ErrorCode.INTEREST_ALREADY_CREDITED, value=psn_no, detail=str(year))
        opening = int(await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM svc_pension_entry WHERE psn_no = $1 AND period < $2", psn_no, str(year)))
        rows = await conn.fetch(
            "SELECT period, amount FROM svc_pension_entry WHERE psn_no = $1 AND kind = 'contribution' AND period >= $2 AND period <= $3",
            psn_no, f"{year}-01", f"{year}-12",
        )
    standard = ctx.standards.on(person.insuplc_admdvs, datetime.date(year, 12, 31), "养老保险").pension
    rate = standard.interest_rates.get(year)
    if rate is None:
        raise SettlementError(ErrorCode.SERVICE_STANDARD_MISSING, field="记账利率", value=person.insuplc_admdvs, detail=str(year))
    monthly = {int(row["period"][5:7]): int(row["amount"]) for row in rows}
    amount = yearly_interest(opening, monthly, rate)

    txn_id = None
    if amount:
        entry = await ctx.ledger.adjust(pension_interest_request(psn_no, year, person.insuplc_admdvs, amount))
        txn_id = entry.txn_id
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO svc_pension_entry (psn_no, kind, period, admdvs, base, rate, amount, txn_id) "
            "VALUES ($1, 'interest', $2, $3, $4, $5, $6, $7) ON CONFLICT (psn_no, kind, period) DO NOTHING",
            psn_no, str(year), person.insuplc_admdvs, opening, rate, amount, txn_id,
        )
    logger.info("pension: interest psn_no=%s year=%d amount=%d", psn_no, year, amount)
    return {"psn_no": psn_no, "year": year, "opening_balance": opening, "rate": rate, "amount": amount, "txn_id": txn_id}


async def pension_view(ctx: ServiceContext, psn_no: str) -> dict[str, Any]:
    """Return the balance and every entry of a person's endowment personal account."""
    async with ctx.db.transaction() as conn:
        await _person(conn, psn_no)
        rows = await conn.fetch(
            "SELECT kind, period, base, rate, amount, txn_id FROM svc_pension_entry WHERE psn_no = $1 ORDER BY period, kind", psn_no
        )
        retirement = await store.retirement_of(conn, psn_no)
    entries = [
        {"kind": r["kind"], "period": r["period"], "base": int(r["base"]), "rate": int(r["rate"]), "amount": int(r["amount"]),
         "txn_id": None if r["txn_id"] is None else int(r["txn_id"])}
        for r in rows
    ]
    return {
        "psn_no": psn_no,
        "balance": sum(entry["amount"] for entry in entries),
        "retired_from": retirement.effective_date.isoformat() if retirement else None,
        "entries": entries,
    }


async def payment_records(ctx: ServiceContext, psn_no: str, insutype: str, year: int) -> list[dict[str, Any]]:
    """Return a person's social insurance payments of one type and year.

    ``110`` lists endowment contributions, ``210`` the unemployment benefit paid to the
    person and ``310`` the medical contributions the unemployment fund paid for them.
    """
    if insutype not in ("110", "210", "310"):
        raise SettlementError(ErrorCode.INVALID_CODE, field="insutype", value=insutype, detail="应为 110、210 或 310", detail_en="must be 110, 210 or 310")
    low, high = f"{year:04d}-01", f"{year:04d}-12"
    async with ctx.db.transaction() as conn:
        await _person(conn, psn_no)
        if insutype == "110":
            rows = await conn.fetch(
                "SELECT period, amount, txn_id FROM svc_pension_entry WHERE psn_no = $1 AND kind = 'contribution' AND period >= $2 AND period <= $3 ORDER BY period",
                psn_no, low, high,
            )
            return [{"insutype": "110", "period": r["period"], "amount": int(r["amount"]), "payer": "person", "txn_id": int(r["txn_id"])} for r in rows]
        column = "p.benefit" if insutype == "210" else "p.medical_contribution"
        rows = await conn.fetch(
            f"SELECT p.period, {column} AS amount, p.txn_id FROM svc_benefit_payment p JOIN svc_benefit_claim c ON c.claim_id = p.claim_id "
            "WHERE c.psn_no = $1 AND p.period >= $2 AND p.period <= $3 ORDER BY p.period",
            psn_no, low, high,
        )
    payer = "unemployment_fund"
    return [{"insutype": insutype, "period": r["period"], "amount": int(r["amount"]), "payer": payer, "txn_id": int(r["txn_id"])} for r in rows if int(r["amount"])]
