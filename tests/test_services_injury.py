"""Work-injury treatment settled through the kernel against the injury fund, and posted to the journal."""

from settlement.paths import bundled_rules_dir
from settlement.services.injury import load_injury_policies
from tests.services_support import ServicesHarness, run

LINES = [
    # Class A service: the fund pays all of it.
    {"feedetl_sn": "1", "med_list_codg": "T-SVC-0002", "pric": "30.00", "cnt": "1"},
    # Class B drug with a 10% first self-pay share: 2 x 18.50 = 37.00, the person pays 3.70.
    {"feedetl_sn": "2", "med_list_codg": "T-DRG-0002", "pric": "18.50", "cnt": "2"},
    # Not in the catalogue: the person pays it.
    {"feedetl_sn": "3", "med_list_codg": "X-NOT-LISTED", "pric": "12.00", "cnt": "1"},
]


def test_bundled_injury_policy_loads():
    policies = load_injury_policies(bundled_rules_dir() / "services" / "injury")
    assert [policy.policy_id for policy in policies] == ["bj-injury-2021"]


def test_injury_treatment_settles_against_injury_fund(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path) as harness:
            case = await harness.ok("/api/injury/register", {"psn_no": "SVC-0002", "injury_date": "2024-05-20", "description": "工作中摔伤"})
            request = {"case_id": case["case_id"], "msgid": "M0001", "med_type": "11", "lines": LINES, "date": "2024-05-21"}

            status, answer = await harness.api("/api/injury/settle", request)
            assert (status, answer["code"]) == (400, 8015)
            async with harness.services.db.transaction() as conn:
                assert await conn.fetchval("SELECT count(*) FROM journal_transactions WHERE origin = 'svc-injury'") == 0

            await harness.ok("/api/injury/decide", {"case_id": case["case_id"], "recognized": True, "date": "2024-05-21"})
            result = await harness.ok("/api/injury/settle", request)
            assert result["medfee_sumamt"] == 3_000 + 3_700 + 1_200
            assert result["fund_pay_sumamt"] == 3_000 + 3_330
            assert result["psn_cash_pay"] == 370 + 1_200
            assert result["outputs"]["act_pay_dedc"] == 0

            again = await harness.ok("/api/injury/settle", request)
            assert again["txn_id"] == result["txn_id"]

            ledger = harness.services.ledger
            assert await ledger.account_balance("fund:110000:410:410100") == 6_330
            assert await ledger.account_balance(f"medins_payable:{'H99000000001'}") == 6_330
            report = await ledger.verify()
            assert report.ok, report.differences

            status, answer = await harness.api("/api/injury/decide", {"case_id": case["case_id"], "recognized": False})
            assert answer["code"] == 2003
            status, answer = await harness.api("/api/injury/settle", {**request, "msgid": "M0002", "lines": [{**LINES[0], "pric": -1}]})
            assert (answer["code"], answer["field"]) == (1003, "lines[0].pric")

    run(scenario())
