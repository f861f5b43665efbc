"""Handlers of inpatient stays: 2401/2402/2404/2405 admission and discharge, 2301/2302 fee lines,
2303/2304 pre-settlement and settlement at discharge (2305 cancel is in ``handlers_settle``).

A stay is a visit whose medical type starts with 2. Its uploaded lines form one batch keyed
by the stay's ``mdtrt_id``, and 2304 settles every live line of it, through the same ledger
path as an outpatient 2207. The region's ``year_rule`` and the admission date pick the year
whose accumulators the stay uses (``claims.resolve_claim``). The kernel reads the
per-admission deductible and the admission counter from that year, and the ledger writes
them back to it.
"""

from __future__ import annotations

import datetime

from adapters.server import state, stay_state
from adapters.server.claims import Claim, resolve_claim
from adapters.server.handlers_settle import claim_lines, named_person_with_credential, pre_settle_request, settle_request
from adapters.server.handlers_visit import Call, is_stay, live_visit, resolve_person, store_lines
from adapters.services import hooks as service_hooks
from settlement import visits
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import inpatient, outputs, requests

__all__ = ["HANDLERS"]


async def admit(call: Call) -> bytes:
    """2401: open a stay for the person and return its ``mdtrt_id``."""
    adm = inpatient.read_admission(call.input)
    services = call.services
    async with services.db.transaction() as conn:
        person = await state.person_by_psn_no(conn, adm.psn_no)
        if person is None:
            raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="input.mdtrtinfo.psn_no", value=adm.psn_no)
        holder = await resolve_person(conn, adm.cert_type, adm.cert_no, "input.mdtrtinfo.mdtrt_cert_no")
        visits.check_credential(holder, adm.cert_type, adm.cert_no, person.psn_no, "input.mdtrtinfo.mdtrt_cert_no")
        if adm.insutype != person.insutype:
            raise SettlementError(ErrorCode.NOT_ENROLLED, field="input.mdtrtinfo.insutype", value=adm.insutype)

        mdtrt_id = await state.insert_new_visit(
            conn, lambda: services.new_id("Z", call.now), fixmedins_code=call.code, psn_no=person.psn_no, insutype=adm.insutype, med_type=adm.med_type,
            begntime=adm.begntime, mdtrt_cert_type=adm.cert_type, ipt_otp_no=adm.ipt_no,
            dise_codg=adm.detail["dscg_maindiag_code"], detail=adm.detail, registered_by=call.msgid,
        )
        output = outputs.encode_output(inpatient.AdmissionOutput(result=inpatient.AdmissionResult(mdtrt_id=mdtrt_id)))
        await call.record(conn, output)
    return output


async def _live_stay(call: Call, conn, mdtrt_id: str, psn_no: str, field: str) -> state.StoredVisit:
    visit = await live_visit(call, conn, mdtrt_id, psn_no, field)
    if not is_stay(visit):
        raise SettlementError(
            ErrorCode.WRONG_VISIT_KIND, field=field, value=mdtrt_id, detail="门诊就诊，不是住院", detail_en="an outpatient visit, not a stay"
        )
    return visit


async def discharge(call: Call) -> bytes:
    """2402: record the discharge time and department. The stay is settled after it, by 2304."""
    dscg = inpatient.read_discharge(call.input)
    async with call.services.db.visit_transaction(dscg.mdtrt_id) as conn:
        visit = await _live_stay(call, conn, dscg.mdtrt_id, dscg.psn_no, "input.dscginfo.mdtrt_id")
        if dscg.insutype != visit.insutype:
            raise SettlementError(ErrorCode.NOT_ENROLLED, field="input.dscginfo.insutype", value=dscg.insutype)
        if dscg.endtime < visit.begntime:
            raise SettlementError(ErrorCode.FEE_TIME_OUT_OF_RANGE, field="input.dscginfo.endtime", value=dscg.endtime, detail=visit.begntime)
        if await stay_state.discharge_of(conn, dscg.mdtrt_id) is not None:
            raise SettlementError(
                ErrorCode.STAY_STATE, field="input.dscginfo.mdtrt_id", value=dscg.mdtrt_id,
                detail="已办理出院，请先撤销出院（2405）", detail_en="is already discharged; cancel the discharge (2405) first",
            )
        await stay_state.set_discharge(conn, dscg.mdtrt_id, {"endtime": dscg.endtime, **dscg.detail, "msgid": call.msgid})
        output = b"{}"
        await call.record(conn, output)
    return output


async def cancel_discharge(call: Call) -> bytes:
    """2405: take back a discharge, rejected while the stay has a live settlement."""
    ref = inpatient.read_stay_ref(call.input)
    async with call.services.db.visit_transaction(ref.mdtrt_id) as conn:
        await _live_stay(call, conn, ref.mdtrt_id, ref.psn_no, "input.data.mdtrt_id")
        if await stay_state.discharge_of(conn, ref.mdtrt_id) is None:
            raise SettlementError(
                ErrorCode.STAY_STATE, field="input.data.mdtrt_id", value=ref.mdtrt_id, detail="尚未办理出院", detail_en="is not discharged"
            )
        await _reject_if_settled(call, ref.mdtrt_id)
        await stay_state.set_discharge(conn, ref.mdtrt_id, None)
        output = b"{}"
        await call.record(conn, output)
    return output


async def cancel_admission(call: Call) -> bytes:
    """2404: cancel a stay with its unsettled lines, rejected while it has a live settlement."""
    ref = inpatient.read_stay_ref(call.input)
    async with call.services.db.visit_transaction(ref.mdtrt_id) as conn:
        await _live_stay(call, conn, ref.mdtrt_id, ref.psn_no, "input.data.mdtrt_id")
        await _reject_if_settled(call, ref.mdtrt_id)
        await state.cancel_batch(conn, ref.mdtrt_id, None, call.msgid)
        await state.cancel_visit(conn, ref.mdtrt_id, call.msgid)
        output = b"{}"
        await call.record(conn, output)
    return output


async def _reject_if_settled(call: Call, mdtrt_id: str) -> None:
    covered = await call.services.ledger.covered_fee_details(call.code, mdtrt_id)
    if covered:
        raise SettlementError(
            ErrorCode.VISIT_HAS_SETTLEMENT, field="input.data.mdtrt_id", value=mdtrt_id, detail=", ".join(sorted(set(covered.values())))
        )


async def upload_stay_lines(call: Call) -> bytes:
    """2301: store the stay's fee lines, each priced by the catalogue in force on its fee date."""
    config = call.services.config
    lines = inpatient.read_stay_upload(call.input, max_lines=config.max_lines, tolerance_fen=config.line_tolerance_fen)
    return await store_lines(call, lines, stay=True)


async def cancel_stay_lines(call: Call) -> bytes:
    """2302: withdraw one unsettled line (with its refunds), or every one with ``feedetl_sn`` 0000."""
    data = inpatient.read_stay_fee_cancel(call.input)
    async with call.services.db.visit_transaction(data.mdtrt_id) as conn:
        await _live_stay(call, conn, data.mdtrt_id, data.psn_no, "input.data.mdtrt_id")
        covered = await call.services.ledger.covered_fee_details(call.code, data.mdtrt_id)
        if covered and (data.feedetl_sn == "0000" or data.feedetl_sn in covered):
            raise SettlementError(
                ErrorCode.DETAILS_SETTLED, field="input.data.feedetl_sn", value=data.feedetl_sn, detail=", ".join(sorted(set(covered.values())))
            )
        if data.feedetl_sn == "0000":
            await state.cancel_batch(conn, data.mdtrt_id, None, call.msgid)
        elif await stay_state.cancel_line(conn, data.mdtrt_id, data.feedetl_sn, call.msgid) == 0:
            raise SettlementError(ErrorCode.UNKNOWN_ORIGINAL, field="input.data.feedetl_sn", value=data.feedetl_sn)
        output = b"{}"
        await call.record(conn, output)
    return output


async def _stay_claim(call: Call, req: requests.SettleRequest, conn) -> tuple[Claim, list[state.StoredLine]]:
    """Read the stay, its person and every live line on ``conn``, and check the claimed total."""
    visit, stored = await state.visit_with_batch_lines(conn, req.mdtrt_id, call.code, req.mdtrt_id)
    field = "input.data.mdtrt_id"
    if visit is None:
        raise SettlementError(ErrorCode.UNKNOWN_VISIT, field=field, value=req.mdtrt_id)
    if visit.cancelled:
        raise SettlementError(ErrorCode.VISIT_CANCELLED, field=field, value=req.mdtrt_id)
    if not is_stay(visit):
        raise SettlementError(ErrorCode.WRONG_VISIT_KIND, field=field, value=req.mdtrt_id, detail="门诊就诊，请用 2206/2207 结算",
                              detail_en="an outpatient visit; settle with 2206/2207")
    if visit.psn_no != req.psn_no:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.psn_no", value=req.psn_no,
            detail=f"住院 {req.mdtrt_id} 的人员", detail_en=f"the person of stay {req.mdtrt_id}",
        )
    person = await named_person_with_credential(conn, req.psn_no, req.cert_type, req.cert_no, "input.data")
    person = await service_hooks.person_on(conn, person, call.now.date())

    lines = claim_lines(req, stored, field)
    admitted = datetime.date.fromisoformat(visit.begntime[:10])
    claim = resolve_claim(call, person, req.insutype, visit.med_type, lines, "input.data", admission=admitted)
    return claim, stored


async def pre_settle_stay(call: Call) -> bytes:
    return await pre_settle_request(call, inpatient.read_stay_settle(call.input), _stay_claim)


async def settle_stay(call: Call) -> bytes:
    output = await settle_request(call, inpatient.read_stay_settle(call.input), None, _stay_claim)
    assert isinstance(output, bytes)
    return output


HANDLERS = {
    "2401": admit,
    "2402": discharge,
    "2404": cancel_admission,
    "2405": cancel_discharge,
    "2301": upload_stay_lines,
    "2302": cancel_stay_lines,
    "2303": pre_settle_stay,
    "2304": settle_stay,
}
