"""``settlement employment ...``: job and unemployment registration, benefit, training, retirement, status."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.services.cli_support import add_common, parse_date, run_operation

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("employment", help="就业与失业保险业务 (employment and unemployment insurance)")
    commands = parser.add_subparsers(dest="employment_command", metavar="ACTION", required=True)

    for kind, text in (("job", "就业登记 (job registration)"), ("unemployment", "失业登记 (unemployment registration)")):
        sub = commands.add_parser(kind, help=text)
        sub.add_argument("--psn-no", required=True, help="人员编号 person number")
        sub.add_argument("--date", type=parse_date, required=True, help="登记日期 yyyy-MM-dd")
        sub.add_argument("--note", default=None, help="用人单位或失业原因 employer or reason")
        add_common(sub)
        sub.set_defaults(handler=_registration, kind=kind)

    apply = commands.add_parser("benefit-apply", help="申领失业保险金 (apply for unemployment benefit)")
    apply.add_argument("--psn-no", required=True, help="人员编号 person number")
    apply.add_argument("--contribution-months", type=int, required=True, help="累计缴费月数 contribution months")
    apply.add_argument("--first-period", required=True, help="首个领取月份 first benefit month yyyy-MM")
    add_common(apply)
    apply.set_defaults(handler=_benefit_apply)

    pay = commands.add_parser("benefit-pay", help="发放一个月失业保险金 (pay one benefit month)")
    pay.add_argument("--claim-id", required=True, help="申领编号 claim id")
    pay.add_argument("--period", required=True, help="发放月份 yyyy-MM")
    add_common(pay)
    pay.set_defaults(handler=_benefit_pay)

    training = commands.add_parser("training", help="就业培训登记 (training registration)")
    training.add_argument("--psn-no", required=True, help="人员编号 person number")
    training.add_argument("--date", type=parse_date, required=True, help="登记日期 yyyy-MM-dd")
    training.add_argument("--course", required=True, help="培训项目 course")
    add_common(training)
    training.set_defaults(handler=_training)

    retire = commands.add_parser("retire", help="办理退休（自生效日起按退休人员结算） (retirement from a date)")
    retire.add_argument("--psn-no", required=True, help="人员编号 person number")
    retire.add_argument("--effective-date", type=parse_date, required=True, help="生效日期 yyyy-MM-dd")
    retire.add_argument("--psn-type", default="1201", help="退休人员类别代码 retiree psn_type (default 1201)")
    add_common(retire)
    retire.set_defaults(handler=_retire)

    status = commands.add_parser("status", help="就业状态查询 (employment status)")
    status.add_argument("--psn-no", required=True, help="人员编号 person number")
    add_common(status)
    status.set_defaults(handler=_status)


def _registration(args: argparse.Namespace) -> int:
    from adapters.services import employment

    async def operation(ctx):
        key = "employer" if args.kind == "job" else "reason"
        status = await employment.register(ctx, args.psn_no, args.kind, args.date, {key: args.note} if args.note else {})
        return {"psn_no": args.psn_no, "status": status.value, "status_name": status.name_zh}

    return run_operation(args, ("已登记", "registered"), operation)


def _benefit_apply(args: argparse.Namespace) -> int:
    from adapters.services import employment
    from adapters.services.pension import check_period

    async def operation(ctx):
        return await employment.apply_benefit(ctx, args.psn_no, args.contribution_months, check_period(args.first_period, "--first-period"))

    return run_operation(args, ("失业保险金已核定", "unemployment benefit approved"), operation)


def _benefit_pay(args: argparse.Namespace) -> int:
    from adapters.services import employment
    from adapters.services.pension import check_period

    async def operation(ctx):
        return await employment.pay_benefit(ctx, args.claim_id, check_period(args.period, "--period"))

    return run_operation(args, ("失业保险金已发放", "benefit month paid"), operation)


def _training(args: argparse.Namespace) -> int:
    from adapters.services import employment

    async def operation(ctx):
        return {"psn_no": args.psn_no, "seq": await employment.register_training(ctx, args.psn_no, args.date, args.course)}

    return run_operation(args, ("已登记就业培训", "training registered"), operation)


def _retire(args: argparse.Namespace) -> int:
    from adapters.services import employment

    async def operation(ctx):
        retirement = await employment.retire(ctx, args.psn_no, args.effective_date, args.psn_type)
        return {"psn_no": args.psn_no, "effective_date": retirement.effective_date.isoformat(), "retired_psn_type": retirement.retired_psn_type}

    return run_operation(args, ("已办理退休", "retirement recorded"), operation)


def _status(args: argparse.Namespace) -> int:
    from adapters.services import employment

    async def operation(ctx):
        return await employment.employment_view(ctx, args.psn_no)

    return run_operation(args, ("就业状态", "employment status"), operation)
