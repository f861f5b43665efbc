"""``settlement demo`` plays its sample day against ``settlement serve`` started with its defaults."""

import os
import subprocess
import sys

from adapters.cli.demo import run_demo
from tests.server_harness import REPO, _wait_ready, free_port


def test_demo_against_default_server(tmp_path, capsys):
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        # Only the port differs from the defaults; the default SQLite ledger lands in tmp_path.
        process = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)], cwd=tmp_path,
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            _wait_ready(port, process, log_path)
            status = run_demo(f"http://127.0.0.1:{port}/fsi/api/callService", "en")
        finally:
            process.terminate()
            process.wait(timeout=30)

    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "all 25 transactions succeeded" in printed
    assert "Pharmacy sale 2102" in printed
    assert "Admission 2401" in printed
    assert "Reversal 2601" in printed
    assert (tmp_path / "settlement-ledger.sqlite3").exists()

