# C-level contract of the settlement kernel: the layout of every array it reads or writes.
#
# All arrays hold int64. Money is fen, unit prices and price caps are 1e-6 yuan, quantities
# 1e-4 units and ratios 1e-4. The Python side (settlement/compiled.py) builds the arrays with
# the same indices through the enums below, which Cython also exports as module-level ints.

from libc.stdint cimport int32_t, int64_t


cpdef enum:
    # Fixed slots per parameter row; the rule compiler rejects schemes with more bands.
    MAX_BANDS = 8
    MAX_CII_BANDS = 8

    # Sentinels. Caps, cap-left values, price caps and accumulator indices are never
    # negative, so -1 marks "not configured". A line amount of record may be any value,
    # so "not given" is INT64_MIN instead (AMOUNT_NOT_GIVEN in _core.pyx).
    NO_LIMIT = -1
    NO_ACCUMULATOR = -1
    NO_PRICE_CAP = -1

    # Trace rows a claim needs besides one per line: deductible, every band, the cap point,
    # large-amount, every critical illness band, two civil servant parts, assistance,
    # account and mutual aid.
    TRACE_FIXED_ROWS = 1 + MAX_BANDS + 1 + 1 + MAX_CII_BANDS + 2 + 1 + 2


cpdef enum:
    DEDC_NONE = 0
    DEDC_ANNUAL = 1
    DEDC_PER_ADMISSION = 2


# One compiled scheme (SchemeParams resolved for a claim). Flags are 0 or 1; accumulator
# fields hold an AccumulatorIndex or NO_ACCUMULATOR; caps hold fen or NO_LIMIT.
cpdef enum:
    P_FUND_ENABLED = 0
    P_DEDC_BASIS = 1
    P_DEDC_AMOUNT = 2
    P_DEDC_SUBSEQUENT = 3
    P_DEDC_ACC = 4
    P_BAND_ACC = 5
    P_BAND_COUNT = 6
    P_BAND_LOWER = 7                            # MAX_BANDS slots, fen, ascending, first 0
    P_BAND_RATIO = P_BAND_LOWER + MAX_BANDS     # MAX_BANDS slots
    P_FUND_CAP = P_BAND_RATIO + MAX_BANDS
    P_FUND_CAP_ACC = P_FUND_CAP + 1
    P_LA_ENABLED = P_FUND_CAP + 2               # large-amount layer (职工大额)
    P_LA_RATIO = P_FUND_CAP + 3
    P_LA_CAP = P_FUND_CAP + 4
    P_LA_ACC = P_FUND_CAP + 5
    P_CII_ENABLED = P_FUND_CAP + 6              # critical illness layer (居民大病)
    P_CII_INCLUDE_PRESELFPAY = P_FUND_CAP + 7
    P_CII_BASE_ACC = P_FUND_CAP + 8
    P_CII_PAID_ACC = P_FUND_CAP + 9
    P_CII_CAP = P_FUND_CAP + 10
    P_CII_BAND_COUNT = P_FUND_CAP + 11
    P_CII_BAND_FROM = P_FUND_CAP + 12           # MAX_CII_BANDS slots, absolute thresholds
    P_CII_BAND_RATIO = P_CII_BAND_FROM + MAX_CII_BANDS
    P_CVL_ENABLED = P_CII_BAND_RATIO + MAX_CII_BANDS   # civil servant subsidy
    P_CVL_DEDC_RATIO = P_CVL_ENABLED + 1
    P_CVL_COPAY_RATIO = P_CVL_ENABLED + 2
    P_CVL_CAP = P_CVL_ENABLED + 3
    P_CVL_ACC = P_CVL_ENABLED + 4
    P_MAF_ENABLED = P_CVL_ENABLED + 5           # medical assistance
    P_MAF_RATIO = P_CVL_ENABLED + 6
    P_MAF_CAP = P_CVL_ENABLED + 7
    P_MAF_ACC = P_CVL_ENABLED + 8
    P_ACCT_HAS = P_CVL_ENABLED + 9
    P_ACCT_PAYS_FULAMT = P_CVL_ENABLED + 10
    P_ACCT_PAYS_OVERLMT = P_CVL_ENABLED + 11
    P_ACCT_MUTUAL_AID = P_CVL_ENABLED + 12
    P_WIDTH = P_CVL_ENABLED + 13


# Accumulator vector, in the order of settlement.types.ACCUMULATOR_KEYS.
cpdef enum:
    A_ACCT_BALC = 0
    A_OP_DEDC_USED = 1
    A_OP_DEDC_USED_PRIMARY = 2
    A_OP_DEDC_USED_HOSPITAL = 3
    A_OP_FUND_PAID = 4
    A_IP_ADMISSION_COUNT = 5
    A_IP_INSCP_CUM = 6
    A_IP_FUND_PAID = 7
    A_HIFOB_PAID = 8
    A_CHRONIC_DEDC_USED = 9
    A_CII_BASE_CUM = 10
    A_HIFMI_PAID = 11
    A_CVLSERV_PAID = 12
    A_MAF_PAID = 13
    A_FAMILY_ACCT_BALC = 14
    A_COUNT = 15


# One fee line as the parser fills it.
cpdef enum:
    L_CLASS = 0             # 1 class A, 2 class B, 3 class C (national chrgitm_lv)
    L_PRICE = 1             # 1e-6 yuan, never negative
    L_QUANTITY = 2          # 1e-4 units, negative on refund lines
    L_SELFPAY_PROP = 3      # 1e-4, 0..10000
    L_PRICE_CAP = 4         # 1e-6 yuan or NO_PRICE_CAP
    L_AMOUNT = 5            # line amount of record in fen, or AMOUNT_NOT_GIVEN
    L_WIDTH = 6


# The split of one line; the four parts add up to LR_AMOUNT.
cpdef enum:
    LR_AMOUNT = 0
    LR_FULAMT_OWNPAY = 1
    LR_OVERLMT = 2
    LR_PRESELFPAY = 3
    LR_INSCP = 4
    LR_WIDTH = 5


# Claim outputs: first the national setlinfo amounts in the order of
# settlement.types.SETTLEMENT_OUTPUT_FIELDS, then pool_prop_selfpay, then what the
# settlement detail rows need (each layer's base and its cap left before the claim).
cpdef enum:
    O_MEDFEE_SUMAMT = 0
    O_FULAMT_OWNPAY_AMT = 1
    O_OVERLMT_SELFPAY = 2
    O_PRESELFPAY_AMT = 3
    O_INSCP_SCP_AMT = 4
    O_ACT_PAY_DEDC = 5
    O_HIFP_PAY = 6
    O_HIFOB_PAY = 7
    O_HIFMI_PAY = 8
    O_CVLSERV_PAY = 9
    O_MAF_PAY = 10
    O_FUND_PAY_SUMAMT = 11
    O_PSN_PART_AMT = 12
    O_ACCT_PAY = 13
    O_ACCT_MULAID_PAY = 14
    O_PSN_CASH_PAY = 15
    O_HOSP_PART_AMT = 16
    O_BALC = 17
    O_POOL_PROP_SELFPAY = 18
    O_HIFP_LIMIT = 19           # fund cap left before the claim, or NO_LIMIT
    O_HIFOB_BASE = 20           # in-scope expense above the pooled cap
    O_HIFOB_LIMIT = 21
    O_HIFMI_BASE = 22           # critical illness base of this claim
    O_HIFMI_LIMIT = 23
    O_CVLSERV_BASE = 24         # deductible applied plus in-scope co-payment
    O_CVLSERV_LIMIT = 25
    O_MAF_BASE = 26             # in-scope burden left after the other funds
    O_MAF_LIMIT = 27
    O_ACCT_BASE = 28            # what the accounts may pay
    O_ACCT_LIMIT = 29           # own balance plus the usable family balance
    O_WIDTH = 30


# One trace row; see TraceStepCode for what base, ratio, amount and limit hold per step.
cpdef enum:
    T_STEP = 0
    T_INDEX = 1
    T_BASE = 2
    T_RATIO = 3
    T_AMOUNT = 4
    T_LIMIT = 5
    T_WIDTH = 6


cpdef enum:
    TS_LINE = 1                 # index line, base amount, ratio selfpay_prop, amount in scope
    TS_DEDUCTIBLE = 2           # base in scope, amount act_pay_dedc, limit deductible due
    TS_BAND = 3                 # index band, base overlap, amount paid, limit cap left
    TS_CAP = 4                  # index band, base expense that used up the cap, amount above the cap
    TS_LARGE_AMOUNT = 5
    TS_CRITICAL_ILLNESS = 6     # index band
    TS_CIVIL_SERVANT = 7        # index 0 deductible part, 1 co-payment part
    TS_MEDICAL_ASSISTANCE = 8
    TS_ACCOUNT = 9              # base payable, amount own account payment, limit balance
    TS_MUTUAL_AID = 10          # base still payable, amount paid, limit family balance
    TS_REVERSAL = 11            # cancel: base original medfee, amount reversed medfee


# Bits of a claim's flag word.
cpdef enum:
    F_ACCT_USED = 1
    F_HAS_FAMILY_ACCOUNT = 2


# Result of a kernel call. Anything but S_OK means the claim was not settled. S_OVERFLOW,
# S_BAD_* and S_REVERSAL_MISMATCH come from the input; every other code is a broken money
# invariant, which the kernel never skips over, so it points at a bug.
cpdef enum:
    S_OK = 0
    S_OVERFLOW = 1              # an amount left the int64 range
    S_BAD_PARAMS = 2            # parameter row out of range (index, count, ratio)
    S_BAD_LINE = 3              # class, price, ratio or quantity out of range
    S_BAD_SHAPE = 4             # line offsets or buffer sizes do not fit
    S_SPLIT_MISMATCH = 5        # the four split parts do not add up to medfee
    S_FUND_OVER_SCOPE = 6       # hifp above in scope less the deductible, or negative
    S_CAP_EXCEEDED = 7          # a layer paid past its cap left
    S_ACCOUNT_NEGATIVE = 8      # an account went below zero
    S_PERSON_PART_MISMATCH = 9  # psn_part_amt != acct_pay + psn_cash_pay
    S_TRACE_FULL = 10           # the trace buffer was too small
    S_REVERSAL_MISMATCH = 11    # cancel: the original's accumulators disagree with its outputs


# Kernel entry points, callable without the GIL. ``trace`` may be NULL; then nothing is traced.
cdef int settle_claim(
    const int64_t* params,
    const int64_t* lines,
    Py_ssize_t n_lines,
    const int64_t* accumulators_before,
    int64_t flags,
    int64_t* outputs,
    int64_t* accumulators_after,
    int64_t* line_results,
    int64_t* trace,
    Py_ssize_t trace_capacity,
    Py_ssize_t* trace_len,
) noexcept nogil

cdef int cancel_claim(
    const int64_t* original_outputs,
    const int64_t* original_accumulators_before,
    const int64_t* original_accumulators_after,
    const int64_t* accumulators_now,
    int64_t* outputs,
    int64_t* accumulators_after,
) noexcept nogil

cdef int check_params(const int64_t* params) noexcept nogil
