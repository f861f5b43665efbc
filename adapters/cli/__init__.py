"""The ``settlement`` console command: argument parsing and wiring only.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function that
takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from adapters.cli.parser import SettlementParser

# Modules of this package that each add one or more subcommands.
SUBCOMMAND_MODULES = (
    "explain",
    "serve",
    "db",
    "ledger",
    "persons",
    "demo",
    "replay",
    "export",
    "reconcile",
    "card",
    "employment",
    "pension",
)


def build_parser() -> argparse.ArgumentParser:
    parser = SettlementParser(
        prog="settlement",
        description="医保实时结算引擎 (real-time medical insurance settlement engine)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # Ctrl+C: the server has already logged its orderly stop, and a long replay or
        # export leaves no partial output, so a traceback would only alarm the user.
        print("已中断 (interrupted)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
