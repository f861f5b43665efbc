"""Handlers of pre-settlement, settlement and cancel: outpatient 2206-2208 and pharmacy 2101-2103.

The kernel recomputes a settlement from the stored fee lines of its charge batch, or from
the lines sent inline for a pharmacy sale. It runs under the ledger's lock on the person,
and the ledger writes the result. A pre-settlement computes the same way and writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from adapters.server import settle_batch, settle_reads, state
from adapters.server.admission import Admission
from adapters.server.claims import Claim, resolve_claim
from adapters.server.handlers_visit import Call, is_stay, resolve_person
from adapters.services import hooks as service_hooks
from settlement import engine, visits
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Person
from settlement.protocol import outputs, query_outputs, requests
from settlement.store import CancelRequest, SettlementPlan, SettlementRecord, SettlementRequest

__all__ = ["ADMITTING_HANDLERS", "AdmittingHandler", "ClaimReader", "HANDLERS", "check_settlement_ref", "claim_lines", "named_person_with_credential", "pre_settle_request", "settle_request"]


async def _named_person(conn, psn_no: str, field: str) -> Person:
    person = await state.person_by_psn_no(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field=f"{field}.psn_no", value=psn_no)
    return person


async def named_person_with_credential(conn, psn_no: str, cert_type: str, cert_no: str, field: str) -> Person:
    """Return the named person after checking that the credential is theirs.

    The credential's holder is read first, and when it is the named person that one read
    serves both. The errors keep their order: an unknown ``psn_no`` is reported before
    any error of the credential.
    """
    try:
        holder = await resolve_person(conn, cert_type, cert_no, f"{field}.mdtrt_cert_no")
    except SettlementError:
        await _named_person(conn, psn_no, field)
        raise
    if holder is not None and holder.psn_no == psn_no:
        return holder
    person = await _named_person(conn, psn_no, field)
    return visits.check_credential(holder, cert_type, cert_no, person.psn_no, f"{field}.mdtrt_cert_no")


async def _batch_claim(call: Call, req: requests.SettleRequest, conn) -> tuple[Claim, list[state.StoredLine]]:
    """Read the visit, person and stored lines of a 2206/2207 batch on ``conn`` and check the claimed total."""
    read = await settle_reads.visit_batch_and_person(
        conn, mdtrt_id=req.mdtrt_id, fixmedins_code=call.code, chrg_bchno=req.chrg_bchno, psn_no=req.psn_no,
        cert_type=req.cert_type, cert_no=req.cert_no, on_date=call.now.date(),
    )
    return await _claim_from_read(call, req, conn, read)


async def _claim_from_read(
    call: Call, req: requests.SettleRequest, conn, read: settle_reads.ClaimRead
) -> tuple[Claim, list[state.StoredLine]]:
    """Check a batch's claim read and build its claim; the general person path reads more on ``conn``."""
    visit, stored, settling_person = read
    if visit is None:
        raise SettlementError(ErrorCode.UNKNOWN_VISIT, field="input.data.mdtrt_id", value=req.mdtrt_id)
    if visit.cancelled:
        raise SettlementError(ErrorCode.VISIT_CANCELLED, field="input.data.mdtrt_id", value=req.mdtrt_id)
    if is_stay(visit):
        raise SettlementError(
            ErrorCode.WRONG_VISIT_KIND, field="input.data.mdtrt_id", value=req.mdtrt_id,
            detail="住院，请用 2303/2304 结算", detail_en="an inpatient stay; settle with 2303/2304",
        )
    if visit.psn_no != req.psn_no:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.psn_no", value=req.psn_no,
            detail=f"就诊 {req.mdtrt_id} 的人员", detail_en=f"the person of visit {req.mdtrt_id}",
        )
    # Read with the visit for a card that is the person's own; the general path otherwise, which raises the errors.
    person = settling_person
    if person is None:
        person = await named_person_with_credential(conn, req.psn_no, req.cert_type, req.cert_no, "input.data")
        # From a retirement's effective date on, the person settles in the retired group.
        person = await service_hooks.person_on(conn, person, call.now.date())

    lines = claim_lines(req, stored, "input.data.chrg_bchno")
    return resolve_claim(call, person, req.insutype, req.med_type, lines, "input.data"), stored


def claim_lines(req: requests.SettleRequest, stored: list[state.StoredLine], batch_field: str) -> tuple:
    """Check the claimed total against the batch's stored lines and return them as kernel fee lines."""
    if not stored:
        raise SettlementError(ErrorCode.NO_DETAILS, field=batch_field, value=req.chrg_bchno)
    visits.check_claim_total("input.data.medfee_sumamt", req.medfee_sumamt, req.chrg_bchno, [line.amount for line in stored])
    return tuple(
        visits.claim_line(
            line.feedetl_sn, line.med_list_codg, line.amount, line.price_micro, line.quantity, line.charge_class,
            line.selfpay_prop, line.price_cap_micro,
        )
        for line in stored
    )


def _settle_output(call: Call, claim: Claim, result, *, mdtrt_id: str, med_type: str, insutype: str, cert_type: str,
                   setl_time: str, setl_id: str | None, msgid: str) -> tuple[outputs.SetlInfo, list[outputs.SetlDetail]]:
    info = visits.setl_info(
        result=result.outputs, person=claim.person, mdtrt_id=mdtrt_id, med_type=med_type, insutype=insutype, cert_type=cert_type,
        setl_time=setl_time, msgid=msgid, clr_optins=claim.person.insuplc_admdvs, setl_id=setl_id,
    )
    return info, visits.fund_detail_rows(result.fund_details, claim.policy.fund_pay_types)


async def pre_settle(call: Call) -> bytes:
    return await pre_settle_request(call, requests.read_settle(call.input), _batch_claim)


async def pre_settle_request(call: Call, req: requests.SettleRequest, reader: ClaimReader) -> bytes:
    """Compute a 2206 or 2303 output from the stored lines, recording only the message."""
    async with call.services.db.transaction() as conn:
        claim, _ = await reader(call, req, conn)
    accumulators = await call.services.ledger.accumulators(req.psn_no, claim.year)
    result = engine.settle(claim.input(accumulators, req.acct_used))
    info, details = _settle_output(
        call, claim, result, mdtrt_id=req.mdtrt_id, med_type=claim.med_type, insutype=req.insutype, cert_type=req.cert_type,
        setl_time=call.stamp, setl_id=None, msgid=call.msgid,
    )
    output = outputs.encode_output(outputs.SettleOutput(setlinfo=info, setldetail=details))
    await _remember(call, output)
    return output


async def _remember(call: Call, output: bytes) -> None:
    """Record a pre-settlement's output. It writes nothing else, but its msgid is taken from now on."""
    async with call.services.db.transaction() as conn:
        await call.record(conn, output)


def _record_output(claim: Claim, record: SettlementRecord, *, cert_type: str) -> tuple[outputs.SetlInfo, list[outputs.SetlDetail]]:
    info = visits.setl_info(
        result=record.outputs, person=claim.person, mdtrt_id=record.mdtrt_id, med_type=record.med_type, insutype=record.insutype,
        cert_type=cert_type, setl_time=record.setl_time, msgid=record.msgid, clr_optins=record.clr_optins, setl_id=record.setl_id,
    )
    return info, _record_details(record)


def _record_details(record: SettlementRecord) -> list[outputs.SetlDetail]:
    return query_outputs.setl_details(record.setldetail)


def _compute(claim: Claim, acct_used: bool, splits: requests.SplitAmounts | None, guard=None):
    def compute(accumulators: dict[str, int]) -> SettlementPlan:
        if guard is not None:
            guard()
        claim_input = claim.input(accumulators, acct_used)
        result = engine.settle(claim_input)
        if splits is not None:
            visits.check_splits(splits, result.outputs)
        return SettlementPlan(result=result, rule_version=f"{claim.policy.policy_id}@{claim.policy.effective_from}", claim=claim_input)

    return compute


def _settlement_request(call: Call, claim: Claim, *, mdtrt_id: str, chrg_bchno: str, insutype: str, acct_used: bool) -> SettlementRequest:
    med_type = claim.med_type
    return SettlementRequest(
        fixmedins_code=call.code, msgid=call.msgid, mdtrt_id=mdtrt_id, chrg_bchno=chrg_bchno, psn_no=claim.person.psn_no,
        insuplc_admdvs=claim.person.insuplc_admdvs, insutype=insutype, med_type=med_type,
        clr_type=visits.CLR_TYPE_BY_MED_TYPE.get(med_type, "99"), setl_time=call.stamp, acct_used=acct_used,
        feedetl_sns=tuple(line.feedetl_sn for line in claim.lines), clr_optins=claim.person.insuplc_admdvs,
        year=claim.year if claim.year != call.now.year else None,
    )


def _check_own_record(call: Call, record: SettlementRecord, chrg_bchno: str) -> SettlementRecord:
    if record.msgid != call.msgid:
        # The ledger found this batch already settled with the same content under another
        # message and returned that record without writing: a new message is a second
        # settlement attempt, not a retry. The ledger decided this under its own lock.
        raise SettlementError(ErrorCode.ALREADY_SETTLED, field="input.data.chrg_bchno", value=chrg_bchno, detail=record.setl_id)
    return record


async def _ledger_settle(call: Call, claim: Claim, *, mdtrt_id: str, chrg_bchno: str, insutype: str,
                         acct_used: bool, splits: requests.SplitAmounts | None, guard=None) -> SettlementRecord:
    request = _settlement_request(call, claim, mdtrt_id=mdtrt_id, chrg_bchno=chrg_bchno, insutype=insutype, acct_used=acct_used)
    record = await call.services.ledger.settle(request, _compute(claim, acct_used, splits, guard))
    return _check_own_record(call, record, chrg_bchno)


async def settle(call: Call) -> bytes:
    req = requests.read_settle(call.input)
    return await settle_request(call, req, None)


# Reads the claim of a settlement request on a connection: the batch of a 2207, the stay of a 2304.
ClaimReader = Callable[[Call, requests.SettleRequest, Any], Awaitable[tuple[Claim, list[state.StoredLine]]]]


async def settle_request(
    call: Call, req: requests.SettleRequest, admission: Admission | None, reader: ClaimReader = _batch_claim
) -> bytes | state.StoredMessage:
    """Settle a decoded 2207 (or, with the stay's ``reader``, a 2304).

    With ``admission``, also run the request's nonce, sign-in and msgid checks. The checks
    then share the settlement's own transaction, so the server commits once per settlement
    beside the ledger. For a message id with a stored output, the stored message is
    returned for the caller to replay.
    """
    if call.services.db.dialect == "postgres":
        if admission is not None and reader is _batch_claim:
            return await _batcher(call.services).settle(call, req, admission)
        return await _settle_holding_visit_lock(call, req, admission, reader)
    return await _settle_with_guard(call, req, admission, reader)


def _batcher(services) -> settle_batch.SettleBatcher:
    """Return the process's batcher of admitting 2207s on PostgreSQL, making it on first use."""
    if services.settle_batcher is None:
        services.settle_batcher = settle_batch.SettleBatcher(services.db, _batched_claim, _settle_claims_in_group)
    return services.settle_batcher


async def _settle_claims_in_group(conn, claimed: list[tuple[Call, requests.SettleRequest, Claim]]) -> list[bytes | BaseException]:
    """Settle a group's claims through the ledger inside the group's transaction; return each output or error."""
    ledger = claimed[0][0].services.ledger
    items = [
        (
            _settlement_request(call, claim, mdtrt_id=req.mdtrt_id, chrg_bchno=req.chrg_bchno, insutype=req.insutype, acct_used=req.acct_used),
            _compute(claim, req.acct_used, req.splits),
        )
        for call, req, claim in claimed
    ]
    outcomes = await ledger.settle_in_transaction(conn.asyncpg_connection, items)

    results: list[bytes | BaseException] = []
    for (call, req, claim), outcome in zip(claimed, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            results.append(outcome)
            continue
        try:
            record = _check_own_record(call, outcome, req.chrg_bchno)
        except SettlementError as error:
            results.append(error)
            continue
        results.append(_settle_answer(claim, record, req.cert_type))
    return results


async def _batched_claim(call: Call, req: requests.SettleRequest, conn, read: settle_reads.ClaimRead) -> Claim:
    claim, _ = await _claim_from_read(call, req, conn, read)
    return claim


async def _settle_claim(call: Call, req: requests.SettleRequest, claim: Claim) -> bytes:
    """Settle a 2207's or 2304's claim through the ledger and return the encoded output."""
    record = await _ledger_settle(
        call, claim, mdtrt_id=req.mdtrt_id, chrg_bchno=req.chrg_bchno, insutype=req.insutype, acct_used=req.acct_used, splits=req.splits,
    )
    return _settle_answer(claim, record, req.cert_type)


async def _settle_holding_visit_lock(
    call: Call, req: requests.SettleRequest, admission: Admission | None, reader: ClaimReader
) -> bytes | state.StoredMessage:
    """Settle inside a transaction that holds the visit's lock until the output is recorded.

    2204, 2205 and 2202 of the same visit, from any process, wait for the lock, so the lines
    read here are the lines the ledger settles. The nonce, the visit lock and the message
    record all ride on this one transaction.
    """
    db = call.services.db
    context = db.visit_transaction(req.mdtrt_id) if admission is None else db.transaction()
    async with context as conn:
        if admission is not None:
            stored = await admission.admit(conn, db.dialect, lock_visit=req.mdtrt_id)
            if stored is not None:
                return stored
        claim, _ = await reader(call, req, conn)
        output = await _settle_claim(call, req, claim)
        await call.record(conn, output)
    return output


async def _settle_with_guard(
    call: Call, req: requests.SettleRequest, admission: Admission | None, reader: ClaimReader
) -> bytes | state.StoredMessage:
    """Settle on SQLite: read the lines, then let the ledger's compute step check them again.

    SQLite has one write lock, and the ledger holds it while it computes and commits, so
    the server cannot hold it too. The guard re-reads the batch's live lines there; a 2204,
    2205 or 2202 that committed since the first read makes the settlement fail unwritten.

    The first transaction only reads, and the nonce is stored with the message record in a
    transaction that settlements finishing at the same time share (``write_shared``), so
    the server's writes cost at most one fsync per settlement. Two requests with the same
    nonce carry the same signed body and msgid, so the ledger settles them once. The one
    that stores the nonce second is rejected.
    """
    db = call.services.db
    stored_message = None
    async with db.read_transaction() as conn:
        if admission is not None:
            stored_message = await admission.check(conn)
        if stored_message is None:
            claim, stored = await reader(call, req, conn)
    if stored_message is not None:
        async with db.transaction() as conn:
            await admission.keep_nonce(conn)
        return stored_message
    expected = tuple(sorted((line.feedetl_sn, line.amount) for line in stored))

    def guard() -> None:
        if db.batch_fingerprint(req.mdtrt_id, req.chrg_bchno) != expected:
            raise SettlementError(
                ErrorCode.SUM_MISMATCH, field="input.data.chrg_bchno", value=req.chrg_bchno,
                detail="结算过程中该批次明细被修改，请重新预结算", detail_en="the batch's details changed during settlement; pre-settle again",
            )

    record = await _ledger_settle(
        call, claim, mdtrt_id=req.mdtrt_id, chrg_bchno=req.chrg_bchno, insutype=req.insutype, acct_used=req.acct_used,
        splits=req.splits, guard=guard,
    )
    output = _settle_answer(claim, record, req.cert_type)

    async def keep(conn) -> None:
        if admission is not None:
            await admission.keep_nonce(conn)
        await call.record(conn, output)

    # Concurrent settlements share this commit, so its fsync is paid once for all of them.
    await db.write_shared(keep)
    return output


def _settle_answer(claim: Claim, record: SettlementRecord, cert_type: str) -> bytes:
    info, details = _record_output(claim, record, cert_type=cert_type)
    return outputs.encode_output(outputs.SettleOutput(setlinfo=info, setldetail=details))


def check_settlement_ref(record: SettlementRecord, *, mdtrt_id: str, psn_no: str) -> None:
    """Raise PERSON_MISMATCH unless a request names the visit and person of the settlement it refers to."""
    if record.mdtrt_id != mdtrt_id:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.mdtrt_id", value=mdtrt_id,
            detail=f"结算 {record.setl_id} 的就诊", detail_en=f"the visit of settlement {record.setl_id}",
        )
    if record.psn_no != psn_no:
        raise SettlementError(
            ErrorCode.PERSON_MISMATCH, field="input.data.psn_no", value=psn_no,
            detail=f"结算 {record.setl_id} 的人员", detail_en=f"the person of settlement {record.setl_id}",
        )


async def _cancel(call: Call, data: requests.SettleCancel, *, stay: bool | None = None) -> SettlementRecord:
    """Cancel a settlement of this institution; ``stay`` True for 2305, False for 2208, None for a pharmacy sale."""
    services = call.services
    original = await services.ledger.get_settlement(data.setl_id)
    if original is None or original.fixmedins_code != call.code or original.kind != "settle":
        raise SettlementError(ErrorCode.UNKNOWN_SETTLEMENT, field="input.data.setl_id", value=data.setl_id)
    if stay is not None and original.med_type.startswith("2") != stay:
        raise SettlementError(
            ErrorCode.WRONG_VISIT_KIND, field="input.data.setl_id", value=data.setl_id,
            detail="住院结算，请用 2305 撤销" if not stay else "门诊结算，请用 2208 撤销",
            detail_en="an inpatient settlement; cancel it with 2305" if not stay else "an outpatient settlement; cancel it with 2208",
        )
    check_settlement_ref(original, mdtrt_id=data.mdtrt_id, psn_no=data.psn_no)
    request = CancelRequest(
        fixmedins_code=call.code, msgid=call.msgid, setl_id=data.setl_id, mdtrt_id=data.mdtrt_id, psn_no=data.psn_no, setl_time=call.stamp
    )
    # No visit lock: the ledger cancels a settlement once, and 2205/2202 check for a live
    # settlement in their own transaction, so either order leaves consistent state.
    return await services.ledger.cancel(request)


async def cancel_settlement(call: Call) -> bytes:
    return await _cancel_output(call, await _cancel(call, requests.read_settle_cancel(call.input), stay=False))


async def cancel_stay_settlement(call: Call) -> bytes:
    return await _cancel_output(call, await _cancel(call, requests.read_settle_cancel(call.input), stay=True))


async def _cancel_output(call: Call, record: SettlementRecord) -> bytes:
    """Build and record the output of a 2208 or 2305 cancel from its ledger record."""
    info = visits.cancel_info(
        result=record.outputs, mdtrt_id=record.mdtrt_id, setl_id=record.setl_id, setl_time=record.setl_time,
        msgid=record.msgid, clr_optins=record.clr_optins,
    )
    output = outputs.encode_output(outputs.SettleCancelOutput(setlinfo=info, setldetail=_record_details(record)))
    async with call.services.db.transaction() as conn:
        await call.record(conn, output)
    return output


def _pharmacy_visit_id(fixmedins_code: str, msgid: str) -> str:
    # Derived from the message so that a retried sale names the same visit.
    return "D" + hashlib.sha256(f"{fixmedins_code}/{msgid}".encode()).hexdigest()[:24].upper()


async def _drug_claim(call: Call, sale: requests.DrugSale) -> tuple[Claim, list]:
    async with call.services.db.transaction() as conn:
        person = await named_person_with_credential(conn, sale.psn_no, sale.cert_type, sale.cert_no, "input.druginfo")
        person = await service_hooks.person_on(conn, person, call.now.date())
    visits.check_claim_total("input.druginfo.medfee_sumamt", sale.medfee_sumamt, "drugdetail", [line.amount for line in sale.lines])

    catalog = call.services.rules.catalog
    for line in sale.lines:
        if line.fee_ocur_time[:10] > call.stamp[:10]:
            raise SettlementError(ErrorCode.FEE_TIME_OUT_OF_RANGE, field=f"{line.path}.fee_ocur_time", value=line.fee_ocur_time, detail=call.stamp)
    entries = [visits.catalog_entry(catalog, line) for line in sale.lines]
    lines = tuple(visits.catalog_line(line, entry) for line, entry in zip(sale.lines, entries, strict=True))
    claim = resolve_claim(call, person, sale.insutype, sale.med_type, lines, "input.druginfo")
    return claim, visits.split_lines(claim.params, sale.lines, entries)


def _cut_info(sale: requests.DrugSale, splits: list) -> list[outputs.FeeResult]:
    return [
        visits.fee_result(line.feedetl_sn, line.amount, line.price_micro, line.quantity, split, "09")
        for line, split in zip(sale.lines, splits)
    ]


async def pharmacy_pre_settle(call: Call) -> bytes:
    sale = requests.read_drug_sale(call.input, max_lines=call.services.config.max_lines, tolerance_fen=call.services.config.line_tolerance_fen)
    claim, splits = await _drug_claim(call, sale)
    accumulators = await call.services.ledger.accumulators(sale.psn_no, claim.year)
    result = engine.settle(claim.input(accumulators, sale.acct_used))
    info, details = _settle_output(
        call, claim, result, mdtrt_id=_pharmacy_visit_id(call.code, call.msgid), med_type=sale.med_type, insutype=sale.insutype,
        cert_type=sale.cert_type, setl_time=call.stamp, setl_id=None, msgid=call.msgid,
    )
    output = outputs.encode_output(outputs.DrugSaleOutput(setlinfo=info, setldetail=details, detlcutinfo=_cut_info(sale, splits)))
    await _remember(call, output)
    return output


async def pharmacy_settle(call: Call) -> bytes:
    services = call.services
    sale = requests.read_drug_sale(call.input, max_lines=services.config.max_lines, tolerance_fen=services.config.line_tolerance_fen)
    claim, splits = await _drug_claim(call, sale)
    mdtrt_id = _pharmacy_visit_id(call.code, call.msgid)

    record = await _ledger_settle(
        call, claim, mdtrt_id=mdtrt_id, chrg_bchno=mdtrt_id, insutype=sale.insutype, acct_used=sale.acct_used, splits=None,
    )
    info, details = _record_output(claim, record, cert_type=sale.cert_type)
    output = outputs.encode_output(outputs.DrugSaleOutput(setlinfo=info, setldetail=details, detlcutinfo=_cut_info(sale, splits)))

    # The visit and its lines are kept beside the ledger record so that 5204-style queries and
    # reconciliation can see what was sold.
    async with services.db.transaction() as conn:
        await state.insert_visit(
            conn, mdtrt_id=mdtrt_id, fixmedins_code=call.code, psn_no=sale.psn_no, insutype=sale.insutype, med_type=sale.med_type,
            begntime=sale.begntime, mdtrt_cert_type=sale.cert_type, ipt_otp_no=None, dise_codg=sale.dise_codg, detail={},
            registered_by=call.msgid,
        )
        await state.insert_lines(
            conn, mdtrt_id, call.msgid,
            [
                (
                    line.feedetl_sn, mdtrt_id, None, line.rxno, line.fee_ocur_time, line.med_list_codg, line.medins_list_codg,
                    line.amount, line.price_micro, line.quantity, int(split.charge_class), split.selfpay_prop, split.price_cap_micro,
                    split.fulamt_ownpay_amt, split.overlmt_amt, split.preselfpay_amt, split.inscp_scp_amt, index + 1,
                )
                for index, (line, split) in enumerate(zip(sale.lines, splits))
            ],
        )
        await call.record(conn, output)
    return output


async def pharmacy_cancel(call: Call) -> bytes:
    data = requests.read_settle_cancel(call.input)
    record = await _cancel(call, data)
    info = visits.drug_cancel_info(
        result=record.outputs, mdtrt_id=record.mdtrt_id, setl_id=record.setl_id, setl_time=record.setl_time,
        msgid=record.msgid, clr_optins=record.clr_optins,
    )
    output = outputs.encode_output(outputs.DrugCancelOutput(setlinfo=info, setldetail=_record_details(record)))
    async with call.services.db.transaction() as conn:
        await call.record(conn, output)
    return output


class AdmittingHandler(NamedTuple):
    """A handler that runs the request's admission checks inside its own transaction.

    ``decode`` reads the input node; when it raises, the caller takes the ordinary path,
    which reports the same error after the checks.
    """

    decode: Callable[[object], Any]
    run: Callable[[Call, Any, Admission], Awaitable[bytes | state.StoredMessage]]


ADMITTING_HANDLERS = {"2207": AdmittingHandler(requests.read_settle, settle_request)}

HANDLERS = {
    "2206": pre_settle,
    "2207": settle,
    "2208": cancel_settlement,
    "2305": cancel_stay_settlement,
    "2101": pharmacy_pre_settle,
    "2102": pharmacy_settle,
    "2103": pharmacy_cancel,
}

