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
    assert "用法 (usage): settlement " + command in capsys.readouterr().out


def test_missing_option_bilingual(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["export", "--ledger", "sqlite:///x.sqlite3"])

    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "settlement export: 错误：缺少必需的参数：-o/--output" in err
    assert "settlement export: error: the following arguments are required: -o/--output" in err


@pytest.mark.parametrize(
    "argv, chinese",
    [
        (["replay", "--bogus"], "无法识别的参数：--bogus"),
        (["export", "--ledger", "x", "-o", "y", "--format", "csv"], "参数 --format 的取值 'csv' 无效，可选：'jsonl', 'columnar'"),
        (["frobnicate"], "参数 COMMAND 的取值 'frobnicate' 无效"),
        (["export", "--ledger"], "参数 --ledger 需要一个值"),
    ],
)
def test_usage_errors_chinese_first(argv, chinese, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)

    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2
    assert chinese in lines[-2]
    assert ": error: " in lines[-1]


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "localhost:8080/fsi/api/callService", "ftp://127.0.0.1:8080"])
def test_demo_rejects_url_without_scheme(url, capsys):
    from adapters.cli import main

    assert main(["demo", "--url", url]) == 2
    assert "应以 http:// 开头" in capsys.readouterr().out
