"""What-if replay under a policy with one changed ratio proposes exactly the expected adjustments.

The expected adjustments come from settling the same generated history again, claim by
claim, under the changed rules (the engine's single-claim path and the ledger's own
record builder), and taking the difference of each settlement's postings.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from adapters.cli import main
from bench.replay_workload import generate_history, history_records
from replay_support import build_ledger, copy_ledger, sqlite_path
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules
from settlement.replay.whatif import ADJUSTMENT_ORIGIN

CLAIMS = 300
SEED = 11


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("whatif-template"), CLAIMS, seed=SEED, with_vectors=False)
    return dsn


@pytest.fixture
def changed_rules(tmp_path):
    """A copy of the bundled rules where in-service employees' outpatient ratio at hospitals is 75% instead of 70%."""
    folder = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    path = folder / "policies" / "bj-employee-2024.json"
    policy = json.loads(path.read_text(encoding="utf-8"))
    rule = policy["schemes"]["outpatient_general"]["ratios"]["rules"][1]
    assert rule["groups"] == ["active"]
    assert rule["ratios"] == ["0.7000"]
    rule["ratios"] = ["0.7500"]
    path.write_text(json.dumps(policy, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def _net(postings) -> dict[str, int]:
    net: dict[str, int] = {}
    for posting in postings:
        net[posting.account] = net.get(posting.account, 0) + posting.debit - posting.credit
    return net


def _expected(changed_rules) -> dict[str, dict[str, int]]:
    """Return, per msgid, the net change of each account between the recorded and the changed settlement."""
    history = generate_history(CLAIMS, seed=SEED)
    recorded = {record.msgid: record for record in history_records(history)}
    changed = {record.msgid: record for record in history_records(history, load_rules(changed_rules))}
    expected = {}
    for msgid, old in recorded.items():
        new_net, old_net = _net(changed[msgid].postings), _net(old.postings)
        difference = {account: new_net.get(account, 0) - old_net.get(account, 0) for account in new_net.keys() | old_net.keys()}
        difference = {account: amount for account, amount in difference.items() if amount}
        if difference:
            expected[msgid] = difference
    return expected


def _msgids(dsn: str) -> dict[str, str]:
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        return dict(conn.execute("SELECT setl_id, msgid FROM ledger_settlements"))
    finally:
        conn.close()


def test_changed_ratio_gives_expected_balanced_adjustments(template, changed_rules, tmp_path):
    out = tmp_path / "whatif"
    status = main(["replay", "--ledger", template, "--rules", str(changed_rules), "--out", str(out), "--workers", "1", "--no-progress"])

    assert status == 0
    adjustments = [json.loads(line) for line in (out / "adjustments.jsonl").read_text(encoding="utf-8").splitlines()]
    msgids = _msgids(template)
    found = {}
    for adjustment in adjustments:
        postings = adjustment["request"]["postings"]
        assert sum(p["debit"] for p in postings) == sum(p["credit"] for p in postings), adjustment["setl_id"]
        found[msgids[adjustment["setl_id"]]] = {p["account"]: p["debit"] - p["credit"] for p in postings}
    expected = _expected(changed_rules)
    assert expected, "the changed ratio should change some settlements"
    assert found == expected

    summary = json.loads((out / "whatif-summary.json").read_text(encoding="utf-8"))
    assert summary["failures"] == []
    assert summary["per_fund"]["110100|310|hifp"] == sum(
        amount for accounts in expected.values() for account, amount in accounts.items() if account == "fund:110100:310:310100"
    )


def test_post_writes_adjustments_once_confirmed(template, changed_rules, tmp_path, monkeypatch, capsys):
    dsn = copy_ledger(template, tmp_path / "ledger")
    out = tmp_path / "whatif"
    args = ["replay", "--ledger", dsn, "--rules", str(changed_rules), "--out", str(out), "--workers", "1", "--no-progress", "--post"]

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("no\n"))
    assert main(args) == 1
    conn = sqlite3.connect(sqlite_path(dsn))
    posted = conn.execute("SELECT count(*) FROM journal_transactions WHERE origin = ?", (ADJUSTMENT_ORIGIN,)).fetchone()[0]
    conn.close()
    assert posted == 0

    assert main([*args, "--yes"]) == 0
    proposed = [json.loads(line) for line in (out / "adjustments.jsonl").read_text(encoding="utf-8").splitlines()]
    ids = {item["setl_id"] for item in proposed}
    # A cancelled settlement and its cancel offset each other and are not posted.
    offset = {item["setl_id"] for item in proposed if item["kind"] == "cancel" and item["original_setl_id"] in ids}
    offset |= {item["original_setl_id"] for item in proposed if item["setl_id"] in offset}
    conn = sqlite3.connect(sqlite_path(dsn))
    posted = conn.execute("SELECT count(*) FROM journal_transactions WHERE origin = ?", (ADJUSTMENT_ORIGIN,)).fetchone()[0]
    edited = conn.execute("SELECT count(*) FROM ledger_settlements").fetchone()[0]
    conn.close()
    assert posted == len(proposed) - len(offset) > 0
    assert edited == len(_msgids(template))
    capsys.readouterr()
    assert main(["ledger", "verify", "--ledger", dsn]) == 0
