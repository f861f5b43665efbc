"""The PostgreSQL batcher of 2207s: one group shares its statements, and every request keeps its own outcome.

The batcher runs here on a real PostgreSQL schema with the server's tables. Its claim and
ledger steps are small stand-ins, so that one group can hold every kind of outcome at once.
The kinds are a settlement, a reused nonce, a stored msgid, a missing sign-in, a coded claim
error, a ledger error and a twin of a settled msgid.
"""

import asyncio
import datetime
import types

import asyncpg
import pytest

from adapters.ledger import migrate_ledger
from adapters.server import state
from adapters.server.admission import Admission, Rejection
from adapters.server.settle_batch import SettleBatcher
from adapters.server.sqldb import open_database
from settlement.errors import ErrorCode, SettlementError
from tests.server_harness import ledger_dsn

CODE = "H11010800001"
NOW = datetime.datetime(2024, 5, 20, 10, 0, 0)
SIGNED_AT = 1_716_170_400


@pytest.fixture
def dsn(tmp_path):
    with ledger_dsn("postgres", tmp_path) as name:
        asyncio.run(migrate_ledger(name))
        yield name


def _request(msgid: str, nonce: str, mdtrt_id: str, *, sign_no: str = "S1"):
    call = types.SimpleNamespace(code=CODE, msgid=msgid, infno="2207", digest=f"digest-{msgid}", stamp="2024-05-20 10:00:00", now=NOW)
    req = types.SimpleNamespace(mdtrt_id=mdtrt_id, chrg_bchno="B1", psn_no="P1", cert_type="02", cert_no="110101199001010011")
    admission = Admission(fixmedins_code=CODE, nonce=nonce, signed_at=SIGNED_AT, keep_seconds=600, msgid=msgid, sign_no=sign_no)
    return call, req, admission


async def _prepare(db) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO srv_sign_in (sign_no, fixmedins_code, opter_no, sign_time) VALUES ('S1', $1, 'B1', '2024-05-20 08:00:00')", CODE)
        await state.record_message(conn, CODE, "M-STORED", "2207", "digest-M-STORED", b'{"stored":1}', "2024-05-20 09:00:00")


def _per_request(finish_one):
    """Turn a stand-in that settles one claim into the batcher's group step, keeping coded errors per request."""

    async def finish(conn, claimed):
        results = []
        for call, req, claim in claimed:
            try:
                results.append(await finish_one(call, req, claim))
            except SettlementError as error:
                results.append(error)
        return results

    return finish


def _fields(message: state.StoredMessage) -> tuple[str, str, str]:
    return message.infno, message.digest, message.output


async def _rows(db, sql: str) -> list[tuple]:
    async with db.transaction() as conn:
        return [tuple(row) for row in await conn.fetch(sql)]


def test_batcher_keeps_every_outcome_of_one_group(dsn):
    finished = []

    async def read_claim(call, req, conn, read):
        visit, lines, person = read
        if req.mdtrt_id == "V-UNKNOWN":
            raise SettlementError(ErrorCode.UNKNOWN_VISIT, field="input.data.mdtrt_id", value=req.mdtrt_id)
        return (visit, lines, person)

    async def finish(call, req, claim):
        finished.append(call.msgid)
        if call.msgid == "M-LEDGER":
            raise SettlementError(ErrorCode.LEDGER_FAILED, detail="stand-in")
        return f'{{"settled":"{call.msgid}"}}'.encode()

    async def run():
        db = await open_database(dsn)
        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, _per_request(finish), lanes=1)
            requests = [
                _request("M-OK", "n-ok", "V1"),
                _request("M-REPLAY", "n-ok", "V1"),  # the nonce of the first request again
                _request("M-STORED", "n-stored", "V2"),
                _request("M-NOSIGN", "n-nosign", "V3", sign_no="S-GONE"),
                _request("M-UNKNOWN", "n-unknown", "V-UNKNOWN"),
                _request("M-LEDGER", "n-ledger", "V4"),
                _request("M-OK", "n-twin", "V1"),  # a retry of the first message under a new nonce
            ]
            outcomes = await asyncio.gather(*(batcher.settle(*r) for r in requests), return_exceptions=True)
            nonces = await _rows(db, "SELECT nonce FROM srv_nonce ORDER BY nonce")
            messages = await _rows(db, "SELECT msgid, output FROM srv_message ORDER BY msgid")
            return batcher.groups_run, outcomes, nonces, messages
        finally:
            await db.close()

    groups, outcomes, nonces, messages = asyncio.run(run())

    assert groups == 1
    ok, replay, stored, nosign, unknown, ledger, twin = outcomes
    assert ok == b'{"settled":"M-OK"}'
    assert isinstance(replay, Rejection) and replay.error.code is ErrorCode.NONCE_REUSED
    assert _fields(stored) == ("2207", "digest-M-STORED", '{"stored":1}')
    assert isinstance(nosign, SettlementError) and nosign.code is ErrorCode.SIGN_IN_REQUIRED
    assert isinstance(unknown, SettlementError) and unknown.code is ErrorCode.UNKNOWN_VISIT
    assert isinstance(ledger, SettlementError) and ledger.code is ErrorCode.LEDGER_FAILED
    # The twin settled too (the real ledger returns the same record), and its output is the one recorded first.
    assert _fields(twin) == ("2207", "digest-M-OK", '{"settled":"M-OK"}')

    assert finished == ["M-OK", "M-LEDGER", "M-OK"]
    assert nonces == [("n-ledger",), ("n-nosign",), ("n-ok",), ("n-stored",), ("n-twin",), ("n-unknown",)]
    assert messages == [("M-OK", '{"settled":"M-OK"}'), ("M-STORED", '{"stored":1}')]


def test_batcher_isolates_claim_database_error(dsn):
    finished = []

    async def read_claim(call, req, conn, read):
        if req.mdtrt_id == "V-BROKEN":
            await conn.fetch("SELECT no_such_column FROM srv_visit")
        return read

    async def finish(call, req, claim):
        finished.append(call.msgid)
        return b"{}"

    async def run():
        db = await open_database(dsn)
        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, _per_request(finish), lanes=1)
            requests = [_request("M-A", "n-a", "V1"), _request("M-B", "n-b", "V-BROKEN"), _request("M-C", "n-c", "V3")]
            outcomes = await asyncio.gather(*(batcher.settle(*r) for r in requests), return_exceptions=True)
            nonces = await _rows(db, "SELECT nonce FROM srv_nonce ORDER BY nonce")
            return outcomes, nonces, [r[2].passed for r in requests]
        finally:
            await db.close()

    outcomes, nonces, passed = asyncio.run(run())

    # The error aborted the group's transaction before the ledger step, so the group rolled
    # back and its requests ran alone. Only the broken one fails.
    assert outcomes[0] == b"{}"
    assert isinstance(outcomes[1], asyncpg.UndefinedColumnError)
    assert outcomes[2] == b"{}"
    assert finished == ["M-A", "M-C"]
    # The broken request's nonce rolled back with its run; its caller stores it, as after any failure.
    assert nonces == [("n-a",), ("n-c",)]
    assert passed == [True, True, True]


def test_database_error_reruns_requests_alone(dsn):
    attempts = []

    async def read_claim(call, req, conn, read):
        return read

    async def finish(conn, claimed):
        attempts.append([call.msgid for call, _, _ in claimed])
        # A write inside the group, as the ledger's rows are, then a database error in the first attempt only.
        await conn.execute("INSERT INTO srv_sign_in (sign_no, fixmedins_code, opter_no, sign_time) VALUES ($1, $2, 'B1', 'x')", f"S-{len(attempts)}", CODE)
        if len(attempts) == 1:
            await conn.fetch("SELECT 1 / 0")
        return [call.msgid.encode() for call, _, _ in claimed]

    async def run():
        db = await open_database(dsn)
        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, finish, lanes=1)
            requests = [_request("M-A", "n-a", "V1"), _request("M-B", "n-b", "V2"), _request("M-B2", "n-a", "V3")]
            outcomes = await asyncio.gather(*(batcher.settle(*r) for r in requests), return_exceptions=True)
            nonces = await _rows(db, "SELECT nonce FROM srv_nonce ORDER BY nonce")
            sign_ins = await _rows(db, "SELECT sign_no FROM srv_sign_in ORDER BY sign_no")
            messages = await _rows(db, "SELECT msgid FROM srv_message ORDER BY msgid")
            return batcher.groups_run, outcomes, nonces, sign_ins, messages
        finally:
            await db.close()

    groups, outcomes, nonces, sign_ins, messages = asyncio.run(run())

    # The group ran, then each request alone. The one with a reused nonce stops at its admission.
    assert groups == 4
    assert attempts == [["M-A", "M-B"], ["M-A"], ["M-B"]]
    assert outcomes[:2] == [b"M-A", b"M-B"]
    assert isinstance(outcomes[2], Rejection) and outcomes[2].error.code is ErrorCode.NONCE_REUSED
    # The group's writes rolled back; each request's own run committed once.
    assert nonces == [("n-a",), ("n-b",)]
    assert sign_ins == [("S-2",), ("S-3",), ("S1",)]
    assert messages == [("M-A",), ("M-B",), ("M-STORED",)]


def test_repeated_database_errors_fail_each_request(dsn):
    async def read_claim(call, req, conn, read):
        return read

    async def finish(conn, claimed):
        await conn.fetch("SELECT 1 / 0")

    async def run():
        db = await open_database(dsn)
        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, finish, lanes=1)
            requests = [_request("M-A", "n-a", "V1"), _request("M-B", "n-b", "V2")]
            outcomes = await asyncio.gather(*(batcher.settle(*r) for r in requests), return_exceptions=True)
            nonces = await _rows(db, "SELECT nonce FROM srv_nonce")
            return batcher.groups_run, outcomes, nonces
        finally:
            await db.close()

    groups, outcomes, nonces = asyncio.run(run())

    assert groups == 3
    assert all(isinstance(outcome, asyncpg.DivisionByZeroError) for outcome in outcomes), outcomes
    assert nonces == []


def test_batcher_forms_next_group_while_one_waits(dsn):
    gate = asyncio.Event

    async def run():
        db = await open_database(dsn)
        release = gate()
        first_started = gate()

        async def read_claim(call, req, conn, read):
            return read

        async def finish(call, req, claim):
            if call.msgid == "M-0":
                first_started.set()
                await release.wait()
            return call.msgid.encode()

        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, _per_request(finish), lanes=1)
            first = asyncio.ensure_future(batcher.settle(*_request("M-0", "n-0", "V0")))
            await first_started.wait()
            # These arrive while the first group waits for its ledger step, and form the next group.
            later = [asyncio.ensure_future(batcher.settle(*_request(f"M-{n}", f"n-{n}", f"V{n}"))) for n in range(1, 6)]
            await asyncio.sleep(0)
            release.set()
            outcomes = await asyncio.gather(first, *later)
            return batcher.groups_run, outcomes
        finally:
            await db.close()

    groups, outcomes = asyncio.run(run())

    assert groups == 2
    assert outcomes == [f"M-{n}".encode() for n in range(6)]


def test_group_and_ledger_batch_statements_plan_once(dsn):
    # Their array parameters would otherwise make PostgreSQL plan them again at every run.
    async def run():
        db = await open_database(dsn)
        try:
            async with db.group_transaction() as conn:
                mode = await conn.fetchval("SHOW plan_cache_mode")
                configs = await conn.fetch(
                    "SELECT proname, proconfig FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
                    " AND proname IN ('ledger_batch_read', 'ledger_batch_write_rows', 'journal_check_balanced_set') ORDER BY proname"
                )
            async with db.transaction() as conn:
                ordinary = await conn.fetchval("SHOW plan_cache_mode")
            return mode, ordinary, [(row[0], row[1]) for row in configs]
        finally:
            await db.close()

    mode, ordinary, configs = asyncio.run(run())

    assert (mode, ordinary) == ("force_generic_plan", "auto")
    assert [name for name, _ in configs] == ["journal_check_balanced_set", "ledger_batch_read", "ledger_batch_write_rows"]
    assert all("plan_cache_mode=force_generic_plan" in config for _, config in configs)


@pytest.mark.parametrize(("arriving", "second_lane"), [(3, False), (4, True)])
def test_second_lane_opens_only_for_backlog(dsn, arriving, second_lane):
    async def run():
        db = await open_database(dsn)
        release = asyncio.Event()
        first_started = asyncio.Event()
        in_flight = 0
        max_in_flight = 0

        async def read_claim(call, req, conn, read):
            return read

        async def finish(conn, claimed):
            nonlocal in_flight, max_in_flight
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
            if claimed[0][0].msgid == "M-0":
                first_started.set()
                await release.wait()
            else:
                # A second lane runs this group while the first is still open, then releases the first.
                release.set()
            in_flight -= 1
            return [call.msgid.encode() for call, _, _ in claimed]

        try:
            await _prepare(db)
            batcher = SettleBatcher(db, read_claim, finish, lanes=2, extra_lane_backlog=4)
            first = asyncio.ensure_future(batcher.settle(*_request("M-0", "n-0", "V0")))
            await first_started.wait()
            later = [asyncio.ensure_future(batcher.settle(*_request(f"M-{n}", f"n-{n}", f"V{n}"))) for n in range(1, arriving + 1)]
            if not second_lane:
                # No second lane takes the waiting requests, so the first group is released here.
                await asyncio.sleep(0.05)
                release.set()
            outcomes = await asyncio.wait_for(asyncio.gather(first, *later), timeout=30)
            return batcher.groups_run, max_in_flight, outcomes
        finally:
            await db.close()

    groups, max_in_flight, outcomes = asyncio.run(run())

    assert groups == 2
    assert max_in_flight == (2 if second_lane else 1)
    assert outcomes == [f"M-{n}".encode() for n in range(arriving + 1)]
