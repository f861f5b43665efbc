"""``settlement serve --workers``: a signal to the parent stops every worker, and SQLite takes one process only."""

import signal
import subprocess
import sys

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, REPO, ledger_dsn, running_server
from tests.test_server_chain import PERSONS
from tests.test_server_crash import _descendants, _wait_gone


@pytest.mark.postgres
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_parent_stops_workers(tmp_path, stop_signal):
    started = []
    with ledger_dsn("postgres", tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS, workers=2, started=started) as port:
        process = started[0]
        workers = _descendants(process.pid)
        assert len(workers) >= 2, workers

        # The workers serve: a signed sign-in succeeds (sign_in raises otherwise).
        c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
        c.sign_in()
        c.close()

        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
        # The workers have ended when the parent has. The multiprocessing resource tracker ends
        # shortly after, once its pipe from the parent closes.
        assert _wait_gone(workers) == []

    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert log.count("server: worker starting") == 2
    assert log.count("server: stopped") == 2


def test_workers_rejected_on_sqlite(tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--workers", "2", "--ledger", f"sqlite://{ledger}"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr
    assert "--workers above 1 needs a PostgreSQL ledger" in result.stderr
    assert not ledger.exists()
