"""A new visit id that is already taken is drawn again instead of failing the registration."""

import asyncio
import itertools

import pytest

from adapters.server import state
from adapters.server.sqldb import open_database
from tests.server_harness import HOSPITAL, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import PERSONS


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as dsn:
        # Starting the server once migrates the ledger and loads the persons.
        with running_server(tmp_path, dsn, PERSONS):
            pass
        yield dsn


def _visit(conn, draw):
    return state.insert_new_visit(
        conn, draw, fixmedins_code=HOSPITAL["fixmedins_code"], psn_no="PSN-TEST-0005", insutype="310", med_type="11",
        begntime="2024-05-20 09:00:00", mdtrt_cert_type="03", ipt_otp_no="OTP5", dise_codg=None, detail={}, registered_by="test",
    )


def test_taken_visit_id_redrawn(migrated):
    # The first two draws give an id already in use; the third is free.
    draws = itertools.chain(["M2024052009000012345678"] * 2, ["M2024052009000087654321"])

    async def run():
        db = await open_database(migrated)
        try:
            async with db.transaction() as conn:
                first = await _visit(conn, lambda: "M2024052009000012345678")
            async with db.transaction() as conn:
                second = await _visit(conn, lambda: next(draws))
            return first, second
        finally:
            await db.close()

    first, second = asyncio.run(run())

    assert (first, second) == ("M2024052009000012345678", "M2024052009000087654321")
    rows = LedgerInspector(migrated).query("SELECT mdtrt_id, registered_by FROM srv_visit ORDER BY mdtrt_id")
    assert rows == [(first, "test"), (second, "test")]


def test_visit_id_draws_bounded(migrated):
    async def run():
        db = await open_database(migrated)
        try:
            async with db.transaction() as conn:
                await _visit(conn, lambda: "M2024052009000011111111")
            with pytest.raises(RuntimeError, match="no free visit id"):
                async with db.transaction() as conn:
                    await _visit(conn, lambda: "M2024052009000011111111")
        finally:
            await db.close()

    asyncio.run(run())
    assert len(LedgerInspector(migrated).query("SELECT mdtrt_id FROM srv_visit")) == 1
