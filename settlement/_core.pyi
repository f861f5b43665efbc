"""Typed Python face of the compiled settlement kernel; the layouts are documented in ``_core.pxd``."""

from typing import Final

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

# Layout sizes and sentinels
NO_ACCUMULATOR: Final[int]
NO_LIMIT: Final[int]
NO_PRICE_CAP: Final[int]
MAX_BANDS: Final[int]
MAX_CII_BANDS: Final[int]
TRACE_FIXED_ROWS: Final[int]

# Deductible bases
DEDC_NONE: Final[int]
DEDC_ANNUAL: Final[int]
DEDC_PER_ADMISSION: Final[int]

# Parameter row indices
P_FUND_ENABLED: Final[int]
P_DEDC_BASIS: Final[int]
P_DEDC_AMOUNT: Final[int]
P_DEDC_SUBSEQUENT: Final[int]
P_DEDC_ACC: Final[int]
P_BAND_ACC: Final[int]
P_BAND_COUNT: Final[int]
P_BAND_LOWER: Final[int]
P_BAND_RATIO: Final[int]
P_FUND_CAP: Final[int]
P_FUND_CAP_ACC: Final[int]
P_LA_ENABLED: Final[int]
P_LA_RATIO: Final[int]
P_LA_CAP: Final[int]
P_LA_ACC: Final[int]
P_CII_ENABLED: Final[int]
P_CII_INCLUDE_PRESELFPAY: Final[int]
P_CII_BASE_ACC: Final[int]
P_CII_PAID_ACC: Final[int]
P_CII_CAP: Final[int]
P_CII_BAND_COUNT: Final[int]
P_CII_BAND_FROM: Final[int]
P_CII_BAND_RATIO: Final[int]
P_CVL_ENABLED: Final[int]
P_CVL_DEDC_RATIO: Final[int]
P_CVL_COPAY_RATIO: Final[int]
P_CVL_CAP: Final[int]
P_CVL_ACC: Final[int]
P_MAF_ENABLED: Final[int]
P_MAF_RATIO: Final[int]
P_MAF_CAP: Final[int]
P_MAF_ACC: Final[int]
P_ACCT_HAS: Final[int]
P_ACCT_PAYS_FULAMT: Final[int]
P_ACCT_PAYS_OVERLMT: Final[int]
P_ACCT_MUTUAL_AID: Final[int]
P_WIDTH: Final[int]

# Accumulator indices, in ACCUMULATOR_KEYS order
A_ACCT_BALC: Final[int]
A_OP_DEDC_USED: Final[int]
A_OP_DEDC_USED_PRIMARY: Final[int]
A_OP_DEDC_USED_HOSPITAL: Final[int]
A_OP_FUND_PAID: Final[int]
A_IP_ADMISSION_COUNT: Final[int]
A_IP_INSCP_CUM: Final[int]
A_IP_FUND_PAID: Final[int]
A_HIFOB_PAID: Final[int]
A_CHRONIC_DEDC_USED: Final[int]
A_CII_BASE_CUM: Final[int]
A_HIFMI_PAID: Final[int]
A_CVLSERV_PAID: Final[int]
A_MAF_PAID: Final[int]
A_FAMILY_ACCT_BALC: Final[int]
A_COUNT: Final[int]

# Line columns
L_CLASS: Final[int]
L_PRICE: Final[int]
L_QUANTITY: Final[int]
L_SELFPAY_PROP: Final[int]
L_PRICE_CAP: Final[int]
L_AMOUNT: Final[int]
L_WIDTH: Final[int]

# Line result columns
LR_AMOUNT: Final[int]
LR_FULAMT_OWNPAY: Final[int]
LR_OVERLMT: Final[int]
LR_PRESELFPAY: Final[int]
LR_INSCP: Final[int]
LR_WIDTH: Final[int]

# Output indices
O_MEDFEE_SUMAMT: Final[int]
O_FULAMT_OWNPAY_AMT: Final[int]
O_OVERLMT_SELFPAY: Final[int]
O_PRESELFPAY_AMT: Final[int]
O_INSCP_SCP_AMT: Final[int]
O_ACT_PAY_DEDC: Final[int]
O_HIFP_PAY: Final[int]
O_HIFOB_PAY: Final[int]
O_HIFMI_PAY: Final[int]
O_CVLSERV_PAY: Final[int]
O_MAF_PAY: Final[int]
O_FUND_PAY_SUMAMT: Final[int]
O_PSN_PART_AMT: Final[int]
O_ACCT_PAY: Final[int]
O_ACCT_MULAID_PAY: Final[int]
O_PSN_CASH_PAY: Final[int]
O_HOSP_PART_AMT: Final[int]
O_BALC: Final[int]
O_POOL_PROP_SELFPAY: Final[int]
O_HIFP_LIMIT: Final[int]
O_HIFOB_BASE: Final[int]
O_HIFOB_LIMIT: Final[int]
O_HIFMI_BASE: Final[int]
O_HIFMI_LIMIT: Final[int]
O_CVLSERV_BASE: Final[int]
O_CVLSERV_LIMIT: Final[int]
O_MAF_BASE: Final[int]
O_MAF_LIMIT: Final[int]
O_ACCT_BASE: Final[int]
O_ACCT_LIMIT: Final[int]
O_WIDTH: Final[int]

# Trace columns
T_STEP: Final[int]
T_INDEX: Final[int]
T_BASE: Final[int]
T_RATIO: Final[int]
T_AMOUNT: Final[int]
T_LIMIT: Final[int]
T_WIDTH: Final[int]

# Trace step codes
TS_LINE: Final[int]
TS_DEDUCTIBLE: Final[int]
TS_BAND: Final[int]
TS_CAP: Final[int]
TS_LARGE_AMOUNT: Final[int]
TS_CRITICAL_ILLNESS: Final[int]
TS_CIVIL_SERVANT: Final[int]
TS_MEDICAL_ASSISTANCE: Final[int]
TS_ACCOUNT: Final[int]
TS_MUTUAL_AID: Final[int]
TS_REVERSAL: Final[int]

# Claim flag bits
F_ACCT_USED: Final[int]
F_HAS_FAMILY_ACCOUNT: Final[int]

# Status codes
S_OK: Final[int]
S_OVERFLOW: Final[int]
S_BAD_PARAMS: Final[int]
S_BAD_LINE: Final[int]
S_BAD_SHAPE: Final[int]
S_SPLIT_MISMATCH: Final[int]
S_FUND_OVER_SCOPE: Final[int]
S_CAP_EXCEEDED: Final[int]
S_ACCOUNT_NEGATIVE: Final[int]
S_PERSON_PART_MISMATCH: Final[int]
S_TRACE_FULL: Final[int]
S_REVERSAL_MISMATCH: Final[int]

# Scales and the "no amount of record" sentinel of L_AMOUNT (INT64_MIN)
RATIO_SCALE: Final[int]
PRICE_QUANTITY_SCALE: Final[int]
AMOUNT_NOT_GIVEN: Final[int]

# True when built with SETTLEMENT_DEBUG=1 (expensive invariant checks compiled in)
DEBUG: Final[bool]

# Vector names, written in the kernel independently of settlement.types
ACCUMULATOR_NAMES: Final[tuple[str, ...]]
OUTPUT_NAMES: Final[tuple[str, ...]]
TRACE_STEP_NAMES: Final[dict[int, str]]

def check_param_row(params: Int64Array) -> int: ...

class Workspace:
    """Reusable buffers for settling one claim at a time; one per thread."""

    lines: Int64Array
    line_results: Int64Array
    accumulators_before: Int64Array
    accumulators_after: Int64Array
    outputs: Int64Array
    trace: Int64Array
    max_lines: int
    trace_len: int

    def __init__(self, max_lines: int = 256) -> None: ...
    def reserve(self, n_lines: int) -> None: ...
    def set_line(
        self,
        index: int,
        charge_class: int,
        price_micro: int,
        quantity: int,
        selfpay_prop: int,
        price_cap_micro: int | None,
        amount: int | None,
    ) -> None: ...
    def settle(self, params: Int64Array, n_lines: int, flags: int, with_trace: bool = True) -> int: ...

def cancel(
    original_outputs: Int64Array,
    original_accumulators_before: Int64Array,
    original_accumulators_after: Int64Array,
    accumulators_now: Int64Array,
    outputs: Int64Array,
    accumulators_after: Int64Array,
) -> int: ...

def settle_batch(
    param_table: Int64Array,
    param_rows: Int64Array,
    line_offsets: Int64Array,
    lines: Int64Array,
    flags: Int64Array,
    accumulators_before: Int64Array,
    outputs: Int64Array,
    accumulators_after: Int64Array,
    line_results: Int64Array,
    status: Int32Array,
    start: int = 0,
    stop: int = -1,
) -> int: ...
