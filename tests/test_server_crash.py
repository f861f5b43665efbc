"""Crash safety of ``settlement serve --workers 2`` on PostgreSQL.

The server's parent and worker processes are killed with SIGKILL in the middle of a burst
of 2207 settlements. After a restart on the same ledger, every settlement answered with
success is in the ledger exactly once, none answered with failure is, none unanswered is
there twice, ``ledger verify`` passes, and a retried unanswered message settles once.
"""

import concurrent.futures
import http.client
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, REPO, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import CLOCK, person, register, settle_data

pytestmark = pytest.mark.postgres

PERSON_NUMBERS = range(101, 121)
VISITS_PER_PERSON = 10
THREADS = 20
# The processes are killed once this many settlements have been answered, or when KILL_AFTER_SECONDS have passed.
KILL_AFTER_ANSWERS = 60
KILL_AFTER_SECONDS = 10.0
# No request of the burst is sent after this many seconds.
BURST_SECONDS = 20.0
# One settlement in this many claims a wrong total, so that the burst has failures to check too.
FAILURE_EVERY = 7
# Client timeout, in seconds, for one request.
REQUEST_TIMEOUT = 10.0

PERSONS = [person(number, f"测试崩{number}", "200.00") for number in PERSON_NUMBERS]
# A request cut by the kill fails in the socket (OSError) or in the HTTP response (HTTPException).
CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def _client(port, sign_no=None):
    c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000", timeout=REQUEST_TIMEOUT)
    if sign_no is None:
        c.sign_in()
    else:
        c.sign_no = sign_no
    return c


def _line(mdtrt_id, psn_no):
    return {"feedetl_sn": "L1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "fee_ocur_time": "2024-05-20 09:10:00",
            "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": "30.00", "cnt": 1, "det_item_fee_sumamt": "30.00"}


def _open_visits(c):
    """Register one visit per settlement of the burst, upload its one fee line, and return (number, mdtrt_id) pairs."""
    visits = []
    for _ in range(VISITS_PER_PERSON):
        for number in PERSON_NUMBERS:
            mdtrt_id = register(c, number)
            upload = c.call("2204", {"feedetail": [_line(mdtrt_id, f"PSN-TEST-{number:04d}")]}, headers=CLOCK)
            assert upload["infcode"] == 0, upload["err_msg"]
            visits.append((number, mdtrt_id))
    return visits


def _descendants(pid):
    """Return the ids of every live descendant of ``pid``, read from /proc."""
    parents = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in brackets and may contain spaces. The parent id follows the state.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _is_gone(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _is_resource_tracker(pid):
    try:
        command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing.resource_tracker" in command


def _kill_server(process):
    """SIGKILL the server's parent process, then every worker it had started.

    The multiprocessing resource tracker is left alone: it exits by itself once the others
    are gone, and removes the parent's shared semaphore from /dev/shm on the way.
    """
    descendants = _descendants(process.pid)
    trackers = [pid for pid in descendants if _is_resource_tracker(pid)]
    children = [pid for pid in descendants if pid not in trackers]
    assert children, "the server parent has no worker processes"
    os.kill(process.pid, signal.SIGKILL)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    still_running = _wait_gone(children + trackers)
    assert still_running == [], f"server processes still alive after SIGKILL: {still_running}"


def _wait_gone(pids, seconds=30.0):
    """Wait up to ``seconds`` for the processes to end; return those still running."""
    deadline = time.monotonic() + seconds
    while True:
        running = [pid for pid in pids if not _is_gone(pid)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


class Burst:
    """Send one 2207 per visit from a thread pool and keep each response envelope by msgid (none for an unanswered request)."""

    def __init__(self, port, sign_no, visits):
        self.port = port
        self.sign_no = sign_no
        self.requests = [
            (f"{HOSPITAL['fixmedins_code']}CR{index:06d}", number, mdtrt_id, "30.00" if index % FAILURE_EVERY else "30.01")
            for index, (number, mdtrt_id) in enumerate(visits)
        ]
        self.answers = {}
        self.answered = threading.Semaphore(0)
        self._local = threading.local()
        self._clients = []
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + BURST_SECONDS

    def _send(self, request):
        msgid, number, mdtrt_id, total = request
        if time.monotonic() > self._deadline:
            return
        c = getattr(self._local, "client", None)
        if c is None:
            # Connects on its first request: the sign-in is shared, so nothing is sent here.
            c = self._local.client = _client(self.port, self.sign_no)
            with self._lock:
                self._clients.append(c)
        try:
            answer = c.call("2207", settle_data(mdtrt_id, number, total, acct="1"), msgid=msgid, headers=CLOCK)
        except CONNECTION_ERRORS:
            # The connection is unusable after a cut, so the next request of this thread opens a new one.
            self._local.client = None
            return
        self.answers[msgid] = answer
        self.answered.release()

    def run(self, kill):
        """Run the burst and call ``kill`` once KILL_AFTER_ANSWERS settlements are answered (or the wait times out)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [pool.submit(self._send, request) for request in self.requests]
            wait_until = time.monotonic() + KILL_AFTER_SECONDS
            for _ in range(KILL_AFTER_ANSWERS):
                if not self.answered.acquire(timeout=max(0.0, wait_until - time.monotonic())):
                    break
            kill()
            for future in futures:
                future.result(timeout=BURST_SECONDS + REQUEST_TIMEOUT)
        for c in self._clients:
            c.close()


def _settle_rows(inspector, column, value):
    return inspector.query(f"SELECT setl_id, fixmedins_code, msgid FROM ledger_settlements WHERE kind = 'settle' AND {column} = $1", value)


def test_kill_during_burst_keeps_ledger_exact(tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    with ledger_dsn("postgres", tmp_path) as dsn:
        inspector = LedgerInspector(dsn)
        started = []
        with running_server(first_dir, dsn, PERSONS, workers=2, started=started) as port:
            setup = _client(port)
            visits = _open_visits(setup)
            setup.close()
            burst = Burst(port, setup.sign_no, visits)
            burst.run(lambda: _kill_server(started[0]))

        successes = {msgid: answer for msgid, answer in burst.answers.items() if answer["infcode"] == 0}
        failures = {msgid: answer for msgid, answer in burst.answers.items() if answer["infcode"] != 0}
        unanswered = [msgid for msgid, *_ in burst.requests if msgid not in burst.answers]
        assert successes, "no settlement was answered before the kill"
        assert failures, "no settlement with a wrong total was answered before the kill"
        assert unanswered, "every settlement was answered before the kill"

        with running_server(second_dir, dsn, PERSONS, workers=2) as port:
            for msgid, answer in successes.items():
                setl_id = answer["output"]["setlinfo"]["setl_id"]
                assert _settle_rows(inspector, "setl_id", setl_id) == [(setl_id, HOSPITAL["fixmedins_code"], msgid)], msgid
                assert len(_settle_rows(inspector, "msgid", msgid)) == 1, msgid
            for msgid, answer in burst.answers.items():
                if burst.requests[_index(msgid)][3] != "30.00":
                    assert answer["err_code"] == 6013, answer
            for msgid in failures:
                assert _settle_rows(inspector, "msgid", msgid) == [], msgid
            stored_unanswered = [msgid for msgid in unanswered if _settle_rows(inspector, "msgid", msgid)]
            for msgid in unanswered:
                assert len(_settle_rows(inspector, "msgid", msgid)) <= 1, msgid

            verify = subprocess.run(
                [sys.executable, "-m", "adapters.cli", "ledger", "verify", "--ledger", dsn, "--lang", "en"],
                cwd=REPO, capture_output=True, text=True, timeout=120,
            )
            assert verify.returncode == 0, verify.stdout + verify.stderr

            # Retry up to 10 unanswered messages the ledger stored (their answers were lost) and one it did not store.
            never_stored = [msgid for msgid in unanswered if msgid not in stored_unanswered and burst.requests[_index(msgid)][3] == "30.00"]
            retried = stored_unanswered[:10] + never_stored[:1]
            c = _client(port)
            for msgid in retried:
                _, number, mdtrt_id, total = burst.requests[_index(msgid)]
                answer = c.call("2207", settle_data(mdtrt_id, number, total, acct="1"), msgid=msgid, headers=CLOCK)
                assert answer["infcode"] == 0, answer["err_msg"]
                rows = _settle_rows(inspector, "msgid", msgid)
                assert rows == [(answer["output"]["setlinfo"]["setl_id"], HOSPITAL["fixmedins_code"], msgid)], msgid
            c.close()


def _index(msgid):
    return int(msgid[-6:])
