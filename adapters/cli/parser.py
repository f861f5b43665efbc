"""An argument parser whose own texts (usage, section titles, errors) are in Chinese with the English beside them.

argparse writes its usage line, section titles and error messages in English. Operators
and auditors read Chinese first, so the command's parser gives each in both languages.
Errors name the same option or value in both; the English line is argparse's own.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from typing import NoReturn

__all__ = ["SettlementParser", "chinese_error", "settlement_date"]

# argparse's error messages (as worded in Python 3.11) and their Chinese forms. A message that
# matches none of them is shown in English only.
_ERRORS = (
    (re.compile(r"the following arguments are required: (?P<names>.+)"), "缺少必需的参数：{names}"),
    (re.compile(r"unrecognized arguments: (?P<names>.+)"), "无法识别的参数：{names}"),
    (re.compile(r"argument (?P<arg>\S+): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)"),
     "参数 {arg} 的取值 {value} 无效，可选：{choices}"),
    (re.compile(r"argument (?P<arg>\S+): invalid (?P<kind>\S+) value: (?P<value>.+)"), "参数 {arg} 的值 {value} 不是有效的 {kind}"),
    (re.compile(r"argument (?P<arg>\S+): expected one argument"), "参数 {arg} 需要一个值"),
    (re.compile(r"argument (?P<arg>\S+): expected at least one argument"), "参数 {arg} 至少需要一个值"),
    (re.compile(r"argument (?P<arg>\S+): not allowed with argument (?P<other>\S+)"), "参数 {arg} 不能与 {other} 同时使用"),
    (re.compile(r"one of the arguments (?P<names>.+) is required"), "须指定以下参数之一：{names}"),
    (re.compile(r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)"), "选项 {option} 有歧义，可能是：{matches}"),
)


def chinese_error(message: str) -> str | None:
    """Return the Chinese form of one of argparse's error messages, or None when it is not one of them."""
    for pattern, chinese in _ERRORS:
        found = pattern.fullmatch(message)
        if found:
            return chinese.format(**found.groupdict())
    return None


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, prefix="用法 (usage): " if prefix is None else prefix)


class SettlementParser(argparse.ArgumentParser):
    """The ``settlement`` command's parser; subcommand parsers are made of the same class."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "位置参数 (positional arguments)"
        self._optionals.title = "选项 (options)"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help="显示本帮助并退出 (show this help and exit)")

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        chinese = chinese_error(message)
        lines = ([f"{self.prog}: 错误：{chinese}"] if chinese else []) + [f"{self.prog}: error: {message}"]
        self.exit(2, "\n".join(lines) + "\n")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def settlement_date(text: str) -> str:
    """Accept a date written as yyyy-MM-dd, the form settlement times use; reject anything else.

    Selections compare dates as text against ``setl_time``, so ``20261205`` or
    ``2026/12/05`` would otherwise select nothing and an audit of nothing would pass.
    """
    try:
        if _DATE.fullmatch(text):
            datetime.date.fromisoformat(text)
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"应为 yyyy-MM-dd 格式的日期，如 2026-12-05 (must be a date as yyyy-MM-dd, such as 2026-12-05): {text!r}")
