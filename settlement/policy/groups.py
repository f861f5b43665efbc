"""Person groups that select deductibles and ratios, derived from the person type and age.

The rule files know four groups (``settlement.types.PERSON_GROUPS``). A person type
comes either as the word used by the claim vectors (``active``, ``retired``,
``resident``) or as a national ``psn_type`` code, read by its first two digits:
``11`` in service (在职), ``12`` retired (退休), ``14`` and ``15`` residents (城乡居民).
Other families, such as ``13`` for 离休 cadres, have their own treatment in each region
and raise ``UNKNOWN_PERSON_GROUP`` until a rule for them is written.

A retiree aged 70 or more on the reference date is ``retired_70plus``. The caller
chooses the reference date (the engine uses the settlement date).
"""

from __future__ import annotations

import datetime
import re

from settlement.errors import ErrorCode, SettlementError

__all__ = ["PSN_TYPE_PREFIX_GROUPS", "RETIREE_AGE_70", "age_on", "person_group"]

RETIREE_AGE_70 = 70

# First two digits of a national psn_type code -> base group.
# NOTE: prefixes taken from the commonly used national 人员类别 table; confirm the local
# dictionary before adding codes from other families.
PSN_TYPE_PREFIX_GROUPS = {
    "11": "active",
    "12": "retired",
    "14": "resident",
    "15": "resident",
}

_WORD_GROUPS = {"active": "active", "retired": "retired", "resident": "resident"}

_PSN_TYPE_CODE = re.compile(r"[0-9]{2,6}")


def person_group(psn_type: str | None, age_on_date: int | None, *, field: str = "psn_type") -> str:
    """Return the person group for a person type and the age on the reference date.

    Raises ``MISSING_PERSON_GROUP`` when ``psn_type`` is missing or empty,
    ``UNKNOWN_PERSON_GROUP`` for a type outside the table, and ``REQUIRED_FIELD`` for a
    retiree without an age, because the age decides between ``retired`` and ``retired_70plus``.
    """
    if psn_type is None or psn_type == "":
        raise SettlementError(ErrorCode.MISSING_PERSON_GROUP, field=field)

    base = _WORD_GROUPS.get(psn_type)
    if base is None and _PSN_TYPE_CODE.fullmatch(psn_type):
        base = PSN_TYPE_PREFIX_GROUPS.get(psn_type[:2])
    if base is None:
        raise SettlementError(
            ErrorCode.UNKNOWN_PERSON_GROUP,
            field=field,
            value=psn_type,
            detail="可用 active、retired、resident 或以 11、12、14、15 开头的国家人员类别代码",
            detail_en="use active, retired, resident or a national psn_type code starting with 11, 12, 14 or 15",
        )

    if base != "retired":
        return base
    if age_on_date is None:
        raise SettlementError(
            ErrorCode.REQUIRED_FIELD,
            field="age",
            detail="退休人员需要年龄以区分 70 岁及以上",
            detail_en="a retiree needs an age to tell whether they are 70 or older",
        )
    return "retired_70plus" if age_on_date >= RETIREE_AGE_70 else "retired"


def age_on(birth_date: datetime.date, on_date: datetime.date) -> int:
    """Return the age in whole years on ``on_date``. A 29 February birthday counts from 1 March in other years."""
    had_birthday = (on_date.month, on_date.day) >= (birth_date.month, birth_date.day)
    return on_date.year - birth_date.year - (0 if had_birthday else 1)
