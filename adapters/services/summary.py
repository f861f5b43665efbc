"""A cardholder's records for self-service: cards, medical account, settlements, pension, employment."""

from __future__ import annotations

from typing import Any

from adapters.server import state
from adapters.services import cards, employment, pension, store
from adapters.services.context import ServiceContext
from settlement.errors import ErrorCode, SettlementError

__all__ = ["RECENT_SETTLEMENTS", "find_cardholder", "person_summary"]

RECENT_SETTLEMENTS = 10


async def find_cardholder(ctx: ServiceContext, number: str) -> str:
    """Return the person number for a card number or an ID number, or raise UNKNOWN_PERSON (masked)."""
    number = number.strip().upper()
    async with ctx.db.transaction() as conn:
        card = await store.card_by_no(conn, number)
        if card is not None:
            return card.psn_no
        person = await state.person_by_card(conn, number) or await state.person_by_certno(conn, number)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="card_or_certno", value=number, sensitive=True)
    return person.psn_no


async def _recent_settlements(ctx: ServiceContext, psn_no: str) -> list[dict[str, Any]]:
    # NOTE: the ledger store has no per-person query, so this reads its settlement table directly.
    async with ctx.db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT setl_id, kind, setl_time, fixmedins_code, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay "
            "FROM ledger_settlements WHERE psn_no = $1 ORDER BY setl_time DESC, txn_id DESC LIMIT $2",
            psn_no, RECENT_SETTLEMENTS,
        )
    names = ("setl_id", "kind", "setl_time", "fixmedins_code", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
    return [{name: (row[name] if isinstance(row[name], str) else int(row[name])) for name in names} for row in rows]


async def person_summary(ctx: ServiceContext, psn_no: str) -> dict[str, Any]:
    """Return everything the self-service page shows for one person; amounts in fen."""
    async with ctx.db.transaction() as conn:
        person = await state.person_by_psn_no(conn, psn_no)
        own_cards = await store.cards_of_person(conn, psn_no)
    if person is None:
        raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
    progress = []
    for card in own_cards:
        progress.extend(await cards.printing_progress(ctx, application_no=card.application_no))
    return {
        "psn_no": psn_no,
        "name_masked": person.psn_name[0] + "*" * (len(person.psn_name) - 1),
        "cards": progress,
        "medical_account_balance": await ctx.ledger.account_balance(f"personal:{psn_no}"),
        "settlements": await _recent_settlements(ctx, psn_no),
        "pension": await pension.pension_view(ctx, psn_no),
        "employment": await employment.employment_view(ctx, psn_no),
    }
