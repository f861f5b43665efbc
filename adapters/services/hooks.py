"""What the national-interface server asks the services while it resolves a person or a claim.

* ``person_for_credential``: a card number (``mdtrt_cert_type`` 03) recorded by the card
  service must be activated to settle, and an e-voucher token (01) issued by it maps to
  its person. Credentials the services do not know are left to the server.
* ``person_on``: from a retirement's effective date on, the person settles as a retiree.
"""

from __future__ import annotations

import datetime

import msgspec

from adapters.server.sqldb import Connection
from adapters.services import store
from settlement.persons import Person
from settlement.protocol import codes
from settlement.services.card import check_card_for_settlement
from settlement.services.employment import psn_type_on

__all__ = ["person_for_credential", "person_on"]


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
    retirement = await store.retirement_of(conn, person.psn_no)
    psn_type = psn_type_on(person.psn_type, retirement, on_date)
    return person if psn_type == person.psn_type else msgspec.structs.replace(person, psn_type=psn_type)
