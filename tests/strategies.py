"""Hypothesis strategies for random policies, fee lines, accumulators and whole claims.

The shapes lean towards the places where settlement goes wrong. These are band edges,
caps small enough to be hit inside one claim, odd fen and half-fen products, prices
above their cap, ratios of 0 and of exactly 1, empty claims and claims of 300 lines or
more. Accumulators are drawn after the policy, so they can sit right at its band edges,
caps and deductibles.

Each policy role gets its own accumulator key, as in a real policy file, so no two roles
write the same counter.

Every strategy object is built once at module level, and values that depend on an
earlier draw are computed from a fixed-range draw. Hypothesis validates each new strategy
object, so building them inside a draw would repeat that work for every example.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import strategies as st

from settlement.types import (
    MED_TYPES,
    RATIO_SCALE,
    AccountParams,
    Band,
    ChargeClass,
    CivilServantParams,
    ClaimInput,
    CriticalIllnessParams,
    FeeLine,
    MedicalAssistanceParams,
    SchemeParams,
)

__all__ = [
    "accumulators_for",
    "claims",
    "fee_lines",
    "line_lists",
    "scheme_params",
]

# The 300-line claims are built from one seed, because drawing every field of every line
# through Hypothesis would overflow its example buffer and make each example slow.
MANY_LINES_MIN = 300
MANY_LINES_MAX = 330

ANNUAL_DEDUCTIBLE_KEYS = ("op_dedc_used", "op_dedc_used_primary", "op_dedc_used_hospital", "chronic_dedc_used")
FUND_CAP_KEYS = ("op_fund_paid", "ip_fund_paid")

# Money in fen: mostly everyday amounts, sometimes tiny, sometimes large.
tiny_fen = st.integers(min_value=0, max_value=300)
everyday_fen = st.integers(min_value=0, max_value=500_000)
large_fen = st.integers(min_value=0, max_value=50_000_000)
money_fen = st.one_of(tiny_fen, everyday_fen, large_fen)
small_money_fen = st.one_of(tiny_fen, everyday_fen)
optional_caps = st.one_of(st.none(), tiny_fen, everyday_fen, large_fen)

# Ratios in 1e-4, with the ends and round values drawn more often than chance would.
ratios = st.one_of(
    st.sampled_from((0, 1, 5_000, 7_000, 8_500, 9_220, 9_999, RATIO_SCALE)),
    st.integers(min_value=0, max_value=RATIO_SCALE),
)

# Band widths in fen, from a few fen (several edges inside one claim) to very wide.
band_widths = st.one_of(
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=1, max_value=500_000),
    st.integers(min_value=1, max_value=50_000_000),
)

# Offsets that put an accumulator a few fen either side of a point.
nudges = st.integers(min_value=-300, max_value=300)
booleans = st.booleans()


# ---------------------------------------------------------------------------
# Policy parts.


def draw_bands(draw: st.DrawFn, count: int, first_lower: int) -> tuple[Band, ...]:
    """Draw ``count`` bands with strictly ascending lower edges, the first at ``first_lower``."""
    bands = []
    lower = first_lower
    for _ in range(count):
        bands.append(Band(lower, draw(ratios)))
        lower += draw(band_widths)
    return tuple(bands)


pooled_band_counts = st.integers(min_value=1, max_value=8)
critical_band_counts = st.integers(min_value=1, max_value=3)
basis_choices = st.sampled_from(("none", "annual", "per_admission"))
annual_keys = st.sampled_from(ANNUAL_DEDUCTIBLE_KEYS)
cap_keys = st.sampled_from(FUND_CAP_KEYS)
optional_cap_keys = st.none() | cap_keys
optional_band_keys = st.none() | st.just("ip_inscp_cum")
med_types = st.sampled_from(MED_TYPES)
# The fund is switched off in one policy of five, as for pharmacy purchases without pooling.
fund_switches = st.sampled_from((True, True, True, True, False))


@st.composite
def deductible_fields(draw: st.DrawFn) -> dict[str, object]:
    basis = draw(basis_choices)
    if basis == "none":
        return {"deductible_basis": "none", "deductible_amount": 0, "deductible_subsequent": 0, "deductible_accumulator": None}
    if basis == "annual":
        return {
            "deductible_basis": "annual",
            "deductible_amount": draw(small_money_fen),
            "deductible_subsequent": 0,
            "deductible_accumulator": draw(annual_keys),
        }
    return {
        "deductible_basis": "per_admission",
        "deductible_amount": draw(small_money_fen),
        "deductible_subsequent": draw(small_money_fen),
        "deductible_accumulator": "ip_admission_count",
    }


@st.composite
def pooled_fund_fields(draw: st.DrawFn) -> dict[str, object]:
    bands = draw_bands(draw, draw(pooled_band_counts), 0)
    fund_cap = draw(optional_caps)
    # An uncapped fund may still count what it pays, as an inpatient fund shared with another scheme does.
    cap_key = draw(cap_keys) if fund_cap is not None else draw(optional_cap_keys)
    return {
        "band_accumulator": draw(optional_band_keys),
        "bands": bands,
        "fund_cap": fund_cap,
        "fund_cap_accumulator": cap_key,
    }


@st.composite
def large_amount_fields(draw: st.DrawFn) -> dict[str, object]:
    if draw(booleans):
        return {"large_amount_ratio": None, "large_amount_cap": None, "large_amount_accumulator": None}
    return {
        "large_amount_ratio": draw(ratios),
        "large_amount_cap": draw(optional_caps),
        "large_amount_accumulator": "hifob_paid",
    }


@st.composite
def critical_illness_params(draw: st.DrawFn) -> CriticalIllnessParams:
    # The first threshold is the layer's own deductible on the cumulative base, so it need not be 0.
    return CriticalIllnessParams(
        include_preselfpay=draw(booleans),
        base_accumulator="cii_base_cum",
        paid_accumulator="hifmi_paid",
        bands=draw_bands(draw, draw(critical_band_counts), draw(small_money_fen)),
        cap=draw(optional_caps),
    )


civil_servant_params = st.builds(
    CivilServantParams,
    dedc_ratio=ratios,
    copay_ratio=ratios,
    cap=optional_caps,
    accumulator=st.just("cvlserv_paid"),
)
medical_assistance_params = st.builds(MedicalAssistanceParams, ratio=ratios, cap=optional_caps, accumulator=st.just("maf_paid"))
account_params = st.builds(AccountParams, booleans, booleans, booleans, booleans)
optional_critical_illness = st.none() | critical_illness_params()
optional_civil_servant = st.none() | civil_servant_params
optional_medical_assistance = st.none() | medical_assistance_params
deductibles = deductible_fields()
pooled_funds = pooled_fund_fields()
large_amounts = large_amount_fields()


@st.composite
def scheme_params(draw: st.DrawFn) -> SchemeParams:
    """Draw a resolved policy: any mix of deductible, bands, caps and extra layers."""
    return SchemeParams(
        policy_id="hypothesis",
        med_type=draw(med_types),
        fund_enabled=draw(fund_switches),
        **draw(deductibles),
        **draw(pooled_funds),
        **draw(large_amounts),
        critical_illness=draw(optional_critical_illness),
        civil_servant=draw(optional_civil_servant),
        medical_assistance=draw(optional_medical_assistance),
        account=draw(account_params),
    )


# ---------------------------------------------------------------------------
# Fee lines.


def rounded_line_amount(price_micro: int, quantity: int) -> int:
    """Return price x quantity in fen, half away from zero, computed here without the model."""
    exact = Decimal(price_micro) * Decimal(quantity) / Decimal(10**8)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


prices_micro = st.one_of(
    st.integers(min_value=0, max_value=2_000).map(lambda yuan: yuan * 1_000_000),
    st.integers(min_value=0, max_value=500_000).map(lambda fen: fen * 10_000),
    st.integers(min_value=0, max_value=5_000_000_000),
)
quantities = st.one_of(
    st.integers(min_value=1, max_value=50).map(lambda units: units * 10_000),
    st.integers(min_value=1, max_value=1_000_000),
)
charge_classes = st.sampled_from(ChargeClass)
# A price cap as a share of the price in 1/1000: below the price, at it, or above it.
cap_shares = st.none() | st.sampled_from((0, 999, 1_000, 1_001)) | st.integers(min_value=0, max_value=2_000)
# The sender's total may differ from price x quantity by a fen or two, and the engine keeps it.
amount_offsets = st.none() | st.integers(min_value=-2, max_value=2)
catalogue_numbers = st.integers(min_value=0, max_value=9_999)


def draw_fee_line(draw: st.DrawFn, serial: int) -> FeeLine:
    """Draw one line; its cap is sometimes below the price and its amount of record sometimes given."""
    charge_class = draw(charge_classes)
    price = draw(prices_micro)
    quantity = draw(quantities)
    selfpay = 0 if charge_class == ChargeClass.A else draw(ratios)
    cap_share = draw(cap_shares)
    offset = draw(amount_offsets)
    return FeeLine(
        feedetl_sn=f"L{serial}",
        med_list_codg=f"T-HYP-{draw(catalogue_numbers):04d}",
        charge_class=charge_class,
        price_micro=price,
        quantity=quantity,
        selfpay_prop=selfpay,
        price_cap_micro=None if cap_share is None else price * cap_share // 1_000,
        amount=None if offset is None else max(0, rounded_line_amount(price, quantity) + offset),
    )


@st.composite
def fee_lines(draw: st.DrawFn, serial: int = 0) -> FeeLine:
    """Draw one line with ``feedetl_sn`` ``L<serial>``."""
    return draw_fee_line(draw, serial)


def seeded_line(rng: random.Random, serial: int) -> FeeLine:
    """Build one line from a seeded generator, spread like ``fee_lines`` but cheaper to draw."""
    charge_class = rng.choice(tuple(ChargeClass))
    price = rng.choice((rng.randrange(0, 500) * 1_000_000, rng.randrange(0, 100_000) * 10_000, rng.randrange(0, 10**9)))
    quantity = rng.choice((rng.randrange(1, 20) * 10_000, rng.randrange(1, 200_000)))
    cap = rng.choice((None, None, rng.randrange(0, price * 2 + 1)))
    return FeeLine(
        feedetl_sn=f"L{serial}",
        med_list_codg=f"T-HYP-{serial:04d}",
        charge_class=charge_class,
        price_micro=price,
        quantity=quantity,
        selfpay_prop=0 if charge_class == ChargeClass.A else rng.randrange(0, RATIO_SCALE + 1),
        price_cap_micro=cap,
        amount=None,
    )


seeds = st.integers(min_value=0, max_value=2**32 - 1)
many_line_counts = st.integers(min_value=MANY_LINES_MIN, max_value=MANY_LINES_MAX)
few_line_counts = st.integers(min_value=2, max_value=12)


@st.composite
def many_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    rng = random.Random(draw(seeds))
    count = draw(many_line_counts)
    return tuple(seeded_line(rng, serial) for serial in range(count))


@st.composite
def few_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    count = draw(few_line_counts)
    return tuple(draw_fee_line(draw, serial) for serial in range(count))


def line_lists() -> st.SearchStrategy[tuple[FeeLine, ...]]:
    """Draw 0 lines, 1 line, 2 to 12 lines or 300 and more, weighted towards 2 to 12."""
    several = few_lines()
    return st.one_of(
        st.just(()),
        fee_lines().map(lambda line: (line,)),
        several,
        several,
        several,
        many_lines(),
    )


# ---------------------------------------------------------------------------
# Accumulators.


def draw_near(draw: st.DrawFn, point: int) -> int:
    """Draw a value a few fen either side of ``point``, never below 0."""
    return max(0, point + draw(nudges))


placements = st.sampled_from(("at", "just_under", "anywhere_under"))
fractions_of_cap = st.integers(min_value=0, max_value=1_000)


def draw_paid_so_far(draw: st.DrawFn, cap: int | None) -> int:
    """Draw a paid-so-far amount at, just under or well under a cap, never above it."""
    if cap is None:
        return draw(money_fen)
    placement = draw(placements)
    if placement == "at":
        return cap
    if placement == "just_under":
        return max(0, cap - draw(tiny_fen))
    return cap * draw(fractions_of_cap) // 1_000


band_indexes = st.integers(min_value=0, max_value=7)


def draw_band_position(draw: st.DrawFn, bands: tuple[Band, ...]) -> int:
    """Draw a position on a band scale: anywhere, or a few fen from one of its edges."""
    if draw(booleans):
        return draw(money_fen)
    edge = bands[draw(band_indexes) % len(bands)].lower
    return draw_near(draw, edge)


admission_counts = st.sampled_from((0, 0, 1, 2, 7))
annual_deductible_placements = st.sampled_from(("near", "under", "anywhere"))


def draw_deductible_used(draw: st.DrawFn, amount: int) -> int:
    placement = draw(annual_deductible_placements)
    if placement == "near":
        return draw_near(draw, amount)
    if placement == "under":
        return draw_paid_so_far(draw, amount)
    return draw(money_fen)


def draw_accumulators(draw: st.DrawFn, params: SchemeParams) -> dict[str, int]:
    """Draw accumulators for a policy, placed near its edges and caps, with some keys left out."""
    values: dict[str, int] = {}

    if params.deductible_basis == "annual" and params.deductible_accumulator is not None:
        values[params.deductible_accumulator] = draw_deductible_used(draw, params.deductible_amount)
    if params.deductible_basis == "per_admission" and params.deductible_accumulator is not None:
        values[params.deductible_accumulator] = draw(admission_counts)
    if params.band_accumulator is not None:
        values[params.band_accumulator] = draw_band_position(draw, params.bands)
    if params.fund_cap_accumulator is not None:
        values[params.fund_cap_accumulator] = draw_paid_so_far(draw, params.fund_cap)
    if params.large_amount_accumulator is not None:
        values[params.large_amount_accumulator] = draw_paid_so_far(draw, params.large_amount_cap)

    if params.critical_illness is not None:
        values[params.critical_illness.base_accumulator] = draw_band_position(draw, params.critical_illness.bands)
        values[params.critical_illness.paid_accumulator] = draw_paid_so_far(draw, params.critical_illness.cap)
    if params.civil_servant is not None:
        values[params.civil_servant.accumulator] = draw_paid_so_far(draw, params.civil_servant.cap)
    if params.medical_assistance is not None:
        values[params.medical_assistance.accumulator] = draw_paid_so_far(draw, params.medical_assistance.cap)

    values["acct_balc"] = draw(small_money_fen)
    values["family_acct_balc"] = draw(small_money_fen)

    # A missing key counts as 0, so leaving some out must change nothing but the key list.
    return {key: value for key, value in values.items() if draw(keep_key)}


# Keys are kept four times in five.
keep_key = st.sampled_from((True, True, True, True, False))


@st.composite
def accumulators_for(draw: st.DrawFn, params: SchemeParams) -> dict[str, int]:
    """Draw accumulators for ``params``, as ``claims`` does."""
    return draw_accumulators(draw, params)


# ---------------------------------------------------------------------------
# Whole claims.

acct_used_switches = st.sampled_from((True, True, True, False))
any_scheme = scheme_params()
any_lines = line_lists()


@st.composite
def claims(draw: st.DrawFn, lines: st.SearchStrategy[tuple[FeeLine, ...]] = any_lines) -> ClaimInput:
    """Draw a complete claim: policy, lines, accumulators and the account switches."""
    params = draw(any_scheme)
    return ClaimInput(
        params=params,
        lines=draw(lines),
        accumulators=draw_accumulators(draw, params),
        acct_used=draw(acct_used_switches),
        has_family_account=draw(booleans),
    )
