"""SQL access to the services tables (migration 0200), through the server's ``sqldb`` connections.

Queries use PostgreSQL's ``$1`` placeholders; ``sqldb`` rewrites them for SQLite. Every
function runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from adapters.server.sqldb import Connection
from settlement.services.card import CardRecord, CardStatus
from settlement.services.employment import EmploymentStatus, Retirement

__all__ = [
    "add_card_event",
    "add_employment_event",
    "card_by_application",
    "card_by_no",
    "card_events",
    "cards_of_person",
    "employment_events",
    "employment_status",
    "insert_card",
    "lock_person",
    "person_by_token",
    "retirement_of",
    "set_card_status",
    "set_employment_status",
]

_CARD_COLUMNS = (
    "card_no, psn_no, application_no, generation, issuing_admdvs, status, chip_sn, bank_code, bank_account, "
    "replaces_card_no, replaced_by_card_no"
)


# First key of the PostgreSQL advisory locks that serialize one person's service operations.
PERSON_LOCK_CLASS = 2_300


async def lock_person(conn: Connection, dialect: str, psn_no: str) -> None:
    """Serialize the service operations of one person until the transaction ends.

    PostgreSQL takes a transaction advisory lock (class ``PERSON_LOCK_CLASS``, hash of the
    person number). SQLite needs none, because every transaction there starts with
    ``BEGIN IMMEDIATE`` and so already excludes every other writer.
    """
    if dialect == "postgres":
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", PERSON_LOCK_CLASS, psn_no)


def _card(row: Any) -> CardRecord:
    return CardRecord(
        card_no=row["card_no"], psn_no=row["psn_no"], application_no=row["application_no"], generation=int(row["generation"]),
        issuing_admdvs=row["issuing_admdvs"], status=CardStatus(row["status"]), chip_sn=row["chip_sn"], bank_code=row["bank_code"],
        bank_account=row["bank_account"], replaces_card_no=row["replaces_card_no"], replaced_by_card_no=row["replaced_by_card_no"],
    )


# -- cards ------------------------------------------------------------------------------------


async def insert_card(conn: Connection, card: CardRecord) -> None:
    await conn.execute(
        f"INSERT INTO svc_card ({_CARD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        card.card_no, card.psn_no, card.application_no, card.generation, card.issuing_admdvs, card.status.value, card.chip_sn,
        card.bank_code, card.bank_account, card.replaces_card_no, card.replaced_by_card_no,
    )


async def card_by_no(conn: Connection, card_no: str, *, lock_dialect: str | None = None) -> CardRecord | None:
    """Return a card. With ``lock_dialect`` ``postgres`` its row stays locked until the transaction ends (see ``lock_person``)."""
    suffix = " FOR UPDATE" if lock_dialect == "postgres" else ""
    row = await conn.fetchrow(f"SELECT {_CARD_COLUMNS} FROM svc_card WHERE card_no = $1{suffix}", card_no)
    return None if row is None else _card(row)


async def card_by_application(conn: Connection, application_no: str) -> CardRecord | None:
    row = await conn.fetchrow(f"SELECT {_CARD_COLUMNS} FROM svc_card WHERE application_no = $1", application_no)
    return None if row is None else _card(row)


async def cards_of_person(conn: Connection, psn_no: str) -> list[CardRecord]:
    rows = await conn.fetch(f"SELECT {_CARD_COLUMNS} FROM svc_card WHERE psn_no = $1 ORDER BY application_no", psn_no)
    return [_card(row) for row in rows]


async def set_card_status(conn: Connection, card_no: str, status: CardStatus, replaced_by: str | None = None) -> None:
    if replaced_by is None:
        await conn.execute("UPDATE svc_card SET status = $1 WHERE card_no = $2", status.value, card_no)
    else:
        await conn.execute("UPDATE svc_card SET status = $1, replaced_by_card_no = $2 WHERE card_no = $3", status.value, replaced_by, card_no)


async def add_card_event(conn: Connection, card_no: str, action: str, status: CardStatus, date: datetime.date, operator: str) -> None:
    seq = await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM svc_card_event WHERE card_no = $1", card_no)
    await conn.execute(
        "INSERT INTO svc_card_event (card_no, seq, action, status, event_date, operator) VALUES ($1, $2, $3, $4, $5, $6)",
        card_no, int(seq), action, status.value, date.isoformat(), operator,
    )


async def card_events(conn: Connection, card_no: str) -> list[tuple[CardStatus, datetime.date, str]]:
    """Return (state entered, date, action) of every event of a card, oldest first."""
    rows = await conn.fetch("SELECT status, event_date, action FROM svc_card_event WHERE card_no = $1 ORDER BY seq", card_no)
    return [(CardStatus(row["status"]), datetime.date.fromisoformat(row["event_date"]), row["action"]) for row in rows]


async def person_by_token(conn: Connection, token: str, now: str) -> str | None:
    """Return the person number of a live e-voucher token (``now`` is ``yyyy-MM-dd HH:mm:ss``)."""
    return await conn.fetchval("SELECT psn_no FROM svc_ecard_token WHERE token = $1 AND expires_at >= $2", token, now)


# -- employment -------------------------------------------------------------------------------


async def employment_status(conn: Connection, psn_no: str) -> tuple[EmploymentStatus, str | None]:
    row = await conn.fetchrow("SELECT status, since FROM svc_employment WHERE psn_no = $1", psn_no)
    if row is None:
        return EmploymentStatus.NONE, None
    return EmploymentStatus(row["status"]), row["since"]


async def set_employment_status(conn: Connection, psn_no: str, status: EmploymentStatus, since: datetime.date) -> None:
    await conn.execute(
        "INSERT INTO svc_employment (psn_no, status, since) VALUES ($1, $2, $3) "
        "ON CONFLICT (psn_no) DO UPDATE SET status = excluded.status, since = excluded.since",
        psn_no, status.value, since.isoformat(),
    )


async def add_employment_event(conn: Connection, psn_no: str, kind: str, date: datetime.date, detail: dict[str, Any]) -> int:
    seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM svc_employment_event WHERE psn_no = $1", psn_no))
    await conn.execute(
        "INSERT INTO svc_employment_event (psn_no, seq, kind, event_date, detail) VALUES ($1, $2, $3, $4, $5)",
        psn_no, seq, kind, date.isoformat(), json.dumps(detail, ensure_ascii=False, sort_keys=True),
    )
    return seq


async def employment_events(conn: Connection, psn_no: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT seq, kind, event_date, detail FROM svc_employment_event WHERE psn_no = $1 ORDER BY seq", psn_no)
    return [{"seq": int(row["seq"]), "kind": row["kind"], "date": row["event_date"], "detail": json.loads(row["detail"])} for row in rows]


async def retirement_of(conn: Connection, psn_no: str) -> Retirement | None:
    row = await conn.fetchrow("SELECT effective_date, retired_psn_type FROM svc_retirement WHERE psn_no = $1", psn_no)
    if row is None:
        return None
    return Retirement(datetime.date.fromisoformat(row["effective_date"]), row["retired_psn_type"])
