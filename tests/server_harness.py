"""Start a real server (``settlement serve``) on 127.0.0.1 and a free port, for the server tests."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import asyncpg

REPO = pathlib.Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("SETTLEMENT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

HOSPITAL = {"fixmedins_code": "H99000000001", "fixmedins_name": "测试医院（虚构）", "kind": "hospital", "hosp_lv": "level1",
            "admdvs": "110000", "secret": "test-secret-hospital-0001"}
PHARMACY = {"fixmedins_code": "P99000000001", "fixmedins_name": "测试药店（虚构）", "kind": "pharmacy", "hosp_lv": "pharmacy",
            "admdvs": "110000", "secret": "test-secret-pharmacy-0001"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def ledger_dsn(kind: str, tmp_path: pathlib.Path):
    """Yield a fresh ledger: an SQLite file, or a PostgreSQL schema created here and dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return

    schema = f"h5_test_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    import asyncio

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


@contextlib.contextmanager
def running_server(tmp_path: pathlib.Path, dsn: str, persons: list[dict], institutions: list[dict] | None = None, extra: list[str] = (),
                   workers: int = 1, started: list | None = None):
    """Run ``settlement serve`` with the bundled rules, the given persons and test institutions; stop it after.

    ``workers`` is passed as ``--workers``; ``started``, when given, receives the server's ``Popen``.
    """
    persons_file = tmp_path / "persons.json"
    persons_file.write_text(json.dumps({"persons": persons}, ensure_ascii=False), encoding="utf-8")
    institutions_file = tmp_path / "institutions.json"
    institutions_file.write_text(json.dumps({"institutions": institutions or [HOSPITAL, PHARMACY]}, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), "--ledger", dsn,
         "--persons", str(persons_file), "--institutions", str(institutions_file), "--test-clock", "--workers", str(workers), *extra],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    if started is not None:
        started.append(process)
    try:
        _wait_ready(port, process, tmp_path / "server.log")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class LedgerInspector:
    """Read-only SQL access to a ledger database from the test process, for state checks and snapshots."""

    # Tables a rejected request must leave exactly as they were. Nonces and sign-ins change
    # on every signed request and are left out on purpose.
    SNAPSHOT_TABLES = (
        "journal_transactions", "journal_postings", "journal_accumulator_deltas", "ledger_settlements", "ledger_accounts",
        "ledger_accumulators", "srv_visit", "srv_fee_line", "srv_message", "srv_person", "srv_card",
        "srv_reversal", "srv_file",
    )

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.postgres = dsn.startswith(("postgresql://", "postgres://"))

    def query(self, sql: str, *args) -> list[tuple]:
        """Run one query written with ``$1`` placeholders and return its rows as tuples."""
        if self.postgres:
            import asyncio

            async def run():
                conn = await asyncpg.connect(self.dsn)
                try:
                    return [tuple(row) for row in await conn.fetch(sql, *args)]
                finally:
                    await conn.close()

            return asyncio.run(run())

        import re
        import sqlite3

        conn = sqlite3.connect(self.dsn[len("sqlite://"):], timeout=10)
        try:
            return [tuple(row) for row in conn.execute(re.sub(r"\$(\d+)", r"?\1", sql), args).fetchall()]
        finally:
            conn.close()

    def execute(self, sql: str, *args) -> None:
        """Run one statement written with ``$1`` placeholders and commit it, as an operator would."""
        if self.postgres:
            self.query(sql, *args)
            return

        import re
        import sqlite3

        conn = sqlite3.connect(self.dsn[len("sqlite://"):], timeout=10)
        try:
            conn.execute(re.sub(r"\$(\d+)", r"?\1", sql), args)
            conn.commit()
        finally:
            conn.close()

    def tables(self) -> set[str]:
        if self.postgres:
            rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        else:
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}

    def snapshot(self) -> dict[str, list[tuple]]:
        """Return every row of the ledger and server-state tables, sorted, as comparable values."""
        present = self.tables()
        return {
            table: sorted((tuple(_comparable(value) for value in row) for row in self.query(f"SELECT * FROM {table}")), key=repr)
            for table in self.SNAPSHOT_TABLES
            if table in present
        }


def _comparable(value):
    return bytes(value) if isinstance(value, (memoryview, bytearray)) else value


def _wait_ready(port: int, process: subprocess.Popen, log_path: pathlib.Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited at startup:\n" + log_path.read_text(encoding="utf-8"))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start in 30 s:\n" + log_path.read_text(encoding="utf-8"))
