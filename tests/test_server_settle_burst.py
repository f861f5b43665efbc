"""A burst of concurrent 2207s on PostgreSQL, admitted by the server in groups, settles each batch once.

Twelve visits of three persons are settled at once, each request on its own connection,
together with retries of three messages under new nonces and three claims whose total
disagrees with the stored lines. Every request must get its own response, and the ledger must hold exactly one
settlement per visit and pass ``ledger verify``.
"""

import subprocess
import sys
import threading

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import CLOCK, PERSONS, register, settle_data

NUMBERS = (5, 18, 30)
VISITS_EACH = 4


@pytest.fixture
def served(tmp_path):
    with ledger_dsn("postgres", tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        yield dsn, port


def _client(port: int, sign_no: str, tag: str) -> Client:
    c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
    c.sign_no = sign_no
    serial = iter(range(1, 10_000))
    c.new_msgid = lambda: f"{HOSPITAL['fixmedins_code']}{tag}{next(serial):06d}"
    return c


def _uploaded_visits(c: Client) -> list[tuple[str, int]]:
    visits = []
    for number in NUMBERS:
        for _ in range(VISITS_EACH):
            mdtrt_id = register(c, number)
            line = {"feedetl_sn": "L1", "mdtrt_id": mdtrt_id, "psn_no": f"PSN-TEST-{number:04d}", "chrg_bchno": "B1",
                    "fee_ocur_time": "2024-05-20 09:10:00", "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002",
                    "pric": "30.00", "cnt": 1, "det_item_fee_sumamt": "30.00"}
            assert c.call("2204", {"feedetail": [line]}, headers=CLOCK)["infcode"] == 0
            visits.append((mdtrt_id, number))
    return visits


def _all_at_once(calls: list) -> list:
    """Run every call on its own thread, released together; return the responses in order."""
    answers = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_burst_settles_each_batch_once(served):
    dsn, port = served
    setup = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
    try:
        sign_no = setup.sign_in()
        visits = _uploaded_visits(setup)
    finally:
        setup.close()

    # Each call has its own connection; a retry sends a settled message again under a new nonce.
    retried = [0, 5, 10]
    mismatched = [1, 6, 11]
    clients = [_client(port, sign_no, f"C{index:02d}") for index in range(len(visits) + len(retried) + len(mismatched))]
    try:
        msgids = [clients[index].new_msgid() for index in range(len(visits))]
        calls = [
            (lambda c=clients[index], m=msgids[index], v=visit:
             c.call("2207", settle_data(v[0], v[1], "30.00", acct="0"), msgid=m, headers=CLOCK))
            for index, visit in enumerate(visits)
        ]
        calls += [
            (lambda c=clients[len(visits) + n], m=msgids[index], v=visits[index]:
             c.call("2207", settle_data(v[0], v[1], "30.00", acct="0"), msgid=m, headers=CLOCK))
            for n, index in enumerate(retried)
        ]
        calls += [
            (lambda c=clients[len(visits) + len(retried) + n], v=visits[index]:
             c.call("2207", settle_data(v[0], v[1], "30.01", acct="0"), headers=CLOCK))
            for n, index in enumerate(mismatched)
        ]
        answers = _all_at_once(calls)
    finally:
        for c in clients:
            c.close()

    settled, again, mismatches = answers[:len(visits)], answers[len(visits):len(visits) + len(retried)], answers[len(visits) + len(retried):]
    assert [answer["infcode"] for answer in settled] == [0] * len(visits), [answer.get("err_msg") for answer in settled]
    for index, answer in zip(retried, again, strict=True):
        assert answer["infcode"] == 0, answer.get("err_msg")
        assert answer["output"] == settled[index]["output"]
    assert [answer["err_code"] for answer in mismatches] == [6013, 6013, 6013]

    inspector = LedgerInspector(dsn)
    live = inspector.query(
        "SELECT s.mdtrt_id FROM ledger_settlements s WHERE s.kind = 'settle'"
        " AND NOT EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id) ORDER BY s.mdtrt_id"
    )
    assert [row[0] for row in live] == sorted(mdtrt_id for mdtrt_id, _ in visits)
    setl_ids = {answer["output"]["setlinfo"]["setl_id"] for answer in settled}
    assert len(setl_ids) == len(visits)

    verify = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "ledger", "verify", "--ledger", dsn, "--lang", "en"],
        capture_output=True, text=True, timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
