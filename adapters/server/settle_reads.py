"""The reads of a 2207 after its visit lock, in one statement: the visit, its batch's live lines and the settling person.

The visit and lines are the rows of ``state.visit_with_batch_lines``, the person those of
``hooks.SETTLING_PERSON_SELECT``. A UNION ALL returns both, each branch padded with NULLs
to the other's columns and marked by a leading ``part`` column (0 visit, 1 person), so a
settlement reads its claim in one round trip instead of two. A group of settlements on
PostgreSQL reads all its claims in two statements (``many_visits_batches_and_persons``).
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

from adapters.server import state
from adapters.server.sqldb import Connection
from adapters.services import hooks
from settlement.persons import Person
from settlement.protocol import codes

__all__ = ["ClaimKey", "ClaimRead", "many_visits_batches_and_persons", "visit_batch_and_person"]

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

# The same for many settlements (PostgreSQL only), in two statements that return each
# column once: the heads (the visit row and the person rows of each key) and the lines.
# The lines come apart from their visit because the visit branch above repeats the
# visit's columns and the person's NULLs on every line, which more than doubles the values
# to decode. The two statements may see different snapshots; the group holds the visits'
# locks, so the lines cannot change between them. Rows are numbered from 1 in the order
# of the key arrays, in a leading column ``n``.
_VISIT_ONLY_WIDTH = len(state.VISIT_SELECT.split(","))
# Position of the card number (c.card_no, the second last column of PERSON_WITH_CARDS_SELECT).
_HEAD_CARD_POSITION = 2 + _VISIT_ONLY_WIDTH + len(state.PERSON_WITH_CARDS_SELECT.split(",")) - 1
_MANY_HEADS = (
    "SELECT wanted.n, q.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
    " WITH ORDINALITY AS wanted(mdtrt_id, code, psn, svc_card, card, n)"
    " CROSS JOIN LATERAL ("
    f"SELECT 0 AS part, {state.VISIT_SELECT}, {', '.join(['NULL'] * _PERSON_WIDTH)}"
    " FROM srv_visit v WHERE v.mdtrt_id = wanted.mdtrt_id AND v.fixmedins_code = wanted.code"
    f" UNION ALL SELECT 1, {', '.join(['NULL'] * _VISIT_ONLY_WIDTH)}, {hooks.SETTLING_PERSON_SELECT.format(card='wanted.card')}"
    f" {hooks.SETTLING_PERSON_FROM.format(psn='wanted.psn', svc_card='wanted.svc_card')}"
    f") AS q ORDER BY 1, 2, {_HEAD_CARD_POSITION}"
)
# OFFSET 0 keeps each key's lines an index probe of srv_fee_line_batch in the generic plan.
_MANY_LINES = (
    f"SELECT wanted.n, l.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS wanted(mdtrt_id, bchno, n)"
    f" CROSS JOIN LATERAL (SELECT {state.LINE_SELECT} FROM srv_fee_line l"
    " WHERE l.mdtrt_id = wanted.mdtrt_id AND l.chrg_bchno = wanted.bchno AND l.cancelled_by IS NULL OFFSET 0) AS l"
    " ORDER BY 1, l.seq"
)


class ClaimKey(NamedTuple):
    """The keys of one settlement's claim read, as ``visit_batch_and_person`` takes them."""

    mdtrt_id: str
    fixmedins_code: str
    chrg_bchno: str
    psn_no: str
    cert_type: str
    cert_no: str
    on_date: datetime.date


ClaimRead = tuple[state.StoredVisit | None, list[state.StoredLine], Person | None]


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


async def many_visits_batches_and_persons(conn: Connection, keys: list[ClaimKey]) -> list[ClaimRead]:
    """Return what ``visit_batch_and_person`` returns for each key, read in two statements (PostgreSQL only)."""
    arguments = [hooks.settling_person_arguments(key.cert_no) for key in keys]
    mdtrt_ids = [key.mdtrt_id for key in keys]
    heads = await conn.fetch(
        _MANY_HEADS, mdtrt_ids, [key.fixmedins_code for key in keys], [key.psn_no for key in keys],
        [svc_card for svc_card, _ in arguments], [card for _, card in arguments],
    )
    lines = await conn.fetch(_MANY_LINES, mdtrt_ids, [key.chrg_bchno for key in keys])

    visits: list[state.StoredVisit | None] = [None] * len(keys)
    person_rows: list[list[tuple]] = [[] for _ in keys]
    for row in heads:
        if row[1] == 0:
            visits[row[0] - 1] = state.visit_from_values(row[2:2 + _VISIT_ONLY_WIDTH])
        else:
            person_rows[row[0] - 1].append(row[2 + _VISIT_ONLY_WIDTH:])
    stored: list[list[state.StoredLine]] = [[] for _ in keys]
    for row in lines:
        stored[row[0] - 1].append(state.StoredLine(row[1:]))

    reads: list[ClaimRead] = []
    for index, key in enumerate(keys):
        visit = visits[index]
        # A visit of another institution is not found, and its lines are not the claim's.
        batch = stored[index] if visit is not None else []
        by_card = key.cert_type == codes.CERT_BY_CARD
        reads.append((visit, batch, hooks.settling_person(person_rows[index], key.psn_no, key.on_date) if by_card else None))
    return reads
