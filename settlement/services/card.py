"""Social security card lifecycle: states, the transition table and the settlement check.

A card moves through production (applied, in production, produced, issued at a branch)
to activated, and from there may be reported lost (temporarily, then formally),
unfrozen, cancelled or replaced. Every allowed move is one row of ``TRANSITIONS``;
anything else raises ``CARD_TRANSITION_FORBIDDEN`` naming the current state and the
requested action. Nothing here does I/O.
"""

from __future__ import annotations

import datetime
import enum
import re

import msgspec

from settlement.errors import ErrorCode, SettlementError

__all__ = [
    "PRODUCTION_STAGES",
    "TRANSITIONS",
    "Action",
    "CardRecord",
    "CardStatus",
    "apply_action",
    "check_card_fields",
    "check_card_for_settlement",
    "progress_stages",
]


class CardStatus(enum.StrEnum):
    """Card states, with the Chinese names cardholders see."""

    APPLIED = "applied"
    IN_PRODUCTION = "in_production"
    PRODUCED = "produced"
    ISSUED = "issued"
    ACTIVATED = "activated"
    LOST_TEMPORARY = "lost_temporary"
    LOST_FORMAL = "lost_formal"
    CANCELLED = "cancelled"
    REPLACED = "replaced"

    @property
    def name_zh(self) -> str:
        return _STATUS_ZH[self]


_STATUS_ZH = {
    CardStatus.APPLIED: "已申请",
    CardStatus.IN_PRODUCTION: "制卡中",
    CardStatus.PRODUCED: "已制成",
    CardStatus.ISSUED: "已发放至网点",
    CardStatus.ACTIVATED: "已启用",
    CardStatus.LOST_TEMPORARY: "临时挂失",
    CardStatus.LOST_FORMAL: "正式挂失",
    CardStatus.CANCELLED: "已注销",
    CardStatus.REPLACED: "已换卡",
}


class Action(enum.StrEnum):
    """Operations staff or cardholders perform on a card."""

    START_PRODUCTION = "start_production"
    FINISH_PRODUCTION = "finish_production"
    ISSUE = "issue"
    ACTIVATE = "activate"
    REPORT_LOSS = "report_loss"
    FORMALIZE_LOSS = "formalize_loss"
    UNFREEZE = "unfreeze"
    CANCEL = "cancel"
    REPLACE = "replace"

    @property
    def name_zh(self) -> str:
        return _ACTION_ZH[self]


_ACTION_ZH = {
    Action.START_PRODUCTION: "开始制卡",
    Action.FINISH_PRODUCTION: "制卡完成",
    Action.ISSUE: "发放至网点",
    Action.ACTIVATE: "启用",
    Action.REPORT_LOSS: "临时挂失",
    Action.FORMALIZE_LOSS: "正式挂失",
    Action.UNFREEZE: "解挂",
    Action.CANCEL: "注销",
    Action.REPLACE: "补换卡",
}

# (state, action) -> next state. A temporary loss can be lifted; a formal loss only ends in
# a replacement or a cancellation, because the card may be in someone else's hands.
TRANSITIONS: dict[tuple[CardStatus, Action], CardStatus] = {
    (CardStatus.APPLIED, Action.START_PRODUCTION): CardStatus.IN_PRODUCTION,
    (CardStatus.APPLIED, Action.CANCEL): CardStatus.CANCELLED,
    (CardStatus.IN_PRODUCTION, Action.FINISH_PRODUCTION): CardStatus.PRODUCED,
    (CardStatus.PRODUCED, Action.ISSUE): CardStatus.ISSUED,
    (CardStatus.ISSUED, Action.ACTIVATE): CardStatus.ACTIVATED,
    (CardStatus.ISSUED, Action.CANCEL): CardStatus.CANCELLED,
    (CardStatus.ACTIVATED, Action.REPORT_LOSS): CardStatus.LOST_TEMPORARY,
    (CardStatus.ACTIVATED, Action.CANCEL): CardStatus.CANCELLED,
    (CardStatus.ACTIVATED, Action.REPLACE): CardStatus.REPLACED,
    (CardStatus.LOST_TEMPORARY, Action.UNFREEZE): CardStatus.ACTIVATED,
    (CardStatus.LOST_TEMPORARY, Action.FORMALIZE_LOSS): CardStatus.LOST_FORMAL,
    (CardStatus.LOST_TEMPORARY, Action.REPLACE): CardStatus.REPLACED,
    (CardStatus.LOST_FORMAL, Action.REPLACE): CardStatus.REPLACED,
    (CardStatus.LOST_FORMAL, Action.CANCEL): CardStatus.CANCELLED,
}

# The stages a printing-progress inquiry lists, in order.
PRODUCTION_STAGES = (CardStatus.APPLIED, CardStatus.IN_PRODUCTION, CardStatus.PRODUCED, CardStatus.ISSUED, CardStatus.ACTIVATED)


class CardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One card as stored.

    ``generation`` is 1 or 2. Second-generation cards carry a financial account: ``bank_code``
    and ``bank_account`` are required for them and absent for first-generation cards.
    ``replaces_card_no`` links a replacement to the card it replaced.
    """

    card_no: str
    psn_no: str
    application_no: str
    generation: int
    issuing_admdvs: str
    status: CardStatus
    chip_sn: str | None = None
    bank_code: str | None = None
    bank_account: str | None = None
    replaces_card_no: str | None = None
    replaced_by_card_no: str | None = None


def apply_action(status: CardStatus, action: Action, card_no: str) -> CardStatus:
    """Return the state after ``action``, or raise CARD_TRANSITION_FORBIDDEN (the card number is masked)."""
    after = TRANSITIONS.get((status, action))
    if after is None:
        raise SettlementError(
            ErrorCode.CARD_TRANSITION_FORBIDDEN,
            field=action.name_zh,
            value=card_no,
            detail=status.name_zh,
            detail_en=status.value,
            sensitive=True,
        )
    return after


def check_card_for_settlement(card: CardRecord | None, card_no: str, field: str) -> None:
    """Raise a coded error unless an activated card may settle.

    A card not in the services tables (``card`` None) is left to the caller, which knows
    the cards loaded with the persons.
    """
    if card is None or card.status is CardStatus.ACTIVATED:
        return
    if card.status in (CardStatus.LOST_TEMPORARY, CardStatus.LOST_FORMAL):
        code = ErrorCode.CARD_LOST
        detail, detail_en = "请先解挂或补卡", "unfreeze it or apply for a replacement first"
    elif card.status in (CardStatus.CANCELLED, CardStatus.REPLACED):
        code = ErrorCode.CARD_CANCELLED
        detail, detail_en = "请使用新卡", "use the current card"
    else:
        code = ErrorCode.CARD_NOT_ACTIVE
        detail, detail_en = f"当前状态为{card.status.name_zh}", f"its status is {card.status.value}"
    raise SettlementError(code, field=field, value=card_no, detail=detail, detail_en=detail_en, sensitive=True)


def progress_stages(events: list[tuple[CardStatus, datetime.date]]) -> list[dict[str, str | None]]:
    """Return each production stage with the date it was reached, or None when not reached yet.

    ``events`` are (state entered, date) in the order they happened. A stage reached twice
    (not possible with the current table) would show its first date.
    """
    reached: dict[CardStatus, datetime.date] = {}
    for status, date in events:
        reached.setdefault(status, date)
    return [
        {
            "stage": stage.value,
            "stage_name": stage.name_zh,
            "date": reached[stage].isoformat() if stage in reached else None,
        }
        for stage in PRODUCTION_STAGES
    ]


_CARD_NO = re.compile(r"[0-9A-Z]{6,20}")
_ADMDVS = re.compile(r"[0-9]{6}")
_BANK_ACCOUNT = re.compile(r"[0-9]{12,19}")


def check_card_fields(card: CardRecord) -> None:
    """Raise REQUIRED_FIELD or INVALID_FIELD for a card record that cannot be stored."""
    if not _CARD_NO.fullmatch(card.card_no):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="card_no", value=card.card_no, sensitive=True,
            detail="应为 6 至 20 位数字或大写字母", detail_en="must be 6 to 20 digits or capital letters",
        )
    if card.generation not in (1, 2):
        raise SettlementError(ErrorCode.INVALID_FIELD, field="generation", value=card.generation, detail="应为 1 或 2", detail_en="must be 1 or 2")
    if not _ADMDVS.fullmatch(card.issuing_admdvs):
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="issuing_admdvs", value=card.issuing_admdvs,
            detail="应为 6 位行政区划代码", detail_en="must be a 6-digit division code",
        )
    if card.generation == 2:
        if not card.bank_code:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field="bank_code")
        if not card.bank_account:
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field="bank_account")
        if not _BANK_ACCOUNT.fullmatch(card.bank_account):
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field="bank_account", value=card.bank_account, sensitive=True,
                detail="应为 12 至 19 位数字", detail_en="must be 12 to 19 digits",
            )
    elif card.bank_code or card.bank_account:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="bank_account", value="***",
            detail="第一代卡没有金融账户", detail_en="a first-generation card has no financial account",
        )
