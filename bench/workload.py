"""Deterministic claim generator shared by the benchmarks and the zen model test.

Every claim is settled under the bundled Beijing employee policy (``bj-employee-2024``),
resolved through the rule loader, so the kernel, the reference model and the zen model
all see the same parameters. The same seed gives the same claims, because every value
comes from one ``random.Random`` in a fixed order.

NOTE: unit prices go through a float power (C ``pow``), whose last bit may differ
between C libraries, so another platform could round a rare price differently.

The mix is meant to look like a day of claims at Beijing hospitals, not to favour any
code path. The shares below are this generator's own choice, not measured statistics:

* medical type: 55% ordinary outpatient, 20% inpatient, 10% outpatient special disease,
  15% pharmacy purchases;
* person group: 65% in service, 25% retired under 70, 10% retired aged 70 or more;
  8% civil servants; 85% let the personal account pay; 10% have a relative's account
  bound for mutual aid;
* accumulators spread over the whole year. Deductibles are not started, partly used or
  met, pooled funds run from empty to exactly at the cap, and inpatient positions reach
  every band.
* fee lines drawn from a generated catalogue of 2,000 items: 55% class A, 35% class B
  (first self-pay 5% to 30%), 10% class C; a fifth of the A and B items have a price cap,
  and about half of those are priced above it. About 30% of lines have a fractional
  quantity and every unit price has up to 4 decimals.

The line count of a claim is fixed by the caller (1, 20 or 300 in the benchmarks), so
a 300-line claim can be an outpatient visit here even though most such claims are
inpatient stays.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import random
from collections.abc import Sequence

from settlement.paths import bundled_rules_dir
from settlement.policy import Policy, load_rules
from settlement.types import (
    ACCUMULATOR_KEYS,
    ChargeClass,
    ClaimInput,
    FeeLine,
    SchemeParams,
)

__all__ = [
    "BATCH_CLAIMS",
    "BATCH_LINES",
    "BENCH_POLICY_ID",
    "BENCH_SETTLEMENT_DATE",
    "LEVEL_WEIGHTS",
    "POOL_CLAIMS",
    "CatalogItem",
    "ClaimCase",
    "generate_catalog",
    "generate_claims",
    "load_bench_policy",
]

# Claims per pool for the per-claim benchmarks. Each call settles the next claim of the
# pool, so the timing covers a spread of medical types and accumulator positions instead
# of one claim whose branches the CPU has learnt.
POOL_CLAIMS = {1: 4096, 20: 4096, 300: 512}

# The batch: claims of 20 lines, settled in one call.
BATCH_CLAIMS = 100_000
BATCH_LINES = 20

BENCH_POLICY_ID = "bj-employee-2024"
BENCH_SETTLEMENT_DATE = "2024-06-15"
DEFAULT_SEED = 20240615
CATALOG_SIZE = 2_000

FEN_PER_YUAN = 100
MICRO_PER_YUAN = 1_000_000
QUANTITY_ONE = 10_000

MED_TYPE_WEIGHTS = {"outpatient_general": 55, "inpatient": 20, "outpatient_chronic": 10, "pharmacy": 15}
GROUP_WEIGHTS = {"active": 65, "retired": 25, "retired_70plus": 10}

# Hospital level by medical type. Pharmacy purchases always happen at a designated pharmacy.
LEVEL_WEIGHTS = {
    "outpatient_general": {"community": 30, "level1": 15, "level2": 25, "level3": 30},
    "outpatient_chronic": {"community": 10, "level1": 10, "level2": 35, "level3": 45},
    "inpatient": {"community": 5, "level1": 10, "level2": 35, "level3": 50},
    "pharmacy": {"pharmacy": 100},
}

CLASS_WEIGHTS = {ChargeClass.A: 55, ChargeClass.B: 35, ChargeClass.C: 10}
CLASS_B_SELFPAY_PROPS = (500, 1000, 1500, 2000, 3000)

# Yearly figures of the Beijing employee policy that decide where a person sits, in fen.
# They only shape the spread of accumulators, because the settlement reads the policy file.
OUTPATIENT_DEDUCTIBLE_MAX = 180_000
OUTPATIENT_FUND_LIMIT = 2_000_000
INPATIENT_FUND_CAP = 10_000_000
LARGE_AMOUNT_CAP = 20_000_000
CHRONIC_DEDUCTIBLE = 130_000


@dataclasses.dataclass(frozen=True)
class CatalogItem:
    """One generated catalogue item, priced at what the hospital charges per unit."""

    code: str
    charge_class: ChargeClass
    selfpay_prop: int
    price_micro: int
    price_cap_micro: int | None


@dataclasses.dataclass(frozen=True)
class ClaimCase:
    """One generated claim: the context a request carries and the ``ClaimInput`` the engine settles.

    The context fields (medical type, group, level, civil servant flag) are kept so that a
    peer that resolves the policy itself, such as the zen decision model, gets the same
    claim as a request would bring it.
    """

    med_type: str
    group: str
    hosp_lv: str
    cvlserv: bool
    claim: ClaimInput


def pick(rng: random.Random, weights: dict) -> object:
    """Draw one key of ``weights`` with probability proportional to its weight."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[key] for key in keys])[0]


def unit_price_micro(rng: random.Random) -> int:
    """Draw a unit price between 0.50 and 2,000 yuan with 2 to 4 decimals.

    The draw is skewed to cheap items (median about 9 yuan, mean about 170), as drugs and
    consumables outnumber operations on a fee list.
    """
    yuan = 0.5 * 4_000 ** (rng.random() ** 1.5)
    decimals = rng.choice((2, 2, 3, 4))
    step = 10 ** (6 - decimals)
    return max(step, round(yuan * MICRO_PER_YUAN / step) * step)


def generate_catalog(rng: random.Random, size: int = CATALOG_SIZE) -> tuple[CatalogItem, ...]:
    """Generate ``size`` catalogue items with classes, first self-pay ratios and price caps."""
    items = []
    for number in range(size):
        charge_class = pick(rng, CLASS_WEIGHTS)
        price = unit_price_micro(rng)
        selfpay_prop = rng.choice(CLASS_B_SELFPAY_PROPS) if charge_class == ChargeClass.B else 0

        # Class C items are outside the catalogue, so only A and B items get a price cap.
        price_cap = None
        if charge_class != ChargeClass.C and rng.random() < 0.2:
            factor = rng.uniform(0.7, 0.98) if rng.random() < 0.5 else rng.uniform(1.0, 1.3)
            price_cap = max(1, round(price * factor / 100) * 100)

        items.append(CatalogItem(f"T-BENCH-{number:04d}", charge_class, selfpay_prop, price, price_cap))
    return tuple(items)


def quantity(rng: random.Random) -> int:
    """Draw a quantity in 1e-4 units: mostly whole units, 30% fractional (half tablets, partial doses)."""
    if rng.random() < 0.7:
        return rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 7, 10)) * QUANTITY_ONE
    return rng.randint(1, 5 * QUANTITY_ONE)


def fee_line(rng: random.Random, catalog: Sequence[CatalogItem], seq: int) -> FeeLine:
    item = catalog[rng.randrange(len(catalog))]
    return FeeLine(
        feedetl_sn=f"{seq:04d}",
        med_list_codg=item.code,
        charge_class=item.charge_class,
        price_micro=item.price_micro,
        quantity=quantity(rng),
        selfpay_prop=item.selfpay_prop,
        price_cap_micro=item.price_cap_micro,
    )


def spread(rng: random.Random, full: int) -> int:
    """Place a yearly counter: 40% untouched, 45% partly used, 8% exactly full, 7% just under full."""
    draw = rng.random()
    if draw < 0.40:
        return 0
    if draw < 0.85:
        return rng.randint(1, full - 1)
    if draw < 0.93:
        return full
    return full - rng.randint(1, min(full, 50_000))


def accumulators(rng: random.Random, has_family_account: bool) -> dict[str, int]:
    """Draw a person's year-to-date accumulators, consistent enough to be plausible.

    Inpatient positions reach every band (0 to 150,000 yuan cumulative in scope), and the
    pooled fund paid grows with them until it sits at or near its cap. The large-amount
    fund has paid something only once the pooled cap is used up.
    """
    values = dict.fromkeys(ACCUMULATOR_KEYS, 0)
    values["acct_balc"] = 0 if rng.random() < 0.1 else rng.randint(1, 800_000)
    values["op_dedc_used"] = spread(rng, OUTPATIENT_DEDUCTIBLE_MAX)
    values["op_fund_paid"] = spread(rng, OUTPATIENT_FUND_LIMIT) if values["op_dedc_used"] else 0
    values["chronic_dedc_used"] = spread(rng, CHRONIC_DEDUCTIBLE)

    admissions = rng.choice((0, 0, 0, 1, 1, 2, 3, 4))
    values["ip_admission_count"] = admissions
    if admissions:
        cumulative = rng.randint(0, 15_000_000)
        values["ip_inscp_cum"] = cumulative
        fund_paid = min(INPATIENT_FUND_CAP, cumulative * rng.randint(80, 95) // 100)
        if rng.random() < 0.1:
            fund_paid = INPATIENT_FUND_CAP - rng.choice((0, 0, rng.randint(1, 500_000)))
        values["ip_fund_paid"] = fund_paid
        if fund_paid == INPATIENT_FUND_CAP:
            values["hifob_paid"] = spread(rng, LARGE_AMOUNT_CAP)
    else:
        # Outpatient special disease shares the inpatient cap, so it can move without an admission.
        values["ip_fund_paid"] = spread(rng, INPATIENT_FUND_CAP) if rng.random() < 0.2 else 0

    values["cvlserv_paid"] = rng.randint(0, 500_000) if rng.random() < 0.1 else 0
    if has_family_account:
        values["family_acct_balc"] = rng.randint(0, 500_000)
    return values


class _Resolver:
    """Resolve ``SchemeParams`` once per (medical type, group, level, civil servant) combination."""

    def __init__(self) -> None:
        self._policy = load_bench_policy()
        self._cache: dict[tuple[str, str, str, bool], SchemeParams] = {}

    def __call__(self, med_type: str, group: str, level: str, cvlserv: bool) -> SchemeParams:
        key = (med_type, group, level, cvlserv)
        params = self._cache.get(key)
        if params is None:
            params = self._policy.resolve(med_type, group, level, cvlserv, None)
            self._cache[key] = params
        return params


@functools.cache
def _resolver() -> _Resolver:
    return _Resolver()


def load_bench_policy() -> Policy:
    """Load the version of ``bj-employee-2024`` in force on the benchmark date from the bundled rules."""
    rules = load_rules(bundled_rules_dir())
    return rules.policy(BENCH_POLICY_ID, datetime.date.fromisoformat(BENCH_SETTLEMENT_DATE))


def generate_claims(count: int, line_count: int, seed: int = DEFAULT_SEED) -> list[ClaimCase]:
    """Generate ``count`` claims of ``line_count`` lines each; the same arguments give the same claims."""
    if count < 0 or line_count < 0:
        raise ValueError(f"count and line_count must be 0 or more, got {count} and {line_count}")

    rng = random.Random(seed)
    catalog = generate_catalog(random.Random(seed ^ 0x5EED))
    resolve = _resolver()
    cases = []
    for _ in range(count):
        med_type = pick(rng, MED_TYPE_WEIGHTS)
        group = pick(rng, GROUP_WEIGHTS)
        level = pick(rng, LEVEL_WEIGHTS[med_type])
        cvlserv = rng.random() < 0.08
        acct_used = rng.random() < 0.85
        has_family_account = rng.random() < 0.1

        claim = ClaimInput(
            params=resolve(med_type, group, level, cvlserv),
            lines=tuple(fee_line(rng, catalog, seq) for seq in range(1, line_count + 1)),
            accumulators=accumulators(rng, has_family_account),
            acct_used=acct_used,
            has_family_account=has_family_account,
        )
        cases.append(ClaimCase(med_type, group, level, cvlserv, claim))
    return cases
