"""3201/3202 reconciliation files: written from the ledger, read back, and compared with an institution's file."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from adapters.cli import main
from adapters.ledger import open_store
from adapters.replay.recon_files import SEPARATORS, read_details, read_totals, write_details
from replay_support import build_ledger, sqlite_path
from settlement.replay.reconcile import DetailRow

@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("reconcile-ledger"), 400, seed=3, with_vectors=False)
    return dsn


@pytest.fixture(scope="module")
def institution(ledger):
    """The institution with the most cancels in the generated ledger."""
    conn = sqlite3.connect(sqlite_path(ledger))
    try:
        return conn.execute(
            "SELECT fixmedins_code FROM ledger_settlements WHERE kind = 'cancel' GROUP BY fixmedins_code ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    finally:
        conn.close()


def _summaries(dsn: str, institution: str, begin: str, end: str):
    async def read():
        store = await open_store(dsn)
        try:
            return await store.settlements_in_period(institution, begin, end)
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.mark.parametrize("separator", ["tab", "comma"])
def test_files_round_trip(ledger, institution, tmp_path, separator):
    totals, details = tmp_path / "3201.txt", tmp_path / "3202.txt"

    assert main(["reconcile", "export", "--ledger", ledger, "--institution", institution, "--from", "2024-01-01",
                 "--to", "2024-12-31", "--sep", separator, "--totals", str(totals), "--details", str(details)]) == 0

    summaries = _summaries(ledger, institution, "2024-01-01", "2024-12-31")
    rows = read_details(details, SEPARATORS[separator])
    assert [row.setl_id for row in rows] == [summary.setl_id for summary in summaries]
    assert [row.medfee_sumamt for row in rows] == [summary.medfee_sumamt for summary in summaries]
    assert {row.refd_setl_flag for row in rows} == {"0", "1"}
    copy = tmp_path / "copy.txt"
    write_details(copy, rows, SEPARATORS[separator])
    assert copy.read_bytes() == details.read_bytes()

    sums = read_totals(totals, SEPARATORS[separator])
    assert sum(row.fixmedins_setl_cnt for row in sums) == len(rows)
    assert sum(row.medfee_sumamt for row in sums) == sum(row.medfee_sumamt for row in rows)
    assert sum(row.fund_pay_sumamt for row in sums) == sum(row.fund_pay_sumamt for row in rows)
    assert sum(row.acct_pay for row in sums) == sum(row.acct_pay for row in rows)


def test_cancel_counts_on_its_own_day(ledger, institution, tmp_path):
    summaries = _summaries(ledger, institution, "2024-01-01", "2024-12-31")
    by_id = {summary.setl_id: summary for summary in summaries}
    cancel = next(s for s in summaries if s.kind == "cancel" and by_id[s.original_setl_id].setl_time[:10] != s.setl_time[:10])
    original = by_id[cancel.original_setl_id]

    days = {}
    for day in (original.setl_time[:10], cancel.setl_time[:10]):
        details = tmp_path / f"{day}.txt"
        assert main(["reconcile", "export", "--ledger", ledger, "--institution", institution, "--from", day,
                     "--totals", str(tmp_path / f"{day}-totals.txt"), "--details", str(details)]) == 0
        days[day] = {row.setl_id: row for row in read_details(details, "\t")}

    settled_day = days[original.setl_time[:10]]
    assert settled_day[original.setl_id].refd_setl_flag == "0"
    assert settled_day[original.setl_id].medfee_sumamt == original.medfee_sumamt
    assert cancel.setl_id not in settled_day
    cancel_day = days[cancel.setl_time[:10]]
    assert cancel_day[cancel.setl_id].refd_setl_flag == "1"
    assert cancel_day[cancel.setl_id].medfee_sumamt == -original.medfee_sumamt
    assert original.setl_id not in cancel_day


def test_institution_file_with_missing_and_altered_settlement(ledger, institution, tmp_path, capsys):
    details = tmp_path / "ours.txt"
    assert main(["reconcile", "export", "--ledger", ledger, "--institution", institution, "--from", "2024-03-01",
                 "--to", "2024-03-31", "--totals", str(tmp_path / "totals.txt"), "--details", str(details)]) == 0
    rows = read_details(details, "\t")
    assert len(rows) >= 3
    missing, altered = rows[0], rows[1]
    theirs = [DetailRow(altered.setl_id, altered.mdtrt_id, altered.psn_no, altered.medfee_sumamt + 1, altered.fund_pay_sumamt,
                        altered.acct_pay, altered.refd_setl_flag), *rows[2:]]
    institution_file = tmp_path / "theirs.txt"
    write_details(institution_file, theirs, "\t")
    capsys.readouterr()

    status = main(["reconcile", "import", "--ledger", ledger, "--institution", institution, "--from", "2024-03-01",
                   "--to", "2024-03-31", "--file", str(institution_file), "--lang", "en"])

    output = capsys.readouterr().out.splitlines()
    assert status == 1
    assert output[0] == f"ledger {len(rows)} records, file {len(rows) - 1} records"
    assert output[1:] == [
        f"missing in the institution's file: {missing.setl_id}",
        f"differs: {altered.setl_id} medfee_sumamt ledger {altered.medfee_sumamt / 100:.2f}, file {(altered.medfee_sumamt + 1) / 100:.2f}",
    ]
