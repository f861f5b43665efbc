"""``settlement explain`` settles every worked claim vector and checks it against its expected values."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from adapters.cli import main
from adapters.cli.explain import run
from settlement.paths import bundled_rules_dir
from tests.vector_files import edited_vector, load_vector, vector_path, vector_paths


@pytest.mark.parametrize("path", vector_paths(), ids=lambda path: path.name[:4])
def test_vector_passes_check(path, capsys):
    status = main(["explain", "--check", str(path)])

    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err
    assert captured.err == ""
    assert f"通过 {path}" in captured.out


def test_all_vectors_in_one_run(capsys):
    paths = [str(path) for path in vector_paths()]

    status = main(["explain", "--check", "--lang", "en", *paths])

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out.endswith(f"{len(paths)} passed, 0 with differences\n")


def test_json_output_lists_outputs_and_accumulators(capsys):
    path = vector_path("ex03")

    status = main(["explain", str(path)])

    document = json.loads(capsys.readouterr().out)
    expected = load_vector("ex03")["expected"]
    assert status == 0
    assert document["example_id"] == "ex03"
    assert document["policy_id"] == "bj-employee-2024"
    assert document["outputs"] == expected["outputs"]
    assert document["accumulators_after"] == expected["accumulators_after"]


def test_json_output_one_line_per_file(capsys):
    paths = [vector_path("ex15"), vector_path("ex24"), vector_path("ex28")]

    status = main(["explain", *map(str, paths)])

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert [document["example_id"] for document in documents] == ["ex15", "ex24", "ex28"]
    assert documents[0]["accumulators_after"]["ip_admission_count"] == 4
    assert set(documents[1]) >= {"original_outputs", "reversal_outputs", "resettle_outputs"}
    assert documents[2]["family_account_balc_after"] == "24.50"


def test_altered_expected_value_fails_check(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex03", lambda data: data["expected"]["outputs"].update(hifp_pay="251.17"))

    status = main(["explain", "--check", "--lang", "en", str(path)])

    captured = capsys.readouterr()
    assert status == 1
    assert f"{path}: outputs.hifp_pay: expected 251.17, got 251.16" in captured.out
    assert "0 passed, 1 with differences" in captured.out


def test_altered_accumulator_fails_check(tmp_path, capsys):
    def change(data):
        data["expected"]["accumulators_after"]["ip_admission_count"] = 5

    path = edited_vector(tmp_path, "ex15", change)

    status = main(["explain", "--check", str(path)])

    captured = capsys.readouterr()
    assert status == 1
    assert f"{path}: accumulators_after.ip_admission_count: 期望 5，实际 4" in captured.out


def test_altered_original_of_cancel_fails_check(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex23", lambda data: data["original"]["expected"]["outputs"].update(acct_pay="249.00"))

    status = main(["explain", "--check", "--lang", "en", str(path)])

    assert status == 1
    assert "original.expected.outputs.acct_pay: expected 249.00, got 249.40" in capsys.readouterr().out


def test_altered_family_balance_fails_check(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex28", lambda data: data["expected"].update(family_account_balc_after="25.00"))

    status = main(["explain", "--check", "--lang", "en", str(path)])

    assert status == 1
    assert "family_account_balc_after: expected 25.00, got 24.50" in capsys.readouterr().out


def test_check_json_reports_differences(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex03", lambda data: data["expected"]["outputs"].update(balc="1.00"))

    status = main(["explain", "--check", "--json", str(path)])

    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert document["check"] == {"passed": False, "differences": [{"field": "outputs.balc", "expected": "1.00", "got": "0.00"}]}


def test_bad_file_exits_2_and_writes_nothing(tmp_path, capsys):
    good = vector_path("ex03")
    bad = edited_vector(tmp_path, "ex04", lambda data: data["lines"][0].update(pric="3.5e0"))

    status = main(["explain", str(good), str(bad)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.startswith(f"{bad}: [1001]")
    assert "lines[0].pric" in captured.err


def test_bad_file_message_in_english(tmp_path, capsys):
    bad = edited_vector(tmp_path, "ex03", lambda data: data.update(line_count=2))

    status = main(["explain", "--lang", "en", str(bad)])

    captured = capsys.readouterr()
    assert status == 2
    assert f"[5001] file {bad.name}: line_count is invalid: is 2 but lines has 5" in captured.err


def test_check_without_expected_is_bad_input(tmp_path, capsys):
    path = edited_vector(tmp_path, "ex03", lambda data: data.pop("expected"))

    assert main(["explain", str(path)]) == 0
    capsys.readouterr()
    status = main(["explain", "--check", str(path)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "[5001]" in captured.err


def test_rules_directory_option(tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    policy = rules / "policies" / "bj-employee-2024.json"
    data = json.loads(policy.read_text(encoding="utf-8"))
    data["schemes"]["outpatient_general"]["ratios"]["rules"][1]["ratios"] = ["0.7500"]
    policy.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    status = main(["explain", "--check", "--rules", str(rules), str(vector_path("ex03"))])

    assert status == 1
    assert "outputs.hifp_pay: 期望 251.16，实际 269.10" in capsys.readouterr().out


def test_terminal_table_shows_steps_and_outputs():
    stdout, stderr = io.StringIO(), io.StringIO()
    stdout.isatty = lambda: True  # type: ignore[method-assign]

    status = run([vector_path("ex15")], stdout=stdout, stderr=stderr)

    table = stdout.getvalue()
    assert status == 0
    assert "达到统筹基金封顶" in table
    assert "大额医疗 费用 17876.31 × 85.00% = 15194.86" in table
    assert "职工大额医疗费用补助基金支出 hifob_pay" in table
    assert "15194.86" in table


def test_table_in_english():
    stdout, stderr = io.StringIO(), io.StringIO()
    stdout.isatty = lambda: True  # type: ignore[method-assign]

    status = run([vector_path("ex23")], lang="en", stdout=stdout, stderr=stderr)

    table = stdout.getvalue()
    assert status == 0
    assert "reversal" in table
    assert "[original_outputs]" in table
    assert "accumulators after" in table
