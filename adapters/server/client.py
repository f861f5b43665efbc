"""A small signed client of the national interface, for the demo, the tests and the benchmark.

It builds the envelope the way an HIS does, signs the body with the institution's secret
(``x-tif-*`` headers) and decodes the response with exact decimals.
"""

from __future__ import annotations

import datetime
import http.client
import itertools
import secrets
import time
from typing import Any

import msgspec

from settlement import signing
from settlement.money import decode_json

__all__ = ["Client", "build_envelope"]

_ENCODER = msgspec.json.Encoder(decimal_format="number")


def build_envelope(infno: str, input_node: Any, *, msgid: str, fixmedins_code: str, fixmedins_name: str, sign_no: str = "",
                   admdvs: str = "110000", now: datetime.datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.datetime.now()
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": admdvs,
        "insuplc_admdvs": admdvs,
        "recer_sys_code": "YBXT",
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": "V1.0",
        "opter_type": "1",
        "opter": "DEMO001",
        "opter_name": "测试经办员",
        "inf_time": f"{moment:%Y-%m-%d %H:%M:%S}",
        "fixmedins_code": fixmedins_code,
        "fixmedins_name": fixmedins_name,
        "sign_no": sign_no,
        "input": input_node,
    }


class Client:
    """Sends signed requests to one server over one keep-alive connection (not thread-safe)."""

    def __init__(self, host: str, port: int, *, fixmedins_code: str, secret: str, fixmedins_name: str = "",
                 algorithm: str = "HMAC-SHA256", admdvs: str = "110000", path: str = "/fsi/api/callService", timeout: float = 30.0) -> None:
        self.fixmedins_code = fixmedins_code
        self.fixmedins_name = fixmedins_name or fixmedins_code
        self.admdvs = admdvs
        self.path = path
        self.sign_no = ""
        self._secret = secret.encode("utf-8")
        self._algorithm = algorithm
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)
        # A random first serial, so that two clients of one institution started in the same
        # second (two demo runs, say) are unlikely to build the same msgid.
        self._serial = itertools.count(secrets.randbelow(10000))

    def new_msgid(self) -> str:
        # fixmedins_code (12) + yyyyMMddHHmmss (14) + 4-digit sequence, as HIS systems build it.
        return f"{self.fixmedins_code[:12]}{datetime.datetime.now():%Y%m%d%H%M%S}{next(self._serial) % 10000:04d}"

    def post_raw(self, body: bytes, *, headers: dict[str, str] | None = None, sign: bool = True, path: str | None = None) -> tuple[int, Any]:
        """Send ``body`` as is (signed unless ``sign`` is False) and return the HTTP status and decoded response."""
        all_headers = {"content-type": "application/json;charset=UTF-8"}
        if sign:
            all_headers.update(
                signing.signed_headers(self.fixmedins_code, self._secret, body, int(time.time()), secrets.token_hex(16), self._algorithm)
            )
        all_headers.update(headers or {})
        self._conn.request("POST", path or self.path, body=body, headers=all_headers)
        response = self._conn.getresponse()
        data = response.read()
        return response.status, decode_json(data)

    def call(self, infno: str, input_node: Any, *, msgid: str | None = None, headers: dict[str, str] | None = None,
             sign_no: str | None = None) -> dict[str, Any]:
        """Send one transaction and return the decoded response envelope."""
        envelope = build_envelope(
            infno, input_node, msgid=msgid or self.new_msgid(), fixmedins_code=self.fixmedins_code,
            fixmedins_name=self.fixmedins_name, sign_no=self.sign_no if sign_no is None else sign_no, admdvs=self.admdvs,
        )
        _, answer = self.post_raw(_ENCODER.encode(envelope), headers=headers)
        return answer

    def sign_in(self, opter_no: str = "DEMO001") -> str:
        answer = self.call("9001", {"signIn": {"opter_no": opter_no, "mac": "00-00-00-00-00-00", "ip": "127.0.0.1"}})
        if answer.get("infcode") != 0:
            raise RuntimeError(f"sign-in failed: {answer.get('err_msg')}")
        self.sign_no = answer["output"]["signinoutb"]["sign_no"]
        return self.sign_no

    def close(self) -> None:
        self._conn.close()
