"""Honest mistakes of an auditor: a date in another form, a reversed period, a mistyped path, an output that is not ours."""

from __future__ import annotations

import json
import shutil

import pytest

from adapters.cli import main
from replay_support import build_ledger, sqlite_path


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    dsn, _ = build_ledger(tmp_path_factory.mktemp("mistakes-ledger"), 60, with_vectors=False)
    return dsn


@pytest.mark.parametrize("date", ["20240301", "2024/03/01", "2024-3-1", "2024-02-30"])
@pytest.mark.parametrize("command", ["replay", "export"])
def test_non_iso_date_rejected(ledger, tmp_path, capsys, date, command):
    argv = [command, "--ledger", ledger, "--from", date] + (["--out", str(tmp_path / "r")] if command == "replay" else ["-o", str(tmp_path / "e.jsonl")])

    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2
    assert "应为 yyyy-MM-dd 格式的日期" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "e.jsonl").exists()


def test_reversed_period_rejected(ledger, tmp_path, capsys):
    status = main(["replay", "--ledger", ledger, "--from", "2024-03-02", "--to", "2024-03-01", "--out", str(tmp_path / "r"), "--lang", "en"])

    assert status == 2
    assert "field --to: invalid value 2024-03-01: it is before --from 2024-03-02" in capsys.readouterr().err


def test_empty_selection_not_ok(ledger, tmp_path, capsys):
    status = main(["replay", "--ledger", ledger, "--institution", "H00000000000", "--out", str(tmp_path / "r"), "--no-progress"])

    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert status == 1
    assert summary["ok"] is False
    assert summary["empty"] is True
    assert "所选范围内没有结算记录" in capsys.readouterr().out
    assert "未核对任何结算" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["replay", "export"])
def test_missing_sqlite_ledger_named(tmp_path, capsys, command):
    missing = f"sqlite://{tmp_path / 'ledgr.sqlite3'}"
    argv = [command, "--ledger", missing] + (["--out", str(tmp_path / "r")] if command == "replay" else ["-o", str(tmp_path / "e.jsonl")])

    status = main(argv)

    assert status == 2
    assert f"账本文件 {tmp_path / 'ledgr.sqlite3'} 不存在" in capsys.readouterr().err
    assert not (tmp_path / "ledgr.sqlite3").exists()


def test_export_keeps_foreign_file(ledger, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(sqlite_path(ledger), copy)
    before = copy.read_bytes()

    status = main(["export", "--ledger", f"sqlite://{copy}", "-o", str(copy)])

    assert status == 2
    assert "已存在且不是导出的记录文件" in capsys.readouterr().err
    assert copy.read_bytes() == before
    # An earlier export is replaced as before.
    assert main(["export", "--ledger", ledger, "-o", str(tmp_path / "e.jsonl")]) == 0
    assert main(["export", "--ledger", ledger, "-o", str(tmp_path / "e.jsonl")]) == 0


def test_missing_input_and_file_report(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nosuch.jsonl"), "--out", str(tmp_path / "r"), "--lang", "en"]) == 2
    assert f"cannot read {tmp_path / 'nosuch.jsonl'}: No such file or directory" in capsys.readouterr().err

    (tmp_path / "plain.txt").write_text("notes", encoding="utf-8")
    assert main(["replay", str(tmp_path / "nosuch.jsonl"), "--out", str(tmp_path / "plain.txt")]) == 2
    assert "报告目录" in capsys.readouterr().err
