"""The ledger commands as an operator runs them: ``settlement db migrate``, ``ledger fund`` and ``ledger verify``."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import asyncpg
import pytest

from adapters.cli import main
from adapters.ledger import open_store, parse_dsn
from ledger_support import PG_DSN, pg_dsn_with_schema, settle_request, sql_in_transaction, toy_compute
from settlement.errors import ErrorCode, SettlementError


@pytest.fixture
def sqlite_dsn(tmp_path):
    return f"sqlite://{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture
def pg_dsn():
    schema = f"ledger_cli_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE SCHEMA {schema}"))
    try:
        yield pg_dsn_with_schema(schema)
    finally:
        asyncio.run(admin(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def dsn(request):
    return request.getfixturevalue(f"{request.param}_dsn")


def write_funding_file(tmp_path, rows: str):
    path = tmp_path / "funding.csv"
    path.write_text("psn_no,insuplc_admdvs,insutype,amount\n" + rows, encoding="utf-8")
    return path


def test_migrate_applies_once_then_reports_up_to_date(dsn, capsys):
    assert main(["db", "migrate", "--ledger", dsn]) == 0
    first = capsys.readouterr().out
    assert "0001_ledger" in first

    assert main(["db", "migrate", "--ledger", dsn, "--lang", "en"]) == 0
    assert capsys.readouterr().out == "schema is up to date\n"


def test_fund_then_verify_then_tamper(dsn, tmp_path, capsys):
    assert main(["db", "migrate", "--ledger", dsn]) == 0
    funding = write_funding_file(tmp_path, "P1,110100,310,1200.00\nP2,110100,310,35.5\n")

    assert main(["ledger", "fund", "--ledger", dsn, "--period", "2024", "--file", str(funding)]) == 0
    assert "已入账 2 笔，合计 1235.50 元" in capsys.readouterr().out
    assert main(["ledger", "fund", "--ledger", dsn, "--period", "2024", "--file", str(funding), "--lang", "en"]) == 0
    capsys.readouterr()
    assert main(["ledger", "fund", "--ledger", dsn, "--period", "2024-07", "--psn-no", "P2", "--admdvs", "110100", "--amount", "10.00"]) == 0
    capsys.readouterr()

    async def settle_and_balances():
        store = await open_store(dsn)
        try:
            await store.settle(settle_request(1, psn_no="P1"), toy_compute(20_000))
            return await store.account_balance("personal:P1"), await store.account_balance("personal:P2")
        finally:
            await store.close()

    assert asyncio.run(settle_and_balances()) == (120_000 - 6_000, 4_550)

    assert main(["ledger", "verify", "--ledger", dsn]) == 0
    out = capsys.readouterr().out
    assert "核对通过" in out
    assert "交易 4" in out

    async def tamper():
        store = await open_store(dsn)
        try:
            await sql_in_transaction(store, [("UPDATE ledger_accounts SET debits_posted = debits_posted + 1 WHERE account_key = ?", ("personal:P2",))])
        finally:
            await store.close()

    asyncio.run(tamper())
    assert main(["ledger", "verify", "--ledger", dsn, "--lang", "en"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 differences" in out
    assert "account personal:P2: stored debits 1 credits 4550, journal debits 0 credits 4550" in out


def test_fund_file_with_bad_amount_names_the_line(sqlite_dsn, tmp_path, capsys):
    assert main(["db", "migrate", "--ledger", sqlite_dsn]) == 0
    funding = write_funding_file(tmp_path, "P1,110100,310,12.345\n")
    assert main(["ledger", "fund", "--ledger", sqlite_dsn, "--period", "2024", "--file", str(funding), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "[5001]" in err
    assert "funding.csv:2:amount" in err


def test_withdrawal_beyond_balance_fails(sqlite_dsn, capsys):
    assert main(["db", "migrate", "--ledger", sqlite_dsn]) == 0
    args = ["ledger", "fund", "--ledger", sqlite_dsn, "--psn-no", "P1", "--admdvs", "110100", "--lang", "en"]
    assert main([*args, "--period", "2024", "--amount", "5.00"]) == 0
    assert main([*args, "--period", "2024-12", "--amount", "-5.01"]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out
    assert f"[{ErrorCode.INSUFFICIENT_BALANCE.number}]" in captured.err


def test_unmigrated_ledger_is_refused_with_hint(dsn, capsys):
    if dsn.startswith("sqlite://"):
        # An existing but empty database file, as a ledger that was never migrated.
        sqlite3.connect(parse_dsn(dsn)[1]).close()
    assert main(["ledger", "verify", "--ledger", dsn, "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert f"[{ErrorCode.LEDGER_SCHEMA_OUTDATED.number}]" in err
    assert "settlement db migrate" in err


def test_edited_migration_is_detected(sqlite_dsn, capsys):
    assert main(["db", "migrate", "--ledger", sqlite_dsn]) == 0
    conn = sqlite3.connect(sqlite_dsn[len("sqlite://") :])
    conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    conn.commit()
    conn.close()
    assert main(["db", "migrate", "--ledger", sqlite_dsn, "--lang", "en"]) == 1
    assert f"[{ErrorCode.MIGRATION_FAILED.number}]" in capsys.readouterr().err


def test_dsn_forms():
    assert parse_dsn("sqlite:///var/lib/ledger.db") == ("sqlite", "/var/lib/ledger.db")
    assert parse_dsn("sqlite://ledger.db") == ("sqlite", "ledger.db")
    assert parse_dsn("postgresql://u@h/db") == ("pg", "postgresql://u@h/db")
    for bad in ("mysql://x", "sqlite://", "sqlite://:memory:"):
        with pytest.raises(SettlementError) as invalid:
            parse_dsn(bad)
        assert invalid.value.code is ErrorCode.LEDGER_DSN_INVALID
    with pytest.raises(SettlementError) as hidden:
        parse_dsn("mysql://user:secret@host/db")
    assert "secret" not in hidden.value.message_en


def test_verify_of_missing_sqlite_file_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo.sqlite3"
    assert main(["ledger", "verify", "--ledger", f"sqlite://{missing}"]) == 2
    assert "7005" in capsys.readouterr().err
    assert not missing.exists()
