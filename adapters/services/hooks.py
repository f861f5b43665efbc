"""What the national-interface server asks the services while it resolves a person or a claim.

* ``person_for_credential``: a card number (``mdtrt_cert_type`` 03) recorded by the card
  service must be activated to settle, and an e-voucher token (01) issued by it maps to
  its person. Credentials the services do not know are left to the server.
* ``person_on``: from a retirement's effective date on, the person settles as a retiree.
* ``settling_person``: both of the above for a card credential, from rows that the
  settlement path reads together with its visit (``adapters/server/settle_reads.py``).
"""

from __future__ import annotations

import datetime

import msgspec

from adapters.server import state
from adapters.server.sqldb import Connection
from adapters.services import store
from settlement.persons import Person
from settlement.protocol import codes
from settlement.services.card import CardStatus, check_card_for_settlement
from settlement.services.employment import Retirement, psn_type_on

__all__ = [
    "SETTLING_PERSON_FROM",
    "SETTLING_PERSON_SELECT",
    "SETTLING_PERSON_WIDTH",
    "person_for_credential",
    "person_on",
    "settling_person",
    "settling_person_arguments",
]


async def person_for_credential(conn: Connection, cert_type: str, cert_no: str, field: str, now: datetime.datetime | None = None) -> str | None:
    """Return the person number a services credential names, or None when the services do not know it.

    Raises CARD_LOST, CARD_CANCELLED or CARD_NOT_ACTIVE for a card that cannot settle. A
    token's expiry is checked against ``now``, by default the wall clock, because tokens
    are issued in real time.
    """
    now = now or datetime.datetime.now()
    if cert_type == codes.CERT_BY_CARD:
        card = await store.card_by_no(conn, cert_no.upper())
        check_card_for_settlement(card, cert_no, field)
        return None if card is None else card.psn_no
    if cert_type == codes.CERT_BY_TOKEN:
        return await store.person_by_token(conn, cert_no, f"{now:%Y-%m-%d %H:%M:%S}")
    return None


async def person_on(conn: Connection, person: Person, on_date: datetime.date) -> Person:
    """Return the person with the person type in force on ``on_date`` (the retiree type after retirement)."""
    return _typed_on(person, await store.retirement_of(conn, person.psn_no), on_date)


def _typed_on(person: Person, retirement: Retirement | None, on_date: datetime.date) -> Person:
    psn_type = psn_type_on(person.psn_type, retirement, on_date)
    return person if psn_type == person.psn_type else msgspec.structs.replace(person, psn_type=psn_type)


# Select list and FROM clause of the settling person: the named person ({psn}) with their
# cards, the status and holder of the services card of the credential ({svc_card}, upper
# case), the holder of the server card with that number ({card}) and the person's
# retirement. Every join is optional, so the statement returns at least one row.
SETTLING_PERSON_SELECT = (
    f"{state.PERSON_WITH_CARDS_SELECT}, s.status, s.psn_no, (SELECT k.psn_no FROM srv_card k WHERE k.card_no = {{card}}),"
    " r.effective_date, r.retired_psn_type"
)
SETTLING_PERSON_FROM = (
    " FROM (SELECT 1) AS one"
    " LEFT JOIN srv_person p ON p.psn_no = {psn}"
    " LEFT JOIN srv_card c ON c.psn_no = p.psn_no"
    " LEFT JOIN svc_card s ON s.card_no = {svc_card}"
    " LEFT JOIN svc_retirement r ON r.psn_no = {psn}"
)
SETTLING_PERSON_WIDTH = len(state.PERSON_WITH_CARDS_SELECT.split(",")) + 5
_PERSON_NAMES = tuple(name.strip().split(".")[-1] for name in state.PERSON_WITH_CARDS_SELECT.split(","))


def settling_person_arguments(cert_no: str) -> tuple[str, str]:
    """Return the values of ``{svc_card}`` and ``{card}`` for a card credential."""
    return cert_no.upper(), cert_no


def settling_person(rows: list[tuple], psn_no: str, on_date: datetime.date) -> Person | None:
    """Return the named person as of ``on_date`` when the card credential (03) is theirs and may settle.

    ``rows`` are the values of ``SETTLING_PERSON_SELECT``. Returns None in every other
    case (an unknown person, a card of someone else or one that cannot settle). The caller
    then takes the general path, ``person_for_credential`` and ``person_on`` through the
    server's resolver, which raises the coded errors in their usual order. Both paths read
    the same tables, so they accept the same requests.
    """
    first = rows[0]
    width = len(_PERSON_NAMES)
    svc_status, svc_holder, card_holder, retirement_date, retired_psn_type = first[width:width + 5]
    if first[0] is None:
        return None
    if svc_status is not None:
        # A services card decides alone, as in person_for_credential.
        if CardStatus(svc_status) is not CardStatus.ACTIVATED or svc_holder != psn_no:
            return None
    elif card_holder != psn_no:
        return None
    person = state.person_from_rows([dict(zip(_PERSON_NAMES, row[:width])) for row in rows])
    retirement = None if retirement_date is None else Retirement(datetime.date.fromisoformat(retirement_date), retired_psn_type)
    return _typed_on(person, retirement, on_date)
