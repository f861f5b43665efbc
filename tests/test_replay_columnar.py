"""The columnar export replays to the same report as JSON Lines, on a clean ledger and on tampered ones.

Each test exports one ledger in both formats with ``settlement export`` and replays both
with ``settlement replay``: the counts, totals, chain result and every discrepancy row
must be identical. The tampered ledgers are edited in SQL the way someone with database
access could, after dropping the append-only triggers.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from adapters.cli import main
from adapters.replay.columnar import ColumnarWriter, read_columns, read_manifest
from adapters.replay.jsonl import read_records
from settlement.stored_record import record_json
from replay_support import build_ledger, copy_ledger, sqlite_path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("columnar-template"), 400, seed=11)
    return dsn


@pytest.fixture
def ledger(template, tmp_path):
    return copy_ledger(template, tmp_path / "ledger")


def _export(dsn: str, path, fmt: str) -> None:
    assert main(["export", "--ledger", dsn, "-o", str(path), "--format", fmt, "--lang", "en"]) == 0


def _jsonl(dsn: str, folder):
    path = folder / "records.jsonl"
    _export(dsn, path, "jsonl")
    return path


def _replay(path, out, *extra: str) -> tuple[int, dict, str]:
    status = main(["replay", str(path), "--out", str(out), "--no-progress", "--lang", "en", *extra])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary.pop("source")
    summary["run"].pop("seconds")
    return status, summary, (out / "discrepancies.csv").read_text(encoding="utf-8")


def _replay_both(dsn: str, folder, *extra: str) -> tuple[tuple[int, dict, str], tuple[int, dict, str]]:
    _export(dsn, folder / "records.jsonl", "jsonl")
    _export(dsn, folder / "records.columns", "columnar")
    lines = _replay(folder / "records.jsonl", folder / "report-jsonl", "--workers", "1", *extra)
    columns = _replay(folder / "records.columns", folder / "report-columnar", "--workers", "1", *extra)
    return lines, columns


def _same_report(dsn: str, folder) -> tuple[int, dict, str]:
    """Replay both exports and return the columnar result after checking it equals the JSON Lines one."""
    lines, columns = _replay_both(dsn, folder)
    assert lines == columns
    return columns


def _edit(dsn: str, statements: list[tuple[str, tuple]]) -> None:
    conn = sqlite3.connect(sqlite_path(dsn), isolation_level=None)
    try:
        for sql, values in statements:
            conn.execute(sql, values)
    finally:
        conn.close()


def _record(dsn: str, where: str) -> tuple[int, str, dict]:
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        for txn_id, setl_id, body in conn.execute(f"SELECT txn_id, setl_id, record FROM ledger_settlements WHERE {where} ORDER BY txn_id"):
            record = json.loads(record_json(body))
            if record["result"]["outputs"]["hifp_pay"] != 0:
                return txn_id, setl_id, record
    finally:
        conn.close()
    raise AssertionError(f"no record with a pooled-fund payment where {where}")


def _rewrite(dsn: str, txn_id: int, record: dict) -> None:
    _edit(dsn, [("DROP TRIGGER ledger_settlements_no_update", ()),
                ("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (json.dumps(record).encode(), txn_id))])


def test_columns_rebuild_every_record_exactly(template, tmp_path):
    _export(template, tmp_path / "records.jsonl", "jsonl")
    _export(template, tmp_path / "records.columns", "columnar")

    records = read_records(tmp_path / "records.jsonl")
    columns = read_columns(tmp_path / "records.columns")

    assert len(columns) == len(records)
    rebuilt = [columns.record(row) for row in range(len(columns))]
    assert [record.setl_id for record in rebuilt] == [record.setl_id for record in records]
    assert rebuilt == records


def test_clean_ledger_same_report(ledger, tmp_path):
    status, summary, _ = _same_report(ledger, tmp_path)

    assert status == 0
    assert summary["counts"]["discrepancies"] == 0
    assert summary["counts"]["cancels"] > 0
    assert summary["chain"]["checked"] == summary["counts"]["checked"]
    assert summary["chain"]["breaks"] == []


def test_tampered_amount_same_report(ledger, tmp_path):
    txn_id, setl_id, record = _record(ledger, "kind = 'settle'")
    paid = record["result"]["outputs"]["hifp_pay"]
    record["result"]["outputs"]["hifp_pay"] = paid + 100
    _rewrite(ledger, txn_id, record)

    status, summary, rows = _same_report(ledger, tmp_path)

    assert status == 1
    assert f"{setl_id}," in rows
    assert f",hifp_pay,{paid + 100},{paid}," in rows
    assert [item["setl_id"] for item in summary["chain"]["breaks"]] == [setl_id]
    assert summary["chain"]["breaks"][0]["reason"] == "record_hash"


def test_tampered_fund_row_same_report(ledger, tmp_path):
    txn_id, setl_id, record = _record(ledger, "kind = 'settle'")
    record["result"]["fund_details"][0]["fund_payamt"] += 1
    _rewrite(ledger, txn_id, record)

    status, summary, rows = _same_report(ledger, tmp_path)

    assert status == 1
    assert summary["counts"]["differing"] == 1
    assert f"fund_details[{record['result']['fund_details'][0]['layer']}].fund_payamt" in rows


def test_tampered_cancel_same_report(ledger, tmp_path):
    txn_id, setl_id, record = _record(ledger, "kind = 'cancel'")
    record["result"]["outputs"]["hifp_pay"] -= 7
    _rewrite(ledger, txn_id, record)

    status, summary, rows = _same_report(ledger, tmp_path)

    assert status == 1
    assert summary["counts"]["differing"] == 1
    assert f"{setl_id}," in rows
    assert ",reversal" in rows


def test_tampered_line_class_same_report(ledger, tmp_path):
    txn_id, setl_id, record = _record(ledger, "kind = 'settle' AND psn_no LIKE 'P%'")
    line = record["claim"]["lines"][0]
    line["charge_class"] = 3 if line["charge_class"] != 3 else 1
    _rewrite(ledger, txn_id, record)

    status, summary, rows = _same_report(ledger, tmp_path)

    assert status == 1
    assert summary["counts"]["differing"] == 1
    assert f"{setl_id}," in rows
    assert "lines[0].charge_class" in rows
    assert ",catalog" in rows


def test_deleted_posting_same_report(ledger, tmp_path):
    txn_id, setl_id, _ = _record(ledger, "kind = 'settle'")
    account = "fund:110100:310:310100"
    _edit(ledger, [
        ("DROP TRIGGER journal_postings_no_delete", ()),
        ("DELETE FROM journal_postings WHERE txn_id = ? AND account_id = "
         "(SELECT account_id FROM ledger_accounts WHERE account_key = ?)", (txn_id, account)),
    ])

    status, _, rows = _same_report(ledger, tmp_path)

    assert status == 1
    assert f"postings[{account}]" in rows


def _drop_key_index(folder) -> None:
    """Make an export look like one written before the sorted key index: no index files and no ``indexes``."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in manifest.pop("indexes"):
        (folder / f"table.{name}.keys.npy").unlink()
        (folder / f"table.{name}.key_ids.npy").unlink()
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_export_writes_key_index(template, tmp_path):
    _export(template, tmp_path / "records.columns", "columnar")

    table = read_columns(tmp_path / "records.columns").tables["posting_account"]

    assert read_manifest(tmp_path / "records.columns").indexes == ["posting_account"]
    assert table.keys is not None
    assert table.find(table.all()).tolist() == list(range(len(table)))


def test_folder_without_key_index_same_report(ledger, tmp_path):
    txn_id, _, _ = _record(ledger, "kind = 'settle'")
    account = "fund:110100:310:310100"
    _edit(ledger, [
        ("DROP TRIGGER journal_postings_no_delete", ()),
        ("DELETE FROM journal_postings WHERE txn_id = ? AND account_id = "
         "(SELECT account_id FROM ledger_accounts WHERE account_key = ?)", (txn_id, account)),
    ])
    _export(ledger, tmp_path / "records.jsonl", "jsonl")
    _export(ledger, tmp_path / "old.columns", "columnar")
    _drop_key_index(tmp_path / "old.columns")

    lines = _replay(tmp_path / "records.jsonl", tmp_path / "report-jsonl", "--workers", "1")
    columns = _replay(tmp_path / "old.columns", tmp_path / "report-columnar", "--workers", "1")

    assert read_columns(tmp_path / "old.columns").tables["posting_account"].keys is None
    assert lines == columns
    assert columns[0] == 1
    assert f"postings[{account}]" in columns[2]


def test_ungrouped_columns_same_report(ledger, tmp_path):
    txn_id, _, record = _record(ledger, "kind = 'settle'")
    record["result"]["outputs"]["hifp_pay"] += 1
    _rewrite(ledger, txn_id, record)
    records = read_records(_jsonl(ledger, tmp_path))
    with ColumnarWriter(tmp_path / "shuffled.columns", grouped=False) as writer:
        writer.write(reversed(records))

    lines = _replay(tmp_path / "records.jsonl", tmp_path / "report-jsonl", "--workers", "1")
    columns = _replay(tmp_path / "shuffled.columns", tmp_path / "report-columnar", "--workers", "1")

    assert lines == columns
    assert columns[0] == 1


def test_export_keeps_unrelated_folder(template, tmp_path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")

    status = main(["export", "--ledger", template, "-o", str(folder), "--format", "columnar", "--lang", "en"])

    assert status == 2
    assert "is not a columnar record folder" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_export_replaces_columnar_folder(template, tmp_path):
    _export(template, tmp_path / "records.columns", "columnar")
    _export(template, tmp_path / "records.columns", "columnar")

    assert len(read_columns(tmp_path / "records.columns")) == len(read_records(_jsonl(template, tmp_path)))


def test_dask_columnar_same_report(ledger, tmp_path):
    _export(ledger, tmp_path / "records.columns", "columnar")

    single = _replay(tmp_path / "records.columns", tmp_path / "single", "--workers", "1")
    dask = _replay(tmp_path / "records.columns", tmp_path / "dask", "--dask", "local", "--workers", "2")

    assert dask[1].pop("run")["runner"] == "dask"
    assert single[1].pop("run")["runner"] == "local"
    assert single == dask
