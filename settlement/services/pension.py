"""Endowment insurance personal account arithmetic in integer fen.

Contribution: ``base x rate``, rounded half away from zero to the fen once per month.

Yearly interest at the year's crediting rate ``r``: the balance at the start of the year
earns a full year, ``B x r``, and a contribution of month m (1-12) earns the months left
after it, ``C_m x r x (12 - m) / 12``. The sum is computed exactly and rounded half away
from zero to the fen once, for the whole year.
"""

from __future__ import annotations

from fractions import Fraction

from settlement.errors import ErrorCode, SettlementError
from settlement.money import format_amount, round_half_away
from settlement.services.standards import PensionStandard
from settlement.types import RATIO_SCALE

__all__ = ["check_base", "contribution_amount", "yearly_interest"]


def check_base(standard: PensionStandard, base: int, field: str = "base") -> None:
    """Raise AMOUNT_OUT_OF_RANGE when the contribution base is outside the region's limits."""
    if not standard.base_min <= base <= standard.base_max:
        raise SettlementError(
            ErrorCode.AMOUNT_OUT_OF_RANGE, field=field, value=format_amount(base),
            detail=f"缴费基数应在 {format_amount(standard.base_min)} 至 {format_amount(standard.base_max)} 元之间",
            detail_en=f"the contribution base must be between {format_amount(standard.base_min)} and {format_amount(standard.base_max)} yuan",
        )


def contribution_amount(base: int, rate: int) -> int:
    """Return the monthly contribution in fen for a base in fen and a rate in 1e-4."""
    return round_half_away(base * rate, RATIO_SCALE)


def yearly_interest(opening_balance: int, monthly_contributions: dict[int, int], rate: int) -> int:
    """Return the year's interest in fen.

    ``monthly_contributions`` maps a month (1-12) to what was contributed in it, in fen.
    """
    exact = Fraction(opening_balance * rate, RATIO_SCALE)
    for month, amount in monthly_contributions.items():
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} is outside 1-12")
        exact += Fraction(amount * rate * (12 - month), RATIO_SCALE * 12)
    return round_half_away(exact.numerator, exact.denominator)
