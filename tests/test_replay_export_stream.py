"""Export and ledger reading in chunks: the same records as one read, bounded memory, nothing left by a failure."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
import pytest

from adapters.cli import main
from adapters.replay import columnar, ledger_reader
from adapters.replay.columnar import ColumnarWriter, read_columns, read_manifest
from adapters.replay.jsonl import RecordWriter, read_header, read_records
from adapters.replay.ledger_reader import LedgerFilter, read_ledger_records
from replay_support import build_ledger, sqlite_path
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import load_rules
from settlement.replay.columns import ColumnBuilder

SELECTIONS = {
    "whole": LedgerFilter(),
    # The generated history cancels on the day after the original, so a window that
    # starts on 2024-05-29 contains the cancel of a settlement of 2024-05-28 but not the original.
    "window": LedgerFilter(date_from="2024-05-29", date_to="2024-06-30"),
    "institution": LedgerFilter(institution="H11010100001"),
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("stream-ledger"), 800, with_vectors=False)
    return dsn


@pytest.fixture(scope="module")
def rules():
    return load_rules(bundled_rules_dir())


def _expected_ids(dsn: str, selection: LedgerFilter) -> tuple[list[int], set[int]]:
    """Return the selected txn_ids plus context originals, in (psn_no, txn_id) order, and the context ones, by plain SQL."""
    conn = sqlite3.connect(sqlite_path(dsn))
    try:
        rows = conn.execute("SELECT txn_id, setl_id, kind, original_setl_id, psn_no, setl_time, fixmedins_code FROM ledger_settlements").fetchall()
    finally:
        conn.close()

    def selected(row) -> bool:
        day = row[5][:10]
        return ((selection.date_from is None or day >= selection.date_from) and (selection.date_to is None or day <= selection.date_to)
                and (selection.institution is None or row[6] == selection.institution))

    inside = [row for row in rows if selected(row)]
    cancelled_originals = {row[3] for row in inside if row[2] == "cancel"}
    context = [row for row in rows if row[1] in cancelled_originals and not selected(row)]
    ordered = sorted(inside + context, key=lambda row: (row[4], row[0]))
    return [row[0] for row in ordered], {row[0] for row in context}


@pytest.mark.parametrize("name", SELECTIONS)
def test_chunked_read_matches_sql(ledger, rules, name, monkeypatch):
    selection = SELECTIONS[name]
    whole = asyncio.run(read_ledger_records(ledger, selection, rules))
    monkeypatch.setattr(ledger_reader, "CHUNK", 7)
    chunked = asyncio.run(read_ledger_records(ledger, selection, rules))

    expected, context = _expected_ids(ledger, selection)
    assert chunked == whole
    assert [record.seq for record in chunked] == expected
    assert {record.seq for record in chunked if record.context_only} == context
    if name == "window":
        assert context, "the window should start after some originals of its cancels"


@pytest.mark.postgres
def test_postgres_chunked_read_matches(rules, monkeypatch):
    from adapters.ledger import open_store
    from bench.replay_workload import apply_history, generate_history, load_history_rules
    from ledger_support import pg_schema

    async def scenario():
        async with pg_schema() as dsn:
            store = await open_store(dsn)
            try:
                await apply_history(store, generate_history(120, seed=9), load_history_rules())
            finally:
                await store.close()
            results = {}
            for name, selection in SELECTIONS.items():
                monkeypatch.setattr(ledger_reader, "CHUNK", 100_000)
                whole = await read_ledger_records(dsn, selection, rules)
                monkeypatch.setattr(ledger_reader, "CHUNK", 5)
                results[name] = (whole, await read_ledger_records(dsn, selection, rules))
            return results

    results = asyncio.run(scenario())
    for name, (whole, chunked) in results.items():
        assert chunked == whole, name
        assert chunked, name
        assert [(r.psn_no, r.seq) for r in chunked] == sorted((r.psn_no, r.seq) for r in chunked), name
        # Every cancel's original is there, and the originals outside the selection are marked as context.
        present = {record.setl_id for record in chunked}
        assert {r.original_setl_id for r in chunked if r.kind == "cancel"} <= present, name
        selection = SELECTIONS[name]
        for record in chunked:
            inside = (selection.date_from is None or record.setl_date >= selection.date_from) and (
                selection.date_to is None or record.setl_date <= selection.date_to) and (
                selection.institution is None or record.fixmedins_code == selection.institution)
            assert record.context_only == (not inside), (name, record.setl_id)


def test_staged_columns_match_memory(ledger, rules, tmp_path, monkeypatch):
    records = asyncio.run(read_ledger_records(ledger, LedgerFilter(), rules))
    builder = ColumnBuilder()
    builder.add(records)
    expected = builder.finish()
    monkeypatch.setattr(columnar, "_PIECE", 37)
    monkeypatch.setattr(ledger_reader, "CHUNK", 50)

    status = main(["export", "--ledger", ledger, "--format", "columnar", "-o", str(tmp_path / "out")])

    assert status == 0
    written = read_columns(tmp_path / "out")
    assert read_manifest(tmp_path / "out").count == len(records)
    assert sorted(written.arrays) == sorted(expected.arrays)
    for name, values in expected.arrays.items():
        assert written.arrays[name].dtype == values.dtype, name
        np.testing.assert_array_equal(written.arrays[name], values, err_msg=name)
    for name, table in expected.tables.items():
        assert written.tables[name].all() == table.all(), name
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("fmt", ["jsonl", "columnar"])
@pytest.mark.parametrize("failure", ["read", "write"])
def test_failed_export_leaves_no_partial(ledger, tmp_path, capsys, monkeypatch, fmt, failure):
    output = tmp_path / ("out.jsonl" if fmt == "jsonl" else "out")
    assert main(["export", "--ledger", ledger, "--format", fmt, "-o", str(output)]) == 0
    before = sorted((p.name, p.stat().st_size) for p in (output.iterdir() if output.is_dir() else [output]))
    capsys.readouterr()
    monkeypatch.setattr(ledger_reader, "CHUNK", 30)

    if failure == "read":
        real_read = ledger_reader.iter_ledger_records

        async def failing_read(*args, **kwargs):
            count = 0
            async for chunk in real_read(*args, **kwargs):
                yield chunk
                count += 1
                if count == 2:
                    raise SettlementError(ErrorCode.NO_POLICY_IN_FORCE, value="bj-employee", detail="2024-03-01")

        monkeypatch.setattr(ledger_reader, "iter_ledger_records", failing_read)
    else:
        writer_type = RecordWriter if fmt == "jsonl" else ColumnarWriter
        real_write = writer_type.write
        calls = []

        def full_disk(self, records):
            calls.append(len(records))
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            real_write(self, records)

        monkeypatch.setattr(writer_type, "write", full_disk)

    status = main(["export", "--ledger", ledger, "--format", fmt, "-o", str(output)])

    err = capsys.readouterr().err
    assert status == 2
    assert ("[3004]" if failure == "read" else "无法写入") in err
    assert sorted((p.name, p.stat().st_size) for p in (output.iterdir() if output.is_dir() else [output])) == before
    assert [p.name for p in tmp_path.iterdir()] == [output.name]
    if fmt == "jsonl":
        header, _ = read_header(output)
        assert sum(1 for _ in read_records(output)) == header.count
