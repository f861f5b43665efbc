"""The server's own tables: institutions, persons and cards, sign-ins, nonces, visits, fee lines, messages.

Every method takes an open ``Connection`` so that a transaction's reads and writes share
one database transaction; the caller decides where transactions begin and end.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable
from typing import Any

from adapters.server.sqldb import Connection
from settlement.persons import Card, Institution, Person

__all__ = [
    "PERSON_WITH_CARDS_SELECT",
    "LINE_SELECT",
    "VISIT_SELECT",
    "VISIT_WITH_BATCH_FROM",
    "VISIT_WITH_BATCH_SELECT",
    "VISIT_WITH_BATCH_WIDTH",
    "StoredLine",
    "StoredMessage",
    "StoredVisit",
    "cancel_batch",
    "cancel_visit",
    "find_message",
    "insert_lines",
    "insert_new_visit",
    "insert_visit",
    "live_lines_of_batch",
    "live_lines_of_visit",
    "load_institutions",
    "person_from_rows",
    "person_by_card",
    "person_by_certno",
    "person_by_psn_no",
    "prune_nonces_if_due",
    "record_message",
    "record_messages",
    "remember_nonce",
    "sign_in",
    "sign_in_is_live",
    "sign_out",
    "update_visit_info",
    "upsert_institution",
    "upsert_person",
    "visit_and_lines_from_rows",
    "visit_by_id",
    "visit_from_values",
    "visit_with_batch_lines",
]

_PERSON_COLUMNS = (
    "psn_no, psn_cert_type, certno, psn_name, gend, naty, brdy, insutype, psn_type, psn_insu_stas,"
    " psn_insu_date, cvlserv_flag, maf_type, insuplc_admdvs, emp_name"
)


async def upsert_institution(conn: Connection, inst: Institution) -> None:
    await conn.execute(
        "INSERT INTO srv_institution (fixmedins_code, fixmedins_name, kind, hosp_lv, admdvs, secret, sign_algorithm)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (fixmedins_code) DO UPDATE SET fixmedins_name = excluded.fixmedins_name, kind = excluded.kind,"
        " hosp_lv = excluded.hosp_lv, admdvs = excluded.admdvs, secret = excluded.secret, sign_algorithm = excluded.sign_algorithm",
        inst.fixmedins_code, inst.fixmedins_name, inst.kind, inst.hosp_lv, inst.admdvs, inst.secret, inst.sign_algorithm,
    )


async def load_institutions(conn: Connection) -> dict[str, Institution]:
    rows = await conn.fetch("SELECT fixmedins_code, fixmedins_name, kind, hosp_lv, admdvs, secret, sign_algorithm FROM srv_institution")
    return {
        row["fixmedins_code"]: Institution(
            fixmedins_code=row["fixmedins_code"], fixmedins_name=row["fixmedins_name"], kind=row["kind"], hosp_lv=row["hosp_lv"],
            admdvs=row["admdvs"], secret=row["secret"], sign_algorithm=row["sign_algorithm"],
        )
        for row in rows
    }


async def upsert_person(conn: Connection, person: Person) -> None:
    """Insert or replace a person and their cards (the account balance is the ledger's)."""
    await conn.execute(
        f"INSERT INTO srv_person ({_PERSON_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        " ON CONFLICT (psn_no) DO UPDATE SET psn_cert_type = excluded.psn_cert_type, certno = excluded.certno,"
        " psn_name = excluded.psn_name, gend = excluded.gend, naty = excluded.naty, brdy = excluded.brdy,"
        " insutype = excluded.insutype, psn_type = excluded.psn_type, psn_insu_stas = excluded.psn_insu_stas,"
        " psn_insu_date = excluded.psn_insu_date, cvlserv_flag = excluded.cvlserv_flag, maf_type = excluded.maf_type,"
        " insuplc_admdvs = excluded.insuplc_admdvs, emp_name = excluded.emp_name",
        person.psn_no, person.psn_cert_type, person.certno, person.psn_name, person.gend, person.naty, person.brdy,
        person.insutype, person.psn_type, person.psn_insu_stas, person.psn_insu_date, person.cvlserv_flag,
        person.maf_type, person.insuplc_admdvs, person.emp_name,
    )
    await conn.execute("DELETE FROM srv_card WHERE psn_no = $1", person.psn_no)
    for card in person.cards:
        await conn.execute(
            "INSERT INTO srv_card (card_no, psn_no, card_sn) VALUES ($1, $2, $3)"
            " ON CONFLICT (card_no) DO UPDATE SET psn_no = excluded.psn_no, card_sn = excluded.card_sn",
            card.card_no, person.psn_no, card.card_sn,
        )


def _person(row: Any, cards: list[Any]) -> Person:
    return Person(
        psn_no=row["psn_no"], psn_cert_type=row["psn_cert_type"], certno=row["certno"], psn_name=row["psn_name"],
        gend=row["gend"], naty=row["naty"], brdy=row["brdy"], insutype=row["insutype"], psn_type=row["psn_type"],
        psn_insu_stas=row["psn_insu_stas"], psn_insu_date=row["psn_insu_date"], cvlserv_flag=row["cvlserv_flag"],
        maf_type=row["maf_type"], insuplc_admdvs=row["insuplc_admdvs"], emp_name=row["emp_name"],
        cards=tuple(Card(card_no=card["card_no"], card_sn=card["card_sn"]) for card in cards),
    )


# Select list of a person (alias p) joined with their cards (alias c), as ``person_from_rows`` reads it.
PERSON_WITH_CARDS_SELECT = ", ".join(f"p.{name.strip()}" for name in _PERSON_COLUMNS.split(",")) + ", c.card_no, c.card_sn"

_PERSON_WITH_CARDS = (
    f"SELECT {PERSON_WITH_CARDS_SELECT}"
    " FROM srv_person p LEFT JOIN srv_card c ON c.psn_no = p.psn_no WHERE p.psn_no = $1 ORDER BY c.card_no"
)


async def person_by_psn_no(conn: Connection, psn_no: str) -> Person | None:
    # One round trip: one row per card, or one row with NULL card columns for a person without cards.
    return person_from_rows(await conn.fetch(_PERSON_WITH_CARDS, psn_no))


def person_from_rows(rows: list[Any]) -> Person | None:
    """Build a person from rows of the person's columns plus ``card_no`` and ``card_sn``, one row per card.

    A person without cards has one row with NULL card columns; no row means no person.
    """
    if not rows:
        return None
    return _person(rows[0], [row for row in rows if row["card_no"] is not None])


async def person_by_certno(conn: Connection, certno: str) -> Person | None:
    rows = await conn.fetch(_PERSON_WITH_CARDS.replace("p.psn_no = $1", "p.certno = $1"), certno)
    if not rows:
        return None
    return _person(rows[0], [row for row in rows if row["card_no"] is not None])


_PERSON_BY_CARD = _PERSON_WITH_CARDS.replace(
    " WHERE p.psn_no = $1", " WHERE p.psn_no = (SELECT k.psn_no FROM srv_card k WHERE k.card_no = $1)"
)


async def person_by_card(conn: Connection, card_no: str) -> Person | None:
    rows = await conn.fetch(_PERSON_BY_CARD, card_no)
    if not rows:
        return None
    return _person(rows[0], [row for row in rows if row["card_no"] is not None])


async def sign_in(conn: Connection, fixmedins_code: str, opter_no: str, sign_time: str) -> str:
    """Record a sign-in and return its new ``sign_no`` (time digits plus random digits, 30 characters)."""
    digits = "".join(ch for ch in sign_time if ch.isdigit())
    sign_no = digits + "".join(secrets.choice("0123456789") for _ in range(30 - len(digits)))
    await conn.execute(
        "INSERT INTO srv_sign_in (sign_no, fixmedins_code, opter_no, sign_time) VALUES ($1, $2, $3, $4)",
        sign_no, fixmedins_code, opter_no, sign_time,
    )
    return sign_no


async def sign_out(conn: Connection, fixmedins_code: str, sign_no: str, sign_time: str) -> bool:
    """Close a live sign-in of the institution; return False when there is none."""
    live = await sign_in_is_live(conn, fixmedins_code, sign_no)
    if live:
        await conn.execute("UPDATE srv_sign_in SET sign_out_time = $1 WHERE sign_no = $2", sign_time, sign_no)
    return live


async def sign_in_is_live(conn: Connection, fixmedins_code: str, sign_no: str) -> bool:
    row = await conn.fetchrow(
        "SELECT 1 FROM srv_sign_in WHERE sign_no = $1 AND fixmedins_code = $2 AND sign_out_time IS NULL", sign_no, fixmedins_code
    )
    return row is not None


# Stale nonces are deleted on one call in this many, to keep the table small.
_NONCE_PRUNE_EVERY = 1000
_nonce_calls = itertools.count()


async def prune_nonces_if_due(conn: Connection, now: int, keep_seconds: int) -> None:
    """Delete the nonces older than the window, on one call in ``_NONCE_PRUNE_EVERY``."""
    if next(_nonce_calls) % _NONCE_PRUNE_EVERY == 0:
        await conn.execute("DELETE FROM srv_nonce WHERE seen_at < $1", now - keep_seconds)


async def remember_nonce(conn: Connection, fixmedins_code: str, nonce: str, now: int, keep_seconds: int) -> bool:
    """Store a nonce; return False when the institution already used it inside the window.

    One statement decides: the insert succeeds, or it replaces a row older than the window,
    or it changes nothing and returns no row (a reuse). The database's unique key makes this
    hold for concurrent requests in any process.
    """
    await prune_nonces_if_due(conn, now, keep_seconds)
    stored = await conn.fetchval(
        "INSERT INTO srv_nonce (fixmedins_code, nonce, seen_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (fixmedins_code, nonce) DO UPDATE SET seen_at = excluded.seen_at WHERE srv_nonce.seen_at < $4"
        " RETURNING 1",
        fixmedins_code, nonce, now, now - keep_seconds,
    )
    return stored is not None


class StoredMessage:
    __slots__ = ("infno", "digest", "output")

    def __init__(self, infno: str, digest: str, output: str) -> None:
        self.infno = infno
        self.digest = digest
        self.output = output


async def find_message(conn: Connection, fixmedins_code: str, msgid: str) -> StoredMessage | None:
    row = await conn.fetchrow(
        "SELECT infno, digest, output FROM srv_message WHERE fixmedins_code = $1 AND msgid = $2", fixmedins_code, msgid
    )
    return None if row is None else StoredMessage(row["infno"], row["digest"], row["output"])


async def record_message(conn: Connection, fixmedins_code: str, msgid: str, infno: str, digest: str, output: bytes, now: str) -> None:
    """Remember a successful answer so that a retry of the same message gets it back."""
    await conn.execute(
        "INSERT INTO srv_message (fixmedins_code, msgid, infno, digest, output, answered_at) VALUES ($1, $2, $3, $4, $5, $6)",
        fixmedins_code, msgid, infno, digest, output.decode("utf-8"), now,
    )


async def record_messages(conn: Connection, rows: list[tuple[str, str, str, str, str, str]]) -> set[tuple[str, str]]:
    """Record many outputs in one statement (PostgreSQL); return the (institution, msgid) keys stored.

    Each row is (fixmedins_code, msgid, infno, digest, output, answered_at). A key that is
    already stored, or that comes twice in ``rows``, is stored once and not replaced. For a
    key that a concurrent transaction is inserting, the insert waits for that transaction.
    """
    stored = await conn.fetch(
        "INSERT INTO srv_message (fixmedins_code, msgid, infno, digest, output, answered_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
        " ON CONFLICT (fixmedins_code, msgid) DO NOTHING RETURNING fixmedins_code, msgid",
        *(list(column) for column in zip(*rows)),
    )
    return {(row[0], row[1]) for row in stored}


class StoredVisit:
    __slots__ = ("mdtrt_id", "fixmedins_code", "psn_no", "insutype", "med_type", "begntime", "mdtrt_cert_type",
                 "ipt_otp_no", "dise_codg", "cancelled")

    def __init__(self, row: Any) -> None:
        self.mdtrt_id = row["mdtrt_id"]
        self.fixmedins_code = row["fixmedins_code"]
        self.psn_no = row["psn_no"]
        self.insutype = row["insutype"]
        self.med_type = row["med_type"]
        self.begntime = row["begntime"]
        self.mdtrt_cert_type = row["mdtrt_cert_type"]
        self.ipt_otp_no = row["ipt_otp_no"]
        self.dise_codg = row["dise_codg"]
        self.cancelled = row["cancelled_by"] is not None


_INSERT_VISIT = (
    "INSERT INTO srv_visit (mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type,"
    " ipt_otp_no, dise_codg, detail, registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)

_INSERT_NEW_VISIT = _INSERT_VISIT + " ON CONFLICT (mdtrt_id) DO NOTHING RETURNING mdtrt_id"

# Draws of a new visit id before giving up. An id carries the second and 8 random digits,
# so two registrations in the same second collide with a chance of one in 10^8. At 2,000
# registrations a second that is about 2% of seconds (an estimate from the pair count).
_ID_DRAWS = 5


async def insert_visit(
    conn: Connection, *, mdtrt_id: str, fixmedins_code: str, psn_no: str, insutype: str, med_type: str, begntime: str,
    mdtrt_cert_type: str, ipt_otp_no: str | None, dise_codg: str | None, detail: dict, registered_by: str,
) -> None:
    """Insert a visit under an id the caller derived (a pharmacy sale's); a taken id is an error."""
    await conn.execute(
        _INSERT_VISIT, mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type, ipt_otp_no, dise_codg,
        json.dumps(detail, ensure_ascii=False), registered_by,
    )


async def insert_new_visit(
    conn: Connection, draw: Callable[[], str], *, fixmedins_code: str, psn_no: str, insutype: str, med_type: str, begntime: str,
    mdtrt_cert_type: str, ipt_otp_no: str | None, dise_codg: str | None, detail: dict, registered_by: str,
) -> str:
    """Insert a visit under a newly drawn id and return it; an id already taken is drawn again."""
    body = json.dumps(detail, ensure_ascii=False)
    for _ in range(_ID_DRAWS):
        mdtrt_id = draw()
        row = await conn.fetchrow(
            _INSERT_NEW_VISIT,
            mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type, ipt_otp_no, dise_codg, body, registered_by,
        )
        if row is not None:
            return mdtrt_id
    raise RuntimeError(f"no free visit id in {_ID_DRAWS} draws; retry the registration")


async def visit_by_id(conn: Connection, mdtrt_id: str, fixmedins_code: str, *, for_update: bool = False, dialect: str = "sqlite") -> StoredVisit | None:
    """Return the institution's visit; another institution's visit is reported as absent."""
    lock = " FOR UPDATE" if for_update and dialect == "postgres" else ""
    row = await conn.fetchrow(
        "SELECT mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type, ipt_otp_no, dise_codg,"
        f" cancelled_by FROM srv_visit WHERE mdtrt_id = $1 AND fixmedins_code = $2{lock}",
        mdtrt_id, fixmedins_code,
    )
    return None if row is None else StoredVisit(row)


async def cancel_visit(conn: Connection, mdtrt_id: str, msgid: str) -> None:
    await conn.execute("UPDATE srv_visit SET cancelled_by = $1 WHERE mdtrt_id = $2 AND cancelled_by IS NULL", msgid, mdtrt_id)


async def update_visit_info(conn: Connection, mdtrt_id: str, med_type: str, dise_codg: str | None, dise_name: str | None, diagnoses: list) -> None:
    detail_text = await conn.fetchval("SELECT detail FROM srv_visit WHERE mdtrt_id = $1", mdtrt_id)
    detail = json.loads(detail_text or "{}")
    detail["diseinfo"] = diagnoses
    await conn.execute(
        "UPDATE srv_visit SET med_type = $1, dise_codg = $2, dise_name = $3, detail = $4 WHERE mdtrt_id = $5",
        med_type, dise_codg, dise_name, json.dumps(detail, ensure_ascii=False), mdtrt_id,
    )


_LINE_COLUMNS = (
    "feedetl_sn, chrg_bchno, init_feedetl_sn, rxno, fee_ocur_time, med_list_codg, medins_list_codg, amount, price_micro,"
    " quantity, charge_class, selfpay_prop, price_cap_micro, fulamt_ownpay_amt, overlmt_amt, preselfpay_amt, inscp_scp_amt, seq"
)


class StoredLine:
    """One live fee line with its split, as uploaded by 2204 or a pharmacy sale."""

    __slots__ = tuple(name.strip() for name in _LINE_COLUMNS.split(","))

    def __init__(self, values: Any) -> None:
        """Take the ``_LINE_COLUMNS`` values in order (a row of a query that selects exactly those)."""
        (
            self.feedetl_sn, self.chrg_bchno, self.init_feedetl_sn, self.rxno, self.fee_ocur_time, self.med_list_codg,
            self.medins_list_codg, self.amount, self.price_micro, self.quantity, self.charge_class, self.selfpay_prop,
            self.price_cap_micro, self.fulamt_ownpay_amt, self.overlmt_amt, self.preselfpay_amt, self.inscp_scp_amt, self.seq,
        ) = values


async def live_lines_of_visit(conn: Connection, mdtrt_id: str) -> list[StoredLine]:
    rows = await conn.fetch(
        f"SELECT {_LINE_COLUMNS} FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL ORDER BY seq", mdtrt_id
    )
    return [StoredLine(tuple(row)) for row in rows]


async def live_lines_of_batch(conn: Connection, mdtrt_id: str, chrg_bchno: str) -> list[StoredLine]:
    rows = await conn.fetch(
        f"SELECT {_LINE_COLUMNS} FROM srv_fee_line WHERE mdtrt_id = $1 AND chrg_bchno = $2 AND cancelled_by IS NULL ORDER BY seq",
        mdtrt_id, chrg_bchno,
    )
    return [StoredLine(tuple(row)) for row in rows]


_VISIT_COLUMNS = "mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type, ipt_otp_no, dise_codg, cancelled_by"
_VISIT_NAMES = tuple(name.strip() for name in _VISIT_COLUMNS.split(","))
_VISIT_WIDTH = len(_VISIT_NAMES)
# Select lists of a visit's columns (table alias ``v``) and of a line's (alias ``l``).
VISIT_SELECT = ", ".join(f"v.{name}" for name in _VISIT_NAMES)
LINE_SELECT = ", ".join(f"l.{name.strip()}" for name in _LINE_COLUMNS.split(","))
# Select list and FROM clause of a visit ($1 of institution $2) joined with the live lines
# of one of its batches ($3). The visit's row repeats on each line, or comes once with NULL
# line columns when the batch has no live line. The last column is the line's seq.
VISIT_WITH_BATCH_SELECT = f"{VISIT_SELECT}, {LINE_SELECT}"
VISIT_WITH_BATCH_FROM = (
    "FROM srv_visit v LEFT JOIN srv_fee_line l ON l.mdtrt_id = v.mdtrt_id AND l.chrg_bchno = $3 AND l.cancelled_by IS NULL"
    " WHERE v.mdtrt_id = $1 AND v.fixmedins_code = $2"
)
VISIT_WITH_BATCH_WIDTH = len(VISIT_WITH_BATCH_SELECT.split(","))
_VISIT_WITH_BATCH = f"SELECT {VISIT_WITH_BATCH_SELECT} {VISIT_WITH_BATCH_FROM} ORDER BY l.seq"


async def visit_with_batch_lines(conn: Connection, mdtrt_id: str, fixmedins_code: str, chrg_bchno: str) -> tuple[StoredVisit | None, list[StoredLine]]:
    """Return the institution's visit and the live lines of one of its charge batches, in one round trip.

    The same as ``visit_by_id`` followed by ``live_lines_of_batch``.
    """
    rows = await conn.fetch(_VISIT_WITH_BATCH, mdtrt_id, fixmedins_code, chrg_bchno)
    return visit_and_lines_from_rows([tuple(row) for row in rows])


def visit_and_lines_from_rows(rows: list[tuple]) -> tuple[StoredVisit | None, list[StoredLine]]:
    """Build the visit and its lines from value tuples of ``VISIT_WITH_BATCH_SELECT``, in line order."""
    if not rows:
        return None, []
    lines = [StoredLine(row[_VISIT_WIDTH:]) for row in rows if row[_VISIT_WIDTH] is not None]
    return visit_from_values(rows[0][:_VISIT_WIDTH]), lines


def visit_from_values(values: Any) -> StoredVisit:
    """Build a visit from the values of ``VISIT_SELECT``, in order."""
    return StoredVisit(dict(zip(_VISIT_NAMES, values)))


async def insert_lines(conn: Connection, mdtrt_id: str, msgid: str, rows: list[tuple]) -> None:
    """Insert split lines; each row is the ``_LINE_COLUMNS`` values in order."""
    await conn.executemany(
        f"INSERT INTO srv_fee_line (line_id, mdtrt_id, uploaded_by, {_LINE_COLUMNS}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        [(f"{mdtrt_id}/{row[0]}/{msgid}", mdtrt_id, msgid, *row) for row in rows],
    )


async def cancel_batch(conn: Connection, mdtrt_id: str, chrg_bchno: str | None, msgid: str) -> int:
    """Withdraw the live lines of one batch (every batch when ``chrg_bchno`` is None); return how many."""
    if chrg_bchno is None:
        count = await conn.fetchval("SELECT count(*) FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL", mdtrt_id)
        await conn.execute("UPDATE srv_fee_line SET cancelled_by = $1 WHERE mdtrt_id = $2 AND cancelled_by IS NULL", msgid, mdtrt_id)
    else:
        count = await conn.fetchval(
            "SELECT count(*) FROM srv_fee_line WHERE mdtrt_id = $1 AND chrg_bchno = $2 AND cancelled_by IS NULL", mdtrt_id, chrg_bchno
        )
        await conn.execute(
            "UPDATE srv_fee_line SET cancelled_by = $1 WHERE mdtrt_id = $2 AND chrg_bchno = $3 AND cancelled_by IS NULL",
            msgid, mdtrt_id, chrg_bchno,
        )
    return int(count)
