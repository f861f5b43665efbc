"""The console command offers every subcommand the README and the operators rely on."""

import pytest

from adapters.cli import build_parser

EXPECTED_COMMANDS = (
    "serve", "demo", "explain", "db", "ledger", "persons", "replay", "export", "reconcile", "card", "employment", "pension",
)


@pytest.mark.parametrize("command", EXPECTED_COMMANDS)
def test_cli_offers_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: settlement " + command in capsys.readouterr().out
