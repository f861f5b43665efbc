"""Two server processes on one ledger: steps of the same visit never interleave, whichever process serves them."""

import threading

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import CLOCK, PERSONS, register, settle_data

ROUNDS = 6


@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request, tmp_path):
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    with ledger_dsn(request.param, tmp_path) as dsn:
        with running_server(first_dir, dsn, PERSONS) as first, running_server(second_dir, dsn, PERSONS) as second:
            yield dsn, first, second


def _client(port, tag):
    c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
    # Both clients sign as the same institution, so their message ids must differ by more than the clock.
    serial = iter(range(1, 10_000))
    c.new_msgid = lambda: f"{HOSPITAL['fixmedins_code']}{tag}{next(serial):08d}"
    c.sign_in()
    return c


def _line(mdtrt_id, sn):
    return {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0030", "chrg_bchno": "B1", "fee_ocur_time": "2024-05-20 09:10:00",
            "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": "30.00", "cnt": 1, "det_item_fee_sumamt": "30.00"}


def _race(first_call, second_call):
    """Start two calls together and return both responses."""
    answers = [None, None]
    barrier = threading.Barrier(2)

    def run(index, call):
        barrier.wait()
        answers[index] = call()

    threads = [threading.Thread(target=run, args=(0, first_call)), threading.Thread(target=run, args=(1, second_call))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def _live_settlements(inspector, mdtrt_id):
    return inspector.query(
        "SELECT s.setl_id FROM ledger_settlements s WHERE s.mdtrt_id = $1 AND s.kind = 'settle'"
        " AND NOT EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id)",
        mdtrt_id,
    )


def _live_lines(inspector, mdtrt_id):
    return inspector.query("SELECT feedetl_sn FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL", mdtrt_id)


def test_settle_and_withdraw_race_leaves_one_outcome(two_servers):
    dsn, first_port, second_port = two_servers
    inspector = LedgerInspector(dsn)
    first, second = _client(first_port, "A"), _client(second_port, "B")
    try:
        for _ in range(ROUNDS):
            mdtrt_id = register(first, 30)
            assert first.call("2204", {"feedetail": [_line(mdtrt_id, "L1")]}, headers=CLOCK)["infcode"] == 0

            settled, withdrawn = _race(
                lambda: first.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK),
                lambda: second.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "psn_no": "PSN-TEST-0030"}}, headers=CLOCK),
            )

            assert (settled["infcode"], withdrawn["infcode"]) in ((0, -1), (-1, 0)), (settled, withdrawn)
            if settled["infcode"] == 0:
                assert withdrawn["err_code"] == 6017
                assert len(_live_settlements(inspector, mdtrt_id)) == 1
                assert len(_live_lines(inspector, mdtrt_id)) == 1
            else:
                assert len(_live_settlements(inspector, mdtrt_id)) == 0
                assert len(_live_lines(inspector, mdtrt_id)) == 0
    finally:
        first.close()
        second.close()


def test_two_new_messages_settle_batch_once(two_servers):
    dsn, first_port, second_port = two_servers
    inspector = LedgerInspector(dsn)
    first, second = _client(first_port, "A"), _client(second_port, "B")
    try:
        for _ in range(ROUNDS):
            mdtrt_id = register(first, 30)
            assert first.call("2204", {"feedetail": [_line(mdtrt_id, "L1")]}, headers=CLOCK)["infcode"] == 0

            answers = _race(
                lambda: first.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK),
                lambda: second.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK),
            )

            codes = sorted(answer["infcode"] for answer in answers)
            assert codes == [-1, 0], answers
            refused = next(answer for answer in answers if answer["infcode"] == -1)
            assert refused["err_code"] == 6014
            assert len(_live_settlements(inspector, mdtrt_id)) == 1
    finally:
        first.close()
        second.close()
