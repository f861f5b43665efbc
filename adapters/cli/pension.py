"""``settlement pension ...``: endowment contributions, yearly interest, account and payment records."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.services.cli_support import add_common, run_operation

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pension", help="养老保险个人账户业务 (endowment personal account)")
    commands = parser.add_subparsers(dest="pension_command", metavar="ACTION", required=True)

    contribute = commands.add_parser("contribute", help="记录月度个人缴费 (record a monthly contribution)")
    contribute.add_argument("--psn-no", required=True, help="人员编号 person number")
    contribute.add_argument("--period", required=True, help="所属月份 yyyy-MM")
    contribute.add_argument("--base", required=True, help="缴费基数（元） contribution base in yuan, e.g. 10000.00")
    add_common(contribute)
    contribute.set_defaults(handler=_contribute)

    interest = commands.add_parser("interest", help="年度记账利息 (credit a year's interest)")
    interest.add_argument("--psn-no", required=True, help="人员编号 person number")
    interest.add_argument("--year", type=int, required=True, help="年度 year")
    add_common(interest)
    interest.set_defaults(handler=_interest)

    account = commands.add_parser("account", help="个人账户余额与缴费记录 (balance and entries)")
    account.add_argument("--psn-no", required=True, help="人员编号 person number")
    add_common(account)
    account.set_defaults(handler=_account)

    records = commands.add_parser("records", help="社会保险缴费记录 (payment records by insurance type and year)")
    records.add_argument("--psn-no", required=True, help="人员编号 person number")
    records.add_argument("--insutype", required=True, choices=("110", "210", "310"), help="险种 110 养老 / 210 失业 / 310 医疗")
    records.add_argument("--year", type=int, required=True, help="年度 year")
    add_common(records)
    records.set_defaults(handler=_records)


def _contribute(args: argparse.Namespace) -> int:
    from adapters.services import pension
    from settlement.money import parse_amount

    async def operation(ctx):
        return await pension.contribute(ctx, args.psn_no, pension.check_period(args.period, "--period"), parse_amount(args.base, "--base"))

    return run_operation(args, ("已记录养老保险缴费", "contribution recorded"), operation)


def _interest(args: argparse.Namespace) -> int:
    from adapters.services import pension

    async def operation(ctx):
        return await pension.credit_interest(ctx, args.psn_no, args.year)

    return run_operation(args, ("已记账利息", "interest credited"), operation)


def _account(args: argparse.Namespace) -> int:
    from adapters.services import pension

    async def operation(ctx):
        return await pension.pension_view(ctx, args.psn_no)

    return run_operation(args, ("养老保险个人账户", "endowment personal account"), operation)


def _records(args: argparse.Namespace) -> int:
    from adapters.services import pension

    async def operation(ctx):
        return await pension.payment_records(ctx, args.psn_no, args.insutype, args.year)

    return run_operation(args, ("缴费记录", "payment records"), operation)
