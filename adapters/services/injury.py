"""Work-injury operations: case registration, recognition and treatment settled against the injury fund.

The settlement runs the kernel under the injury policy and posts one ledger adjustment
(idempotent by the case and the institution's msgid), then records it. Repeating a
request with the same msgid returns the stored result.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import msgspec

from adapters.server import state
from adapters.services.context import ServiceContext
from settlement import engine
from settlement.errors import ErrorCode, SettlementError
from settlement.policy import person_group
from settlement.policy.groups import age_on
from settlement.services.injury import claim_input, injury_postings, policy_on

__all__ = ["decide_case", "register_case", "settle_treatment"]

logger = logging.getLogger("settlement.services")

# Medical type codes an injury treatment may use, with the policy's scheme names.
INJURY_MED_TYPES = {"11": "outpatient_general", "21": "inpatient"}


async def register_case(ctx: ServiceContext, psn_no: str, injury_date: datetime.date, description: str) -> dict[str, Any]:
    """Record a work-injury case awaiting recognition."""
    async with ctx.db.transaction() as conn:
        if await state.person_by_psn_no(conn, psn_no) is None:
            raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
        count = int(await conn.fetchval("SELECT count(*) FROM svc_injury_case WHERE psn_no = $1", psn_no))
        case_id = f"WI{psn_no}-{count + 1:03d}"
        await conn.execute(
            "INSERT INTO svc_injury_case (case_id, psn_no, injury_date, description, status) VALUES ($1, $2, $3, $4, 'applied')",
            case_id, psn_no, injury_date.isoformat(), description,
        )
    logger.info("injury: case registered case=%s psn_no=%s", case_id, psn_no)
    return {"case_id": case_id, "psn_no": psn_no, "status": "applied"}


async def decide_case(ctx: ServiceContext, case_id: str, recognized: bool, date: datetime.date) -> dict[str, Any]:
    """Recognize or reject an applied case; a decided case cannot change."""
    status = "recognized" if recognized else "rejected"
    async with ctx.db.transaction() as conn:
        current = await conn.fetchval("SELECT status FROM svc_injury_case WHERE case_id = $1", case_id)
        if current is None:
            raise SettlementError(ErrorCode.INJURY_NOT_RECOGNIZED, value=case_id, detail="认定申请不存在", detail_en="no such case")
        if current != "applied":
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field="case_id", value=case_id, detail=f"已作出认定结论（{current}）", detail_en=f"already decided ({current})"
            )
        await conn.execute("UPDATE svc_injury_case SET status = $1, decided_date = $2 WHERE case_id = $3", status, date.isoformat(), case_id)
    logger.info("injury: case decided case=%s status=%s", case_id, status)
    return {"case_id": case_id, "status": status, "decided_date": date.isoformat()}


async def settle_treatment(
    ctx: ServiceContext, case_id: str, fixmedins_code: str, msgid: str, med_type: str, lines: list[tuple[str, str, int, int]], on_date: datetime.date
) -> dict[str, Any]:
    """Settle treatment of a recognized injury; ``lines`` are (serial, code, price in 1e-6 yuan, quantity in 1e-4)."""
    word = INJURY_MED_TYPES.get(med_type)
    if word is None:
        raise SettlementError(ErrorCode.INVALID_CODE, field="med_type", value=med_type, detail="应为 11 或 21", detail_en="must be 11 or 21")
    if ctx.catalog is None:
        raise SettlementError(ErrorCode.SERVICE_UNAVAILABLE, detail="未加载目录", detail_en="no catalogue loaded")

    async with ctx.db.transaction() as conn:
        case = await conn.fetchrow("SELECT psn_no, injury_date, status FROM svc_injury_case WHERE case_id = $1", case_id)
        stored = await conn.fetchrow(
            "SELECT medfee_sumamt, fund_pay_sumamt, psn_cash_pay, txn_id, policy_id FROM svc_injury_settlement WHERE case_id = $1 AND msgid = $2",
            case_id, msgid,
        )
        if case is None or case["status"] != "recognized":
            raise SettlementError(
                ErrorCode.INJURY_NOT_RECOGNIZED, value=case_id, detail="状态为" + (case["status"] if case else "不存在"),
                detail_en="status " + (case["status"] if case else "missing"),
            )
        person = await state.person_by_psn_no(conn, case["psn_no"])
        institution = (await state.load_institutions(conn)).get(fixmedins_code)
    if stored is not None:
        return _result(case_id, msgid, stored["policy_id"], int(stored["medfee_sumamt"]), int(stored["fund_pay_sumamt"]), int(stored["psn_cash_pay"]),
                       stored["txn_id"])
    if on_date < datetime.date.fromisoformat(case["injury_date"]):
        raise SettlementError(ErrorCode.INVALID_FIELD, field="date", value=on_date.isoformat(), detail="早于受伤日期", detail_en="is before the injury date")

    policy = policy_on(ctx.injury_policies, person.insuplc_admdvs, on_date)
    group = person_group(person.psn_type, age_on(person.birth_date(), on_date))
    params = policy.resolve(word, group, institution.hosp_lv, False, None)
    outputs = engine.settle(claim_input(params, ctx.catalog, lines, on_date)).outputs

    txn_id = None
    request = injury_postings(case_id, msgid, person.insuplc_admdvs, fixmedins_code, outputs, f"工伤医疗费 {case_id}（work-injury treatment）")
    if request.postings:
        txn_id = (await ctx.ledger.adjust(request)).txn_id
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO svc_injury_settlement (case_id, msgid, fixmedins_code, setl_date, policy_id, medfee_sumamt, fund_pay_sumamt, psn_cash_pay, txn_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (case_id, msgid) DO NOTHING",
            case_id, msgid, fixmedins_code, on_date.isoformat(), policy.policy_id, outputs.medfee_sumamt, outputs.fund_pay_sumamt,
            outputs.psn_cash_pay, txn_id,
        )
    logger.info("injury: treatment settled case=%s fixmedins_code=%s msgid=%s txn_id=%s", case_id, fixmedins_code, msgid, txn_id)
    return _result(case_id, msgid, policy.policy_id, outputs.medfee_sumamt, outputs.fund_pay_sumamt, outputs.psn_cash_pay, txn_id) | {
        "outputs": msgspec.structs.asdict(outputs)
    }


def _result(case_id: str, msgid: str, policy_id: str, medfee: int, fund: int, cash: int, txn_id: Any) -> dict[str, Any]:
    return {
        "case_id": case_id, "msgid": msgid, "policy_id": policy_id, "medfee_sumamt": medfee, "fund_pay_sumamt": fund,
        "psn_cash_pay": cash, "txn_id": None if txn_id is None else int(txn_id),
    }
