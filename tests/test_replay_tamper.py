"""A ledger edited directly in SQL is caught by replay and by the hash chain.

Each test edits a copy of one small ledger the way someone with database access could:
the append-only triggers are dropped first, as such a person would.
"""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from adapters.cli import main
from settlement.stored_record import record_json
from replay_support import build_ledger, copy_ledger, sqlite_path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("tamper-template"), 300, seed=7, with_vectors=False)
    return dsn


@pytest.fixture
def ledger(template, tmp_path):
    return copy_ledger(template, tmp_path / "ledger")


def _connect(dsn: str) -> sqlite3.Connection:
    return sqlite3.connect(sqlite_path(dsn), isolation_level=None)


def _replay(dsn: str, out) -> tuple[int, dict, list[dict]]:
    status = main(["replay", "--ledger", dsn, "--out", str(out), "--workers", "1", "--no-progress", "--lang", "en"])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with open(out / "discrepancies.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return status, summary, rows


def _settlement_with_fund_payment(conn: sqlite3.Connection) -> tuple[int, str, dict]:
    for txn_id, setl_id, body in conn.execute("SELECT txn_id, setl_id, record FROM ledger_settlements WHERE kind = 'settle' ORDER BY txn_id"):
        record = json.loads(record_json(body))
        if record["result"]["outputs"]["hifp_pay"] > 0:
            return txn_id, setl_id, record
    raise AssertionError("the generated ledger has no settlement with a pooled-fund payment")


def test_changed_amount_is_named_with_field_and_link(ledger, tmp_path):
    conn = _connect(ledger)
    txn_id, setl_id, record = _settlement_with_fund_payment(conn)
    paid = record["result"]["outputs"]["hifp_pay"]
    record["result"]["outputs"]["hifp_pay"] = paid + 100
    conn.execute("DROP TRIGGER ledger_settlements_no_update")
    conn.execute("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (json.dumps(record).encode(), txn_id))
    conn.close()

    status, summary, rows = _replay(ledger, tmp_path / "report")

    assert status == 1
    named = [row for row in rows if row["setl_id"] == setl_id and row["field"] == "hifp_pay"]
    assert len(named) == 1
    assert int(named[0]["recorded"]) == paid + 100
    assert int(named[0]["recomputed"]) == paid
    assert named[0]["step"].startswith(("band", "cap"))
    breaks = summary["chain"]["breaks"]
    assert len(breaks) == 1
    assert breaks[0]["setl_id"] == setl_id
    assert breaks[0]["reason"] == "record_hash"


def test_ledger_verify_names_same_link(ledger, tmp_path, capsys):
    conn = _connect(ledger)
    txn_id, setl_id, record = _settlement_with_fund_payment(conn)
    record["result"]["outputs"]["hifp_pay"] += 100
    conn.execute("DROP TRIGGER ledger_settlements_no_update")
    conn.execute("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (json.dumps(record).encode(), txn_id))
    conn.close()
    capsys.readouterr()

    status = main(["ledger", "verify", "--ledger", ledger, "--lang", "en"])

    output = capsys.readouterr().out
    assert status == 1
    assert "first broken chain link" in output
    assert setl_id in output


def test_changed_summary_column_is_named(ledger, tmp_path):
    conn = _connect(ledger)
    txn_id, setl_id, record = _settlement_with_fund_payment(conn)
    conn.execute("DROP TRIGGER ledger_settlements_no_update")
    conn.execute("UPDATE ledger_settlements SET medfee_sumamt = medfee_sumamt + 1 WHERE txn_id = ?", (txn_id,))
    conn.close()

    status, _, rows = _replay(ledger, tmp_path / "report")

    assert status == 1
    assert [(row["setl_id"], row["field"]) for row in rows] == [(setl_id, "medfee_sumamt")]
    assert int(rows[0]["recorded"]) == record["result"]["outputs"]["medfee_sumamt"] + 1


def test_deleted_posting_is_named(ledger, tmp_path):
    conn = _connect(ledger)
    txn_id, setl_id, record = _settlement_with_fund_payment(conn)
    account = "fund:110100:310:310100"
    conn.execute("DROP TRIGGER journal_postings_no_delete")
    deleted = conn.execute(
        "DELETE FROM journal_postings WHERE txn_id = ? AND account_id = (SELECT account_id FROM ledger_accounts WHERE account_key = ?)",
        (txn_id, account),
    ).rowcount
    conn.close()
    assert deleted == 1

    status, _, rows = _replay(ledger, tmp_path / "report")

    assert status == 1
    named = [row for row in rows if row["setl_id"] == setl_id]
    assert [row["field"] for row in named] == [f"postings[{account}]"]
    assert named[0]["recorded"] == ""
    assert int(named[0]["recomputed"]) == record["result"]["outputs"]["hifp_pay"]


def test_reordered_records_are_named_with_link(ledger, tmp_path):
    conn = _connect(ledger)
    rows = conn.execute(
        "SELECT a.txn_id, b.txn_id, a.record, b.record, a.chain_seq, b.chain_seq, a.setl_id, b.setl_id FROM ledger_settlements a "
        "JOIN ledger_settlements b ON b.psn_no = a.psn_no AND b.txn_id > a.txn_id "
        "WHERE a.kind = 'settle' AND b.kind = 'settle' ORDER BY a.txn_id LIMIT 1"
    ).fetchall()
    first_txn, second_txn, first_body, second_body, first_seq, second_seq, first_id, second_id = rows[0]
    conn.execute("DROP TRIGGER ledger_settlements_no_update")
    # Swap the two records' contents, as if the later settlement had happened first.
    conn.execute("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (second_body, first_txn))
    conn.execute("UPDATE ledger_settlements SET record = ? WHERE txn_id = ?", (first_body, second_txn))
    conn.close()

    status, summary, found = _replay(ledger, tmp_path / "report")

    assert status == 1
    # The earlier settlement now sits in the later place, so its counters before no
    # longer follow from the record ahead of it.
    order_rows = [row for row in found if row["field"].startswith("accumulators_before.") and row["setl_id"] == first_id]
    assert order_rows, found
    assert {row["step"] for row in order_rows} == {"order"}
    breaks = summary["chain"]["breaks"]
    assert len(breaks) == 1
    assert breaks[0]["seq"] == min(first_seq, second_seq)
    assert breaks[0]["reason"] == "record_hash"
