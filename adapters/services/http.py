"""HTTP front of the services: ``/api/card``, ``/api/employment``, ``/api/pension``, ``/api/self`` and the page.

``mount_services(app)`` wraps the national-interface application: requests under the
services' paths are handled here and everything else (lifespan included) goes to the
wrapped application, whose ``services`` (database, ledger, clock) this module shares.

Institutions call ``POST /api/...`` (``/api/injury`` too) with a JSON body signed as on the national
interface. A cardholder signs in on the page with a one-time code and may then only read
``GET /api/self/summary``. Any write with a cardholder session is rejected with
``READ_ONLY_ROLE``. Answers are ``{"code": 0, "data": ...}`` or
``{"code": N, "kind": ..., "field": ..., "message": ...}``; amounts are integer fen.
"""

from __future__ import annotations

import logging
import pathlib
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from adapters.services import auth, cards, employment, injury, pension, summary
from adapters.services import fields as f
from adapters.services.context import ServiceContext
from adapters.services.page import STYLESHEET, render_form, render_summary
from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.services.card import Action
from settlement.services.injury import load_injury_policies
from settlement.services.standards import load_standards

__all__ = ["ServicesApp", "mount_services"]

logger = logging.getLogger("settlement.services")

PREFIXES = ("/api/card/", "/api/employment/", "/api/pension/", "/api/injury/", "/api/self/", "/self-service")

# Form posts from the page are tiny; API bodies are small JSON objects.
MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[ServiceContext, dict[str, Any], str], Awaitable[Any]]


# -- API handlers: (context, JSON body, operator) -> JSON-ready data ---------------------------


async def _card_apply(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    card = f.card_from(data)
    if not card.psn_no:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field="psn_no")
    return cards.card_view(await cards.apply_for_card(ctx, card, operator))


def _card_action(action: Action) -> Handler:
    async def handle(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
        card_no = f.text(data, "card_no", max_len=20, sensitive=True).upper()
        replacement = f.card_from(data.get("new_card"), "new_card") if action is Action.REPLACE else None
        return cards.card_view(await cards.card_action(ctx, card_no, action, operator, replacement))

    return handle


async def _card_progress(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await cards.printing_progress(
        ctx, certno=f.text(data, "certno", required=False, max_len=20, sensitive=True), application_no=f.text(data, "application_no", required=False, max_len=30)
    )


async def _card_token(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    token, expires = await cards.issue_token(ctx, f.text(data, "psn_no", max_len=30))
    return {"token": token, "expires_at": expires}


async def _verification_code(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    psn_no = f.text(data, "psn_no", max_len=30)
    code = await auth.issue_verification_code(ctx, psn_no)
    logger.info("self-service: verification code issued psn_no=%s operator=%s", psn_no, operator)
    return {"psn_no": psn_no, "code": code, "expires_in_seconds": int(auth.CODE_LIFETIME.total_seconds())}


def _registration(kind: str) -> Handler:
    async def handle(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
        psn_no = f.text(data, "psn_no", max_len=30)
        date = f.date(data, "date", ctx.today())
        detail = {"employer": f.text(data, "employer", required=False, max_len=200)} if kind == "job" else {"reason": f.text(data, "reason", required=False, max_len=200)}
        status = await employment.register(ctx, psn_no, kind, date, {k: v for k, v in detail.items() if v})
        return {"psn_no": psn_no, "status": status.value, "status_name": status.name_zh, "since": date.isoformat()}

    return handle


async def _training(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    psn_no = f.text(data, "psn_no", max_len=30)
    seq = await employment.register_training(ctx, psn_no, f.date(data, "date", ctx.today()), f.text(data, "course", max_len=200))
    return {"psn_no": psn_no, "seq": seq}


async def _benefit_apply(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await employment.apply_benefit(
        ctx, f.text(data, "psn_no", max_len=30), f.integer(data, "contribution_months", maximum=12 * 60), f.period(data, "first_period")
    )


async def _benefit_pay(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await employment.pay_benefit(ctx, f.text(data, "claim_id", max_len=60), f.period(data, "period"))


async def _retire(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    psn_no = f.text(data, "psn_no", max_len=30)
    retirement = await employment.retire(ctx, psn_no, f.date(data, "effective_date"), f.text(data, "retired_psn_type", required=False, max_len=6) or "1201")
    return {"psn_no": psn_no, "effective_date": retirement.effective_date.isoformat(), "retired_psn_type": retirement.retired_psn_type}


async def _employment_status(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await employment.employment_view(ctx, f.text(data, "psn_no", max_len=30))


async def _contribute(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await pension.contribute(ctx, f.text(data, "psn_no", max_len=30), f.period(data, "period"), f.amount(data, "base"))


async def _interest(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await pension.credit_interest(ctx, f.text(data, "psn_no", max_len=30), f.integer(data, "year", minimum=1990, maximum=2100))


async def _pension_account(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await pension.pension_view(ctx, f.text(data, "psn_no", max_len=30))


async def _payment_records(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await pension.payment_records(
        ctx, f.text(data, "psn_no", max_len=30), f.text(data, "insutype", max_len=3), f.integer(data, "year", minimum=1990, maximum=2100)
    )


async def _injury_register(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await injury.register_case(ctx, f.text(data, "psn_no", max_len=30), f.date(data, "injury_date"), f.text(data, "description", max_len=500))


async def _injury_decide(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    recognized = data.get("recognized")
    if not isinstance(recognized, bool):
        raise SettlementError(ErrorCode.WRONG_TYPE, field="recognized", value=type(recognized).__name__, detail="布尔值", detail_en="a boolean")
    return await injury.decide_case(ctx, f.text(data, "case_id", max_len=40), recognized, f.date(data, "date", ctx.today()))


async def _injury_settle(ctx: ServiceContext, data: dict[str, Any], operator: str) -> Any:
    return await injury.settle_treatment(
        ctx, f.text(data, "case_id", max_len=40), operator, f.text(data, "msgid", max_len=30), f.text(data, "med_type", max_len=2),
        f.fee_lines(data, "lines"), f.date(data, "date", ctx.today()),
    )


ROUTES: dict[str, Handler] = {
    "/api/card/apply": _card_apply,
    "/api/card/progress": _card_progress,
    "/api/card/token": _card_token,
    "/api/card/verification-code": _verification_code,
    **{f"/api/card/{action.value.replace('_', '-')}": _card_action(action) for action in Action},
    "/api/employment/job": _registration("job"),
    "/api/employment/unemployment": _registration("unemployment"),
    "/api/employment/training": _training,
    "/api/employment/benefit/apply": _benefit_apply,
    "/api/employment/benefit/pay": _benefit_pay,
    "/api/employment/retire": _retire,
    "/api/employment/status": _employment_status,
    "/api/pension/contribute": _contribute,
    "/api/pension/interest": _interest,
    "/api/pension/account": _pension_account,
    "/api/pension/records": _payment_records,
    "/api/pension/retire": _retire,
    "/api/injury/register": _injury_register,
    "/api/injury/decide": _injury_decide,
    "/api/injury/settle": _injury_settle,
}

# Codes returned with HTTP 404 rather than 400.
_NOT_FOUND = {ErrorCode.UNKNOWN_PERSON, ErrorCode.CARD_NOT_FOUND, ErrorCode.APPLICATION_NOT_FOUND}


class ServicesApp:
    """ASGI wrapper: the services' paths here, every other request to ``inner``."""

    def __init__(self, inner: Any, *, standards_dir: str | pathlib.Path | None = None) -> None:
        self.inner = inner
        self.sessions = auth.SessionStore()
        self._standards_dir = standards_dir
        self._ctx: ServiceContext | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            await self._http(scope, receive, send)
        else:
            await self.inner(scope, receive, send)

    def context(self) -> ServiceContext:
        """Build the context from the wrapped application's services on first use."""
        if self._ctx is None:
            services = self.inner.services
            directory = self._standards_dir
            if directory is None:
                candidate = pathlib.Path(services.config.rules_dir) / "services"
                directory = candidate if candidate.is_dir() else bundled_rules_dir() / "services"
            self._ctx = ServiceContext(
                db=services.db, ledger=services.ledger, standards=load_standards(pathlib.Path(directory)), now=services.clock.now,
                catalog=services.rules.catalog, injury_policies=load_injury_policies(pathlib.Path(directory) / "injury"),
            )
        return self._ctx

    async def _http(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        lang = "en" if headers.get("accept-language", "").lower().startswith("en") else "zh"
        path, method = scope["path"], scope["method"]
        try:
            body = await _read_body(receive)
        except SettlementError as error:
            await _send_json(send, 413, _failure(error, lang))
            return

        if path.startswith("/self-service"):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            # The page is Chinese unless ?lang=en selects English, because browsers often send en-US by default.
            page_lang = (query.get("lang") or ["zh"])[0]
            await self._page(path, method, body, send, page_lang if page_lang in ("zh", "en") else "zh")
            return
        status, answer, operator = 200, None, "-"
        try:
            if path == "/api/self/summary":
                operator = "cardholder"
                answer = await self._self_summary(method, headers)
            else:
                operator = await self._institution(method, headers, body)
                handler = ROUTES.get(path)
                if handler is None:
                    raise SettlementError(ErrorCode.INVALID_FIELD, field="path", value=path, detail="没有这个接口", detail_en="no such endpoint")
                answer = {"code": 0, "data": await handler(self.context(), _decode(body), operator)}
        except auth.AuthError as rejection:
            status, answer = rejection.status, _failure(rejection.error, lang)
        except SettlementError as error:
            status = 404 if error.code in _NOT_FOUND else 400
            answer = _failure(error, lang)
        except Exception:
            logger.exception("services: request failed path=%s operator=%s", path, operator)
            status, answer = 500, _failure(SettlementError(ErrorCode.SERVICE_UNAVAILABLE, detail="内部错误，请稍后重试", detail_en="internal error, retry later"), lang)
        logger.info("services: path=%s operator=%s status=%d code=%s", path, operator, status, answer.get("code"))
        await _send_json(send, status, answer)

    async def _institution(self, method: str, headers: dict[str, str], body: bytes) -> str:
        if _session_id(headers) and not headers.get("x-tif-signature"):
            raise auth.AuthError(403, SettlementError(ErrorCode.READ_ONLY_ROLE, field=method))
        if method != "POST":
            raise SettlementError(ErrorCode.INVALID_FIELD, field="method", value=method, detail="只接受 POST", detail_en="only POST is accepted")
        services = self.inner.services
        institution = await auth.authenticate_institution(self.context(), services.institutions, headers, body, services.config.timestamp_window)
        return institution.fixmedins_code

    async def _self_summary(self, method: str, headers: dict[str, str]) -> dict[str, Any]:
        holder = await self.sessions.get(self.context(), _session_id(headers) or "")
        if holder is None:
            raise auth.AuthError(401, SettlementError(ErrorCode.VERIFICATION_FAILED))
        if method != "GET":
            raise auth.AuthError(403, SettlementError(ErrorCode.READ_ONLY_ROLE, field=method))
        return {"code": 0, "data": await summary.person_summary(self.context(), holder.psn_no)}

    async def _page(self, path: str, method: str, body: bytes, send: Any, lang: str) -> None:
        if path == "/self-service/style.css":
            await _send(send, 200, STYLESHEET.encode("utf-8"), b"text/css; charset=utf-8")
            return
        if path.rstrip("/") != "/self-service":
            missing = "page not found" if lang == "en" else "页面不存在"
            await _send(send, 404, render_form(missing, lang=lang).encode("utf-8"), b"text/html; charset=utf-8")
            return
        if method != "POST":
            await _send(send, 200, render_form(lang=lang).encode("utf-8"), b"text/html; charset=utf-8")
            return

        form = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
        number = (form.get("number") or [""])[0].strip()[:20]
        code = (form.get("code") or [""])[0].strip()[:6]
        ctx = self.context()
        try:
            if not number:
                raise SettlementError(ErrorCode.REQUIRED_FIELD, field="number")
            psn_no = await summary.find_cardholder(ctx, number)
            await auth.check_verification_code(ctx, psn_no, code)
            page = render_summary(await summary.person_summary(ctx, psn_no), lang)
            session_id = await self.sessions.open(ctx, psn_no)
        except SettlementError as error:
            # The same message for an unknown number and a wrong code, so the page does not reveal who is insured.
            public_error = error if error.code is not ErrorCode.UNKNOWN_PERSON else SettlementError(ErrorCode.VERIFICATION_FAILED)
            logger.info("self-service: lookup rejected code=%d", error.code.number)
            await _send(send, 400, render_form(public_error.message(lang), number, lang).encode("utf-8"), b"text/html; charset=utf-8")
            return
        except Exception:
            logger.exception("self-service: lookup failed")
            failure = SettlementError(ErrorCode.SERVICE_UNAVAILABLE, detail="内部错误，请稍后重试", detail_en="internal error, retry later")
            await _send(send, 500, render_form(failure.message(lang), number, lang).encode("utf-8"), b"text/html; charset=utf-8")
            return
        logger.info("self-service: lookup psn_no=%s", psn_no)
        cookie = f"{auth.SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={auth.SESSION_SECONDS}".encode("latin-1")
        await _send(send, 200, page.encode("utf-8"), b"text/html; charset=utf-8", [(b"set-cookie", cookie)])


def mount_services(app: Any, *, standards_dir: str | pathlib.Path | None = None) -> ServicesApp:
    """Wrap the national-interface application so that it also serves the services."""
    return ServicesApp(app, standards_dir=standards_dir)


def _session_id(headers: dict[str, str]) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == auth.SESSION_COOKIE and value:
            return value
    return None


def _decode(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettlementError(ErrorCode.ENCODING, field="body", value=f"0x{body[exc.start]:02X}", detail="请按 UTF-8 发送", detail_en="send UTF-8") from None
    try:
        data = money.decode_json(text or "{}")
    except msgspec.DecodeError as exc:
        raise SettlementError(ErrorCode.MALFORMED_JSON, detail=str(exc)) from None
    if not isinstance(data, dict):
        raise SettlementError(ErrorCode.WRONG_TYPE, field="body", value=type(data).__name__, detail="JSON 对象", detail_en="a JSON object")
    return data


async def _read_body(receive: Any) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SettlementError(ErrorCode.BODY_TOO_LARGE, value=f">{MAX_BODY_BYTES}", detail=str(MAX_BODY_BYTES))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _failure(error: SettlementError, lang: str) -> dict[str, Any]:
    return {"code": error.code.number, "kind": error.code.name, "field": error.field, "message": error.message(lang)}


async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Any, status: int, answer: dict[str, Any]) -> None:
    await _send(send, status, msgspec.json.encode(answer), b"application/json; charset=utf-8")
