"""Plain value types shared by the rule loader, the kernel wrapper, the reference model and the ledger.

Every money amount here is an integer number of fen (0.01 yuan). Other fixed-point
scales are named in the field: ``*_micro`` is 1e-6 yuan (unit prices and price caps),
``quantity`` is in 1e-4 units, and ``*_ratio`` is in 1e-4 (``7000`` means 70%).
Nothing in this module parses, rounds or computes; it only names things.
"""

from __future__ import annotations

import enum
from typing import Literal

import msgspec

__all__ = [
    "ACCUMULATOR_KEYS",
    "AccountParams",
    "Band",
    "ChargeClass",
    "CivilServantParams",
    "ClaimInput",
    "CriticalIllnessParams",
    "FeeLine",
    "FundDetail",
    "HOSPITAL_LEVELS",
    "LineResult",
    "MEDICAL_ASSISTANCE_TYPES",
    "MED_TYPES",
    "MED_TYPE_CODES",
    "MedicalAssistanceParams",
    "PERSON_GROUPS",
    "RATIO_SCALE",
    "SETTLEMENT_OUTPUT_FIELDS",
    "SchemeParams",
    "SettlementOutputs",
    "SettlementResult",
    "TraceStep",
]

# One ratio unit is 1e-4, the precision of the national N(5,4) ratio fields.
RATIO_SCALE = 10_000

# Person groups that select deductibles and ratios. A retiree aged 70 or more on the
# settlement date is in ``retired_70plus``.
PERSON_GROUPS = ("active", "retired", "retired_70plus", "resident")

# Hospital levels as the rule files name them; ``pharmacy`` is a designated pharmacy.
HOSPITAL_LEVELS = ("community", "level1", "level2", "level3", "pharmacy")

# Medical types the engine settles, with their national ``med_type`` codes.
MED_TYPE_CODES = {
    "outpatient_general": "11",
    "outpatient_chronic": "14",
    "inpatient": "21",
    "pharmacy": "41",
}
MED_TYPES = tuple(MED_TYPE_CODES)

# Medical assistance categories: 低保 (minimum living allowance) and 特困 (extreme poverty).
MEDICAL_ASSISTANCE_TYPES = ("dibao", "tekun")

# Year-to-date counters kept per person. All are fen except ``ip_admission_count``.
# ``family_acct_balc`` is the balance of a relative's account bound for mutual aid
# (家庭共济); it belongs to the relative but travels with the claim.
ACCUMULATOR_KEYS = (
    "acct_balc",
    "op_dedc_used",
    "op_dedc_used_primary",
    "op_dedc_used_hospital",
    "op_fund_paid",
    "ip_admission_count",
    "ip_inscp_cum",
    "ip_fund_paid",
    "hifob_paid",
    "chronic_dedc_used",
    "cii_base_cum",
    "hifmi_paid",
    "cvlserv_paid",
    "maf_paid",
    "family_acct_balc",
)


class ChargeClass(enum.IntEnum):
    """Catalogue class of a fee line; the value is the national ``chrgitm_lv`` code as an int."""

    A = 1  # 甲类, fully in scope
    B = 2  # 乙类, in scope after the first self-pay share
    C = 3  # 丙类 or outside the catalogue, fully self-paid


class Band(msgspec.Struct, frozen=True):
    """One band of the pooled-fund scale: from ``lower`` (fen, cumulative in-scope amount) at ``ratio``."""

    lower: int
    ratio: int


class CriticalIllnessParams(msgspec.Struct, frozen=True):
    """Resident critical-illness layer (居民大病) on the in-scope personal burden.

    ``bands`` are absolute thresholds on the cumulative base; ``cap`` is None when unlimited.
    """

    include_preselfpay: bool
    base_accumulator: str
    paid_accumulator: str
    bands: tuple[Band, ...]
    cap: int | None


class CivilServantParams(msgspec.Struct, frozen=True):
    """Civil-servant subsidy (公务员医疗补助) shares of the deductible and of the in-scope co-payment."""

    dedc_ratio: int
    copay_ratio: int
    cap: int | None
    accumulator: str


class MedicalAssistanceParams(msgspec.Struct, frozen=True):
    """Medical assistance (医疗救助) for the person's category, on the in-scope burden still left."""

    ratio: int
    cap: int | None
    accumulator: str


class AccountParams(msgspec.Struct, frozen=True):
    """Switches for the personal account: whether the person has one and which parts it may pay."""

    has_account: bool
    pays_fulamt: bool
    pays_overlmt: bool
    mutual_aid: bool


class SchemeParams(msgspec.Struct, frozen=True):
    """The policy for one claim, already resolved for its medical type, person group and hospital level.

    The rule loader builds this from a policy file. The kernel wrapper and the reference
    model both settle from it, so it contains numbers and accumulator names only.

    ``deductible_basis``:
      * ``none``: no deductible.
      * ``annual``: ``deductible_amount`` a year, counted in ``deductible_accumulator``.
      * ``per_admission``: ``deductible_amount`` for the first admission of the year and
        ``deductible_subsequent`` after it; ``deductible_accumulator`` names the admission
        counter, which a settlement raises by one.

    ``bands`` always has at least one band and the first starts at 0. With no
    ``band_accumulator`` the claim is placed at 0 on the scale.
    """

    policy_id: str
    med_type: str
    fund_enabled: bool
    deductible_basis: Literal["none", "annual", "per_admission"]
    deductible_amount: int
    deductible_subsequent: int
    deductible_accumulator: str | None
    band_accumulator: str | None
    bands: tuple[Band, ...]
    fund_cap: int | None
    fund_cap_accumulator: str | None
    large_amount_ratio: int | None
    large_amount_cap: int | None
    large_amount_accumulator: str | None
    critical_illness: CriticalIllnessParams | None
    civil_servant: CivilServantParams | None
    medical_assistance: MedicalAssistanceParams | None
    account: AccountParams


class FeeLine(msgspec.Struct, frozen=True):
    """One fee line as the kernel needs it.

    ``price_micro`` and ``price_cap_micro`` are per unit in 1e-6 yuan, ``quantity`` in
    1e-4 units (negative only on a refund line). ``amount`` is the line total of record
    in fen when the sender's ``det_item_fee_sumamt`` is kept; None means price x quantity
    rounded half away from zero. ``selfpay_prop`` is the class-B first self-pay ratio.
    """

    feedetl_sn: str
    med_list_codg: str
    charge_class: ChargeClass
    price_micro: int
    quantity: int
    selfpay_prop: int = 0
    price_cap_micro: int | None = None
    amount: int | None = None


class ClaimInput(msgspec.Struct, frozen=True):
    """Everything needed to settle one claim, with no I/O left to do.

    ``accumulators`` maps names from ``ACCUMULATOR_KEYS`` to their values before the
    claim; a missing key counts as 0. ``family_acct_balc`` in it is used only when the
    policy allows mutual aid and a relative's account is bound.
    """

    params: SchemeParams
    lines: tuple[FeeLine, ...]
    accumulators: dict[str, int]
    acct_used: bool
    has_family_account: bool = False


class LineResult(msgspec.Struct, frozen=True):
    """The split of one line; the four parts add up to ``amount``."""

    feedetl_sn: str
    amount: int
    fulamt_ownpay_amt: int
    overlmt_amt: int
    preselfpay_amt: int
    inscp_scp_amt: int


# Output fields of a settlement, in the order of the national ``setlinfo`` block.
SETTLEMENT_OUTPUT_FIELDS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifob_pay",
    "hifmi_pay",
    "cvlserv_pay",
    "maf_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
    "hosp_part_amt",
    "balc",
)


class SettlementOutputs(msgspec.Struct, frozen=True):
    """The national settlement amounts in fen, plus ``pool_prop_selfpay`` as a ratio in 1e-4.

    ``pool_prop_selfpay`` is, despite its name, the pooled fund's payment ratio: the ratio of
    the first band the fund paid in, or 0 when the deductible took the whole in-scope amount.
    """

    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    hifp_pay: int
    hifob_pay: int
    hifmi_pay: int
    cvlserv_pay: int
    maf_pay: int
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    acct_mulaid_pay: int
    psn_cash_pay: int
    hosp_part_amt: int
    balc: int
    pool_prop_selfpay: int


class FundDetail(msgspec.Struct, frozen=True):
    """One ``setldetail`` row before the fund code is chosen.

    ``layer`` is one of ``hifp``, ``hifob``, ``hifmi``, ``cvlserv``, ``maf``, ``acct``;
    the domain maps it to a national ``fund_pay_type`` by insurance type.
    ``crt_payb_lmt_amt`` is what the layer could still pay before this claim (its cap
    left), or None where the layer has no cap.
    """

    layer: str
    inscp_scp_amt: int
    crt_payb_lmt_amt: int | None
    fund_payamt: int


class TraceStep(msgspec.Struct, frozen=True):
    """One computed step, enough to explain an amount: what it worked on and what came out.

    ``step`` names the calculation step (``line``, ``deductible``, ``band``, ``cap``,
    ``large_amount``, ``critical_illness``, ``civil_servant``, ``medical_assistance``,
    ``account``, ``mutual_aid``). ``index`` is the band or line index where one applies,
    else -1. ``base`` is the amount the step worked on, ``ratio`` the ratio used (0 when
    none), ``amount`` the result, and ``limit`` the cap left before the step (-1 when none).
    """

    step: str
    index: int
    base: int
    ratio: int
    amount: int
    limit: int


class SettlementResult(msgspec.Struct, frozen=True):
    """Result of settling a claim: outputs, per-line splits, fund rows, accumulators after and the trace."""

    outputs: SettlementOutputs
    lines: tuple[LineResult, ...]
    fund_details: tuple[FundDetail, ...]
    accumulators_after: dict[str, int]
    trace: tuple[TraceStep, ...]
