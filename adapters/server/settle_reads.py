"""The reads of a 2207 after its visit lock, in one statement: the visit, its batch's live lines and the settling person.

The visit and lines are the rows of ``state.visit_with_batch_lines``, the person those of
``hooks.SETTLING_PERSON_SELECT``. A UNION ALL returns both, each branch padded with NULLs
to the other's columns and marked by a leading ``part`` column (0 visit, 1 person), so a
settlement reads its claim in one round trip instead of two.
"""

from __future__ import annotations

import datetime

from adapters.server import state
from adapters.server.sqldb import Connection
from adapters.services import hooks
from settlement.persons import Person
from settlement.protocol import codes

__all__ = ["visit_batch_and_person"]

_VISIT_WIDTH = state.VISIT_WITH_BATCH_WIDTH
_PERSON_WIDTH = hooks.SETTLING_PERSON_WIDTH

# Sorted by part, then by the line's upload order (column ``seq``, the last of the visit
# branch), then by card number (the first card column of the person branch). Positions,
# because SQLite names a UNION's columns after its first branch only.
_SEQ_POSITION = 1 + _VISIT_WIDTH
_CARD_POSITION = 1 + _VISIT_WIDTH + len(state.PERSON_WITH_CARDS_SELECT.split(",")) - 1
_VISIT_AND_PERSON = (
    f"SELECT 0, {state.VISIT_WITH_BATCH_SELECT}, {', '.join(['NULL'] * _PERSON_WIDTH)}"
    f" {state.VISIT_WITH_BATCH_FROM}"
    f" UNION ALL SELECT 1, {', '.join(['NULL'] * _VISIT_WIDTH)}, {hooks.SETTLING_PERSON_SELECT.format(card='$6')}"
    f" {hooks.SETTLING_PERSON_FROM.format(psn='$4', svc_card='$5')}"
    f" ORDER BY 1, {_SEQ_POSITION}, {_CARD_POSITION}"
)


async def visit_batch_and_person(
    conn: Connection, *, mdtrt_id: str, fixmedins_code: str, chrg_bchno: str, psn_no: str, cert_type: str, cert_no: str,
    on_date: datetime.date,
) -> tuple[state.StoredVisit | None, list[state.StoredLine], Person | None]:
    """Return the institution's visit, its batch's live lines and the settling person as ``hooks.settling_person`` decides.

    The person is None for a credential other than a card (03) and whenever
    ``hooks.settling_person`` returns None. The caller then resolves the person the general way.
    """
    if cert_type != codes.CERT_BY_CARD:
        visit, lines = await state.visit_with_batch_lines(conn, mdtrt_id, fixmedins_code, chrg_bchno)
        return visit, lines, None
    svc_card, card = hooks.settling_person_arguments(cert_no)
    rows = [tuple(row) for row in await conn.fetch(_VISIT_AND_PERSON, mdtrt_id, fixmedins_code, chrg_bchno, psn_no, svc_card, card)]
    visit_rows = [row[1:1 + _VISIT_WIDTH] for row in rows if row[0] == 0]
    person_rows = [row[1 + _VISIT_WIDTH:] for row in rows if row[0] == 1]
    visit, lines = state.visit_and_lines_from_rows(visit_rows)
    return visit, lines, hooks.settling_person(person_rows, psn_no, on_date)
