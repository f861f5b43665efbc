"""``settlement card ...``: staff operations on social security cards.

``apply`` records an application, ``action`` moves a card through its lifecycle
(``replace`` also records the new card), ``progress`` lists the printing stages,
``token`` issues an e-voucher token and ``verification-code`` a one-time code for the
self-service page. ``load-demo`` records the demo cards of ``rules/persons/demo-cards.json``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from adapters.services.cli_support import add_common, run_operation
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.services.card import Action, CardRecord, CardStatus

__all__ = ["register"]


def _card_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(f"--{prefix}card-no", required=True, help="卡号 card number")
    parser.add_argument(f"--{prefix}application-no", required=True, help="制卡申请编号 application number")
    parser.add_argument(f"--{prefix}generation", type=int, choices=(1, 2), default=2, help="第几代卡 card generation (default 2)")
    parser.add_argument(f"--{prefix}issuing-admdvs", required=True, help="发卡地行政区划 6-digit issuing division")
    parser.add_argument(f"--{prefix}chip-sn", default=None, help="芯片序列号 chip serial")
    parser.add_argument(f"--{prefix}bank-code", default=None, help="合作银行代码 bank code (second-generation cards)")
    parser.add_argument(f"--{prefix}bank-account", default=None, help="金融账户号 financial account (second-generation cards)")


def _card(args: argparse.Namespace, psn_no: str, prefix: str = "") -> CardRecord:
    def value(name: str) -> Any:
        return getattr(args, prefix + name)

    return CardRecord(
        card_no=value("card_no").upper(), psn_no=psn_no, application_no=value("application_no"), generation=value("generation"),
        issuing_admdvs=value("issuing_admdvs"), status=CardStatus.APPLIED, chip_sn=value("chip_sn"), bank_code=value("bank_code"),
        bank_account=value("bank_account"),
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("card", help="社会保障卡业务 (social security card operations)")
    commands = parser.add_subparsers(dest="card_command", metavar="ACTION", required=True)

    apply = commands.add_parser("apply", help="登记制卡申请 (record a card application)")
    apply.add_argument("--psn-no", required=True, help="人员编号 person number")
    _card_arguments(apply)
    add_common(apply)
    apply.set_defaults(handler=_apply)

    action = commands.add_parser("action", help="卡状态变更：制卡、发放、启用、挂失、解挂、注销、补换卡 (lifecycle action)")
    action.add_argument("action", choices=[a.value for a in Action], help="操作 action")
    action.add_argument("--card-no", required=True, help="卡号 card number")
    for name, text in (("new-card-no", "新卡号"), ("new-application-no", "新卡申请编号"), ("new-issuing-admdvs", "新卡发卡地")):
        action.add_argument(f"--{name}", default=None, help=f"{text}（仅 replace） (replace only)")
    action.add_argument("--new-generation", type=int, choices=(1, 2), default=2, help="新卡代数 new card generation (replace only)")
    for name in ("new-chip-sn", "new-bank-code", "new-bank-account"):
        action.add_argument(f"--{name}", default=None, help="新卡信息 new card field (replace only)")
    add_common(action)
    action.set_defaults(handler=_action)

    progress = commands.add_parser("progress", help="制卡进度查询 (card printing progress)")
    group = progress.add_mutually_exclusive_group(required=True)
    group.add_argument("--certno", help="身份证号码 ID number")
    group.add_argument("--application-no", help="申请编号 application number")
    add_common(progress)
    progress.set_defaults(handler=_progress)

    for name, text, handler in (
        ("token", "签发医保电子凭证令牌 (issue an e-voucher token)", _token),
        ("verification-code", "签发自助查询验证码 (issue a self-service verification code)", _verification_code),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--psn-no", required=True, help="人员编号 person number")
        add_common(sub)
        sub.set_defaults(handler=handler)

    demo = commands.add_parser("load-demo", help="登记演示卡 (record the demo cards)")
    demo.add_argument("--file", default=str(bundled_rules_dir() / "persons" / "demo-cards.json"), help="演示卡文件 demo cards file")
    add_common(demo)
    demo.set_defaults(handler=_load_demo)


def _apply(args: argparse.Namespace) -> int:
    from adapters.services import cards

    async def operation(ctx):
        return cards.card_view(await cards.apply_for_card(ctx, _card(args, args.psn_no), "cli"))

    return run_operation(args, ("已登记制卡申请", "card application recorded"), operation)


def _action(args: argparse.Namespace) -> int:
    from adapters.services import cards

    action = Action(args.action)

    async def operation(ctx):
        replacement = None
        if action is Action.REPLACE:
            for name in ("new_card_no", "new_application_no", "new_issuing_admdvs"):
                if not getattr(args, name):
                    raise SettlementError(ErrorCode.REQUIRED_FIELD, field="--" + name.replace("_", "-"))
            replacement = _card(args, "", prefix="new_")
        return cards.card_view(await cards.card_action(ctx, args.card_no.upper(), action, "cli", replacement))

    return run_operation(args, (f"已{action.name_zh}", f"{action.value} done"), operation)


def _progress(args: argparse.Namespace) -> int:
    from adapters.services import cards

    async def operation(ctx):
        return await cards.printing_progress(ctx, certno=args.certno, application_no=args.application_no)

    return run_operation(args, ("制卡进度", "card printing progress"), operation)


def _token(args: argparse.Namespace) -> int:
    from adapters.services import cards

    async def operation(ctx):
        token, expires = await cards.issue_token(ctx, args.psn_no)
        return {"token": token, "expires_at": expires}

    return run_operation(args, ("已签发电子凭证令牌", "e-voucher token issued"), operation)


def _verification_code(args: argparse.Namespace) -> int:
    from adapters.services import auth

    async def operation(ctx):
        return {"psn_no": args.psn_no, "code": await auth.issue_verification_code(ctx, args.psn_no)}

    return run_operation(args, ("验证码（10 分钟内有效，仅可使用一次）", "verification code (valid 10 minutes, one use)"), operation)


def _load_demo(args: argparse.Namespace) -> int:
    from adapters.services import cards
    from adapters.services import store as service_store

    rows = json.loads(pathlib.Path(args.file).read_text(encoding="utf-8"))["cards"]

    async def operation(ctx):
        loaded = []
        for row in rows:
            async with ctx.db.transaction() as conn:
                exists = await service_store.card_by_no(conn, row["card_no"]) is not None
            if exists:
                continue
            card = CardRecord(
                card_no=row["card_no"], psn_no=row["psn_no"], application_no=row["application_no"], generation=row["generation"],
                issuing_admdvs=row["issuing_admdvs"], status=CardStatus.APPLIED, chip_sn=row.get("chip_sn"),
                bank_code=row.get("bank_code"), bank_account=row.get("bank_account"),
            )
            await cards.apply_for_card(ctx, card, "cli")
            for step in row["actions"]:
                await cards.card_action(ctx, card.card_no, Action(step), "cli")
            loaded.append(row["application_no"])
        return {"loaded": loaded}

    return run_operation(args, ("已登记演示卡", "demo cards recorded"), operation)
