"""Loading rule directories: the bundled rules, scheme resolution, and every rejected rule file."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy import MAX_BANDS, load_rules, person_group
from settlement.policy.groups import age_on
from settlement.types import Band

BUNDLED = bundled_rules_dir()
DAY_2024 = datetime.date(2024, 6, 1)


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(BUNDLED, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def edit_policy(rules: Path, policy_id: str, change: Callable[[dict[str, Any]], None], *, new_name: str | None = None) -> str:
    """Apply ``change`` to a bundled policy and write it back (or to ``new_name``); return the file's relative name."""
    source = rules / "policies" / f"{policy_id}.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    change(data)
    target = source if new_name is None else rules / "policies" / new_name
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target.relative_to(rules).as_posix()


def load_error(rules: Path) -> SettlementError:
    with pytest.raises(SettlementError) as raised:
        load_rules(rules)
    return raised.value


# ---------------------------------------------------------------------------
# Bundled rules


def test_bundled_rules_dir_has_policies_and_catalogue():
    assert (BUNDLED / "policies" / "bj-employee-2024.json").is_file()
    assert (BUNDLED / "catalogs" / "sample-catalog.csv").is_file()


def test_bundled_rules_load():
    rules = load_rules(BUNDLED)

    assert {"bj-employee-2024", "bj-resident-2024", "hz-employee-2025"} <= set(rules.policy_ids())
    assert len(rules.catalog) > 0


def test_bundled_policies_keep_provenance():
    rules = load_rules(BUNDLED)

    for policy_id in rules.policy_ids():
        (policy,) = rules.versions(policy_id)
        assert "legend" in policy.provenance
        assert "fund_pay_types" in policy.provenance


def test_bundled_policies_cover_their_calendar_year():
    rules = load_rules(BUNDLED)

    employee = rules.policy("bj-employee-2024", datetime.date(2024, 1, 1))
    assert employee.effective_to == datetime.date(2024, 12, 31)
    assert rules.policy("bj-employee-2024", datetime.date(2024, 12, 31)) is employee
    assert rules.policy("hz-employee-2025", datetime.date(2025, 3, 12)).admdvs == "330100"


def test_policy_outside_dates_not_in_force():
    rules = load_rules(BUNDLED)

    for day in (datetime.date(2023, 12, 31), datetime.date(2025, 1, 1)):
        with pytest.raises(SettlementError) as raised:
            rules.policy("bj-employee-2024", day)
        assert raised.value.code is ErrorCode.NO_POLICY_IN_FORCE
        assert raised.value.detail == day.isoformat()


def test_policy_for_region_and_insutype():
    rules = load_rules(BUNDLED)

    assert rules.policy_for("110000", "390", DAY_2024).policy_id == "bj-resident-2024"
    assert rules.policy_for("110000", "310", DAY_2024).policy_id == "bj-employee-2024"
    with pytest.raises(SettlementError) as raised:
        rules.policy_for("330100", "310", DAY_2024)
    assert raised.value.code is ErrorCode.NO_POLICY_IN_FORCE


def test_fund_pay_types_by_insutype():
    rules = load_rules(BUNDLED)

    employee = rules.policy("bj-employee-2024", DAY_2024).fund_pay_types
    resident = rules.policy("bj-resident-2024", DAY_2024).fund_pay_types
    assert employee == {"hifp": "310100", "hifob": "330100", "cvlserv": "320100", "acct": "310200"}
    assert resident["hifp"] == "390100"
    assert resident["hifmi"] == "390200"
    assert resident["maf"] == "610100"


def test_accumulator_year_follows_year_rule(tmp_path):
    rules = load_rules(BUNDLED)
    discharge = rules.policy("bj-employee-2024", DAY_2024)
    assert discharge.accumulator_year(datetime.date(2023, 12, 28), datetime.date(2024, 1, 5)) == 2024

    copied = copy_rules(tmp_path)
    edit_policy(copied, "bj-employee-2024", lambda data: data.update(year_rule="admission_year"))
    admission = load_rules(copied).policy("bj-employee-2024", DAY_2024)
    assert admission.accumulator_year(datetime.date(2023, 12, 28), datetime.date(2024, 1, 5)) == 2023
    assert admission.accumulator_year(None, datetime.date(2024, 1, 5)) == 2024


# ---------------------------------------------------------------------------
# Resolution


def test_resolve_inpatient_retiree_bands():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    params = policy.resolve("inpatient", "retired", "level2", False, None)

    assert params.deductible_basis == "per_admission"
    assert (params.deductible_amount, params.deductible_subsequent) == (130_000, 65_000)
    assert params.deductible_accumulator == "ip_admission_count"
    assert params.bands == (Band(0, 9220), Band(3_000_000, 9520), Band(4_000_000, 9820))
    assert params.fund_cap == 10_000_000
    assert params.large_amount_ratio == 9000
    assert params.large_amount_cap == 20_000_000
    assert params.civil_servant is None


def test_resolve_first_matching_rule_wins():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    community = policy.resolve("outpatient_general", "active", "community", False, None)
    hospital = policy.resolve("outpatient_general", "active", "level3", False, None)
    seventy = policy.resolve("outpatient_general", "retired_70plus", "level3", False, None)

    assert community.bands == (Band(0, 9000),)
    assert hospital.bands == (Band(0, 7000),)
    assert seventy.bands == (Band(0, 9000),)
    assert seventy.deductible_amount == 130_000


def test_resolve_civil_servant_only_when_flagged():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    flagged = policy.resolve("inpatient", "active", "level2", True, None)
    assert flagged.civil_servant is not None
    assert (flagged.civil_servant.dedc_ratio, flagged.civil_servant.copay_ratio) == (0, 6000)
    assert policy.resolve("pharmacy", "active", "pharmacy", True, None).civil_servant is None


def test_resolve_resident_layers():
    policy = load_rules(BUNDLED).policy("bj-resident-2024", DAY_2024)

    params = policy.resolve("inpatient", "resident", "level2", False, "tekun")

    assert params.critical_illness is not None
    assert params.critical_illness.bands == (Band(3_040_400, 6000), Band(5_000_000, 7000))
    assert params.medical_assistance is not None
    assert params.medical_assistance.ratio == 10_000
    assert params.account.has_account is False
    outpatient = policy.resolve("outpatient_general", "resident", "level1", False, "dibao")
    assert outpatient.critical_illness is None
    assert outpatient.medical_assistance is None


def test_resolve_scheme_without_fund():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    params = policy.resolve("pharmacy", "active", "pharmacy", False, None)

    assert params.fund_enabled is False
    assert params.deductible_basis == "none"
    assert params.bands == (Band(0, 0),)


def test_resolve_missing_scheme():
    policy = load_rules(BUNDLED).policy("hz-employee-2025", datetime.date(2025, 3, 1))

    with pytest.raises(SettlementError) as raised:
        policy.resolve("inpatient", "active", "level3", False, None)

    assert raised.value.code is ErrorCode.NO_SCHEME
    assert raised.value.value == "hz-employee-2025"


def test_resolve_no_matching_rule_names_path():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    with pytest.raises(SettlementError) as raised:
        policy.resolve("outpatient_general", "active", "pharmacy", False, None)

    assert raised.value.code is ErrorCode.NO_MATCHING_RULE
    assert raised.value.field == "schemes.outpatient_general.ratios.rules"
    assert "level=pharmacy" in raised.value.detail


def test_resolve_unknown_codes():
    policy = load_rules(BUNDLED).policy("bj-employee-2024", DAY_2024)

    cases = [
        (("inpatient", "student", "level2", False, None), ErrorCode.UNKNOWN_PERSON_GROUP),
        (("inpatient", "active", "level9", False, None), ErrorCode.INVALID_CODE),
        (("inpatient", "active", "level2", False, "poor"), ErrorCode.INVALID_CODE),
    ]
    for arguments, code in cases:
        with pytest.raises(SettlementError) as raised:
            policy.resolve(*arguments)
        assert raised.value.code is code, arguments


# ---------------------------------------------------------------------------
# Person groups


@pytest.mark.parametrize(
    ("psn_type", "age", "group"),
    [
        ("active", 30, "active"),
        ("retired", 69, "retired"),
        ("retired", 70, "retired_70plus"),
        ("resident", 8, "resident"),
        ("1101", 40, "active"),
        ("1102", None, "active"),
        ("1201", 65, "retired"),
        ("1201", 82, "retired_70plus"),
        ("1401", 10, "resident"),
        ("1501", 50, "resident"),
    ],
)
def test_person_group(psn_type, age, group):
    assert person_group(psn_type, age) == group


@pytest.mark.parametrize(
    ("psn_type", "age", "code"),
    [
        (None, 30, ErrorCode.MISSING_PERSON_GROUP),
        ("", 30, ErrorCode.MISSING_PERSON_GROUP),
        ("1301", 90, ErrorCode.UNKNOWN_PERSON_GROUP),
        ("student", 20, ErrorCode.UNKNOWN_PERSON_GROUP),
        ("retired", None, ErrorCode.REQUIRED_FIELD),
    ],
)
def test_person_group_rejects(psn_type, age, code):
    with pytest.raises(SettlementError) as raised:
        person_group(psn_type, age)

    assert raised.value.code is code


def test_age_on_counts_birthdays():
    born = datetime.date(1954, 6, 2)

    assert age_on(born, datetime.date(2024, 6, 1)) == 69
    assert age_on(born, datetime.date(2024, 6, 2)) == 70
    assert age_on(datetime.date(2004, 2, 29), datetime.date(2024, 2, 28)) == 19


# ---------------------------------------------------------------------------
# Rejected rule files: each names the code, the file and the field path.


def set_in(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_EDITS = [
    pytest.param(
        set_in(["schemes", "inpatient", "bands", "lower_bounds"], ["0.00", "40000.00", "30000.00"]),
        ErrorCode.RULE_BANDS_ORDER,
        "schemes.inpatient.bands.lower_bounds[2]",
        id="bands-out-of-order",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "bands", "lower_bounds"], ["100.00", "30000.00", "40000.00"]),
        ErrorCode.RULE_BANDS_ORDER,
        "schemes.inpatient.bands.lower_bounds[0]",
        id="bands-not-from-zero",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "bands", "lower_bounds"], [f"{index * 1000}.00" for index in range(MAX_BANDS + 1)]),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.bands.lower_bounds",
        id="too-many-bands",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "fund_cap", "accumulator"], "ip_fund_spent"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.fund_cap.accumulator",
        id="unknown-accumulator",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "deductible", "counter"], "ip_fund_paid"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.deductible.counter",
        id="amount-used-as-counter",
    ),
    pytest.param(
        set_in(["schemes", "outpatient_general", "fund_cap", "accumulator"], "acct_balc"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.outpatient_general.fund_cap.accumulator",
        id="balance-used-as-accumulator",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "ratios", "rules", 0, "ratios"], ["0.8500", "1.2000", "0.9500"]),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.ratios.rules[0].ratios[1]",
        id="ratio-above-one",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "ratios", "rules", 1, "ratios"], ["0.87", "0.92"]),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.ratios.rules[1].ratios",
        id="ratios-fewer-than-bands",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "deductible", "rules", 0, "first"], "1300.001"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.deductible.rules[0].first",
        id="bad-number",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "fund_cap", "amount"], 100000),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.fund_cap.amount",
        id="number-not-string",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "fund_cap", "amount"], "-1.00"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.fund_cap.amount",
        id="negative-amount",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "extra_field"], True),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.extra_field",
        id="unknown-field",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "ratios", "rules", 0, "groups"], ["active", "veteran"]),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.ratios.rules[0].groups[1]",
        id="unknown-group",
    ),
    pytest.param(
        set_in(["schemes", "outpatient_general", "deductible", "rules", 0, "levels"], ["level4"]),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.outpatient_general.deductible.rules[0].levels[0]",
        id="unknown-level",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "med_type_code"], "11"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.med_type_code",
        id="wrong-med-type-code",
    ),
    pytest.param(
        set_in(["schemes", "pharmacy", "ratios"], {"rules": []}),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.pharmacy.ratios",
        id="ratios-without-fund",
    ),
    pytest.param(
        set_in(["fund_pay_types"], {"hifp": "310100", "cvlserv": "320100", "acct": "310200"}),
        ErrorCode.RULE_FILE_INVALID,
        "fund_pay_types.hifob",
        id="missing-fund-pay-type",
    ),
    pytest.param(
        set_in(["fund_pay_types", "bonus"], "999999"),
        ErrorCode.RULE_FILE_INVALID,
        "fund_pay_types.bonus",
        id="unknown-fund-layer",
    ),
    pytest.param(
        set_in(["effective_to"], "2023-12-31"),
        ErrorCode.RULE_FILE_INVALID,
        "effective_to",
        id="dates-reversed",
    ),
    pytest.param(
        set_in(["effective_from"], "2024-02-30"),
        ErrorCode.RULE_FILE_INVALID,
        "effective_from",
        id="invalid-date",
    ),
    pytest.param(
        set_in(["year_rule"], "fiscal_year"),
        ErrorCode.RULE_FILE_INVALID,
        "year_rule",
        id="unknown-year-rule",
    ),
    pytest.param(
        set_in(["max_lines"], 0),
        ErrorCode.RULE_FILE_INVALID,
        "max_lines",
        id="max-lines-zero",
    ),
    pytest.param(
        lambda data: data.pop("admdvs"),
        ErrorCode.RULE_FILE_INVALID,
        "admdvs",
        id="missing-field",
    ),
    pytest.param(
        set_in(["civil_servant", "schemes", "dental"], {"dedc_ratio": "0.0000", "copay_ratio": "0.5000"}),
        ErrorCode.RULE_FILE_INVALID,
        "civil_servant.schemes.dental",
        id="unknown-med-type-in-layer",
    ),
    pytest.param(
        set_in(["civil_servant", "schemes", "inpatient", "copay"], "0.6000"),
        ErrorCode.RULE_FILE_INVALID,
        "civil_servant.schemes.inpatient.copay",
        id="unknown-field-in-layer-map",
    ),
    pytest.param(
        set_in(["fund_pay_types", "hifob"], 330100),
        ErrorCode.RULE_FILE_INVALID,
        "fund_pay_types.hifob",
        id="code-not-string",
    ),
    pytest.param(
        set_in(["schemes", "inpatient", "deductible", "basis"], "weekly"),
        ErrorCode.RULE_FILE_INVALID,
        "schemes.inpatient.deductible.basis",
        id="unknown-deductible-basis",
    ),
]


@pytest.mark.parametrize(("change", "code", "field"), BAD_EDITS)
def test_bad_policy_file_rejected(tmp_path, change, code, field):
    rules = copy_rules(tmp_path)
    name = edit_policy(rules, "bj-employee-2024", change)

    error = load_error(rules)

    assert error.code is code
    assert error.value == name
    assert error.field == field


def test_resident_critical_illness_bands_out_of_order(tmp_path):
    rules = copy_rules(tmp_path)
    bands = [{"from": "50000.00", "ratio": "0.7000"}, {"from": "30404.00", "ratio": "0.6000"}]
    name = edit_policy(rules, "bj-resident-2024", set_in(["critical_illness", "bands"], bands))

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_BANDS_ORDER
    assert error.value == name
    assert error.field == "critical_illness.bands[1]"


def test_overlapping_dates_same_policy_id(tmp_path):
    rules = copy_rules(tmp_path)
    shifted = set_in(["effective_from"], "2024-12-01")
    name = edit_policy(rules, "bj-employee-2024", lambda data: (shifted(data), data.update(effective_to="2025-11-30")), new_name="bj-employee-2025.json")

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_DATES_OVERLAP
    assert error.value == name
    assert error.field == "effective_from"
    assert "policies/bj-employee-2024.json" in error.detail


def test_overlapping_dates_same_region(tmp_path):
    rules = copy_rules(tmp_path)
    name = edit_policy(rules, "bj-employee-2024", set_in(["policy_id"], "bj-employee-2024-alt"), new_name="zz-alt.json")

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_DATES_OVERLAP
    assert error.value == name


def test_consecutive_versions_load(tmp_path):
    rules = copy_rules(tmp_path)

    def next_year(data: dict[str, Any]) -> None:
        data.update(effective_from="2025-01-01", effective_to="2025-12-31")
        data["schemes"]["outpatient_general"]["deductible"]["rules"][0]["amount"] = "1700.00"

    edit_policy(rules, "bj-employee-2024", next_year, new_name="bj-employee-2025.json")
    loaded = load_rules(rules)

    assert len(loaded.versions("bj-employee-2024")) == 2
    later = loaded.policy("bj-employee-2024", datetime.date(2025, 6, 1))
    assert later.resolve("outpatient_general", "active", "level2", False, None).deductible_amount == 170_000
    earlier = loaded.policy("bj-employee-2024", DAY_2024)
    assert earlier.resolve("outpatient_general", "active", "level2", False, None).deductible_amount == 180_000


def test_malformed_json_rejected(tmp_path):
    rules = copy_rules(tmp_path)
    (rules / "policies" / "broken.json").write_text('{"policy_id": "x",', encoding="utf-8")

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_FILE_INVALID
    assert error.value == "policies/broken.json"
    assert "JSON" in error.message_en


def test_bad_catalogue_rejects_whole_load(tmp_path):
    rules = copy_rules(tmp_path)
    with (rules / "catalogs" / "sample-catalog.csv").open("a", encoding="utf-8") as handle:
        handle.write("T-BAD-0001,坏条目,04,0.0000,,2024-01-01,\n")

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_FILE_INVALID
    assert error.value == "catalogs/sample-catalog.csv"
    assert error.field.endswith("chrgitm_lv")


def test_unsupported_catalogue_file_rejected(tmp_path):
    rules = copy_rules(tmp_path)
    (rules / "catalogs" / "extra.jsonl").write_text("{}\n", encoding="utf-8")

    error = load_error(rules)

    assert error.code is ErrorCode.RULE_FILE_INVALID
    assert error.value == "catalogs/extra.jsonl"


def test_missing_rules_directory(tmp_path):
    error = load_error(tmp_path / "nowhere")

    assert error.code is ErrorCode.RULE_FILE_INVALID
