"""A 2207 runs its nonce, sign-in and msgid checks inside its own transaction, and replay protection must hold as before."""

import decimal
import time

import msgspec
import pytest

from adapters.server.client import Client, build_envelope
from settlement import signing
from tests.server_harness import HOSPITAL, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import CLOCK, PERSONS, register, settle_data


@pytest.fixture(params=["sqlite", "postgres"])
def served(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        yield dsn, port


def _signed(c, infno, node, nonce, msgid=None):
    """Return a request body and its headers signed with a chosen nonce, to send it more than once."""
    envelope = build_envelope(
        infno, node, msgid=msgid or c.new_msgid(), fixmedins_code=c.fixmedins_code, fixmedins_name=c.fixmedins_name, sign_no=c.sign_no,
    )
    body = msgspec.json.encode(envelope)
    headers = signing.signed_headers(HOSPITAL["fixmedins_code"], HOSPITAL["secret"].encode(), body, int(time.time()), nonce)
    return body, {**headers, **CLOCK}


def _uploaded_visit(c, number: int, pric: str, cnt: int) -> str:
    """Sign in, register person ``number`` and upload one service line of ``pric`` times ``cnt``; return the visit id."""
    c.sign_in()
    mdtrt_id = register(c, number)
    amount = str(decimal.Decimal(pric) * cnt)
    line = {"feedetl_sn": "L1", "mdtrt_id": mdtrt_id, "psn_no": f"PSN-TEST-{number:04d}", "chrg_bchno": "B1",
            "fee_ocur_time": "2024-05-20 09:10:00", "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": pric,
            "cnt": cnt, "det_item_fee_sumamt": amount}
    assert c.call("2204", {"feedetail": [line]}, headers=CLOCK)["infcode"] == 0
    return mdtrt_id


def test_settle_nonce_and_replay(served):
    dsn, port = served
    c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
    try:
        mdtrt_id = _uploaded_visit(c, 30, "30.00", 1)

        # A settlement rejected by its handler keeps its nonce, so the same signed request is rejected as a replay.
        body, headers = _signed(c, "2207", settle_data(mdtrt_id, 30, "30.01", acct="0"), "h11-nonce-rejected")
        status, first = c.post_raw(body, headers=headers, sign=False)
        assert first["err_code"] == 6013
        status, again = c.post_raw(body, headers=headers, sign=False)
        assert (status, again["err_code"]) == (401, 6003)

        # An accepted settlement keeps its nonce too.
        msgid = c.new_msgid()
        body, headers = _signed(c, "2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), "h11-nonce-settled", msgid)
        status, settled = c.post_raw(body, headers=headers, sign=False)
        assert settled["infcode"] == 0, settled["err_msg"]
        status, again = c.post_raw(body, headers=headers, sign=False)
        assert (status, again["err_code"]) == (401, 6003)

        # The same message under a new nonce is a retry and gets the stored output back.
        body, headers = _signed(c, "2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), "h11-nonce-retry", msgid)
        status, retried = c.post_raw(body, headers=headers, sign=False)
        assert retried["infcode"] == 0, retried["err_msg"]
        assert retried["output"] == settled["output"]

        # A new message for the settled batch is a second attempt, not a retry.
        second = c.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK)
        assert second["err_code"] == 6014

        # Without a live sign-in the settlement is rejected before anything is written.
        unsigned = c.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK, sign_no="")
        assert unsigned["err_code"] == 6006
    finally:
        c.close()

    inspector = LedgerInspector(dsn)
    settlements = inspector.query("SELECT setl_id FROM ledger_settlements WHERE mdtrt_id = $1 AND kind = 'settle'", mdtrt_id)
    assert len(settlements) == 1
    messages = inspector.query("SELECT msgid FROM srv_message WHERE msgid = $1", msgid)
    assert len(messages) == 1


def test_lost_output_rebuilt_from_ledger(served):
    """On PostgreSQL a settlement's nonce and stored output commit without waiting for the disk; losing them must be harmless."""
    dsn, port = served
    c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
    try:
        mdtrt_id = _uploaded_visit(c, 18, "45.00", 2)
        msgid = c.new_msgid()
        body, headers = _signed(c, "2207", settle_data(mdtrt_id, 18, "90.00", acct="0"), "h11-lost-first", msgid)
        _, settled = c.post_raw(body, headers=headers, sign=False)
        assert settled["infcode"] == 0, settled["err_msg"]

        # What a crash of the database could lose: the output stored under the msgid, and the nonce.
        inspector = LedgerInspector(dsn)
        inspector.execute("DELETE FROM srv_message WHERE msgid = $1", msgid)
        inspector.execute("DELETE FROM srv_nonce WHERE nonce = $1", "h11-lost-first")
        journal_before = inspector.query("SELECT count(*) FROM journal_transactions")

        # The same signed request again: the ledger finds the settlement and the output is the same.
        _, retried = c.post_raw(body, headers=headers, sign=False)
        assert retried["infcode"] == 0, retried["err_msg"]
        assert retried["output"] == settled["output"]
        assert inspector.query("SELECT count(*) FROM journal_transactions") == journal_before
        assert len(inspector.query("SELECT setl_id FROM ledger_settlements WHERE mdtrt_id = $1", mdtrt_id)) == 1
        assert len(inspector.query("SELECT msgid FROM srv_message WHERE msgid = $1", msgid)) == 1
    finally:
        c.close()
