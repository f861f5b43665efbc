"""``settlement serve`` on a port that is already taken fails fast, in both languages, and writes nothing."""

import signal
import socket
import subprocess
import sys

from tests.server_harness import REPO


def test_busy_port_rejected_before_ledger(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ledger = tmp_path / "ledger.sqlite3"

        done = subprocess.run(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), "--ledger", f"sqlite:///{ledger}"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )

    assert done.returncode == 2
    assert f"无法监听 127.0.0.1:{port}" in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not ledger.exists()


def test_ctrl_c_stops_server_cleanly(tmp_path):
    from tests.server_harness import running_server
    from tests.test_server_chain import PERSONS

    started = []
    with running_server(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite3'}", PERSONS, started=started):
        started[0].send_signal(signal.SIGINT)
        stopped = started[0].wait(timeout=30)

    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert stopped == 0
    assert "server: stopped" in log
    assert "Traceback" not in log
