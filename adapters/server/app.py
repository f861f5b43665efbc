"""The ASGI application of the national interface: one POST endpoint, dispatch on ``infno``.

Every path accepts the envelope (gateways differ: a single dispatch path, the base URL
plus the transaction number, or one path per transaction), except ``/health``. A request
goes through, in order: size limit, charset, signature (``x-tif-*`` headers), UTF-8,
envelope, nonce, sign-in, message-id replay, then the transaction's handler. Any failure
returns ``infcode -1`` with a coded ``err_msg`` and writes nothing.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import time
from typing import Any

import asyncpg
import msgspec

from adapters.server import handlers_inpatient, handlers_query, handlers_reconcile, handlers_reversal, handlers_settle, handlers_visit, language, state
from adapters.server.admission import Admission, Rejection
from adapters.server.handlers_visit import Call
from adapters.server.services import Services
from settlement import signing
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Institution
from settlement.protocol import inputs
from settlement.protocol.envelope import RequestEnvelope, ResponseEnvelope, canonical_digest, decode_envelope

__all__ = ["SettlementApp"]

logger = logging.getLogger("settlement.server")

HANDLERS = {
    **handlers_visit.HANDLERS, **handlers_settle.HANDLERS, **handlers_inpatient.HANDLERS, **handlers_reversal.HANDLERS,
    **handlers_query.HANDLERS, **handlers_reconcile.HANDLERS,
}

# Transactions that need a live sign_no: everything but sign-in/out and the person query.
_NEEDS_SIGN_IN = frozenset(HANDLERS) - {"9001", "9002", "1101"}

_ENCODER = msgspec.json.Encoder()
_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]

# Test harnesses may set the engine clock per request with this header (only with test_clock).
CLOCK_HEADER = "x-settlement-clock"


_Reject = Rejection


class SettlementApp:
    """ASGI callable. ``services`` is built at lifespan startup by ``startup``, or given directly."""

    def __init__(self, services: Services | None = None, *, startup: Any = None, shutdown: Any = None) -> None:
        self.services = services
        self._startup = startup
        self._shutdown = shutdown

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup is not None:
                        self.services = await self._startup()
                except Exception as exc:
                    logger.exception("server: startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown is not None and self.services is not None:
                    await self._shutdown(self.services)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        lang = "en" if headers.get("accept-language", "").lower().startswith("en") else "zh"
        language.RESPONSE_LANGUAGE.set(lang)

        if scope["path"] == "/health":
            await _send(send, 200, b'{"status":"ok"}')
            return

        log = {"infno": "-", "fixmedins_code": "-", "msgid": "-"}
        status = 200
        try:
            if scope["method"] != "POST":
                raise _Reject(405, SettlementError(ErrorCode.INVALID_FIELD, field="method", value=scope["method"], detail="只接受 POST", detail_en="only POST is accepted"))
            body = await self._read_body(headers, receive)
            body_out = await self._handle(scope, headers, body, log)
            outcome, code = "ok", 0
        except _Reject as rejection:
            status = rejection.status
            body_out = self._failure(rejection.error, lang)
            outcome, code = "rejected", rejection.error.code.number
        except SettlementError as error:
            body_out = self._failure(error, lang)
            outcome, code = "rejected", error.code.number
        except Exception:
            logger.exception("server: request failed infno=%s fixmedins_code=%s msgid=%s", log["infno"], log["fixmedins_code"], log["msgid"])
            error = SettlementError(ErrorCode.SERVICE_UNAVAILABLE, detail="内部错误，请稍后重试", detail_en="internal error, retry later")
            status, body_out = 500, self._failure(error, lang)
            outcome, code = "failed", error.code.number

        await _send(send, status, body_out)
        logger.info(
            "request infno=%s fixmedins_code=%s msgid=%s outcome=%s err_code=%s ms=%.1f",
            log["infno"], log["fixmedins_code"], log["msgid"], outcome, code, (time.perf_counter() - started) * 1000,
        )

    async def _read_body(self, headers: dict[str, str], receive: Any) -> bytes:
        limit = self.services.config.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Reject(413, SettlementError(ErrorCode.BODY_TOO_LARGE, value=declared, detail=str(limit)))

        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, SettlementError(ErrorCode.BODY_TOO_LARGE, value=f">{limit}", detail=str(limit)))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(self, scope: dict, headers: dict[str, str], body: bytes, log: dict[str, str]) -> bytes:
        services = self.services
        _check_charset(headers.get("content-type", ""))
        institution, nonce, signed_at = await self._authenticate(headers, body)
        log["fixmedins_code"] = institution.fixmedins_code

        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SettlementError(
                ErrorCode.ENCODING, field="body", value=f"0x{body[exc.start]:02X}",
                detail=f"第 {exc.start} 字节 0x{body[exc.start]:02X} 不是合法的 UTF-8 序列（可能是 GBK 编码）；请按 UTF-8 发送",
                detail_en=f"byte 0x{body[exc.start]:02X} at offset {exc.start} is not valid UTF-8 (GBK text?); send UTF-8",
            ) from None

        envelope = decode_envelope(body)
        infno = _path_infno(scope["path"], envelope)
        log["infno"] = infno
        msgid = _require(envelope.msgid, "msgid", 30)
        log["msgid"] = msgid
        if envelope.fixmedins_code not in (None, "", institution.fixmedins_code):
            raise SettlementError(
                ErrorCode.INSTITUTION_MISMATCH, field="fixmedins_code", value=envelope.fixmedins_code, detail=institution.fixmedins_code
            )

        handler = HANDLERS.get(infno)
        if handler is None:
            raise SettlementError(ErrorCode.UNKNOWN_INFNO, field="infno", value=infno)

        raw_input = bytes(envelope.input)
        digest = canonical_digest(infno, raw_input)
        call = Call(
            services=services, institution=institution, envelope=envelope, infno=infno, msgid=msgid,
            input=inputs.decode_input(infno, raw_input), digest=digest, now=self._now(headers),
        )

        window = services.config.timestamp_window
        admission = Admission(
            fixmedins_code=institution.fixmedins_code, nonce=nonce, signed_at=signed_at, keep_seconds=2 * window, msgid=msgid,
            sign_no=(envelope.sign_no or "") if infno in _NEEDS_SIGN_IN else None,
        )
        admitting = handlers_settle.ADMITTING_HANDLERS.get(infno)
        if admitting is not None:
            try:
                decoded = admitting.decode(call.input)
            except SettlementError:
                # The ordinary path below reports this error after the nonce and sign-in checks, as for other transactions.
                admitting = None
        if admitting is not None:
            return await self._run_admitting(admitting, decoded, call, admission)

        # The nonce is stored in the same transaction as the sign-in and replay checks, so a
        # request costs one commit before its handler. A nonce is kept once the request
        # reaches this point, whatever the handler then decides.
        async with services.db.transaction() as conn:
            stored = await admission.admit(conn, services.db.dialect)
        if stored is not None:
            return _replay(stored, infno, digest, msgid, services, call.now)

        try:
            output = await handler(call)
        except (sqlite3.IntegrityError, asyncpg.UniqueViolationError) as error:
            return await self._twin_answer(call, error)
        return _success(output, services, call.now)

    async def _run_admitting(self, admitting: handlers_settle.AdmittingHandler, decoded: Any, call: Call, admission: Admission) -> bytes:
        """Run a handler that does the admission checks in its own transaction (one commit per request).

        When the handler fails after the checks passed, its transaction and the nonce in it
        are rolled back. The nonce is then stored on its own here, so that a replay of the
        same signed request is rejected, as on the ordinary path.
        """
        try:
            output = await admitting.run(call, decoded, admission)
        except Exception as error:
            if admission.passed:
                await self._keep_nonce(admission)
            if isinstance(error, (sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
                return await self._twin_answer(call, error)
            raise
        if isinstance(output, state.StoredMessage):
            return _replay(output, call.infno, call.digest, call.msgid, self.services, call.now)
        return _success(output, self.services, call.now)

    async def _keep_nonce(self, admission: Admission) -> None:
        try:
            async with self.services.db.transaction() as conn:
                await state.remember_nonce(conn, admission.fixmedins_code, admission.nonce, admission.signed_at, admission.keep_seconds)
        except (sqlite3.Error, asyncpg.PostgresError, OSError) as error:
            # The request fails anyway. Its nonce stays unrecorded, so a replay would not be rejected for it.
            logger.warning("server: nonce not stored fixmedins_code=%s msgid=%s error=%s", admission.fixmedins_code, admission.msgid, error)

    async def _twin_answer(self, call: Call, error: Exception) -> bytes:
        """Return the stored output for a request whose message record lost a race to a concurrent twin, or re-raise ``error``."""
        async with self.services.db.transaction() as conn:
            stored = await state.find_message(conn, call.code, call.msgid)
        if stored is None:
            raise error
        return _replay(stored, call.infno, call.digest, call.msgid, self.services, call.now)

    async def _authenticate(self, headers: dict[str, str], body: bytes) -> tuple[Institution, str, int]:
        """Check the ``x-tif-*`` headers; return the institution, the nonce and the time it was checked (unix seconds)."""
        services = self.services
        code = headers.get(signing.HEADER_PAASID, "")
        stamp = headers.get(signing.HEADER_TIMESTAMP, "")
        nonce = headers.get(signing.HEADER_NONCE, "")
        signature = headers.get(signing.HEADER_SIGNATURE, "")
        for name, value in ((signing.HEADER_PAASID, code), (signing.HEADER_TIMESTAMP, stamp), (signing.HEADER_NONCE, nonce), (signing.HEADER_SIGNATURE, signature)):
            if not value:
                raise _Reject(401, SettlementError(ErrorCode.SIGNATURE_INVALID, detail=f"缺少请求头 {name}", detail_en=f"header {name} is missing"))

        institution = services.institutions.get(code)
        if institution is None:
            async with services.db.transaction() as conn:
                services.institutions = await state.load_institutions(conn)
            institution = services.institutions.get(code)
        if institution is None:
            raise _Reject(401, SettlementError(ErrorCode.UNKNOWN_INSTITUTION, field=signing.HEADER_PAASID, value=code))

        if not stamp.isdigit():
            raise _Reject(401, SettlementError(ErrorCode.TIMESTAMP_STALE, field=signing.HEADER_TIMESTAMP, value=stamp, detail="应为 unix 秒数", detail_en="must be unix seconds"))
        now = int(time.time())
        window = services.config.timestamp_window
        if abs(now - int(stamp)) > window:
            raise _Reject(401, SettlementError(ErrorCode.TIMESTAMP_STALE, field=signing.HEADER_TIMESTAMP, value=stamp, detail=f"与服务器时间相差超过 {window} 秒", detail_en=f"more than {window} s from server time"))
        if len(nonce) > signing.MAX_NONCE_CHARS:
            raise _Reject(401, SettlementError(ErrorCode.SIGNATURE_INVALID, detail=f"随机串超过 {signing.MAX_NONCE_CHARS} 个字符", detail_en=f"nonce longer than {signing.MAX_NONCE_CHARS} characters"))
        if not signing.signature_matches(institution.secret.encode("utf-8"), stamp, nonce, body, signature, institution.sign_algorithm):
            raise _Reject(401, SettlementError(ErrorCode.SIGNATURE_INVALID, detail=f"{institution.sign_algorithm} 签名不符", detail_en=f"{institution.sign_algorithm} signature does not match"))
        return institution, nonce, now

    def _now(self, headers: dict[str, str]) -> datetime.datetime:
        override = headers.get(CLOCK_HEADER)
        if override and self.services.config.test_clock:
            return datetime.datetime.strptime(override, "%Y-%m-%d %H:%M:%S")
        return self.services.clock.now()

    def _failure(self, error: SettlementError, lang: str) -> bytes:
        now = self.services.clock.now() if self.services is not None else datetime.datetime.now()
        envelope = ResponseEnvelope(
            infcode=-1, inf_refmsgid=_refmsgid(self.services, now), refmsg_time=_stamp17(now), respond_time=_stamp17(datetime.datetime.now()),
            err_msg=error.message(lang), warn_msg="", enctype="", signtype="", cainfo="", err_code=error.code.number,
        )
        return _ENCODER.encode(envelope)


def _check_charset(content_type: str) -> None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value.strip('"').lower() not in ("utf-8", "utf8"):
            raise SettlementError(
                ErrorCode.ENCODING, field="content-type", value=value,
                detail=f"不接受字符集 {value}，请按 UTF-8 发送", detail_en=f"charset {value} is not accepted; send UTF-8",
            )


def _path_infno(path: str, envelope: RequestEnvelope) -> str:
    """Return ``infno`` from the envelope; a path ending in a transaction number must agree with it."""
    infno = _require(envelope.infno, "infno", 6)
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last[:4].isdigit() and last in HANDLERS and last != infno:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="infno", value=infno, detail=f"与请求路径中的交易 {last} 不一致", detail_en=f"differs from transaction {last} in the path"
        )
    return infno


def _require(value: str | None, field: str, max_len: int) -> str:
    if not value:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=field)
    if len(value) > max_len:
        raise SettlementError(ErrorCode.INVALID_FIELD, field=field, value=value, detail=f"长度超过 {max_len}", detail_en=f"longer than {max_len}")
    return value


def _replay(stored: state.StoredMessage, infno: str, digest: str, msgid: str, services: Services, now: datetime.datetime) -> bytes:
    if stored.digest.startswith(handlers_reversal.REVERSED_DIGEST):
        raise SettlementError(ErrorCode.ALREADY_REVERSED, field="msgid", value=msgid, detail=stored.digest[len(handlers_reversal.REVERSED_DIGEST):])
    if stored.infno != infno or stored.digest != digest:
        raise SettlementError(
            ErrorCode.MSGID_REUSED, field="msgid", value=msgid,
            detail=f"交易 {stored.infno}，内容不同", detail_en=f"transaction {stored.infno} with different content",
        )
    return _success(stored.output.encode("utf-8"), services, now)


def _success(output: bytes, services: Services, now: datetime.datetime) -> bytes:
    envelope = ResponseEnvelope(
        infcode=0, inf_refmsgid=_refmsgid(services, now), refmsg_time=_stamp17(now), respond_time=_stamp17(datetime.datetime.now()),
        err_msg="", warn_msg="", enctype="", signtype="", cainfo="", output=msgspec.Raw(output),
    )
    return _ENCODER.encode(envelope)


def _refmsgid(services: Services | None, now: datetime.datetime) -> str:
    admdvs = services.config.receiver_admdvs if services is not None else "000000"
    serial = services.next_serial() if services is not None else 0
    return f"{admdvs}{now:%Y%m%d%H%M%S}{serial % 10**10:010d}"


def _stamp17(moment: datetime.datetime) -> str:
    return f"{moment:%Y%m%d%H%M%S}{moment.microsecond // 1000:03d}"


async def _send(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


