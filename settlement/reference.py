"""Pure-Python reference model of one settlement, used to check the Cython kernel.

It shares no code with the kernel or its wrapper and is written another way on purpose.
Every product is an exact ``fractions.Fraction`` in yuan, each calculation step is one
small function, and money goes back to integer fen only where the engine conventions
round. Those points are the line amount, the capped amount of an over-cap line, the
line's first self-pay, each band payment and each layer payment, all rounded half away
from zero. The expense at which the pooled cap runs out is rounded up instead. The model
is slow, and is meant to be easy to check by hand.

``settle_reference`` settles a claim, ``cancel_reference`` reverses a stored result
without recomputing it, and ``refund_partial_reference`` cancels a claim and settles the
lines that were kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from fractions import Fraction

from settlement.types import (
    RATIO_SCALE,
    Band,
    ChargeClass,
    ClaimInput,
    FeeLine,
    FundDetail,
    LineResult,
    SchemeParams,
    SettlementOutputs,
    SettlementResult,
    TraceStep,
)

__all__ = [
    "cancel_reference",
    "refund_partial_reference",
    "settle_reference",
]

FEN_PER_YUAN = 100
MICRO_PER_YUAN = 1_000_000
QUANTITY_SCALE = 10_000

# The trace writes -1 where a step has no cap, so it can stay a plain integer field.
NO_LIMIT = -1


# ---------------------------------------------------------------------------
# Exact values and the two rounding rules.


def yuan_from_fen(fen: int) -> Fraction:
    return Fraction(fen, FEN_PER_YUAN)


def ratio_value(ratio: int) -> Fraction:
    return Fraction(ratio, RATIO_SCALE)


def round_to_fen(yuan: Fraction) -> int:
    """Round an exact yuan value half away from zero to whole fen (四舍五入)."""
    fen = yuan * FEN_PER_YUAN
    magnitude = abs(fen)
    whole = magnitude.numerator // magnitude.denominator
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return whole if fen >= 0 else -whole


def ceil_to_fen(yuan: Fraction) -> int:
    """Round an exact yuan value up to whole fen, which only the cap-point expense does."""
    fen = yuan * FEN_PER_YUAN
    return -((-fen.numerator) // fen.denominator)


def share_of(base_fen: int, ratio: int) -> int:
    """Return ``base x ratio`` rounded half away from zero to the fen, as every band and layer payment is."""
    return round_to_fen(yuan_from_fen(base_fen) * ratio_value(ratio))


# ---------------------------------------------------------------------------
# Lines: amount, split into four parts, and totals as sums of the rounded parts.


def line_amount(line: FeeLine) -> int:
    """Return the amount of record, else price x quantity computed exactly and rounded once."""
    if line.amount is not None:
        return line.amount
    price = Fraction(line.price_micro, MICRO_PER_YUAN)
    quantity = Fraction(line.quantity, QUANTITY_SCALE)
    return round_to_fen(price * quantity)


def capped_amount(line: FeeLine, amount: int) -> int:
    """Return the part of the line within the price cap, which is the whole amount unless the price is above the cap.

    The capped part is kept between 0 and the amount: an amount of record can round below
    the rounded capped product when both are fractions of a fen.
    """
    if line.price_cap_micro is None or line.price_micro <= line.price_cap_micro:
        return amount
    cap = Fraction(line.price_cap_micro, MICRO_PER_YUAN)
    quantity = Fraction(line.quantity, QUANTITY_SCALE)
    capped = round_to_fen(cap * quantity)
    return min(max(capped, min(0, amount)), max(0, amount))


def split_line(line: FeeLine) -> LineResult:
    """Split one line into fully self-paid, over-cap, first self-pay and in-scope parts."""
    amount = line_amount(line)

    if line.charge_class == ChargeClass.C:
        return LineResult(line.feedetl_sn, amount, amount, 0, 0, 0)

    capped = capped_amount(line, amount)
    first_selfpay = share_of(capped, line.selfpay_prop)
    return LineResult(
        feedetl_sn=line.feedetl_sn,
        amount=amount,
        fulamt_ownpay_amt=0,
        overlmt_amt=amount - capped,
        preselfpay_amt=first_selfpay,
        inscp_scp_amt=capped - first_selfpay,
    )


@dataclasses.dataclass(frozen=True)
class ClaimTotals:
    """Sums of the rounded line parts."""

    medfee: int
    fulamt: int
    overlmt: int
    preselfpay: int
    inscp: int


def total_lines(splits: Iterable[LineResult]) -> ClaimTotals:
    splits = tuple(splits)
    return ClaimTotals(
        medfee=sum(s.amount for s in splits),
        fulamt=sum(s.fulamt_ownpay_amt for s in splits),
        overlmt=sum(s.overlmt_amt for s in splits),
        preselfpay=sum(s.preselfpay_amt for s in splits),
        inscp=sum(s.inscp_scp_amt for s in splits),
    )


# ---------------------------------------------------------------------------
# Accumulator reads.


def read(accumulators: Mapping[str, int], key: str | None) -> int:
    """Return an accumulator value, counting an unnamed or missing accumulator as 0."""
    if key is None:
        return 0
    return accumulators.get(key, 0)


def cap_left(cap: int | None, accumulators: Mapping[str, int], key: str | None) -> int | None:
    """Return what a yearly cap still allows (never below 0), or None for an uncapped layer."""
    if cap is None:
        return None
    return max(0, cap - read(accumulators, key))


def within(amount: int, limit: int | None) -> int:
    return amount if limit is None else min(amount, limit)


# ---------------------------------------------------------------------------
# Deductible, counted against the in-scope amount only.


def deductible_due(params: SchemeParams, accumulators: Mapping[str, int]) -> int:
    """Return the deductible still owed before this claim."""
    if params.deductible_basis == "annual":
        used = read(accumulators, params.deductible_accumulator)
        return max(0, params.deductible_amount - used)

    if params.deductible_basis == "per_admission":
        admissions = read(accumulators, params.deductible_accumulator)
        return params.deductible_amount if admissions == 0 else params.deductible_subsequent

    return 0


def deductible_applied(inscp: int, due: int) -> int:
    """Only in-scope money fills the deductible, so the claim applies at most its in-scope amount."""
    return max(0, min(inscp, due))


# ---------------------------------------------------------------------------
# Pooled fund by bands, with the yearly cap on its payment.


def interval_overlap(start: int, end: int, lower: int, upper: int | None) -> int:
    """Return the length of [start, end) inside [lower, upper); None is an open upper end."""
    top = end if upper is None else min(end, upper)
    return max(0, top - max(start, lower))


def band_upper(bands: tuple[Band, ...], index: int) -> int | None:
    return bands[index + 1].lower if index + 1 < len(bands) else None


@dataclasses.dataclass
class PooledFund:
    """Payment of the basic pooled fund, the in-scope expense above its cap, and its trace steps."""

    paid: int = 0
    above_cap: int = 0
    first_band_ratio: int = 0
    cap_left_before: int | None = None
    trace: list[TraceStep] = dataclasses.field(default_factory=list)


def settle_bands(params: SchemeParams, accumulators: Mapping[str, int], inscp: int, dedc: int) -> PooledFund:
    """Pay each band overlap of the fund range at its ratio, band by band against the cap left.

    The claim sits at [cum, cum + inscp) on the band scale and the deductible takes the
    first ``dedc`` of it, so the fund works on [cum + dedc, cum + inscp).
    """
    position = read(accumulators, params.band_accumulator)
    start, end = position + dedc, position + inscp
    limit = cap_left(params.fund_cap, accumulators, params.fund_cap_accumulator)
    fund = PooledFund(cap_left_before=limit)
    cap_reached = False
    cap_step: tuple[int, TraceStep] | None = None
    first_band_seen = False

    for index, band in enumerate(params.bands):
        overlap = interval_overlap(start, end, band.lower, band_upper(params.bands, index))
        if overlap == 0:
            continue
        if not first_band_seen:
            # pool_prop_selfpay reports the ratio of the first band the fund range enters.
            fund.first_band_ratio = band.ratio
            first_band_seen = True

        if cap_reached:
            fund.above_cap += overlap
            continue

        payment = share_of(overlap, band.ratio)
        if limit is not None and payment > limit:
            used = expense_at_cap(limit, band.ratio)
            fund.trace.append(TraceStep("band", index, overlap, band.ratio, limit, limit))
            cap_step = (len(fund.trace), TraceStep("cap", index, used, band.ratio, 0, limit))
            fund.trace.append(cap_step[1])
            fund.paid += limit
            fund.above_cap += overlap - used
            limit = 0
            cap_reached = True
            continue

        fund.trace.append(TraceStep("band", index, overlap, band.ratio, payment, NO_LIMIT if limit is None else limit))
        fund.paid += payment
        if limit is not None:
            limit -= payment

    if cap_step is not None:
        # The cap step works on the expense that used up the cap and yields all the expense above it.
        position_in_trace, step = cap_step
        fund.trace[position_in_trace] = TraceStep(step.step, step.index, step.base, step.ratio, fund.above_cap, step.limit)
    return fund


def expense_at_cap(cap_left_fen: int, ratio: int) -> int:
    """Return the expense that uses up the cap: cap left / ratio, rounded up so the fund is never short."""
    return ceil_to_fen(yuan_from_fen(cap_left_fen) / ratio_value(ratio))


# ---------------------------------------------------------------------------
# Layers after the basic fund, in the order they pay.


@dataclasses.dataclass(frozen=True)
class LayerPayment:
    """One layer's payment with the base it worked on and its cap left before the claim."""

    paid: int
    base: int
    limit: int | None
    ratio: int = 0


def large_amount(params: SchemeParams, accumulators: Mapping[str, int], above_cap: int) -> LayerPayment | None:
    """Pay the employee large-amount share of the in-scope expense above the pooled cap, within its own cap."""
    if params.large_amount_ratio is None:
        return None
    limit = cap_left(params.large_amount_cap, accumulators, params.large_amount_accumulator)
    paid = within(share_of(above_cap, params.large_amount_ratio), limit)
    return LayerPayment(paid, above_cap, limit, params.large_amount_ratio)


def critical_illness_base(params: SchemeParams, totals: ClaimTotals, hifp: int, hifob: int) -> int:
    """Return the in-scope personal burden this claim adds to the critical illness base.

    The base is what the basic and large-amount funds left of the in-scope amount, so it
    includes the deductible. Class-B first self-pay is added only when ``include_preselfpay`` is set.
    """
    base = totals.inscp - hifp - hifob
    if params.critical_illness is not None and params.critical_illness.include_preselfpay:
        base += totals.preselfpay
    return base


def critical_illness(
    params: SchemeParams, accumulators: Mapping[str, int], base: int, trace: list[TraceStep]
) -> LayerPayment | None:
    """Pay resident critical illness: each band overlap of [cum, cum + base) at its ratio, within the cap.

    Band edges are absolute points on the year's cumulative base, so the first edge acts as
    the layer's own deductible.
    """
    layer = params.critical_illness
    if layer is None:
        return None

    position = read(accumulators, layer.base_accumulator)
    limit_before = cap_left(layer.cap, accumulators, layer.paid_accumulator)
    limit = limit_before
    total = 0
    for index, band in enumerate(layer.bands):
        overlap = interval_overlap(position, position + base, band.lower, band_upper(layer.bands, index))
        if overlap == 0:
            continue
        # Limiting band by band gives the same total as limiting the sum, and each trace step shows what was paid.
        payment = within(share_of(overlap, band.ratio), limit)
        trace.append(TraceStep("critical_illness", index, overlap, band.ratio, payment, NO_LIMIT if limit is None else limit))
        total += payment
        if limit is not None:
            limit -= payment

    return LayerPayment(total, base, limit_before)


def civil_servant(
    params: SchemeParams,
    accumulators: Mapping[str, int],
    totals: ClaimTotals,
    paid_before: tuple[int, int, int, int],
    trace: list[TraceStep],
) -> LayerPayment | None:
    """Pay the civil servant subsidy: a share of the deductible plus a share of the in-scope co-payment.

    ``paid_before`` is ``(act_pay_dedc, hifp, hifob, hifmi)``. The two shares are rounded
    separately, and the cap is applied to each in turn, which gives the same total as
    capping their sum.
    """
    layer = params.civil_servant
    if layer is None:
        return None
    dedc, hifp, hifob, hifmi = paid_before
    # The co-payment is negative only for a claim whose lines add up below 0, where nothing is owed.
    copay_owed = max(0, totals.inscp - dedc - hifp - hifob)

    # Whatever critical illness insurance paid of this burden is not paid again: it is
    # counted against the co-payment first and the rest against the deductible.
    critical_on_copay = min(hifmi, copay_owed)
    critical_on_dedc = hifmi - critical_on_copay
    copay = copay_owed - critical_on_copay
    dedc_base = max(0, dedc - critical_on_dedc)
    limit_before = cap_left(layer.cap, accumulators, layer.accumulator)

    limit = limit_before
    total = 0
    for index, (base, ratio) in enumerate(((dedc_base, layer.dedc_ratio), (copay, layer.copay_ratio))):
        payment = within(share_of(base, ratio), limit)
        trace.append(TraceStep("civil_servant", index, base, ratio, payment, NO_LIMIT if limit is None else limit))
        total += payment
        if limit is not None:
            limit -= payment
    return LayerPayment(total, dedc_base + copay, limit_before)


def medical_assistance(
    params: SchemeParams, accumulators: Mapping[str, int], totals: ClaimTotals, paid_before: int
) -> LayerPayment | None:
    """Pay medical assistance: its ratio of the in-scope burden the other funds left, within the cap.

    NOTE: the base is kept at 0 or more. Two policy shapes can push it below 0. One is a
    critical illness base that counts first self-pay, so that layer may pay more than the
    in-scope remainder. The other is critical illness together with the civil servant
    subsidy, whose co-payment does not subtract the critical illness payment. No bundled
    policy has either shape.
    """
    layer = params.medical_assistance
    if layer is None:
        return None
    base = max(0, totals.inscp - paid_before)
    limit = cap_left(layer.cap, accumulators, layer.accumulator)
    return LayerPayment(within(share_of(base, layer.ratio), limit), base, limit, layer.ratio)


# ---------------------------------------------------------------------------
# Funds together.


@dataclasses.dataclass(frozen=True)
class FundPayments:
    """Every fund amount of one claim."""

    dedc: int
    pooled: PooledFund
    hifob: LayerPayment | None
    hifmi: LayerPayment | None
    cii_base: int
    cvlserv: LayerPayment | None
    maf: LayerPayment | None
    layer_trace: tuple[TraceStep, ...]

    @property
    def hifp_amount(self) -> int:
        return self.pooled.paid

    def amount(self, layer: LayerPayment | None) -> int:
        return 0 if layer is None else layer.paid

    @property
    def total(self) -> int:
        return self.hifp_amount + sum(self.amount(x) for x in (self.hifob, self.hifmi, self.cvlserv, self.maf))


def pay_funds(params: SchemeParams, accumulators: Mapping[str, int], totals: ClaimTotals) -> FundPayments:
    """Run the deductible, the pooled fund, large-amount, critical illness, civil servant subsidy and assistance in turn."""
    if not params.fund_enabled:
        return FundPayments(0, PooledFund(), None, None, 0, None, None, ())

    dedc = deductible_applied(totals.inscp, deductible_due(params, accumulators))
    pooled = settle_bands(params, accumulators, totals.inscp, dedc)
    hifob = large_amount(params, accumulators, pooled.above_cap)
    hifob_paid = 0 if hifob is None else hifob.paid

    layer_trace: list[TraceStep] = []
    if hifob is not None and pooled.above_cap:
        layer_trace.extend(layer_step("large_amount", hifob))

    cii_base = critical_illness_base(params, totals, pooled.paid, hifob_paid)
    hifmi = critical_illness(params, accumulators, cii_base, layer_trace)
    hifmi_paid = 0 if hifmi is None else hifmi.paid

    cvlserv = civil_servant(params, accumulators, totals, (dedc, pooled.paid, hifob_paid, hifmi_paid), layer_trace)
    cvlserv_paid = 0 if cvlserv is None else cvlserv.paid

    maf = medical_assistance(params, accumulators, totals, pooled.paid + hifob_paid + hifmi_paid + cvlserv_paid)
    layer_trace.extend(layer_step("medical_assistance", maf))
    return FundPayments(dedc, pooled, hifob, hifmi, cii_base, cvlserv, maf, tuple(layer_trace))


# ---------------------------------------------------------------------------
# Accounts, only when the visit lets them pay.


@dataclasses.dataclass(frozen=True)
class AccountPayment:
    """Money taken from the patient's own account and from a bound relative's account."""

    payable: int
    own: int
    mutual_aid: int
    balance_before: int


def pay_accounts(claim: ClaimInput, totals: ClaimTotals, personal_part: int) -> AccountPayment:
    """Let the own account, then a relative's account, pay what the policy allows of the personal part."""
    account = claim.params.account
    balance = read(claim.accumulators, "acct_balc")
    if not claim.acct_used:
        return AccountPayment(0, 0, 0, balance)

    payable = personal_part
    if not account.pays_fulamt:
        payable -= totals.fulamt
    if not account.pays_overlmt:
        payable -= totals.overlmt
    payable = max(0, payable)

    own = min(balance, payable) if account.has_account else 0
    mutual_aid = 0
    if account.mutual_aid and claim.has_family_account:
        mutual_aid = min(read(claim.accumulators, "family_acct_balc"), payable - own)
    return AccountPayment(payable, own, mutual_aid, balance)


# ---------------------------------------------------------------------------
# Accumulators after the claim, moved by exactly what the claim used.


def accumulator_moves(claim: ClaimInput, funds: FundPayments, totals: ClaimTotals, accounts: AccountPayment) -> dict[str, int]:
    """Return how much each touched accumulator moves, where a move of 0 still puts the key in the result."""
    params = claim.params
    moves: dict[str, int] = {}

    def move(key: str | None, amount: int) -> None:
        if key is not None:
            moves[key] = moves.get(key, 0) + amount

    if params.fund_enabled:
        if params.deductible_basis == "annual":
            move(params.deductible_accumulator, funds.dedc)
        elif params.deductible_basis == "per_admission":
            move(params.deductible_accumulator, 1)
        move(params.band_accumulator, totals.inscp)
        move(params.fund_cap_accumulator, funds.hifp_amount)
        if params.large_amount_ratio is not None:
            move(params.large_amount_accumulator, funds.amount(funds.hifob))
        if params.critical_illness is not None:
            move(params.critical_illness.base_accumulator, funds.cii_base)
            move(params.critical_illness.paid_accumulator, funds.amount(funds.hifmi))
        if params.civil_servant is not None:
            move(params.civil_servant.accumulator, funds.amount(funds.cvlserv))
        if params.medical_assistance is not None:
            move(params.medical_assistance.accumulator, funds.amount(funds.maf))

    if params.account.has_account and claim.acct_used:
        move("acct_balc", -accounts.own)
    if accounts.mutual_aid:
        move("family_acct_balc", -accounts.mutual_aid)
    return moves


def apply_moves(before: Mapping[str, int], moves: Mapping[str, int]) -> dict[str, int]:
    """Add each move to its accumulator, leaving keys that did not move as they were."""
    after = dict(before)
    for key, amount in moves.items():
        after[key] = before.get(key, 0) + amount
    return after


# ---------------------------------------------------------------------------
# Fund detail rows and trace.


def fund_detail_rows(
    claim: ClaimInput, funds: FundPayments, totals: ClaimTotals, accounts: AccountPayment
) -> tuple[FundDetail, ...]:
    """Return the ``setldetail`` rows in the national order.

    With the fund enabled there is a ``hifp`` row and one row per configured layer, even
    when it paid 0, so the detail shows every layer the claim went through. The ``acct``
    row appears only when the accounts paid.
    """
    rows: list[FundDetail] = []
    if claim.params.fund_enabled:
        rows.append(FundDetail("hifp", totals.inscp, funds.pooled.cap_left_before, funds.hifp_amount))
        for name, layer in (("hifob", funds.hifob), ("hifmi", funds.hifmi), ("cvlserv", funds.cvlserv), ("maf", funds.maf)):
            if layer is not None:
                rows.append(FundDetail(name, layer.base, layer.limit, layer.paid))

    paid = accounts.own + accounts.mutual_aid
    if paid:
        rows.append(FundDetail("acct", accounts.payable, usable_balances(claim), paid))
    return tuple(rows)


def usable_balances(claim: ClaimInput) -> int:
    """Return what the own account and a bound relative's account could pay together before the claim."""
    account = claim.params.account
    usable = read(claim.accumulators, "acct_balc") if account.has_account else 0
    if account.mutual_aid and claim.has_family_account:
        usable += read(claim.accumulators, "family_acct_balc")
    return usable


def layer_step(step: str, layer: LayerPayment | None) -> list[TraceStep]:
    if layer is None:
        return []
    return [TraceStep(step, -1, layer.base, layer.ratio, layer.paid, NO_LIMIT if layer.limit is None else layer.limit)]


def build_trace(claim: ClaimInput, splits: tuple[LineResult, ...], funds: FundPayments, accounts: AccountPayment) -> tuple[TraceStep, ...]:
    """Return the steps in the order they were computed: lines, deductible, bands, layers, accounts.

    A step appears when the claim went through it. The deductible step needs a scheme
    with a deductible, and the large-amount step some expense above the pooled cap. Each
    account step appears when that account was allowed to pay, even if it paid 0.
    """
    params = claim.params
    steps = [
        TraceStep("line", index, split.amount, line.selfpay_prop, split.inscp_scp_amt, NO_LIMIT)
        for index, (split, line) in enumerate(zip(splits, claim.lines, strict=True))
    ]
    if params.fund_enabled and params.deductible_basis != "none":
        due = deductible_due(params, claim.accumulators)
        steps.append(TraceStep("deductible", -1, sum(s.inscp_scp_amt for s in splits), 0, funds.dedc, due))
    steps.extend(funds.pooled.trace)
    steps.extend(funds.layer_trace)

    if claim.acct_used and params.account.has_account:
        steps.append(TraceStep("account", -1, accounts.payable, 0, accounts.own, accounts.balance_before))
    if claim.acct_used and params.account.mutual_aid and claim.has_family_account:
        family_balance = read(claim.accumulators, "family_acct_balc")
        steps.append(TraceStep("mutual_aid", -1, accounts.payable - accounts.own, 0, accounts.mutual_aid, family_balance))
    return tuple(steps)


# ---------------------------------------------------------------------------
# Public entry points.


def settle_reference(claim: ClaimInput) -> SettlementResult:
    """Settle one claim by the engine conventions, exactly and slowly."""
    splits = tuple(split_line(line) for line in claim.lines)
    totals = total_lines(splits)

    funds = pay_funds(claim.params, claim.accumulators, totals)
    personal_part = totals.medfee - funds.total
    accounts = pay_accounts(claim, totals, personal_part)

    own_balance_after = accounts.balance_before - accounts.own if claim.params.account.has_account else 0
    outputs = SettlementOutputs(
        medfee_sumamt=totals.medfee,
        fulamt_ownpay_amt=totals.fulamt,
        overlmt_selfpay=totals.overlmt,
        preselfpay_amt=totals.preselfpay,
        inscp_scp_amt=totals.inscp,
        act_pay_dedc=funds.dedc,
        hifp_pay=funds.hifp_amount,
        hifob_pay=funds.amount(funds.hifob),
        hifmi_pay=funds.amount(funds.hifmi),
        cvlserv_pay=funds.amount(funds.cvlserv),
        maf_pay=funds.amount(funds.maf),
        fund_pay_sumamt=funds.total,
        psn_part_amt=personal_part,
        acct_pay=accounts.own + accounts.mutual_aid,
        acct_mulaid_pay=accounts.mutual_aid,
        psn_cash_pay=personal_part - accounts.own - accounts.mutual_aid,
        hosp_part_amt=0,
        balc=own_balance_after,
        pool_prop_selfpay=funds.pooled.first_band_ratio,
    )

    moves = accumulator_moves(claim, funds, totals, accounts)
    return SettlementResult(
        outputs=outputs,
        lines=splits,
        fund_details=fund_detail_rows(claim, funds, totals, accounts),
        accumulators_after=apply_moves(claim.accumulators, moves),
        trace=build_trace(claim, splits, funds, accounts),
    )


def negate_outputs(outputs: SettlementOutputs, restored_balance: int) -> SettlementOutputs:
    """Flip the sign of every amount, set ``balc`` to the restored balance and keep the ratio."""
    values = {name: -getattr(outputs, name) for name in outputs.__struct_fields__}
    values["balc"] = restored_balance
    values["pool_prop_selfpay"] = outputs.pool_prop_selfpay
    return SettlementOutputs(**values)


def negate_line(split: LineResult) -> LineResult:
    return LineResult(
        feedetl_sn=split.feedetl_sn,
        amount=-split.amount,
        fulamt_ownpay_amt=-split.fulamt_ownpay_amt,
        overlmt_amt=-split.overlmt_amt,
        preselfpay_amt=-split.preselfpay_amt,
        inscp_scp_amt=-split.inscp_scp_amt,
    )


def cancel_reference(
    original: SettlementResult,
    accumulators_before_original: Mapping[str, int],
    accumulators_now: Mapping[str, int],
) -> SettlementResult:
    """Reverse a stored settlement without recomputing it.

    Each accumulator moves back by exactly what the original added to it, measured as
    its value after the original minus its value before. Later claims keep their own
    effects on ``accumulators_now``. Every amount is negated, and ``balc`` is the own
    account balance once the original's payment is back in it.
    """
    moves = {
        key: accumulators_before_original.get(key, 0) - value
        for key, value in original.accumulators_after.items()
    }
    after = apply_moves(accumulators_now, moves)

    # The own account got back what the original took, so its balance now is the restored one.
    return SettlementResult(
        outputs=negate_outputs(original.outputs, read(after, "acct_balc")),
        lines=tuple(negate_line(split) for split in original.lines),
        fund_details=tuple(
            FundDetail(row.layer, -row.inscp_scp_amt, row.crt_payb_lmt_amt, -row.fund_payamt)
            for row in original.fund_details
        ),
        accumulators_after=after,
        trace=(),
    )


def refund_partial_reference(
    original: SettlementResult,
    accumulators_before_original: Mapping[str, int],
    accumulators_now: Mapping[str, int],
    kept_claim: ClaimInput,
) -> tuple[SettlementResult, SettlementResult]:
    """Cancel a whole settlement, then settle the kept lines against the restored accumulators.

    ``kept_claim`` carries the lines not handed back, and its own ``accumulators`` are
    ignored. Returns ``(reversal, resettlement)``. The new settlement is not a pro-rata
    share of the old one, because the kept lines go through the deductible and the bands again.
    """
    reversal = cancel_reference(original, accumulators_before_original, accumulators_now)
    resettle_claim = ClaimInput(
        params=kept_claim.params,
        lines=kept_claim.lines,
        accumulators=dict(reversal.accumulators_after),
        acct_used=kept_claim.acct_used,
        has_family_account=kept_claim.has_family_account,
    )
    return reversal, settle_reference(resettle_claim)
