"""Authentication of services API callers: a signed institution, or a verified cardholder (read-only).

Institutions sign exactly as on the national interface (``x-tif-*`` headers over the
body, see ``settlement.signing``), with the same nonce store. A cardholder proves who
they are with a one-time verification code and gets a session cookie that allows reads
of their own records only.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from adapters.server import state
from adapters.services.context import ServiceContext
from settlement import signing
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Institution

__all__ = [
    "Cardholder",
    "SessionStore",
    "authenticate_institution",
    "check_verification_code",
    "issue_verification_code",
]

# A verification code is valid this long and allows this many wrong tries.
CODE_LIFETIME = datetime.timedelta(minutes=10)
MAX_CODE_FAILURES = 5

# A cardholder session lasts this long, in seconds.
SESSION_SECONDS = 15 * 60
SESSION_COOKIE = "ss_session"


class AuthError(Exception):
    """A rejection with its HTTP status (401 or 403)."""

    def __init__(self, status: int, error: SettlementError) -> None:
        super().__init__(error.message_en)
        self.status = status
        self.error = error


async def authenticate_institution(ctx: ServiceContext, institutions: dict[str, Institution], headers: dict[str, str], body: bytes, window: int) -> Institution:
    """Check the ``x-tif-*`` headers and remember the nonce; raise AuthError(401) on any failure."""
    code = headers.get(signing.HEADER_PAASID, "")
    stamp = headers.get(signing.HEADER_TIMESTAMP, "")
    nonce = headers.get(signing.HEADER_NONCE, "")
    signature = headers.get(signing.HEADER_SIGNATURE, "")
    for name, value in ((signing.HEADER_PAASID, code), (signing.HEADER_TIMESTAMP, stamp), (signing.HEADER_NONCE, nonce), (signing.HEADER_SIGNATURE, signature)):
        if not value:
            raise AuthError(401, SettlementError(ErrorCode.SIGNATURE_INVALID, detail=f"缺少请求头 {name}", detail_en=f"header {name} is missing"))

    institution = institutions.get(code)
    if institution is None:
        async with ctx.db.transaction() as conn:
            institutions.update(await state.load_institutions(conn))
        institution = institutions.get(code)
    if institution is None:
        raise AuthError(401, SettlementError(ErrorCode.UNKNOWN_INSTITUTION, field=signing.HEADER_PAASID, value=code))

    now = int(time.time())
    if not stamp.isdigit() or abs(now - int(stamp)) > window:
        raise AuthError(
            401, SettlementError(ErrorCode.TIMESTAMP_STALE, field=signing.HEADER_TIMESTAMP, value=stamp, detail=f"应为与服务器时间相差不超过 {window} 秒的 unix 秒数", detail_en=f"must be unix seconds within {window} s of server time")
        )
    if len(nonce) > signing.MAX_NONCE_CHARS or not signing.signature_matches(institution.secret.encode("utf-8"), stamp, nonce, body, signature, institution.sign_algorithm):
        raise AuthError(401, SettlementError(ErrorCode.SIGNATURE_INVALID, detail=f"{institution.sign_algorithm} 签名不符", detail_en=f"{institution.sign_algorithm} signature does not match"))
    async with ctx.db.transaction() as conn:
        if not await state.remember_nonce(conn, institution.fixmedins_code, nonce, now, 2 * window):
            raise AuthError(401, SettlementError(ErrorCode.NONCE_REUSED, field=signing.HEADER_NONCE, value=nonce))
    return institution


def _hash_code(code: str, salt: str) -> str:
    return hashlib.sha256((salt + code).encode("ascii")).hexdigest()


async def issue_verification_code(ctx: ServiceContext, psn_no: str) -> str:
    """Issue a 6-digit one-time code for a person; the previous code stops working.

    NOTE: the engine has no SMS gateway, so the code is returned to the staff member who
    issued it (API or CLI) to hand to the cardholder.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    expires = (ctx.now() + CODE_LIFETIME).strftime("%Y-%m-%d %H:%M:%S")
    async with ctx.db.transaction() as conn:
        if await state.person_by_psn_no(conn, psn_no) is None:
            raise SettlementError(ErrorCode.UNKNOWN_PERSON, field="psn_no", value=psn_no)
        await conn.execute(
            "INSERT INTO svc_verification (psn_no, code_hash, salt, expires_at, failures) VALUES ($1, $2, $3, $4, 0) "
            "ON CONFLICT (psn_no) DO UPDATE SET code_hash = excluded.code_hash, salt = excluded.salt, expires_at = excluded.expires_at, failures = 0",
            psn_no, _hash_code(code, salt), salt, expires,
        )
    return code


async def check_verification_code(ctx: ServiceContext, psn_no: str, code: str) -> None:
    """Accept a live code once, or raise VERIFICATION_FAILED (counting the failure).

    After MAX_CODE_FAILURES wrong tries the code stops working even when right.
    """
    now = ctx.now().strftime("%Y-%m-%d %H:%M:%S")
    async with ctx.db.transaction() as conn:
        row = await conn.fetchrow("SELECT code_hash, salt, expires_at, failures FROM svc_verification WHERE psn_no = $1", psn_no)
        usable = row is not None and row["expires_at"] >= now and int(row["failures"]) < MAX_CODE_FAILURES
        matches = usable and code.isdigit() and len(code) == 6 and hmac.compare_digest(_hash_code(code, row["salt"]), row["code_hash"])
        if matches:
            # One use only: a code seen on a shared screen cannot be replayed.
            await conn.execute("DELETE FROM svc_verification WHERE psn_no = $1", psn_no)
            return
        if row is not None:
            await conn.execute("UPDATE svc_verification SET failures = failures + 1 WHERE psn_no = $1", psn_no)
    raise SettlementError(ErrorCode.VERIFICATION_FAILED)


@dataclass
class Cardholder:
    psn_no: str
    expires: int  # unix seconds


def _hash_session(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore:
    """Cardholder sessions by random id, stored in the server's database (``svc_session``).

    Every server process on the database accepts a session that any of them opened. Only
    the SHA-256 of a session id is stored. Expiry is by wall-clock unix seconds, so the
    servers' clocks must agree.
    """

    async def open(self, ctx: ServiceContext, psn_no: str) -> str:
        """Store a new session for ``psn_no`` and return its id (the cookie value)."""
        now = int(time.time())
        session_id = secrets.token_urlsafe(24)
        async with ctx.db.transaction() as conn:
            # Expired sessions are deleted whenever one opens, which keeps the table small.
            await conn.execute("DELETE FROM svc_session WHERE expires_at <= $1", now)
            await conn.execute(
                "INSERT INTO svc_session (session_hash, psn_no, expires_at) VALUES ($1, $2, $3)",
                _hash_session(session_id), psn_no, now + SESSION_SECONDS,
            )
        return session_id

    async def get(self, ctx: ServiceContext, session_id: str) -> Cardholder | None:
        """Return the live session's cardholder, or None for an unknown or expired id."""
        if not session_id:
            return None
        async with ctx.db.read_transaction() as conn:
            row = await conn.fetchrow(
                "SELECT psn_no, expires_at FROM svc_session WHERE session_hash = $1 AND expires_at > $2",
                _hash_session(session_id), int(time.time()),
            )
        return None if row is None else Cardholder(row["psn_no"], int(row["expires_at"]))
