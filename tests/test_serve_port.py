"""``settlement serve`` on a port that is already taken fails fast, in both languages, and writes nothing."""

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
