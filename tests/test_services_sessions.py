"""Cardholder sessions are stored in the database, so every server process on it accepts them.

Two independent applications share one ledger, each with its own connections as two worker
processes have. A session opened on the page of one is accepted by the other.
"""

import hashlib
import json
import time
import urllib.parse

import pytest

from tests.server_harness import ledger_dsn
from tests.services_support import ServicesHarness, run


@pytest.fixture(params=["sqlite", "postgres"])
def dsn(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as value:
        yield value


async def _open_session(harness):
    """Sign in as cardholder SVC-0001 on the page and return the session cookie value."""
    code = (await harness.ok("/api/card/verification-code", {"psn_no": "SVC-0001"}))["code"]
    form = urllib.parse.urlencode({"number": "990000196005050011", "code": code}).encode()
    status, headers, _ = await harness.request("POST", "/self-service", form, {"content-type": "application/x-www-form-urlencoded"})
    assert status == 200
    name, _, rest = headers["set-cookie"].partition("=")
    assert name == "ss_session"
    return rest.split(";", 1)[0]


async def _summary(harness, session_id):
    status, _, body = await harness.request("GET", "/api/self/summary", b"", {"cookie": f"ss_session={session_id}"})
    return status, json.loads(body)


def test_session_shared_between_servers(dsn, tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()

    async def scenario():
        async with ServicesHarness(dsn, first_dir) as first, ServicesHarness(dsn, second_dir) as second:
            session_id = await _open_session(first)

            status, answer = await _summary(second, session_id)
            assert status == 200, answer
            assert answer["data"]["psn_no"] == "SVC-0001"

            status, answer = await _summary(second, session_id + "x")
            assert status == 401, answer

            async with second.services.db.transaction() as conn:
                stored = await conn.fetch("SELECT session_hash FROM svc_session")
                assert [row["session_hash"] for row in stored] == [hashlib.sha256(session_id.encode()).hexdigest()]
                await conn.execute("UPDATE svc_session SET expires_at = $1", int(time.time()) - 1)
            status, answer = await _summary(first, session_id)
            assert status == 401, answer

    run(scenario())
