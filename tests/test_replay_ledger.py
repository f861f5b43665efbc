"""Replay of a ledger built by settling every shared claim vector and 10,000 generated claims."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from adapters.cli import main
from replay_support import build_ledger, sqlite_path

CLAIMS = 10_000


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replay-ledger")
    return build_ledger(folder, CLAIMS)


def _journal_count(dsn: str) -> int:
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        return conn.execute("SELECT count(*) FROM journal_transactions").fetchone()[0]
    finally:
        conn.close()


def _summary(folder) -> dict:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def test_clean_ledger_replays_without_discrepancy(ledger, tmp_path, capsys):
    dsn, written = ledger
    before = _journal_count(dsn)

    status = main(["replay", "--ledger", dsn, "--out", str(tmp_path / "report"), "--workers", "2", "--no-progress"])

    summary = _summary(tmp_path / "report")
    assert status == 0, capsys.readouterr()
    assert summary["counts"]["checked"] == written
    assert summary["counts"]["discrepancies"] == 0
    assert summary["counts"]["matching"] == written
    assert summary["counts"]["cancels"] > 0
    assert summary["chain"]["checked"] == written
    assert summary["chain"]["breaks"] == []
    assert _journal_count(dsn) == before


def test_exported_file_replays_like_the_ledger(ledger, tmp_path, capsys):
    dsn, written = ledger
    exported = tmp_path / "records.jsonl"

    assert main(["export", "--ledger", dsn, "-o", str(exported)]) == 0
    status = main(["replay", str(exported), "--out", str(tmp_path / "report"), "--workers", "2", "--no-progress", "--lang", "en"])

    summary = _summary(tmp_path / "report")
    assert status == 0, capsys.readouterr()
    assert summary["counts"]["checked"] == written
    assert summary["counts"]["discrepancies"] == 0
    assert summary["chain"]["checked"] == written
    assert summary["chain"]["layout"] == "whole"


def test_dask_local_cluster_gives_same_report(ledger, tmp_path):
    dsn, _ = ledger
    exported = tmp_path / "records.jsonl"
    assert main(["export", "--ledger", dsn, "-o", str(exported), "--institution", "H11010100002"]) == 0

    single = tmp_path / "single"
    dask = tmp_path / "dask"
    assert main(["replay", str(exported), "--out", str(single), "--workers", "1", "--no-progress"]) == 0
    assert main(["replay", str(exported), "--out", str(dask), "--dask", "local", "--workers", "2", "--no-progress"]) == 0

    first, second = _summary(single), _summary(dask)
    assert first.pop("run")["runner"] == "local"
    assert second.pop("run")["runner"] == "dask"
    assert first == second
    assert (single / "discrepancies.csv").read_bytes() == (dask / "discrepancies.csv").read_bytes()


@pytest.mark.postgres
def test_postgres_ledger_replays_without_discrepancy(tmp_path):
    from bench.replay_workload import apply_history, generate_history, load_history_rules
    from ledger_support import pg_schema
    from adapters.ledger import open_store

    async def scenario() -> int:
        async with pg_schema() as dsn:
            store = await open_store(dsn)
            try:
                history = generate_history(200, seed=5)
                await apply_history(store, history, load_history_rules())
            finally:
                await store.close()
            status = await asyncio.to_thread(
                main, ["replay", "--ledger", dsn, "--out", str(tmp_path / "report"), "--workers", "1", "--no-progress"]
            )
            assert status == 0
            return len(history.events)

    written = asyncio.run(scenario())

    summary = _summary(tmp_path / "report")
    assert summary["counts"]["checked"] == written
    assert summary["counts"]["discrepancies"] == 0
    assert summary["chain"]["checked"] == written
    assert summary["chain"]["breaks"] == []


def test_date_window_checks_content_hashes_only(ledger, tmp_path):
    dsn, _ = ledger

    status = main(["replay", "--ledger", dsn, "--from", "2024-03-01", "--to", "2024-03-31", "--out", str(tmp_path / "report"),
                   "--workers", "1", "--no-progress"])

    summary = _summary(tmp_path / "report")
    assert status == 0
    assert summary["chain"]["layout"] == "window"
    assert summary["chain"]["breaks"] == []
    assert summary["counts"]["checked"] > 0
    assert summary["chain"]["checked"] == summary["counts"]["checked"]
    assert set(summary["totals"]["by_day"]) <= {f"2024-03-{day:02d}" for day in range(1, 32)}


def test_remote_scheduler_matches_local(ledger, tmp_path):
    """Local workers replay a ledger from a temporary columnar folder; a scheduler elsewhere gets the records instead."""
    from replay_support import copy_ledger

    from adapters.replay.runner import local_cluster
    from settlement.stored_record import record_json

    dsn = copy_ledger(ledger[0], tmp_path / "copy")
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        txn_id, body = next(row for row in conn.execute(
            "SELECT txn_id, record FROM ledger_settlements WHERE kind = 'settle' AND fund_pay_sumamt > 0 ORDER BY txn_id"))
        record = json.loads(record_json(body))
        record["result"]["outputs"]["hifp_pay"] += 100
        conn.execute("DROP TRIGGER ledger_settlements_no_update")
        conn.execute("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (json.dumps(record).encode(), txn_id))
        conn.commit()
    finally:
        conn.close()

    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["replay", "--ledger", dsn, "--out", str(local), "--workers", "2", "--no-progress"]) == 1
    cluster = local_cluster(2)
    try:
        assert main(["replay", "--ledger", dsn, "--out", str(remote), "--dask", cluster.scheduler_address, "--workers", "2",
                     "--no-progress"]) == 1
    finally:
        cluster.close()

    first, second = _summary(local), _summary(remote)
    assert first.pop("run")["runner"] == "local"
    assert second.pop("run")["runner"] == "dask"
    assert first == second
    assert first["counts"]["differing"] == 1
    assert (local / "discrepancies.csv").read_bytes() == (remote / "discrepancies.csv").read_bytes()
