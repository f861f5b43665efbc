"""Retirement moves a person to the retired group from its effective date: deductible and ratios change."""

import datetime

import pytest

from adapters.services import employment as employment_ops
from settlement import engine
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy import load_rules, person_group
from settlement.policy.groups import age_on
from settlement.services.employment import Retirement, psn_type_on
from settlement.types import ChargeClass, ClaimInput, FeeLine
from tests.services_support import ServicesHarness, run

RULES = load_rules(bundled_rules_dir())
BIRTH = datetime.date(1960, 5, 5)
RETIREMENT = Retirement(datetime.date(2024, 6, 1), "1201")


def _settle_outpatient(on_date: datetime.date, psn_type: str):
    """Settle one class-A line of 3000.00 yuan at a level-1 hospital, no deductible used yet, no account."""
    policy = RULES.policy_for("110000", "310", on_date)
    group = person_group(psn_type_on(psn_type, RETIREMENT, on_date), age_on(BIRTH, on_date))
    params = policy.resolve("outpatient_general", group, "level1", False, None)
    line = FeeLine(feedetl_sn="L1", med_list_codg="XM0001", charge_class=ChargeClass.A, price_micro=3_000_000_000, quantity=10_000)
    return group, engine.settle(ClaimInput(params=params, lines=(line,), accumulators={}, acct_used=False)).outputs


def test_psn_type_changes_on_effective_date():
    assert psn_type_on("1101", RETIREMENT, datetime.date(2024, 5, 31)) == "1101"
    assert psn_type_on("1101", RETIREMENT, datetime.date(2024, 6, 1)) == "1201"
    assert psn_type_on("1101", None, datetime.date(2030, 1, 1)) == "1101"


def test_settlement_before_retirement_uses_active_rules():
    group, outputs = _settle_outpatient(datetime.date(2024, 5, 31), "1101")
    assert group == "active"
    # Deductible 1800.00, then 70% of the remaining 1200.00.
    assert outputs.act_pay_dedc == 180_000
    assert outputs.hifp_pay == 84_000
    assert outputs.psn_cash_pay == 216_000


def test_settlement_from_retirement_date_uses_retired_rules():
    group, outputs = _settle_outpatient(datetime.date(2024, 6, 1), "1101")
    assert group == "retired"
    # Deductible 1300.00, then 85% of the remaining 1700.00.
    assert outputs.act_pay_dedc == 130_000
    assert outputs.hifp_pay == 144_500
    assert outputs.psn_cash_pay == 155_500


def test_retirement_operation_records_date_once(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path) as harness:
            await employment_ops.register(harness.ctx, "SVC-0001", "job", datetime.date(2000, 1, 1), {})
            answer = await harness.ok("/api/pension/retire", {"psn_no": "SVC-0001", "effective_date": "2024-06-01"})
            assert answer == {"psn_no": "SVC-0001", "effective_date": "2024-06-01", "retired_psn_type": "1201"}
            view = await harness.ok("/api/employment/status", {"psn_no": "SVC-0001"})
            assert (view["status"], view["retirement_date"]) == ("retired", "2024-06-01")

            status, again = await harness.api("/api/employment/retire", {"psn_no": "SVC-0001", "effective_date": "2024-07-01"})
            assert (status, again["code"]) == (400, 8010)
            status, wrong = await harness.api("/api/employment/retire", {"psn_no": "SVC-0002", "effective_date": "2024-07-01", "retired_psn_type": "1101"})
            assert (wrong["code"], wrong["field"]) == (2003, "retired_psn_type")
            # No endowment contribution for a month from retirement on.
            status, late = await harness.api("/api/pension/contribute", {"psn_no": "SVC-0001", "period": "2024-06", "base": "10000.00"})
            assert late["code"] == 8007

    run(scenario())


def test_job_registration_twice_rejected():
    from settlement.services.employment import EmploymentStatus, check_registration

    with pytest.raises(SettlementError) as caught:
        check_registration("job", EmploymentStatus.EMPLOYED, "P1")
    assert caught.value.code is ErrorCode.EMPLOYMENT_STATE_CONFLICT
    with pytest.raises(SettlementError):
        check_registration("unemployment", EmploymentStatus.RETIRED, "P1")
