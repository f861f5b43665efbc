"""Reading claim vectors into engine inputs and expected values."""

from __future__ import annotations

import datetime

import pytest

from settlement.claimfile import read_claim_file, resolve_policy_ref
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy import load_rules
from settlement.types import SETTLEMENT_OUTPUT_FIELDS, ChargeClass, FeeLine
from tests.vector_files import edited_vector, load_vector, vector_path, vector_paths

RULES = load_rules(bundled_rules_dir())


def read_error(path) -> SettlementError:
    with pytest.raises(SettlementError) as raised:
        read_claim_file(path, RULES)
    return raised.value


@pytest.mark.parametrize("path", vector_paths(), ids=lambda path: path.name[:4])
def test_every_vector_reads(path):
    claim_file = read_claim_file(path, RULES)
    raw = load_vector(path.name[:4])

    assert claim_file.example_id == raw["example_id"]
    assert claim_file.operation == raw["operation"]
    block = raw.get("original", raw)
    assert len(claim_file.case.claim.lines) == block["line_count"]
    assert claim_file.expected_outputs


def test_settle_vector_values():
    claim_file = read_claim_file(vector_path("ex03"), RULES)
    case = claim_file.case

    assert claim_file.policy_id == "bj-employee-2024"
    assert case.group == "active"
    assert case.setl_date == datetime.date(2024, 5, 20)
    assert case.claim.acct_used is True
    assert case.claim.accumulators == {"acct_balc": 10_000, "op_dedc_used": 160_000, "op_fund_paid": 0}
    assert case.claim.lines[1] == FeeLine(
        feedetl_sn="2",
        med_list_codg="T-DRG-0002",
        charge_class=ChargeClass.B,
        price_micro=48_000_000,
        quantity=20_000,
        selfpay_prop=1000,
        price_cap_micro=None,
    )
    assert case.claim.params.deductible_amount == 180_000
    assert case.expected_outputs is not None
    assert case.expected_outputs["hifp_pay"] == 25_116
    assert set(case.expected_outputs) == set(SETTLEMENT_OUTPUT_FIELDS)
    assert case.expected_accumulators_after == {"acct_balc": 0, "op_dedc_used": 180_000, "op_fund_paid": 25_116}


def test_fractional_quantities_and_six_decimal_prices():
    lines = read_claim_file(vector_path("ex21"), RULES).case.claim.lines

    assert lines[0].quantity == 12_500
    assert lines[2].price_micro == 86_000
    assert lines[2].quantity == 2_333_333


def test_price_caps_read():
    lines = read_claim_file(vector_path("ex04"), RULES).case.claim.lines

    assert [line.price_cap_micro for line in lines] == [2_800_000, 100_000_000, 20_000_000, None]


def test_counters_stay_integers():
    case = read_claim_file(vector_path("ex15"), RULES).case

    assert case.claim.accumulators["ip_admission_count"] == 3
    assert case.expected_accumulators_after is not None
    assert case.expected_accumulators_after["ip_admission_count"] == 4


def test_family_account_becomes_accumulator():
    claim_file = read_claim_file(vector_path("ex28"), RULES)
    claim = claim_file.case.claim

    assert claim.has_family_account is True
    assert claim.accumulators["family_acct_balc"] == 12_000
    assert claim_file.expected_family_account_balc_after == 2_450
    assert claim_file.case.accumulator_keys == ("op_dedc_used_primary", "op_dedc_used_hospital", "op_fund_paid")


def test_retiree_turning_seventy(tmp_path):
    under = read_claim_file(vector_path("ex07"), RULES).case
    path = edited_vector(tmp_path, "ex07", lambda data: data["person"].update(age=70))
    over = read_claim_file(path, RULES).case

    assert under.group == "retired"
    assert over.group == "retired_70plus"
    assert over.claim.params.bands != under.claim.params.bands


def test_national_psn_type_code_accepted(tmp_path):
    path = edited_vector(tmp_path, "ex03", lambda data: data["person"].update(psn_type="1101"))

    assert read_claim_file(path, RULES).case.group == "active"


def test_cancel_vector():
    claim_file = read_claim_file(vector_path("ex23"), RULES)

    assert claim_file.operation == "cancel"
    assert claim_file.accumulators_before == {"acct_balc": 1_060, "op_dedc_used": 180_000, "op_fund_paid": 75_060}
    assert claim_file.expected_outputs["outputs"]["medfee_sumamt"] == -50_000
    assert claim_file.expected_outputs["outputs"]["balc"] == 26_000
    assert claim_file.case.expected_outputs is not None
    assert claim_file.case.expected_outputs["hifp_pay"] == 25_060


def test_refund_vector():
    claim_file = read_claim_file(vector_path("ex24"), RULES)

    assert claim_file.refund_feedetl_sns == ("1",)
    assert set(claim_file.expected_outputs) == {"reversal_outputs", "resettle_outputs"}
    assert claim_file.expected_accumulators_after == {"acct_balc": 0, "op_dedc_used": 174_000, "op_fund_paid": 0}


@pytest.mark.parametrize(
    ("ref", "policy_id"),
    [
        ("policy-bj-employee-2024.json", "bj-employee-2024"),
        ("bj-resident-2024.json", "bj-resident-2024"),
        ("hz-employee-2025", "hz-employee-2025"),
        ("../examples/policy-hz-employee-2025.json", "hz-employee-2025"),
    ],
)
def test_resolve_policy_ref(ref, policy_id):
    assert resolve_policy_ref(ref, RULES) == policy_id


def test_unknown_policy_ref(tmp_path):
    path = edited_vector(tmp_path, "ex03", lambda data: data.update(policy_ref="policy-sh-employee-2024.json"))

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.value == path.name
    assert error.field == "policy_ref"


def test_settlement_date_outside_policy(tmp_path):
    path = edited_vector(tmp_path, "ex03", lambda data: data["visit"].update(setl_date="2025-01-02"))

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.field == "visit.setl_date"
    assert "2025-01-02" in error.message_en


def set_line(index: int, **values):
    return lambda data: data["lines"][index].update(values)


INVALID_EDITS = [
    pytest.param(lambda data: data.update(line_count=9), "line_count", id="line-count-mismatch"),
    pytest.param(set_line(1, seq=1), "lines[1].seq", id="duplicate-seq"),
    pytest.param(set_line(0, chrgitm_lv="02"), "lines[0].chrgitm_lv", id="class-code-mismatch"),
    pytest.param(set_line(0, **{"class": "D"}), "lines[0].class", id="unknown-class"),
    pytest.param(set_line(1, selfpay_prop="0.2000"), "lines[1].selfpay_prop", id="ratio-differs-from-catalogue"),
    pytest.param(set_line(1, **{"class": "A", "chrgitm_lv": "01", "selfpay_prop": "0.0000"}), "lines[1].class", id="class-differs-from-catalogue"),
    pytest.param(set_line(0, pric_uplmt_amt="10.00"), "lines[0].pric_uplmt_amt", id="cap-differs-from-catalogue"),
    pytest.param(set_line(0, selfpay_prop="0.1000"), "lines[0].selfpay_prop", id="class-a-with-selfpay"),
    pytest.param(lambda data: data["accumulators_before"].update(op_extra="1.00"), "accumulators_before.op_extra", id="unknown-accumulator"),
    pytest.param(
        lambda data: data["accumulators_before"].update(family_acct_balc="1.00"),
        "accumulators_before.family_acct_balc",
        id="family-balance-in-accumulators",
    ),
    pytest.param(lambda data: data["expected"]["accumulators_after"].pop("op_fund_paid"), "expected.accumulators_after", id="after-keys-differ"),
    pytest.param(lambda data: data["expected"]["outputs"].update(bonus_pay="1.00"), "expected.outputs.bonus_pay", id="unknown-output"),
    pytest.param(lambda data: data["visit"].update(acct_used_flag="Y"), "visit.acct_used_flag", id="bad-flag"),
    pytest.param(lambda data: data["visit"].update(med_type_code="21"), "visit.med_type_code", id="med-type-code-mismatch"),
    pytest.param(lambda data: data["visit"].update(setl_date="2024/05/20"), "visit.setl_date", id="bad-date"),
    pytest.param(lambda data: data["person"].update(age=200), "person.age", id="impossible-age"),
    pytest.param(lambda data: data.update(note="x"), "note", id="unknown-field"),
    pytest.param(lambda data: data["lines"][0].update(seq="1"), "lines[0].seq", id="seq-not-integer"),
    pytest.param(lambda data: data.pop("lines"), "lines", id="settle-without-lines"),
    pytest.param(lambda data: data.update(operation="void"), "operation", id="unknown-operation"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_EDITS)
def test_invalid_claim_file(tmp_path, change, field):
    path = edited_vector(tmp_path, "ex03", change)

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.value == path.name
    assert error.field == field


def test_cancel_without_original(tmp_path):
    path = edited_vector(tmp_path, "ex23", lambda data: data.pop("original"))

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.field == "original"


def test_refund_of_unknown_line(tmp_path):
    path = edited_vector(tmp_path, "ex24", lambda data: data.update(refund_seqs=[7]))

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.field == "refund_seqs[0]"


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"operation": "settle",', encoding="utf-8")

    error = read_error(path)

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.field == "(JSON)"


def test_missing_file(tmp_path):
    error = read_error(tmp_path / "absent.json")

    assert error.code is ErrorCode.CLAIM_FILE_INVALID
    assert error.value == "absent.json"


def test_numbers_as_json_numbers_read_exactly(tmp_path):
    def as_numbers(data):
        data["lines"][1]["pric"] = 48.0
        data["lines"][1]["cnt"] = 2

    path = edited_vector(tmp_path, "ex03", as_numbers)
    path.write_text(path.read_text(encoding="utf-8").replace('"pric": 48.0', '"pric": 48.00'), encoding="utf-8")

    line = read_claim_file(path, RULES).case.claim.lines[1]

    assert (line.price_micro, line.quantity) == (48_000_000, 20_000)
