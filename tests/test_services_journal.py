"""Unemployment benefit and endowment contributions as journal transactions, on SQLite and PostgreSQL."""

import datetime
import pathlib

import pytest

from adapters.services import employment
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.services.employment import (
    EmploymentStatus,
    benefit_months,
    month_periods,
)
from settlement.services.pension import contribution_amount, yearly_interest
from settlement.services.standards import load_standards
from tests.server_harness import ledger_dsn
from tests.services_support import ServicesHarness, run

STANDARDS = load_standards(bundled_rules_dir() / "services")
BJ = STANDARDS.on("110000", datetime.date(2024, 6, 1))


@pytest.mark.parametrize(("months", "expected"), [(12, 12), (59, 12), (60, 18), (119, 18), (120, 24), (400, 24)])
def test_benefit_months_from_table(months, expected):
    assert benefit_months(BJ.unemployment, months, "P1") == expected


def test_benefit_needs_one_contribution_year():
    with pytest.raises(SettlementError) as caught:
        benefit_months(BJ.unemployment, 11, "P1")
    assert caught.value.code is ErrorCode.BENEFIT_NOT_ELIGIBLE


def test_month_periods_cross_year():
    assert month_periods("2024-11", 3) == ["2024-11", "2024-12", "2025-01"]


def test_contribution_rounds_half_away_from_zero():
    assert contribution_amount(1_000_000, 800) == 80_000
    # 6821.06 yuan x 8% = 545.6848 yuan -> 545.68
    assert contribution_amount(682_106, 800) == 54_568
    # 6821.0625 is not a fen amount; 6821.07 x 8% = 545.6856 -> 545.69
    assert contribution_amount(682_107, 800) == 54_569


def test_yearly_interest_to_the_fen():
    # 10000.00 opening at 2.62% = 262.00; 800.00 in January earns 11/12 = 19.2133...; December earns nothing.
    assert yearly_interest(1_000_000, {1: 80_000, 12: 80_000}, 262) == 26_200 + 1_921
    # Exactly half a fen rounds up: 50 fen x 1% = 0.5 fen.
    assert yearly_interest(50, {}, 100) == 1


def _scenario(dsn: str, tmp_path: pathlib.Path):
    async def scenario():
        async with ServicesHarness(dsn, tmp_path) as harness:
            ctx = harness.ctx
            assert await employment.register(ctx, "SVC-0002", "job", datetime.date(2019, 3, 1), {}) is EmploymentStatus.EMPLOYED
            await employment.register(ctx, "SVC-0002", "unemployment", datetime.date(2024, 4, 30), {"reason": "合同到期"})
            claim = await harness.ok("/api/employment/benefit/apply", {"psn_no": "SVC-0002", "contribution_months": 62, "first_period": "2024-05"})
            assert (claim["months"], claim["monthly_benefit"], claim["last_period"]) == (18, 222_400, "2025-10")

            paid = [await harness.ok("/api/employment/benefit/pay", {"claim_id": claim["claim_id"], "period": p}) for p in ("2024-05", "2024-06")]
            again = await harness.ok("/api/employment/benefit/pay", {"claim_id": claim["claim_id"], "period": "2024-05"})
            assert again["txn_id"] == paid[0]["txn_id"]

            records = await harness.ok("/api/pension/records", {"psn_no": "SVC-0002", "insutype": "310", "year": 2024})
            assert [(r["period"], r["amount"]) for r in records] == [("2024-05", 32_000), ("2024-06", 32_000)]

            # A job ends the benefit: the next month is not paid.
            await employment.register(ctx, "SVC-0002", "job", datetime.date(2024, 7, 1), {})
            status, answer = await harness.api("/api/employment/benefit/pay", {"claim_id": claim["claim_id"], "period": "2024-07"})
            assert (status, answer["code"]) == (400, 8008)

            contributions = [
                await harness.ok("/api/pension/contribute", {"psn_no": "SVC-0001", "period": f"2023-{m:02d}", "base": "10000.00"}) for m in (1, 12)
            ]
            assert [c["amount"] for c in contributions] == [80_000, 80_000]
            interest = await harness.ok("/api/pension/interest", {"psn_no": "SVC-0001", "year": 2023})
            # 800.00 x 3.97% x 11/12 = 29.1133 -> 29.11
            assert interest["amount"] == 2_911
            account = await harness.ok("/api/pension/account", {"psn_no": "SVC-0001"})
            assert account["balance"] == 160_000 + 2_911

            status, answer = await harness.api("/api/pension/interest", {"psn_no": "SVC-0001", "year": 2023})
            assert answer["code"] == 8012
            status, answer = await harness.api("/api/pension/contribute", {"psn_no": "SVC-0001", "period": "2023-01", "base": "12000.00"})
            assert answer["code"] == 8011
            status, answer = await harness.api("/api/pension/contribute", {"psn_no": "SVC-0001", "period": "2023-02", "base": "100.00"})
            assert (answer["code"], answer["field"]) == (1005, "base")
            status, answer = await harness.api("/api/pension/contribute", {"psn_no": "SVC-0001", "period": "2023-13", "base": "10000.00"})
            assert (answer["code"], answer["field"]) == (2003, "period")

            report = await harness.services.ledger.verify()
            assert report.ok, report.differences

            transactions = {}
            for txn in [p["txn_id"] for p in paid] + [c["txn_id"] for c in contributions] + [interest["txn_id"]]:
                async with harness.services.db.transaction() as conn:
                    rows = await conn.fetch("SELECT debit, credit FROM journal_postings WHERE txn_id = $1", txn)
                transactions[txn] = (sum(int(r["debit"]) for r in rows), sum(int(r["credit"]) for r in rows))
            assert all(debit == credit > 0 for debit, credit in transactions.values())
            ledger = harness.services.ledger
            assert await ledger.account_balance("fund:110000:210:210100") == 2 * 222_400
            assert await ledger.account_balance("fund:110000:210:210200") == 2 * 32_000
            assert await ledger.account_balance("fund:110000:110:110200") == -(160_000 + 2_911)

    run(scenario())


def test_benefit_and_pension_journal_sqlite(tmp_path):
    _scenario(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path)


@pytest.mark.postgres
def test_benefit_and_pension_journal_postgres(tmp_path):
    with ledger_dsn("pg", tmp_path) as dsn:
        _scenario(dsn, tmp_path)
