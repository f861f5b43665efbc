"""Handlers of sign-in/out, person query, registration and fee details (9001, 9002, 1101, 2201-2205).

Each handler checks its input, reads and writes in one database transaction, records the
output under the message id so that a retry gets it back, and returns the encoded output.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from adapters.server import claims, state
from adapters.server.services import Services
from adapters.services import hooks as service_hooks
from settlement import visits
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Institution, Person
from settlement.protocol import codes, outputs, requests
from settlement.protocol.envelope import RequestEnvelope

__all__ = ["Call", "HANDLERS", "is_stay", "live_visit", "resolve_person", "store_lines"]


@dataclass
class Call:
    """One authenticated request on its way through a handler."""

    services: Services
    institution: Institution
    envelope: RequestEnvelope
    infno: str
    msgid: str
    input: object
    digest: str
    now: datetime.datetime

    @property
    def code(self) -> str:
        return self.institution.fixmedins_code

    @functools.cached_property
    def stamp(self) -> str:
        # The same text as strftime's "%Y-%m-%d %H:%M:%S" for these naive times, in about a
        # fifth of the time, and made once per request however often the handlers read it.
        return self.now.isoformat(" ", "seconds")

    async def record(self, conn: state.Connection, output: bytes) -> None:
        await state.record_message(conn, self.code, self.msgid, self.infno, self.digest, output, self.stamp)


async def resolve_person(conn: state.Connection, cert_type: str, cert_no: str, field: str) -> Person | None:
    """Find the person a credential names: 02 an ID number, 03 a card number, 01 an e-voucher token.

    Cards and tokens recorded by the card service come first, and a card of it that cannot
    settle (lost, cancelled, not activated) is rejected here. Other e-voucher tokens are
    issued by the national platform, which this engine does not reach, so they are looked
    up as person numbers.
    """
    psn_no = await service_hooks.person_for_credential(conn, cert_type, cert_no, field)
    if psn_no is not None:
        return await state.person_by_psn_no(conn, psn_no)
    if cert_type == codes.CERT_BY_ID:
        return await state.person_by_certno(conn, cert_no)
    if cert_type == codes.CERT_BY_CARD:
        return await state.person_by_card(conn, cert_no)
    return await state.person_by_psn_no(conn, cert_no)


async def _person_by_psn_no(conn: state.Connection, psn_no: str, field: str) -> Person:
    person = await state.person_by_psn_no(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field=field, value=psn_no)
    return person


async def sign_in(call: Call) -> bytes:
    data = requests.read_sign_in(call.input)
    async with call.services.db.transaction() as conn:
        sign_no = await state.sign_in(conn, call.code, data.opter_no, call.stamp)
        output = outputs.encode_output(outputs.SignInOutput(outputs.SignInOutputBlock(sign_time=call.stamp, sign_no=sign_no)))
        await call.record(conn, output)
    return output


async def sign_out(call: Call) -> bytes:
    data = requests.read_sign_out(call.input)
    async with call.services.db.transaction() as conn:
        if not await state.sign_out(conn, call.code, data.sign_no, call.stamp):
            raise SettlementError(
                ErrorCode.SIGN_IN_REQUIRED, field="input.signOut.sign_no", value=data.sign_no,
                detail="不是本机构未签退的签到", detail_en="not a live sign-in of this institution",
            )
        output = outputs.encode_output(outputs.SignOutOutput(outputs.SignOutOutputBlock(sign_time=call.stamp)))
        await call.record(conn, output)
    return output


async def person_info(call: Call) -> bytes:
    query = requests.read_person_query(call.input)
    services = call.services
    async with services.db.transaction() as conn:
        person = await resolve_person(conn, query.cert_type, query.cert_no, "input.data.mdtrt_cert_no")
        if person is not None:
            # From a retirement's effective date on, 1101 reports the retired person type, as settlement uses it.
            person = await service_hooks.person_on(conn, person, call.now.date())
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="input.data.mdtrt_cert_no", value=query.cert_no, sensitive=True)
    if query.psn_name is not None and query.psn_name != person.psn_name:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.psn_name", value=query.psn_name, sensitive=True,
            detail="凭证登记的姓名", detail_en="the name registered for the credential",
        )
    if query.certno is not None and query.certno != person.certno:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.certno", value=query.certno, sensitive=True,
            detail="凭证登记的证件号码", detail_en="the certificate number registered for the credential",
        )

    balance = (await services.ledger.accumulators(person.psn_no, call.now.year)).get("acct_balc", 0)
    output = outputs.PersonInfoOutput(
        baseinfo=outputs.BaseInfo(
            psn_no=person.psn_no, psn_cert_type=person.psn_cert_type, certno=person.certno, psn_name=person.psn_name,
            gend=person.gend, naty=person.naty, brdy=person.brdy,
            age=outputs.Decimal(visits.age_in_years(person, call.now.date())).quantize(outputs.Decimal("0.1")),
        ),
        insuinfo=[
            outputs.InsuInfo(
                balc=outputs.yuan(balance), insutype=person.insutype, psn_type=person.psn_type,
                psn_insu_stas=person.psn_insu_stas, cvlserv_flag=person.cvlserv_flag, insuplc_admdvs=person.insuplc_admdvs,
                psn_insu_date=person.psn_insu_date, emp_name=person.emp_name,
            )
        ],
        idetinfo=[],
    )
    return outputs.encode_output(output)


async def register(call: Call) -> bytes:
    reg = requests.read_registration(call.input)
    services = call.services
    async with services.db.transaction() as conn:
        person = await _person_by_psn_no(conn, reg.psn_no, "input.data.psn_no")
        holder = await resolve_person(conn, reg.cert_type, reg.cert_no, "input.data.mdtrt_cert_no")
        visits.check_credential(holder, reg.cert_type, reg.cert_no, person.psn_no, "input.data.mdtrt_cert_no")
        if reg.insutype != person.insutype:
            raise SettlementError(ErrorCode.NOT_ENROLLED, field="input.data.insutype", value=reg.insutype)

        mdtrt_id = await state.insert_new_visit(
            conn, lambda: services.new_id("M", call.now), fixmedins_code=call.code, psn_no=person.psn_no, insutype=reg.insutype, med_type="11",
            begntime=reg.begntime, mdtrt_cert_type=reg.cert_type, ipt_otp_no=reg.ipt_otp_no, dise_codg=None,
            detail={"atddr_no": reg.atddr_no, "dr_name": reg.dr_name, "dept_code": reg.dept_code, "dept_name": reg.dept_name, "caty": reg.caty},
            registered_by=call.msgid,
        )
        output = outputs.encode_output(
            outputs.RegisterOutput(outputs.RegisterOutputData(mdtrt_id=mdtrt_id, psn_no=person.psn_no, ipt_otp_no=reg.ipt_otp_no))
        )
        await call.record(conn, output)
    return output


async def live_visit(call: Call, conn: state.Connection, mdtrt_id: str, psn_no: str, field: str) -> state.StoredVisit:
    visit = await state.visit_by_id(conn, mdtrt_id, call.code, for_update=True, dialect=call.services.db.dialect)
    if visit is None:
        raise SettlementError(ErrorCode.UNKNOWN_VISIT, field=field, value=mdtrt_id)
    if visit.cancelled:
        raise SettlementError(ErrorCode.VISIT_CANCELLED, field=field, value=mdtrt_id)
    if visit.psn_no != psn_no:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field=field.rsplit(".", 1)[0] + ".psn_no", value=psn_no,
            detail=f"就诊 {mdtrt_id} 的人员", detail_en=f"the person of visit {mdtrt_id}",
        )
    return visit


async def cancel_registration(call: Call) -> bytes:
    data = requests.read_registration_cancel(call.input)
    services = call.services
    async with services.db.visit_transaction(data.mdtrt_id) as conn:
        visit = await live_visit(call, conn, data.mdtrt_id, data.psn_no, "input.data.mdtrt_id")
        covered = await services.ledger.covered_fee_details(call.code, data.mdtrt_id)
        if covered:
            setl_ids = ", ".join(sorted(set(covered.values())))
            raise SettlementError(ErrorCode.VISIT_HAS_SETTLEMENT, field="input.data.mdtrt_id", value=data.mdtrt_id, detail=setl_ids)
        if visit.ipt_otp_no is not None and visit.ipt_otp_no != data.ipt_otp_no:
            raise SettlementError(
                ErrorCode.PERSON_MISMATCH, field="input.data.ipt_otp_no", value=data.ipt_otp_no,
                detail=f"就诊 {data.mdtrt_id} 的门诊号", detail_en=f"the outpatient number of visit {data.mdtrt_id}",
            )
        await state.cancel_batch(conn, data.mdtrt_id, None, call.msgid)
        await state.cancel_visit(conn, data.mdtrt_id, call.msgid)
        output = b"{}"
        await call.record(conn, output)
    return output


async def visit_info(call: Call) -> bytes:
    update = requests.read_visit_info(call.input)
    async with call.services.db.visit_transaction(update.mdtrt_id) as conn:
        await live_visit(call, conn, update.mdtrt_id, update.psn_no, "input.mdtrtinfo.mdtrt_id")
        await state.update_visit_info(conn, update.mdtrt_id, update.med_type, update.dise_codg, update.dise_name, list(update.diagnoses))
        output = b"{}"
        await call.record(conn, output)
    return output


def _med_chrgitm_type(med_list_codg: str) -> str:
    # The catalogue does not carry the fee category; drug codes start with X or Z (西药/中成药).
    return "09" if med_list_codg[:1] in ("X", "Z") else "14"


async def upload_details(call: Call) -> bytes:
    services = call.services
    lines = requests.read_fee_upload(call.input, max_lines=services.config.max_lines, tolerance_fen=services.config.line_tolerance_fen)
    return await store_lines(call, lines, stay=False)


def is_stay(visit: state.StoredVisit) -> bool:
    """Tell an inpatient stay (2401, medical type 2x) from an outpatient visit."""
    return visit.med_type.startswith("2")


async def store_lines(call: Call, lines: tuple[requests.FeeLineIn, ...], *, stay: bool) -> bytes:
    """Check and split uploaded lines of one visit (2204) or stay (2301), store them, and return the ``result`` output."""
    services = call.services
    mdtrt_id, psn_no = lines[0].mdtrt_id, lines[0].psn_no

    async with services.db.visit_transaction(mdtrt_id) as conn:
        visit = await live_visit(call, conn, mdtrt_id, psn_no, "input.feedetail[0].mdtrt_id")
        if is_stay(visit) != stay:
            raise SettlementError(
                ErrorCode.WRONG_VISIT_KIND, field="input.feedetail[0].mdtrt_id", value=mdtrt_id,
                detail="住院，请用 2301 上传明细" if is_stay(visit) else "门诊，请用 2204 上传明细",
                detail_en="an inpatient stay; upload with 2301" if is_stay(visit) else "an outpatient visit; upload with 2204",
            )
        person = await _person_by_psn_no(conn, psn_no, "input.feedetail[0].psn_no")
        stored = await state.live_lines_of_visit(conn, mdtrt_id)
        by_sn = {line.feedetl_sn: line for line in stored}
        covered = await services.ledger.covered_fee_details(call.code, mdtrt_id)
        settled_batches = {by_sn[sn].chrg_bchno: setl_id for sn, setl_id in covered.items() if sn in by_sn}

        _check_lines(visit, lines, stored, by_sn, settled_batches)
        splits = claims.split_lines(call, person, visit.insutype, visit.med_type, lines, "input.feedetail[0]")
        rows, results = _split_rows(lines, splits, stored)
        await state.insert_lines(conn, mdtrt_id, call.msgid, rows)
        output = outputs.encode_output(outputs.FeeUploadOutput(result=results))
        await call.record(conn, output)
    return output


def _check_lines(visit, lines, stored, by_sn, settled_batches) -> None:
    """Check serials, batches, fee times and refunds of an upload against the visit's stored lines."""
    refunded: dict[str, list[int]] = {}
    for line in stored:
        if line.init_feedetl_sn is not None:
            quantity, amount = refunded.setdefault(line.init_feedetl_sn, [0, 0])
            refunded[line.init_feedetl_sn] = [quantity + line.quantity, amount + line.amount]

    for line in lines:
        if line.feedetl_sn in by_sn:
            raise SettlementError(ErrorCode.DUPLICATE_FEEDETL_SN, field=f"{line.path}.feedetl_sn", value=line.feedetl_sn)
        if line.chrg_bchno in settled_batches:
            raise SettlementError(
                ErrorCode.ALREADY_SETTLED, field=f"{line.path}.chrg_bchno", value=line.chrg_bchno, detail=settled_batches[line.chrg_bchno]
            )
        if line.fee_ocur_time < visit.begntime:
            raise SettlementError(ErrorCode.FEE_TIME_OUT_OF_RANGE, field=f"{line.path}.fee_ocur_time", value=line.fee_ocur_time, detail=visit.begntime)

        if line.init_feedetl_sn is not None:
            original = by_sn.get(line.init_feedetl_sn)
            if original is None or original.init_feedetl_sn is not None:
                raise SettlementError(ErrorCode.UNKNOWN_ORIGINAL, field=f"{line.path}.init_feedetl_sn", value=line.init_feedetl_sn)
            if line.quantity < 0:
                done_quantity, done_amount = refunded.get(line.init_feedetl_sn, (0, 0))
                visits.check_refund(line, original.quantity, original.amount, done_quantity, done_amount)
                refunded[line.init_feedetl_sn] = [done_quantity + line.quantity, done_amount + line.amount]


def _split_rows(lines, splits, stored):
    """Return the rows to store and the 2204 ``result`` rows of split lines."""
    next_seq = max((line.seq for line in stored), default=0) + 1
    rows, results = [], []
    for line, split in zip(lines, splits, strict=True):
        rows.append(
            (
                line.feedetl_sn, line.chrg_bchno, line.init_feedetl_sn, line.rxno, line.fee_ocur_time, line.med_list_codg,
                line.medins_list_codg, line.amount, line.price_micro, line.quantity, int(split.charge_class), split.selfpay_prop,
                split.price_cap_micro, split.fulamt_ownpay_amt, split.overlmt_amt, split.preselfpay_amt, split.inscp_scp_amt, next_seq,
            )
        )
        next_seq += 1
        results.append(visits.fee_result(line.feedetl_sn, line.amount, line.price_micro, line.quantity, split, _med_chrgitm_type(line.med_list_codg)))
    return rows, results


async def cancel_details(call: Call) -> bytes:
    data = requests.read_fee_cancel(call.input)
    services = call.services
    # "0000" withdraws every unsettled line of the visit.
    batch = None if data.chrg_bchno == "0000" else data.chrg_bchno
    async with services.db.visit_transaction(data.mdtrt_id) as conn:
        await live_visit(call, conn, data.mdtrt_id, data.psn_no, "input.data.mdtrt_id")
        stored = await state.live_lines_of_visit(conn, data.mdtrt_id)
        covered = await services.ledger.covered_fee_details(call.code, data.mdtrt_id)
        for line in stored:
            if (batch is None or line.chrg_bchno == batch) and line.feedetl_sn in covered:
                raise SettlementError(
                    ErrorCode.DETAILS_SETTLED, field="input.data.chrg_bchno", value=line.chrg_bchno, detail=covered[line.feedetl_sn]
                )
        await state.cancel_batch(conn, data.mdtrt_id, batch, call.msgid)
        output = b"{}"
        await call.record(conn, output)
    return output


HANDLERS = {
    "9001": sign_in,
    "9002": sign_out,
    "1101": person_info,
    "2201": register,
    "2202": cancel_registration,
    "2203": visit_info,
    "2203A": visit_info,
    "2204": upload_details,
    "2205": cancel_details,
}

