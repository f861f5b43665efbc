"""Staff subcommands: card, employment and pension on a SQLite ledger."""

import json

from adapters.cli import main
from settlement.paths import bundled_rules_dir


def _output(capsys):
    out = capsys.readouterr().out
    heading, _, body = out.partition("\n")
    return heading, json.loads(body)


def test_staff_commands(tmp_path, capsys):
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    assert main(["persons", "load", str(bundled_rules_dir() / "persons" / "demo-persons.json"), "--ledger", ledger]) == 0
    capsys.readouterr()

    assert main(["card", "load-demo", "--ledger", ledger]) == 0
    heading, data = _output(capsys)
    assert heading == "已登记演示卡"
    assert data["loaded"] == ["APP-DEMO-0001", "APP-DEMO-0002", "APP-DEMO-0008"]

    assert main(["card", "progress", "--application-no", "APP-DEMO-0002", "--ledger", ledger, "--lang", "en"]) == 0
    heading, data = _output(capsys)
    assert heading == "card printing progress"
    assert [stage["date"] is not None for stage in data[0]["stages"]] == [True, True, False, False, False]

    # The demo card of PSN-DEMO-0008 is reported lost, so activating it is rejected.
    assert main(["card", "action", "activate", "--card-no", "DEMO2G0008", "--ledger", ledger]) == 1
    assert "[8002]" in capsys.readouterr().err
    assert main(["card", "action", "unfreeze", "--card-no", "DEMO2G0008", "--ledger", ledger]) == 0
    heading, data = _output(capsys)
    assert data["status"] == "activated"

    assert main(["pension", "contribute", "--psn-no", "PSN-DEMO-0001", "--period", "2024-03", "--base", "8000.00", "--ledger", ledger]) == 0
    heading, data = _output(capsys)
    assert data["amount"] == 64_000
    assert main(["pension", "contribute", "--psn-no", "PSN-DEMO-0001", "--period", "2024-04", "--base", "8000.001", "--ledger", ledger]) == 1
    assert "[1001]" in capsys.readouterr().err

    assert main(["employment", "unemployment", "--psn-no", "PSN-DEMO-0002", "--date", "2024-02-01", "--ledger", ledger]) == 0
    capsys.readouterr()
    assert main(["employment", "benefit-apply", "--psn-no", "PSN-DEMO-0002", "--contribution-months", "30", "--first-period", "2024-03", "--ledger", ledger]) == 0
    heading, data = _output(capsys)
    assert data["months"] == 12
    assert main(["employment", "benefit-pay", "--claim-id", data["claim_id"], "--period", "2024-03", "--ledger", ledger]) == 0
    capsys.readouterr()

    assert main(["ledger", "verify", "--ledger", ledger]) == 0
