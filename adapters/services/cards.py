"""Card operations: application, lifecycle actions, replacement, printing progress and e-voucher tokens.

Each operation checks everything first and then writes in one database transaction, so
a rejected request writes nothing.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from typing import Any

from adapters.server import state
from adapters.services import store
from adapters.services.context import ServiceContext
from settlement.errors import ErrorCode, SettlementError, mask_identity
from settlement.services.card import (
    Action,
    CardRecord,
    CardStatus,
    apply_action,
    check_card_fields,
    progress_stages,
)

__all__ = ["apply_for_card", "card_action", "card_view", "issue_token", "printing_progress"]

logger = logging.getLogger("settlement.services")

# How long an e-voucher token issued here stays valid.
TOKEN_LIFETIME = datetime.timedelta(hours=24)


def card_view(card: CardRecord) -> dict[str, Any]:
    """Return a card as JSON-ready data, with the card and bank account numbers masked."""
    return {
        "card_no": mask_identity(card.card_no),
        "application_no": card.application_no,
        "generation": card.generation,
        "issuing_admdvs": card.issuing_admdvs,
        "status": card.status.value,
        "status_name": card.status.name_zh,
        "chip_sn": card.chip_sn,
        "bank_code": card.bank_code,
        "bank_account": mask_identity(card.bank_account) if card.bank_account else None,
        "replaces_card_no": mask_identity(card.replaces_card_no) if card.replaces_card_no else None,
        "replaced_by_card_no": mask_identity(card.replaced_by_card_no) if card.replaced_by_card_no else None,
    }


async def _check_new_card(conn: Any, card: CardRecord) -> None:
    check_card_fields(card)
    if await state.person_by_psn_no(conn, card.psn_no) is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=card.psn_no)
    if await store.card_by_no(conn, card.card_no) is not None or await state.person_by_card(conn, card.card_no) is not None:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="card_no", value=card.card_no, sensitive=True, detail="卡号已存在", detail_en="the card number already exists"
        )
    if await store.card_by_application(conn, card.application_no) is not None:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="application_no", value=card.application_no, detail="申请编号已存在", detail_en="the application number already exists"
        )


async def apply_for_card(ctx: ServiceContext, card: CardRecord, operator: str) -> CardRecord:
    """Record a card application (state ``applied``)."""
    card = CardRecord(**{**_fields(card), "status": CardStatus.APPLIED, "replaces_card_no": None, "replaced_by_card_no": None})
    async with ctx.db.transaction() as conn:
        await _check_new_card(conn, card)
        await store.insert_card(conn, card)
        await store.add_card_event(conn, card.card_no, "apply", CardStatus.APPLIED, ctx.today(), operator)
    logger.info("card: applied card=%s psn_no=%s operator=%s", mask_identity(card.card_no), card.psn_no, operator)
    return card


def _fields(card: CardRecord) -> dict[str, Any]:
    return {name: getattr(card, name) for name in card.__struct_fields__}


async def card_action(ctx: ServiceContext, card_no: str, action: Action, operator: str, replacement: CardRecord | None = None) -> CardRecord:
    """Apply a lifecycle action. ``replace`` needs the ``replacement`` card, which starts as ``applied``.

    Returns the card after the action (for ``replace``, the new card).
    """
    today = ctx.today()
    async with ctx.db.transaction() as conn:
        card = await store.card_by_no(conn, card_no, lock_dialect=ctx.db.dialect)
        if card is None:
            raise SettlementError(ErrorCode.CARD_NOT_FOUND, field="card_no", value=card_no, sensitive=True)
        after = apply_action(card.status, action, card_no)

        if action is not Action.REPLACE:
            await store.set_card_status(conn, card_no, after)
            await store.add_card_event(conn, card_no, action.value, after, today, operator)
            result = CardRecord(**{**_fields(card), "status": after})
        else:
            if replacement is None:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field="new_card")
            new_card = CardRecord(
                **{**_fields(replacement), "psn_no": card.psn_no, "status": CardStatus.APPLIED, "replaces_card_no": card_no, "replaced_by_card_no": None}
            )
            await _check_new_card(conn, new_card)
            await store.insert_card(conn, new_card)
            await store.add_card_event(conn, new_card.card_no, "apply", CardStatus.APPLIED, today, operator)
            await store.set_card_status(conn, card_no, after, replaced_by=new_card.card_no)
            await store.add_card_event(conn, card_no, action.value, after, today, operator)
            result = new_card
    logger.info("card: %s card=%s status=%s operator=%s", action.value, mask_identity(card_no), after.value, operator)
    return result


async def printing_progress(ctx: ServiceContext, *, certno: str | None = None, application_no: str | None = None) -> list[dict[str, Any]]:
    """Return each card of a person (by ID number) or one application, with its production stages and dates."""
    async with ctx.db.transaction() as conn:
        if application_no:
            card = await store.card_by_application(conn, application_no)
            if card is None:
                raise SettlementError(ErrorCode.APPLICATION_NOT_FOUND, field="application_no", value=application_no)
            cards = [card]
        elif certno:
            person = await state.person_by_certno(conn, certno)
            if person is None:
                raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="certno", value=certno, sensitive=True)
            cards = await store.cards_of_person(conn, person.psn_no)
        else:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field="certno/application_no")
        result = []
        for card in cards:
            events = await store.card_events(conn, card.card_no)
            view = card_view(card)
            view["stages"] = progress_stages([(status, date) for status, date, _ in events])
            view["events"] = [{"status": status.value, "status_name": status.name_zh, "date": date.isoformat(), "action": action} for status, date, action in events]
            result.append(view)
    return result


async def issue_token(ctx: ServiceContext, psn_no: str) -> tuple[str, str]:
    """Issue an e-voucher token (mdtrt_cert_type 01) for a person; return it and its expiry time."""
    expires = (ctx.now() + TOKEN_LIFETIME).strftime("%Y-%m-%d %H:%M:%S")
    token = "EC" + secrets.token_hex(15).upper()
    async with ctx.db.transaction() as conn:
        if await state.person_by_psn_no(conn, psn_no) is None:
            raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
        await conn.execute("INSERT INTO svc_ecard_token (token, psn_no, expires_at) VALUES ($1, $2, $3)", token, psn_no, expires)
    logger.info("card: e-voucher token issued psn_no=%s expires=%s", psn_no, expires)
    return token, expires
