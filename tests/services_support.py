"""In-process harness for the services tests: a real ledger and server state, called through ASGI.

``ServicesHarness`` builds the server's services (migrations, persons, institutions) on a
fresh SQLite file or PostgreSQL schema, wraps the national-interface application with the
services routes, and sends signed requests to it without a network socket.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import pathlib
import secrets
import time
from typing import Any

from adapters.server.app import SettlementApp
from adapters.server.services import ServerConfig
from adapters.server.wiring import build_services, close_services
from adapters.services.context import ServiceContext
from adapters.services.http import mount_services
from settlement import signing
from settlement.paths import bundled_rules_dir

HOSPITAL = {"fixmedins_code": "H99000000001", "fixmedins_name": "测试医院（虚构）", "kind": "hospital", "hosp_lv": "level1",
            "admdvs": "110000", "secret": "test-secret-hospital-0001"}

# Synthetic persons: 测试 names, ID numbers with the non-existent division prefix 99.
PERSONS = [
    {"psn_no": "SVC-0001", "certno": "990000196005050011", "psn_name": "测试甲", "gend": "1", "brdy": "1960-05-05",
     "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000", "acct_balc": "500.00",
     "cards": [{"card_no": "LEGACY0001"}]},
    {"psn_no": "SVC-0002", "certno": "990000198803030022", "psn_name": "测试乙", "gend": "2", "brdy": "1988-03-03",
     "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000", "acct_balc": "0.00"},
]


def card_fields(card_no: str, application_no: str, psn_no: str = "SVC-0001", generation: int = 2) -> dict[str, Any]:
    fields = {"card_no": card_no, "application_no": application_no, "psn_no": psn_no, "generation": generation,
              "issuing_admdvs": "110000", "chip_sn": "CHIP" + card_no[-6:]}
    if generation == 2:
        fields |= {"bank_code": "102", "bank_account": "6222020000123456"}
    return fields


class ServicesHarness:
    """Services over a ledger DSN; use with ``asyncio.run`` around ``async with``."""

    def __init__(self, dsn: str, tmp_path: pathlib.Path, now: datetime.datetime | None = None) -> None:
        self.dsn = dsn
        self.tmp_path = tmp_path
        self.now = now or datetime.datetime(2024, 6, 1, 9, 0, 0)

    async def __aenter__(self) -> ServicesHarness:
        persons = self.tmp_path / "persons.json"
        persons.write_text(json.dumps({"persons": PERSONS}, ensure_ascii=False), encoding="utf-8")
        institutions = self.tmp_path / "institutions.json"
        institutions.write_text(json.dumps({"institutions": [HOSPITAL]}, ensure_ascii=False), encoding="utf-8")
        config = ServerConfig(
            ledger_dsn=self.dsn, rules_dir=str(bundled_rules_dir()), persons_file=str(persons), institutions_file=str(institutions),
            clock_start=self.now, test_clock=True,
        )
        self.services = await build_services(config)
        self.app = mount_services(SettlementApp(self.services))
        self.ctx: ServiceContext = self.app.context()
        # Operations read a fixed clock so that the dates in the tests are exact.
        self.ctx.now = lambda: self.now
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close_services(self.services)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one HTTP request through ASGI; return status, response headers and body."""
        scope = {
            "type": "http", "method": method, "path": path, "query_string": b"",
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()],
        }
        sent = [{"type": "http.request", "body": body, "more_body": False}]
        out: list[dict] = []

        async def receive() -> dict:
            return sent.pop(0) if sent else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            out.append(message)

        await self.app(scope, receive, send)
        start = out[0]
        response_headers = {name.decode(): value.decode() for name, value in start["headers"]}
        return start["status"], response_headers, b"".join(m.get("body", b"") for m in out[1:])

    async def api(self, path: str, data: dict[str, Any], *, lang: str = "zh") -> tuple[int, dict[str, Any]]:
        """POST a signed JSON request as the test hospital; return the HTTP status and the decoded response."""
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        headers = signing.signed_headers(HOSPITAL["fixmedins_code"], HOSPITAL["secret"].encode(), body, int(time.time()), secrets.token_hex(16))
        headers["content-type"] = "application/json; charset=utf-8"
        if lang == "en":
            headers["accept-language"] = "en"
        status, _, answer = await self.request("POST", path, body, headers)
        return status, json.loads(answer)

    async def ok(self, path: str, data: dict[str, Any]) -> Any:
        status, answer = await self.api(path, data)
        assert status == 200, answer
        assert answer["code"] == 0, answer
        return answer["data"]

    async def national(self, infno: str, node: dict[str, Any], clock: datetime.datetime) -> dict[str, Any]:
        """Send one signed national-interface transaction with the engine clock set to ``clock``."""
        from adapters.server.client import build_envelope

        self.serial = getattr(self, "serial", 0) + 1
        envelope = build_envelope(
            infno, node, msgid=f"{HOSPITAL['fixmedins_code']}{clock:%Y%m%d%H%M%S}{self.serial:04d}", fixmedins_code=HOSPITAL["fixmedins_code"],
            fixmedins_name=HOSPITAL["fixmedins_name"], sign_no=getattr(self, "sign_no", ""), now=clock,
        )
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        headers = signing.signed_headers(HOSPITAL["fixmedins_code"], HOSPITAL["secret"].encode(), body, int(time.time()), secrets.token_hex(16))
        headers |= {"content-type": "application/json; charset=utf-8", "x-settlement-clock": f"{clock:%Y-%m-%d %H:%M:%S}"}
        _, _, answer = await self.request("POST", "/fsi/api/callService", body, headers)
        return json.loads(answer, parse_float=decimal.Decimal)

    async def sign_in(self, clock: datetime.datetime) -> None:
        answer = await self.national("9001", {"signIn": {"opter_no": "T001", "mac": "00-00-00-00-00-00", "ip": "127.0.0.1"}}, clock)
        assert answer["infcode"] == 0, answer
        self.sign_no = answer["output"]["signinoutb"]["sign_no"]

    async def visit(self, psn_no: str, cert_type: str, cert_no: str, clock: datetime.datetime,
                    line: tuple[str, str, str] = ("T-SVC-0002", "30.00", "1")) -> tuple[str, dict[str, Any]]:
        """Register, upload one line and settle; return the visit id and the 2207 response (or the first failure)."""
        moment = f"{clock:%Y-%m-%d %H:%M:%S}"
        answer = await self.national("2201", register_node(psn_no, cert_type, cert_no, moment, f"{clock:%H%M%S}"), clock)
        if answer["infcode"] != 0:
            return "", answer
        mdtrt_id = answer["output"]["data"]["mdtrt_id"]
        batch = f"B{clock:%m%d%H%M%S}"
        answer = await self.national("2204", upload_node(psn_no, mdtrt_id, batch, moment, line), clock)
        assert answer["infcode"] == 0, answer
        return mdtrt_id, await self.national("2207", settle_node(psn_no, cert_type, cert_no, mdtrt_id, batch, line[1]), clock)

    async def activated_card(self, card_no: str, application_no: str, psn_no: str = "SVC-0001") -> None:
        await self.ok("/api/card/apply", card_fields(card_no, application_no, psn_no))
        for step in ("start-production", "finish-production", "issue", "activate"):
            await self.ok(f"/api/card/{step}", {"card_no": card_no})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- national-interface outpatient visit, for the settlement tests -------------------------------

# One class-A service line of the bundled sample catalogue.
VISIT_LINE = ("T-SVC-0002", "30.00", "1")


def register_node(psn_no: str, cert_type: str, cert_no: str, moment: str, serial: str) -> dict[str, Any]:
    return {"data": {
        "psn_no": psn_no, "insutype": "310", "begntime": moment, "mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no,
        "ipt_otp_no": f"OTP{serial}", "atddr_no": "D01", "dr_name": "测试医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03",
    }}


def upload_node(psn_no: str, mdtrt_id: str, batch: str, moment: str, line: tuple[str, str, str] = VISIT_LINE) -> dict[str, Any]:
    code, price, quantity = line
    return {"feedetail": [{
        "feedetl_sn": f"{batch}-001", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": batch, "rx_circ_flag": "0",
        "fee_ocur_time": moment, "med_list_codg": code, "medins_list_codg": code, "pric": price, "cnt": quantity,
        "det_item_fee_sumamt": price, "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D01", "bilg_dr_name": "测试医生",
    }]}


def settle_node(psn_no: str, cert_type: str, cert_no: str, mdtrt_id: str, batch: str, total: str = VISIT_LINE[1]) -> dict[str, Any]:
    return {"data": {
        "psn_no": psn_no, "mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no, "med_type": "11", "medfee_sumamt": total,
        "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "insutype": "310", "acct_used_flag": "0",
    }}
