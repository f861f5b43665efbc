"""2601 reversal (冲正): undo a message whose outcome the client does not know, once.

A client that timed out on a settlement, a cancel, a pharmacy sale or an admission sends
2601 with the original ``msgid`` and ``infno``. Whether a settlement or cancel took effect
is read from the ledger, not from the message table: the server records its output after
the ledger commits, so a crash between the two leaves a ledger record without a message.

* A settlement (2207, 2304, 2102) that took effect is cancelled: a new record with every
  amount negated, stamped now, so an earlier day's reconciliation is never rewritten.
* A cancel (2208, 2305, 2103) that took effect is undone by settling the same lines
  again, with the original's claim. Only an exact restoration is accepted: if the person's
  accumulators moved since and the kernel now computes other amounts, the reversal is
  refused and the bill must be settled anew.
* An admission (2401) that took effect is cancelled, as by 2404.
* A message that never took effect is blocked: its msgid is taken, so the original
  arriving late is refused instead of settling after the client gave up on it.

Each original is reversed at most once (``srv_reversal``), only by the institution that
sent it and only for the person it named.
"""

from __future__ import annotations

import msgspec

from adapters.server import state
from adapters.server.handlers_visit import Call, is_stay
from adapters.server.language import english
from settlement import engine
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import inpatient, outputs
from settlement.store import CancelRequest, SettlementPlan, SettlementRecord, SettlementRequest
from settlement.types import ClaimInput

__all__ = ["HANDLERS", "REVERSED_DIGEST", "REVERSIBLE"]

# Digest prefix of a reversed original's message record, followed by the time of the
# reversal: a retry of the original then fails with ALREADY_REVERSED instead of replaying.
REVERSED_DIGEST = "reversed:"

# Transactions 2601 may reverse, with their names for messages.
REVERSIBLE = {
    "2207": "门诊结算", "2304": "住院结算", "2102": "药店结算",
    "2208": "门诊结算撤销", "2305": "住院结算撤销", "2103": "药店结算撤销",
    "2401": "入院办理",
}

# Transactions with their own undo, named in the refusal so the client knows what to send.
_OWN_UNDO = {"2201": "2202", "2204": "2205", "2301": "2302", "2402": "2405", "9001": "9002"}


class ReversalResult(outputs._Out):
    omsgid: str
    oinfno: str
    took_effect: str
    memo: str
    setl_id: str = ""


class ReversalOutput(outputs._Out):
    result: ReversalResult


async def reverse(call: Call) -> bytes:
    rvs = inpatient.read_reversal(call.input)
    _check_reversible(rvs.oinfno)
    services = call.services

    record = await services.ledger.get_by_msgid(call.code, rvs.omsgid)
    async with services.db.transaction() as conn:
        visit = await _admission_of(conn, call.code, rvs.omsgid) if rvs.oinfno == "2401" else None
        message = await state.find_message(conn, call.code, rvs.omsgid)
        if record is None and visit is None and message is None:
            await _reject_foreign(conn, call.code, rvs.omsgid)
        reversed_row = await conn.fetchrow(
            "SELECT reversed_at, psn_no FROM srv_reversal WHERE fixmedins_code = $1 AND omsgid = $2", call.code, rvs.omsgid
        )

    _check_same_original(rvs, record, visit, message, reversed_row)
    if reversed_row is not None:
        raise SettlementError(ErrorCode.ALREADY_REVERSED, field="input.data.omsgid", value=f"{rvs.omsgid} ({rvs.oinfno})", detail=reversed_row["reversed_at"])

    if record is not None and record.kind == "settle":
        memo, setl_id = await _reverse_settlement(call, record)
    elif record is not None:
        memo, setl_id = await _reinstate(call, record)
    elif visit is not None and not visit.cancelled:
        memo, setl_id = await _reverse_admission(call, visit), ""
    else:
        memo, setl_id = None, ""
    took_effect = memo is not None
    if memo is None:
        memo = _text(f"原报文 {rvs.omsgid} 未生效，已登记冲正，此后该报文编号不再受理",
                     f"message {rvs.omsgid} had not taken effect; the reversal is recorded and the msgid is no longer accepted")
    output = outputs.encode_output(ReversalOutput(result=ReversalResult(
        omsgid=rvs.omsgid, oinfno=rvs.oinfno, took_effect="1" if took_effect else "0", memo=memo, setl_id=setl_id,
    )))

    async with services.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO srv_reversal (fixmedins_code, omsgid, oinfno, psn_no, took_effect, reversed_by, reversed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            call.code, rvs.omsgid, rvs.oinfno, rvs.psn_no, int(took_effect), call.msgid, call.stamp,
        )
        if message is None:
            # Take the original's msgid, so that the original arriving late (or retried after
            # a crash that lost its output) is rejected instead of settling.
            await state.record_message(conn, call.code, rvs.omsgid, rvs.oinfno, REVERSED_DIGEST + call.stamp, b"{}", call.stamp)
        else:
            # A retry of the original must not replay its success output any more.
            await conn.execute(
                "UPDATE srv_message SET digest = $1 WHERE fixmedins_code = $2 AND msgid = $3", REVERSED_DIGEST + call.stamp, call.code, rvs.omsgid
            )
        await call.record(conn, output)
    return output


def _check_reversible(oinfno: str) -> None:
    if oinfno in REVERSIBLE:
        return
    own = _OWN_UNDO.get(oinfno)
    raise SettlementError(
        ErrorCode.NOT_REVERSIBLE, field="input.data.oinfno", value=oinfno,
        detail=f"请用 {own} 撤销" if own else "可冲正的交易为 " + "、".join(REVERSIBLE),
        detail_en=f"use {own} to undo it" if own else "reversible transactions are " + ", ".join(REVERSIBLE),
    )


async def _admission_of(conn, fixmedins_code: str, msgid: str) -> state.StoredVisit | None:
    """Return the stay that message ``msgid`` admitted; an outpatient registration is not an admission."""
    row = await conn.fetchrow("SELECT mdtrt_id FROM srv_visit WHERE fixmedins_code = $1 AND registered_by = $2", fixmedins_code, msgid)
    visit = None if row is None else await state.visit_by_id(conn, row["mdtrt_id"], fixmedins_code)
    return visit if visit is not None and is_stay(visit) else None


async def _reject_foreign(conn, fixmedins_code: str, msgid: str) -> None:
    """Reject a msgid that another institution sent, because only the sender may reverse a message."""
    row = await conn.fetchrow("SELECT fixmedins_code FROM srv_message WHERE msgid = $1 AND fixmedins_code <> $2", msgid, fixmedins_code)
    if row is None:
        row = await conn.fetchrow("SELECT origin FROM journal_transactions WHERE msgid = $1 AND origin <> $2", msgid, fixmedins_code)
    if row is not None:
        raise SettlementError(ErrorCode.UNKNOWN_ORIGINAL_MESSAGE, field="input.data.omsgid", value=msgid)


def _check_same_original(rvs: inpatient.Reversal, record: SettlementRecord | None, visit, message, reversed_row) -> None:
    """The 2601 must name the original's transaction and person."""
    infno = message.infno if message is not None else None
    if record is not None:
        infno = infno or _infno_of(record)
    if infno is not None and infno != rvs.oinfno and not (message is not None and message.digest.startswith(REVERSED_DIGEST)):
        raise SettlementError(ErrorCode.ORIGINAL_MISMATCH, field="input.data.oinfno", value=rvs.oinfno, detail=f"的交易 {infno}", detail_en=f"transaction {infno}")

    psn_no = None
    if record is not None:
        psn_no = record.psn_no
    elif visit is not None:
        psn_no = visit.psn_no
    elif reversed_row is not None:
        psn_no = reversed_row["psn_no"]
    if psn_no is not None and psn_no != rvs.psn_no:
        raise SettlementError(ErrorCode.ORIGINAL_MISMATCH, field="input.data.psn_no", value=rvs.psn_no, detail="的人员", detail_en="person")


def _infno_of(record: SettlementRecord) -> str:
    """Return the transaction a ledger record came from, by its kind and medical type."""
    if record.med_type == "41":
        return "2102" if record.kind == "settle" else "2103"
    if record.med_type.startswith("2"):
        return "2304" if record.kind == "settle" else "2305"
    return "2207" if record.kind == "settle" else "2208"


async def _reverse_settlement(call: Call, record: SettlementRecord) -> tuple[str, str]:
    """Cancel a live settlement; return the memo and the cancel record's setl_id."""
    live = await call.services.ledger.live_settlement(call.code, record.mdtrt_id, record.chrg_bchno)
    if live is None or live.setl_id != record.setl_id:
        raise SettlementError(ErrorCode.ALREADY_CANCELLED, field="input.data.omsgid", value=record.setl_id)
    cancel = await call.services.ledger.cancel(
        CancelRequest(
            fixmedins_code=call.code, msgid=call.msgid, setl_id=record.setl_id, mdtrt_id=record.mdtrt_id, psn_no=record.psn_no,
            setl_time=call.stamp,
        )
    )
    return _text(f"原结算 {record.setl_id} 已冲正，冲销记录 {cancel.setl_id}",
                 f"settlement {record.setl_id} reversed by record {cancel.setl_id}"), cancel.setl_id


async def _reinstate(call: Call, cancel: SettlementRecord) -> tuple[str, str]:
    """Settle the cancelled settlement's lines again, only if that restores exactly what it paid."""
    services = call.services
    original = await services.ledger.get_settlement(cancel.original_setl_id or "")
    if original is None or original.claim is None:
        raise SettlementError(ErrorCode.NOT_REVERSIBLE, field="input.data.omsgid", value=cancel.msgid, detail="原结算缺少可重算的记录", detail_en="the original settlement has no claim to recompute")
    async with services.db.transaction() as conn:
        live_lines = await state.live_lines_of_visit(conn, original.mdtrt_id)
    if not set(original.feedetl_sns) <= {line.feedetl_sn for line in live_lines}:
        raise SettlementError(
            ErrorCode.NOT_REVERSIBLE, field="input.data.omsgid", value=cancel.msgid,
            detail="撤销后明细已被撤回，请重新上传并结算", detail_en="details were withdrawn after the cancel; upload and settle again",
        )

    claim = original.claim

    def compute(accumulators: dict[str, int]) -> SettlementPlan:
        result = engine.settle(ClaimInput(params=claim.params, lines=claim.lines, accumulators=accumulators, acct_used=claim.acct_used,
                                          has_family_account=claim.has_family_account))
        if _amounts(result.outputs) != _amounts(original.outputs):
            raise SettlementError(
                ErrorCode.NOT_REVERSIBLE, field="input.data.omsgid", value=cancel.msgid,
                detail="撤销后累计额已变化，无法按原金额恢复，请重新结算", detail_en="accumulators changed since the cancel; the original amounts cannot be restored, settle again",
            )
        return SettlementPlan(result=result, rule_version=original.rule_version, catalog_version=original.catalog_version, claim=claim,
                              setlinfo_extra=original.setlinfo_extra)

    request = SettlementRequest(
        fixmedins_code=call.code, msgid=call.msgid, mdtrt_id=original.mdtrt_id, chrg_bchno=original.chrg_bchno, psn_no=original.psn_no,
        insuplc_admdvs=original.insuplc_admdvs, insutype=original.insutype, med_type=original.med_type, clr_type=original.clr_type,
        setl_time=call.stamp, acct_used=claim.acct_used, feedetl_sns=original.feedetl_sns, family_psn_no=original.family_psn_no,
        clr_optins=original.clr_optins, input=original.request_input, year=original.year if original.year != call.now.year else None,
    )
    restored = await services.ledger.settle(request, compute)
    return _text(f"撤销 {cancel.setl_id} 已冲正，原结算 {original.setl_id} 恢复为 {restored.setl_id}",
                 f"cancel {cancel.setl_id} reversed; settlement {original.setl_id} restored as {restored.setl_id}"), restored.setl_id


def _text(chinese: str, english_text: str) -> str:
    """Return the memo in the language of the request."""
    return english_text if english() else chinese


def _amounts(result) -> tuple:
    # balc is the balance after the settlement, which differs when the account moved meanwhile.
    fields = msgspec.structs.asdict(result)
    fields.pop("balc", None)
    return tuple(sorted(fields.items()))


async def _reverse_admission(call: Call, visit: state.StoredVisit) -> str:
    async with call.services.db.visit_transaction(visit.mdtrt_id) as conn:
        covered = await call.services.ledger.covered_fee_details(call.code, visit.mdtrt_id)
        if covered:
            raise SettlementError(
                ErrorCode.VISIT_HAS_SETTLEMENT, field="input.data.omsgid", value=visit.mdtrt_id, detail=", ".join(sorted(set(covered.values())))
            )
        await state.cancel_batch(conn, visit.mdtrt_id, None, call.msgid)
        await state.cancel_visit(conn, visit.mdtrt_id, call.msgid)
    return _text(f"入院 {visit.mdtrt_id} 已冲正", f"admission {visit.mdtrt_id} reversed")


HANDLERS = {"2601": reverse}
