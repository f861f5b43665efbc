"""Bad claim files and bad rules are rejected with their own code, both by the reader and by the CLI.

Each case is checked twice: ``read_claim_file`` (or ``load_rules``) raises the coded
error naming the field, and ``settlement explain`` exits 2 with that code on stderr and
nothing on stdout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapters.cli import main
from settlement.claimfile import read_claim_file
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy import load_rules
from tests.vector_files import edited_vector, vector_path

RULES = load_rules(bundled_rules_dir())


def assert_cli_rejects(argv: list[str], code: ErrorCode, capsys: pytest.CaptureFixture[str]) -> str:
    status = main(["explain", *argv])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert f"[{code.number}]" in captured.err
    return captured.err


def reader_error(path: Path) -> SettlementError:
    with pytest.raises(SettlementError) as raised:
        read_claim_file(path, RULES)
    return raised.value


def set_line(index: int, **values):
    return lambda data: data["lines"][index].update(values)


BAD_CLAIMS = [
    pytest.param(set_line(2, code="T-DRG-9999"), ErrorCode.UNKNOWN_CATALOG_CODE, "lines[2].code", id="unknown-catalogue-code"),
    pytest.param(set_line(1, pric="48.0000001"), ErrorCode.BAD_NUMBER, "lines[1].pric", id="over-precise-price"),
    pytest.param(set_line(1, cnt="0.33333"), ErrorCode.BAD_NUMBER, "lines[1].cnt", id="over-precise-quantity"),
    pytest.param(set_line(1, pric="1,048.00"), ErrorCode.BAD_NUMBER, "lines[1].pric", id="thousands-separator"),
    pytest.param(set_line(1, pric="4.8E1"), ErrorCode.BAD_NUMBER, "lines[1].pric", id="exponent"),
    pytest.param(set_line(1, cnt=" 2"), ErrorCode.BAD_NUMBER, "lines[1].cnt", id="leading-space"),
    pytest.param(
        lambda data: data["accumulators_before"].update(op_dedc_used="1600.005"),
        ErrorCode.BAD_NUMBER,
        "accumulators_before.op_dedc_used",
        id="over-precise-accumulator",
    ),
    pytest.param(set_line(1, pric="-48.00"), ErrorCode.NEGATIVE_PRICE, "lines[1].pric", id="negative-price"),
    pytest.param(set_line(1, cnt="-2"), ErrorCode.NEGATIVE_AMOUNT, "lines[1].cnt", id="negative-quantity"),
    pytest.param(
        lambda data: data["accumulators_before"].update(acct_balc="-100.00"),
        ErrorCode.NEGATIVE_AMOUNT,
        "accumulators_before.acct_balc",
        id="negative-balance",
    ),
    pytest.param(set_line(0, cnt="0.0000"), ErrorCode.ZERO_QUANTITY, "lines[0].cnt", id="zero-quantity"),
    pytest.param(lambda data: data["person"].pop("psn_type"), ErrorCode.MISSING_PERSON_GROUP, "person.psn_type", id="missing-person-group"),
    pytest.param(lambda data: data["person"].update(psn_type=""), ErrorCode.MISSING_PERSON_GROUP, "person.psn_type", id="empty-person-group"),
    pytest.param(lambda data: data["person"].update(psn_type="1301"), ErrorCode.UNKNOWN_PERSON_GROUP, "person.psn_type", id="unknown-person-group"),
    pytest.param(set_line(1, pric="100000000000.00"), ErrorCode.AMOUNT_OUT_OF_RANGE, "lines[1].pric", id="price-too-large"),
]


@pytest.mark.parametrize(("change", "code", "field"), BAD_CLAIMS)
def test_bad_claim_rejected(tmp_path, capsys, change, code, field):
    path = edited_vector(tmp_path, "ex03", change)

    error = reader_error(path)

    assert error.code is code
    assert error.field == f"{path.name}:{field}"
    assert_cli_rejects([str(path)], code, capsys)


def test_unknown_catalogue_code_names_date(tmp_path):
    path = edited_vector(tmp_path, "ex03", set_line(2, code="T-DRG-9999"))

    error = reader_error(path)

    assert error.value == "T-DRG-9999"
    assert error.detail == "2024-05-20"


def test_catalogue_code_not_yet_in_force(tmp_path):
    path = edited_vector(tmp_path, "ex03", lambda data: data["visit"].update(setl_date="2024-01-01"))
    assert read_claim_file(path, RULES).case.setl_date.isoformat() == "2024-01-01"

    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    catalogue = rules / "catalogs" / "sample-catalog.csv"
    catalogue.write_text(catalogue.read_text(encoding="utf-8").replace("T-DRG-0002,头孢克肟分散片,02,0.1000,,2024-01-01,", "T-DRG-0002,头孢克肟分散片,02,0.1000,,2024-02-01,"), encoding="utf-8")

    with pytest.raises(SettlementError) as raised:
        read_claim_file(path, load_rules(rules))
    assert raised.value.code is ErrorCode.UNKNOWN_CATALOG_CODE
    assert raised.value.field == f"{path.name}:lines[1].code"


def test_retiree_without_age(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex07", lambda data: data["person"].pop("age"))

    error = reader_error(path)

    assert error.code is ErrorCode.REQUIRED_FIELD
    assert error.field == f"{path.name}:person.age"
    assert_cli_rejects([str(path)], ErrorCode.REQUIRED_FIELD, capsys)


def test_reversal_outputs_may_be_negative():
    claim_file = read_claim_file(vector_path("ex23"), RULES)

    assert claim_file.expected_outputs["outputs"]["hifp_pay"] == -25_060


def test_more_lines_than_default_maximum(tmp_path, capsys):
    def ten_thousand_lines(data):
        template = data["lines"][0]
        data["lines"] = [dict(template, seq=number) for number in range(1, 10_001)]
        data["line_count"] = 10_000

    path = edited_vector(tmp_path, "ex03", ten_thousand_lines)

    error = reader_error(path)

    assert error.code is ErrorCode.TOO_MANY_LINES
    assert error.value == "10000"
    assert error.detail == "9999"
    assert_cli_rejects([str(path)], ErrorCode.TOO_MANY_LINES, capsys)


def test_maximum_lines_accepted(tmp_path):
    def many_lines(data):
        template = data["lines"][0]
        data["lines"] = [dict(template, seq=number) for number in range(1, 10_000)]
        data["line_count"] = 9_999

    path = edited_vector(tmp_path, "ex03", many_lines)

    assert len(read_claim_file(path, RULES).case.claim.lines) == 9_999


def test_policy_max_lines_setting(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    policy = rules / "policies" / "bj-employee-2024.json"
    data = json.loads(policy.read_text(encoding="utf-8"))
    data["max_lines"] = 4
    policy.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    with pytest.raises(SettlementError) as raised:
        read_claim_file(vector_path("ex03"), load_rules(rules))

    assert raised.value.code is ErrorCode.TOO_MANY_LINES
    assert raised.value.detail == "4"


def copy_rules_with(tmp_path: Path, change, new_name: str | None = None) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    source = rules / "policies" / "bj-employee-2024.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    change(data)
    target = source if new_name is None else rules / "policies" / new_name
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return rules


def test_overlapping_policy_dates(tmp_path, capsys):
    rules = copy_rules_with(tmp_path, lambda data: data.update(effective_from="2024-07-01", effective_to="2025-06-30"), "bj-employee-2024-h2.json")

    with pytest.raises(SettlementError) as raised:
        load_rules(rules)
    assert raised.value.code is ErrorCode.RULE_DATES_OVERLAP
    assert raised.value.value == "policies/bj-employee-2024-h2.json"

    message = assert_cli_rejects(["--rules", str(rules), str(vector_path("ex03"))], ErrorCode.RULE_DATES_OVERLAP, capsys)
    assert "policies/bj-employee-2024.json" in message


def test_bands_out_of_order(tmp_path, capsys):
    def reorder(data):
        data["schemes"]["inpatient"]["bands"]["lower_bounds"] = ["0.00", "40000.00", "30000.00"]

    rules = copy_rules_with(tmp_path, reorder)

    with pytest.raises(SettlementError) as raised:
        load_rules(rules)
    assert raised.value.code is ErrorCode.RULE_BANDS_ORDER
    assert raised.value.field == "schemes.inpatient.bands.lower_bounds[2]"

    message = assert_cli_rejects(["--rules", str(rules), str(vector_path("ex11"))], ErrorCode.RULE_BANDS_ORDER, capsys)
    assert "schemes.inpatient.bands.lower_bounds[2]" in message
