"""The nonce, sign-in and message-id checks of a signed request, run inside the caller's transaction.

On PostgreSQL one statement stores the nonce, checks the sign-in, looks up the message id
and, for a settlement, takes the visit's advisory lock. Admitting a request then costs one
round trip of the transaction that also does its work and commits once. On SQLite the
settlement path only reads here and stores the nonce with the answer (``keep_nonce``),
because each SQLite write transaction costs an fsync of its own.
"""

from __future__ import annotations

import dataclasses

from adapters.server import state
from adapters.server.sqldb import VISIT_LOCK_CLASS, Connection
from settlement import signing
from settlement.errors import ErrorCode, SettlementError

__all__ = ["Admission", "Rejection", "admit_many"]


class Rejection(Exception):
    """A transport-level rejection, sent with its own HTTP status."""

    def __init__(self, status: int, error: SettlementError) -> None:
        self.status = status
        self.error = error


# The nonce insert decides reuse for concurrent requests in any process (the primary key
# makes a twin wait for the first insert's transaction). Subqueries read the sign-in and the
# message. The locking variant also takes the visit's transaction-scoped advisory lock. The
# statement's snapshot is taken before the lock, so reads that must follow the lock come later.
_PG_ADMIT = (
    "WITH stored_nonce AS ("
    " INSERT INTO srv_nonce (fixmedins_code, nonce, seen_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (fixmedins_code, nonce) DO UPDATE SET seen_at = excluded.seen_at WHERE srv_nonce.seen_at < $4"
    " RETURNING 1)"
    " SELECT EXISTS (SELECT 1 FROM stored_nonce) AS nonce_new,"
    " EXISTS (SELECT 1 FROM srv_sign_in WHERE sign_no = $5 AND fixmedins_code = $1 AND sign_out_time IS NULL) AS signed_in,"
    " m.infno, m.digest, m.output{lock}"
    " FROM (SELECT 1) AS one LEFT JOIN srv_message m ON m.fixmedins_code = $1 AND m.msgid = $6"
)
_PG_ADMIT_PLAIN = _PG_ADMIT.format(lock="")
# A settlement's own transaction also commits without waiting for its WAL flush. It writes
# only the nonce and the output stored under the msgid, after the ledger committed the
# settlement durably. If a database crash loses them, a retry of the msgid reaches the
# ledger, which returns the same record without writing (its request digest leaves out
# msgid and setl_time), and the output is built again. A replay of the lost nonce is such
# a retry. Every other transaction commits durably.
_PG_ADMIT_LOCKING = _PG_ADMIT.format(
    lock=", (SELECT count(*) FROM (SELECT pg_advisory_xact_lock($7, hashtext($8))) AS taken) AS locked,"
    " set_config('synchronous_commit', 'off', true) AS commit_mode"
)

# The locking form for many settlements at once (PostgreSQL): one row per request, in the
# order of the arrays. Nonces must be distinct within the call (an upsert cannot touch one
# row twice). The visit locks are taken from a subquery sorted by lock key. Every other
# holder of a visit lock takes one lock only, so two holders cannot wait for each other in
# a cycle. Unlike the single form, it leaves the commit durable, because the ledger writes
# the group's settlements in the same transaction.
_PG_ADMIT_MANY = (
    "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])"
    " WITH ORDINALITY AS k(code, nonce, seen_at, sign_no, msgid, n)),"
    " stored_nonce AS ("
    " INSERT INTO srv_nonce (fixmedins_code, nonce, seen_at) SELECT code, nonce, seen_at FROM k"
    " ON CONFLICT (fixmedins_code, nonce) DO UPDATE SET seen_at = excluded.seen_at WHERE srv_nonce.seen_at < excluded.seen_at - $6"
    " RETURNING fixmedins_code, nonce),"
    " locked AS (SELECT count(*) AS taken FROM (SELECT pg_advisory_xact_lock($7, key) FROM"
    " (SELECT DISTINCT hashtext(visit) AS key FROM unnest($8::text[]) AS visit ORDER BY 1) AS keys) AS taken)"
    " SELECT k.n, EXISTS (SELECT 1 FROM stored_nonce s WHERE s.fixmedins_code = k.code AND s.nonce = k.nonce) AS nonce_new,"
    " EXISTS (SELECT 1 FROM srv_sign_in WHERE sign_no = k.sign_no AND fixmedins_code = k.code AND sign_out_time IS NULL) AS signed_in,"
    " m.infno, m.digest, m.output, (SELECT taken FROM locked) AS locked"
    " FROM k LEFT JOIN srv_message m ON m.fixmedins_code = k.code AND m.msgid = k.msgid ORDER BY k.n"
)

# Read-only form for SQLite: a nonce is reused when it was stored inside the window.
_CHECK = (
    "SELECT EXISTS (SELECT 1 FROM srv_nonce WHERE fixmedins_code = $1 AND nonce = $2 AND seen_at >= $3) AS nonce_seen,"
    " EXISTS (SELECT 1 FROM srv_sign_in WHERE sign_no = $4 AND fixmedins_code = $1 AND sign_out_time IS NULL) AS signed_in,"
    " m.infno, m.digest, m.output"
    " FROM (SELECT 1) AS one LEFT JOIN srv_message m ON m.fixmedins_code = $1 AND m.msgid = $5"
)


@dataclasses.dataclass
class Admission:
    """The replay-protection facts of one authenticated request.

    ``signed_at`` is the server time of the signature check (unix seconds). ``sign_no`` is
    None for the transactions that need no sign-in. ``passed`` becomes True once the nonce
    was new and the sign-in live, which is when the nonce must be kept whatever follows.
    """

    fixmedins_code: str
    nonce: str
    signed_at: int
    keep_seconds: int
    msgid: str
    sign_no: str | None
    passed: bool = False

    async def admit(self, conn: Connection, dialect: str, *, lock_visit: str | None = None) -> state.StoredMessage | None:
        """Store the nonce, check the sign-in and return the stored output of the message id, if any.

        Raises the nonce-reuse rejection or SIGN_IN_REQUIRED. On PostgreSQL ``lock_visit``
        names a visit whose advisory lock the transaction then holds until it ends.
        """
        if dialect != "postgres":
            await self.keep_nonce(conn)
            # The insert above decided on the nonce, so the statement's nonce column is ignored.
            row = await conn.fetchrow(_CHECK, self.fixmedins_code, self.nonce, self.signed_at, self.sign_no or "", self.msgid)
            return self._finish(row)

        await state.prune_nonces_if_due(conn, self.signed_at, self.keep_seconds)
        args = [self.fixmedins_code, self.nonce, self.signed_at, self.signed_at - self.keep_seconds, self.sign_no or "", self.msgid]
        if lock_visit is None:
            row = await conn.fetchrow(_PG_ADMIT_PLAIN, *args)
        else:
            row = await conn.fetchrow(_PG_ADMIT_LOCKING, *args, VISIT_LOCK_CLASS, lock_visit)
        if not row["nonce_new"]:
            raise self.nonce_reused()
        return self._finish(row)

    async def check(self, conn: Connection) -> state.StoredMessage | None:
        """Check without writing: raise on a reused nonce or a missing sign-in, return the stored output if any.

        The caller must then store the nonce with ``keep_nonce`` in the transaction that
        records its output, and reject the request if that finds the nonce taken.
        """
        row = await conn.fetchrow(
            _CHECK, self.fixmedins_code, self.nonce, self.signed_at - self.keep_seconds, self.sign_no or "", self.msgid
        )
        if row["nonce_seen"]:
            raise self.nonce_reused()
        return self._finish(row)

    async def keep_nonce(self, conn: Connection) -> None:
        """Store the nonce after ``check``; raise the nonce-reuse rejection if a concurrent twin stored it first."""
        if not await state.remember_nonce(conn, self.fixmedins_code, self.nonce, self.signed_at, self.keep_seconds):
            raise self.nonce_reused()

    def _finish(self, row) -> state.StoredMessage | None:
        if self.sign_no is not None and not row["signed_in"]:
            raise SettlementError(
                ErrorCode.SIGN_IN_REQUIRED, field="sign_no", value=self.sign_no,
                detail="请先用 9001 签到", detail_en="sign in with 9001 first",
            )
        self.passed = True
        if row["infno"] is None:
            return None
        return state.StoredMessage(row["infno"], row["digest"], row["output"])

    def nonce_reused(self) -> Rejection:
        return Rejection(401, SettlementError(ErrorCode.NONCE_REUSED, field=signing.HEADER_NONCE, value=self.nonce))


async def admit_many(
    conn: Connection, admissions: list[Admission], visits: list[str]
) -> list[state.StoredMessage | None | BaseException]:
    """Admit several settlements in one statement and lock their visits until the transaction ends (PostgreSQL).

    Returns, per admission, what ``Admission.admit`` would return or the exception it would
    raise. The nonces must be distinct; the caller rejects a second use within its group.
    """
    first = admissions[0]
    await state.prune_nonces_if_due(conn, first.signed_at, first.keep_seconds)
    rows = await conn.fetch(
        _PG_ADMIT_MANY,
        [a.fixmedins_code for a in admissions], [a.nonce for a in admissions], [a.signed_at for a in admissions],
        [a.sign_no or "" for a in admissions], [a.msgid for a in admissions], first.keep_seconds, VISIT_LOCK_CLASS, visits,
    )
    outcomes: list[state.StoredMessage | None | BaseException] = []
    for admission, row in zip(admissions, rows, strict=True):
        if not row["nonce_new"]:
            outcomes.append(admission.nonce_reused())
            continue
        try:
            outcomes.append(admission._finish(row))
        except SettlementError as error:
            outcomes.append(error)
    return outcomes
