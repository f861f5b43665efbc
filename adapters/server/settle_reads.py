"""The reads of a 2207 after its visit lock, in one statement: the visit, its batch's live lines and the settling person.

The visit and lines are the rows of ``state.visit_with_batch_lines``, the person those of
``hooks.SETTLING_PERSON_SELECT``. A UNION ALL returns both, each branch padded with NULLs
to the other's columns and marked by a leading ``part`` column (0 visit, 1 person), so a
settlement reads its claim in one round trip instead of two.
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


def _visit_and_person(mdtrt_id: str, code: str, bchno: str, psn: str, svc_card: str, card: str) -> str:
    """Build the UNION ALL of the visit branch and the person branch; each argument names a parameter or a column."""
    return (
        f"SELECT 0 AS part, {state.VISIT_WITH_BATCH_SELECT}, {', '.join(['NULL'] * _PERSON_WIDTH)}"
        f" {state.VISIT_WITH_BATCH_FROM_TEMPLATE.format(mdtrt_id=mdtrt_id, code=code, bchno=bchno)}"
        f" UNION ALL SELECT 1, {', '.join(['NULL'] * _VISIT_WIDTH)}, {hooks.SETTLING_PERSON_SELECT.format(card=card)}"
        f" {hooks.SETTLING_PERSON_FROM.format(psn=psn, svc_card=svc_card)}"
    )


_VISIT_AND_PERSON = (
    _visit_and_person("$1", "$2", "$3", "$4", "$5", "$6") + f" ORDER BY 1, {_SEQ_POSITION}, {_CARD_POSITION}"
)

# The same for many settlements (PostgreSQL only): one set of rows per key, numbered from 1
# in the order of the key arrays, in a leading column ``n``.
_MANY = (
    "SELECT wanted.n, q.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " WITH ORDINALITY AS wanted(mdtrt_id, code, bchno, psn, svc_card, card, n)"
    " CROSS JOIN LATERAL ("
    + _visit_and_person("wanted.mdtrt_id", "wanted.code", "wanted.bchno", "wanted.psn", "wanted.svc_card", "wanted.card")
    + ") AS q"
    f" ORDER BY 1, 2, {1 + _SEQ_POSITION}, {1 + _CARD_POSITION}"
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
    return _claim_read(rows, psn_no, by_card=True, on_date=on_date)


async def many_visits_batches_and_persons(conn: Connection, keys: list[ClaimKey]) -> list[ClaimRead]:
    """Return what ``visit_batch_and_person`` returns for each key, read in one statement (PostgreSQL only)."""
    arguments = [hooks.settling_person_arguments(key.cert_no) for key in keys]
    rows = await conn.fetch(
        _MANY, [key.mdtrt_id for key in keys], [key.fixmedins_code for key in keys], [key.chrg_bchno for key in keys],
        [key.psn_no for key in keys], [svc_card for svc_card, _ in arguments], [card for _, card in arguments],
    )
    by_key: list[list[tuple]] = [[] for _ in keys]
    for row in rows:
        by_key[row[0] - 1].append(row[1:])
    return [
        _claim_read(key_rows, key.psn_no, by_card=key.cert_type == codes.CERT_BY_CARD, on_date=key.on_date)
        for key, key_rows in zip(keys, by_key, strict=True)
    ]


def _claim_read(rows: list[tuple], psn_no: str, *, by_card: bool, on_date: datetime.date) -> ClaimRead:
    visit_rows = [row[1:1 + _VISIT_WIDTH] for row in rows if row[0] == 0]
    visit, lines = state.visit_and_lines_from_rows(visit_rows)
    if not by_card:
        return visit, lines, None
    person_rows = [row[1 + _VISIT_WIDTH:] for row in rows if row[0] == 1]
    return visit, lines, hooks.settling_person(person_rows, psn_no, on_date)
