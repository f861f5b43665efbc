"""Spread a settlement's claim-level amounts back over its fee lines.

The national output reports funds, account and cash per claim, but institutions book
revenue, and auditors trace payments, per fee line. The split must be exact: for every
amount, the line shares add up to the claim figure to the fen.

Rule: each fund layer is shared in proportion to the lines' in-scope amounts. A share is
floored to the fen, and the fen left over go one each to the lines with the largest
remainders, ties broken by ``feedetl_sn`` ascending. The account payment is then shared
the same way in proportion to what each line leaves the person, and cash is the rest of
the line (after the hospital's part, shared like a fund). The result depends only on the stored settlement, so recomputing it at any time gives
the same shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from settlement.types import LineResult, SettlementOutputs

__all__ = ["FUND_LAYER_FIELDS", "LineAllocation", "allocate_lines", "largest_remainder"]

# Fund payments shared over the lines, in the order of the national output.
FUND_LAYER_FIELDS = ("hifp_pay", "hifob_pay", "hifmi_pay", "cvlserv_pay", "maf_pay")


class LineAllocation(msgspec.Struct, frozen=True):
    """One fee line's share of a settlement, in fen; the parts add up to ``amount``."""

    feedetl_sn: str
    amount: int
    hifp_pay: int
    hifob_pay: int
    hifmi_pay: int
    cvlserv_pay: int
    maf_pay: int
    fund_pay_sumamt: int
    hosp_part_amt: int
    acct_pay: int
    psn_cash_pay: int


def largest_remainder(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """Split ``total`` fen in proportion to ``weights`` so that the shares add up to ``total``.

    Weights below zero count as zero. When every weight is zero the whole total goes to the
    first key in order, so that nothing is lost. A negative total (a reversal) is split as
    its absolute value and negated, which keeps a reversal the mirror of its original.
    """
    if len(weights) != len(keys):
        raise ValueError("weights and keys must have the same length")
    if not keys:
        if total != 0:
            raise ValueError(f"cannot share {total} fen over no lines")
        return []

    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    clamped = [max(0, weight) for weight in weights]
    weight_sum = sum(clamped)
    if weight_sum == 0:
        first = min(range(len(keys)), key=lambda index: keys[index])
        return [sign * magnitude if index == first else 0 for index in range(len(keys))]

    shares = []
    remainders = []
    for index, weight in enumerate(clamped):
        share, remainder = divmod(magnitude * weight, weight_sum)
        shares.append(share)
        remainders.append((-remainder, keys[index], index))

    left_over = magnitude - sum(shares)
    for _, _, index in sorted(remainders)[:left_over]:
        shares[index] += 1

    assert sum(shares) == magnitude
    return [sign * share for share in shares]


def allocate_lines(outputs: SettlementOutputs, lines: Sequence[LineResult]) -> list[LineAllocation]:
    """Share the funds, the account and the cash of one settlement over its fee lines.

    A reversal (negative total) is shared as the mirror of its original.
    """
    if outputs.medfee_sumamt < 0:
        mirrored = allocate_lines(_negated_outputs(outputs), [_negated_line(line) for line in lines])
        return [_negated_allocation(item) for item in mirrored]

    keys = [line.feedetl_sn for line in lines]
    funds = [0] * len(lines)
    layer_shares = {}
    for name in FUND_LAYER_FIELDS:
        shares = largest_remainder(getattr(outputs, name), _capacity(getattr(outputs, name), lines, funds), keys)
        layer_shares[name] = shares
        funds = [fund + share for fund, share in zip(funds, shares)]

    hospital = largest_remainder(outputs.hosp_part_amt, _capacity(outputs.hosp_part_amt, lines, funds), keys)
    personal = [line.amount - fund - part for line, fund, part in zip(lines, funds, hospital)]
    account = largest_remainder(outputs.acct_pay, personal, keys)

    allocations = []
    for index, line in enumerate(lines):
        allocations.append(
            LineAllocation(
                feedetl_sn=line.feedetl_sn,
                amount=line.amount,
                hifp_pay=layer_shares["hifp_pay"][index],
                hifob_pay=layer_shares["hifob_pay"][index],
                hifmi_pay=layer_shares["hifmi_pay"][index],
                cvlserv_pay=layer_shares["cvlserv_pay"][index],
                maf_pay=layer_shares["maf_pay"][index],
                fund_pay_sumamt=funds[index],
                hosp_part_amt=hospital[index],
                acct_pay=account[index],
                psn_cash_pay=personal[index] - account[index],
            )
        )

    assert sum(item.psn_cash_pay for item in allocations) == outputs.psn_cash_pay
    return allocations


def _capacity(total: int, lines: Sequence[LineResult], allocated: Sequence[int]) -> list[int]:
    """Return how much of each line a payment of ``total`` may still take, as sharing weights.

    Funds pay the in-scope part first. Only a layer that pays more than what is left of it
    (critical illness counting the first self-pay) reaches into the first self-pay, and
    past that into the rest of the line. Sharing in proportion to what is left never gives
    a line more than it has, because a floored share plus one fen stays within it.
    """
    tiers = (
        [line.inscp_scp_amt for line in lines],
        [line.inscp_scp_amt + line.preselfpay_amt for line in lines],
        [line.amount for line in lines],
    )
    for tier in tiers:
        left = [max(0, room - used) for room, used in zip(tier, allocated)]
        if sum(left) >= total:
            return left
    return left


def _negated_outputs(outputs: SettlementOutputs) -> SettlementOutputs:
    values = {field: -getattr(outputs, field) for field in outputs.__struct_fields__}
    values["pool_prop_selfpay"] = outputs.pool_prop_selfpay
    return SettlementOutputs(**values)


def _negated_line(line: LineResult) -> LineResult:
    return LineResult(
        line.feedetl_sn,
        -line.amount,
        -line.fulamt_ownpay_amt,
        -line.overlmt_amt,
        -line.preselfpay_amt,
        -line.inscp_scp_amt,
    )


def _negated_allocation(item: LineAllocation) -> LineAllocation:
    values = {field: -getattr(item, field) for field in item.__struct_fields__ if field != "feedetl_sn"}
    return LineAllocation(feedetl_sn=item.feedetl_sn, **values)
