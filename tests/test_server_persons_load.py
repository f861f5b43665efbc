"""``settlement persons load``: persons from JSON or CSV are registered and funded once, on both ledgers."""

import asyncio
import io
import json

import pytest

from adapters.cli.persons import run_load
from tests.server_harness import LedgerInspector, ledger_dsn

CSV_TEXT = (
    "psn_no,psn_cert_type,certno,psn_name,gend,naty,brdy,insutype,psn_type,cvlserv_flag,maf_type,insuplc_admdvs,emp_name,"
    "psn_insu_date,acct_balc,card_no,card_sn\n"
    "PSN-TEST-0101,01,990000199001010101,测试甲,1,01,1990-01-01,310,1101,0,,110000,,,120.50,TESTCARD0101,\n"
    "PSN-TEST-0102,01,990000199001010102,测试乙,2,01,1990-01-01,310,1101,0,,110000,,,0.00,TESTCARD0102,\n"
)
JSON_PERSONS = {"persons": [{
    "psn_no": "PSN-TEST-0103", "certno": "990000199001010103", "psn_name": "测试丙", "gend": "1", "brdy": "1990-01-01",
    "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000", "acct_balc": "35.00", "cards": [{"card_no": "TESTCARD0103"}],
}]}


def _balance(dsn, psn_no):
    from adapters.ledger import open_store

    async def read():
        store = await open_store(dsn)
        try:
            return await store.account_balance(f"personal:{psn_no}")
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.mark.parametrize("ledger", ["sqlite", "postgres"])
def test_persons_load_funds_once(ledger, tmp_path):
    csv_file = tmp_path / "persons.csv"
    csv_file.write_text(CSV_TEXT, encoding="utf-8")
    json_file = tmp_path / "persons.json"
    json_file.write_text(json.dumps(JSON_PERSONS, ensure_ascii=False), encoding="utf-8")

    with ledger_dsn(ledger, tmp_path) as dsn:
        for _ in range(2):
            out, err = io.StringIO(), io.StringIO()
            assert run_load(str(csv_file), dsn, 2024, "en", out, err) == 0, err.getvalue()
            assert "loaded 2 persons" in out.getvalue()
            assert run_load(str(json_file), dsn, 2024, "zh", out, err) == 0, err.getvalue()

        inspector = LedgerInspector(dsn)
        assert _balance(dsn, "PSN-TEST-0101") == 12050
        assert _balance(dsn, "PSN-TEST-0102") == 0
        assert _balance(dsn, "PSN-TEST-0103") == 3500
        deposits = inspector.query("SELECT txn_id FROM journal_transactions WHERE kind = 'deposit'")
        assert len(deposits) == 2
        cards = inspector.query("SELECT card_no FROM srv_card ORDER BY card_no")
        assert [row[0] for row in cards] == ["TESTCARD0101", "TESTCARD0102", "TESTCARD0103"]

        # Money spent after the first load is not put back by loading the file again (a server restart).
        _withdraw(dsn, "PSN-TEST-0101", 2050)
        _withdraw(dsn, "PSN-TEST-0103", 3500)
        out, err = io.StringIO(), io.StringIO()
        assert run_load(str(csv_file), dsn, 2024, "en", out, err) == 0, err.getvalue()
        assert run_load(str(json_file), dsn, 2024, "en", out, err) == 0, err.getvalue()
        assert _balance(dsn, "PSN-TEST-0101") == 10000
        assert _balance(dsn, "PSN-TEST-0103") == 0
        assert len(inspector.query("SELECT txn_id FROM journal_transactions WHERE kind = 'deposit'")) == 4


def _withdraw(dsn, psn_no, fen):
    from adapters.ledger import open_store
    from settlement.store import DepositRequest

    async def run():
        store = await open_store(dsn)
        try:
            await store.deposit(DepositRequest(
                msgid=f"spend/{psn_no}", psn_no=psn_no, insuplc_admdvs="110000", insutype="310", amount=-fen, period="2024",
                origin="test-spend", memo="spent after the load",
            ))
        finally:
            await store.close()

    asyncio.run(run())


def test_persons_load_rejects_bad_row(tmp_path):
    bad = tmp_path / "persons.csv"
    bad.write_text(CSV_TEXT.replace("1990-01-01,310,1101,0,,110000,,,120.50", "1990-01-01,310,1101,0,,11000X,,,120.50"), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    with ledger_dsn("sqlite", tmp_path) as dsn:
        status = run_load(str(bad), dsn, 2024, "en", out, err)

    assert status == 1
    assert "insuplc_admdvs" in err.getvalue()
    assert "11000X" in err.getvalue()
