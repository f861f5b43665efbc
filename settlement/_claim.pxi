# Settlement of one claim, step by step, and its reversal; no Python objects, callable
# without the GIL. Included by _core.pyx after _arith.pxi and the constants.

# The split of one fee line.
cdef struct LineSplit:
    int64_t amount
    int64_t fulamt
    int64_t overlmt
    int64_t preselfpay
    int64_t inscp


# Working values of one claim, named after the output fields they end up in.
cdef struct ClaimState:
    int64_t medfee
    int64_t fulamt
    int64_t overlmt
    int64_t preselfpay
    int64_t inscp
    int64_t act_pay_dedc
    int64_t hifp
    int64_t hifp_limit
    int64_t pool_prop
    int64_t above_cap
    int64_t hifob_base
    int64_t hifob
    int64_t hifob_limit
    int64_t cii_base
    int64_t hifmi
    int64_t hifmi_limit
    int64_t cvl_base
    int64_t cvlserv
    int64_t cvlserv_limit
    int64_t maf_base
    int64_t maf
    int64_t maf_limit
    int64_t fund
    int64_t psn_part
    int64_t acct_base
    int64_t acct_limit
    int64_t acct_own
    int64_t acct_mulaid
    int64_t cash
    int64_t balc
    int64_t* trace
    Py_ssize_t trace_capacity
    Py_ssize_t trace_len
    bint trace_full


# ---------------------------------------------------------------------------------------
# Small helpers

cdef inline int64_t max64(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef inline int64_t min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int64_t read_acc(const int64_t* acc, int64_t index) noexcept nogil:
    """Return an accumulator's value, 0 for NO_ACCUMULATOR."""
    if index == NO_ACCUMULATOR:
        return 0
    return acc[index]


cdef inline int64_t saturating_sub(int64_t a, int64_t b) noexcept nogil:
    """Return a - b, clamped to the int64 range (accumulators come from storage and may be odd)."""
    cdef int64_t result
    if sk_sub(a, b, &result):
        return INT64_MAX if b < 0 else INT64_MIN
    return result


cdef inline int64_t saturating_add(int64_t a, int64_t b) noexcept nogil:
    """Return a + b, clamped to the int64 range."""
    cdef int64_t result
    if sk_add(a, b, &result):
        return INT64_MAX if b > 0 else INT64_MIN
    return result


cdef inline int64_t cap_left(int64_t cap, const int64_t* acc, int64_t index) noexcept nogil:
    """Return what a layer may still pay this year, or NO_LIMIT; an overdrawn cap counts as 0."""
    if cap == NO_LIMIT:
        return NO_LIMIT
    return max64(0, saturating_sub(cap, read_acc(acc, index)))


cdef inline int64_t within_limit(int64_t pay, int64_t limit) noexcept nogil:
    if limit != NO_LIMIT and pay > limit:
        return limit
    return pay


cdef inline int64_t overlap(int64_t lo, int64_t hi, int64_t band_lo, int64_t band_hi) noexcept nogil:
    """Return the length of [lo, hi) inside [band_lo, band_hi), 0 when they do not meet.

    Comparing before subtracting keeps the result within hi - lo, which cannot overflow.
    """
    cdef int64_t top = min64(hi, band_hi)
    cdef int64_t bottom = max64(lo, band_lo)
    if top <= bottom:
        return 0
    return top - bottom


cdef inline void trace_row(
    ClaimState* s, int64_t step, int64_t index, int64_t base, int64_t ratio, int64_t amount, int64_t limit
) noexcept nogil:
    cdef int64_t* row
    if s.trace == NULL:
        return
    if s.trace_len >= s.trace_capacity:
        s.trace_full = True
        return
    row = s.trace + s.trace_len * T_WIDTH
    row[T_STEP] = step
    row[T_INDEX] = index
    row[T_BASE] = base
    row[T_RATIO] = ratio
    row[T_AMOUNT] = amount
    row[T_LIMIT] = limit
    s.trace_len += 1


# ---------------------------------------------------------------------------------------
# Parameter row validation (memory safety: every index the kernel follows is checked)

cdef inline bint bad_acc_index(int64_t index) noexcept nogil:
    return index != NO_ACCUMULATOR and (index < 0 or index >= A_COUNT)


cdef inline bint bad_ratio(int64_t ratio) noexcept nogil:
    return ratio < 0 or ratio > RATIO_SCALE_C


cdef inline bint bad_cap(int64_t cap) noexcept nogil:
    return cap < NO_LIMIT


cdef int check_params(const int64_t* p) noexcept nogil:
    """Return S_BAD_PARAMS when a row could make the kernel read out of bounds or pay above 100%."""
    cdef Py_ssize_t b
    cdef int64_t count = p[P_BAND_COUNT]
    cdef int64_t cii_count = p[P_CII_BAND_COUNT]

    if p[P_DEDC_BASIS] < DEDC_NONE or p[P_DEDC_BASIS] > DEDC_PER_ADMISSION:
        return S_BAD_PARAMS
    if p[P_DEDC_AMOUNT] < 0 or p[P_DEDC_SUBSEQUENT] < 0:
        return S_BAD_PARAMS
    if bad_acc_index(p[P_DEDC_ACC]) or bad_acc_index(p[P_BAND_ACC]) or bad_acc_index(p[P_FUND_CAP_ACC]):
        return S_BAD_PARAMS
    if bad_acc_index(p[P_LA_ACC]) or bad_acc_index(p[P_CII_BASE_ACC]) or bad_acc_index(p[P_CII_PAID_ACC]):
        return S_BAD_PARAMS
    if bad_acc_index(p[P_CVL_ACC]) or bad_acc_index(p[P_MAF_ACC]):
        return S_BAD_PARAMS

    if count < 1 or count > MAX_BANDS or p[P_BAND_LOWER] != 0:
        return S_BAD_PARAMS
    for b in range(count):
        if bad_ratio(p[P_BAND_RATIO + b]):
            return S_BAD_PARAMS
        if b > 0 and p[P_BAND_LOWER + b] <= p[P_BAND_LOWER + b - 1]:
            return S_BAD_PARAMS

    if cii_count < 0 or cii_count > MAX_CII_BANDS:
        return S_BAD_PARAMS
    for b in range(cii_count):
        if bad_ratio(p[P_CII_BAND_RATIO + b]):
            return S_BAD_PARAMS
        if b > 0 and p[P_CII_BAND_FROM + b] <= p[P_CII_BAND_FROM + b - 1]:
            return S_BAD_PARAMS

    if bad_ratio(p[P_LA_RATIO]) or bad_ratio(p[P_CVL_DEDC_RATIO]) or bad_ratio(p[P_CVL_COPAY_RATIO]):
        return S_BAD_PARAMS
    if bad_ratio(p[P_MAF_RATIO]):
        return S_BAD_PARAMS
    if bad_cap(p[P_FUND_CAP]) or bad_cap(p[P_LA_CAP]) or bad_cap(p[P_CII_CAP]):
        return S_BAD_PARAMS
    if bad_cap(p[P_CVL_CAP]) or bad_cap(p[P_MAF_CAP]):
        return S_BAD_PARAMS
    return S_OK


# ---------------------------------------------------------------------------------------
# Claim steps, in calculation order. Each returns a Status.

cdef inline int split_line(const int64_t* row, LineSplit* split) noexcept nogil:
    """Compute one line's amount and its four parts; return a Status."""
    cdef int64_t klass = row[L_CLASS]
    cdef int64_t price = row[L_PRICE]
    cdef int64_t quantity = row[L_QUANTITY]
    cdef int64_t prop = row[L_SELFPAY_PROP]
    cdef int64_t price_cap = row[L_PRICE_CAP]
    cdef int64_t amount = row[L_AMOUNT]
    cdef int64_t capped = 0
    cdef int overflow = 0

    if klass < CLASS_A or klass > CLASS_C or price < 0 or bad_ratio(prop) or price_cap < NO_PRICE_CAP:
        return S_BAD_LINE
    if amount == SK_AMOUNT_NOT_GIVEN:
        overflow |= sk_mul_div_round(price, quantity, PRICE_QUANTITY_SCALE_C, &amount)

    split.amount = amount
    split.fulamt = 0
    split.overlmt = 0
    split.preselfpay = 0
    split.inscp = 0
    if klass == CLASS_C:
        split.fulamt = amount
    else:
        capped = amount
        if price_cap != NO_PRICE_CAP and price > price_cap:
            overflow |= sk_mul_div_round(price_cap, quantity, PRICE_QUANTITY_SCALE_C, &capped)
            # An amount of record rounded from a tiny product (0.504 fen to 0) can lie below
            # the rounded capped product (0.5035 fen to 1). The capped part is kept between 0
            # and the amount, so neither it nor the over-cap part changes sign.
            if capped > amount and capped > 0:
                capped = amount if amount > 0 else 0
            elif capped < amount and capped < 0:
                capped = amount if amount < 0 else 0
            overflow |= sk_sub(amount, capped, &split.overlmt)
        # No test for a zero ratio: class A and B lines arrive in no order, so the branch
        # mispredicts often and costs more than the multiply it would save.
        overflow |= sk_mul_div_round(capped, prop, RATIO_SCALE_C, &split.preselfpay)
        overflow |= sk_sub(capped, split.preselfpay, &split.inscp)

    if overflow:
        return S_OVERFLOW
    return S_OK


cdef int split_lines(
    const int64_t* lines, Py_ssize_t n_lines, int64_t* line_results, ClaimState* s
) noexcept nogil:
    """Split every line and add the rounded parts up.

    The totals live in locals rather than in ``s`` so the compiler can keep them in
    registers: ``line_results`` is an int64 pointer that could otherwise alias them.
    """
    cdef Py_ssize_t i
    cdef int64_t* out
    cdef LineSplit line
    cdef int64_t medfee = 0
    cdef int64_t fulamt = 0
    cdef int64_t overlmt = 0
    cdef int64_t preselfpay = 0
    cdef int64_t inscp = 0
    cdef int status
    cdef int overflow = 0

    for i in range(n_lines):
        status = split_line(lines + i * L_WIDTH, &line)
        if status != S_OK:
            return status
        if SETTLEMENT_DEBUG and line.fulamt + line.overlmt + line.preselfpay + line.inscp != line.amount:
            return S_SPLIT_MISMATCH

        if line_results != NULL:
            out = line_results + i * LR_WIDTH
            out[LR_AMOUNT] = line.amount
            out[LR_FULAMT_OWNPAY] = line.fulamt
            out[LR_OVERLMT] = line.overlmt
            out[LR_PRESELFPAY] = line.preselfpay
            out[LR_INSCP] = line.inscp

        overflow |= sk_add(medfee, line.amount, &medfee)
        overflow |= sk_add(fulamt, line.fulamt, &fulamt)
        overflow |= sk_add(overlmt, line.overlmt, &overlmt)
        overflow |= sk_add(preselfpay, line.preselfpay, &preselfpay)
        overflow |= sk_add(inscp, line.inscp, &inscp)
        if s.trace != NULL:
            trace_row(s, TS_LINE, i, line.amount, lines[i * L_WIDTH + L_SELFPAY_PROP], line.inscp, NO_LIMIT)

    s.medfee = medfee
    s.fulamt = fulamt
    s.overlmt = overlmt
    s.preselfpay = preselfpay
    s.inscp = inscp
    if overflow:
        return S_OVERFLOW
    return S_OK


cdef int apply_deductible(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Work out the deductible due and how much of it this claim's in-scope amount takes."""
    cdef int64_t basis = p[P_DEDC_BASIS]
    cdef int64_t due = 0

    if basis == DEDC_ANNUAL:
        due = max64(0, saturating_sub(p[P_DEDC_AMOUNT], read_acc(acc, p[P_DEDC_ACC])))
    elif basis == DEDC_PER_ADMISSION:
        if read_acc(acc, p[P_DEDC_ACC]) <= 0:
            due = p[P_DEDC_AMOUNT]
        else:
            due = p[P_DEDC_SUBSEQUENT]

    s.act_pay_dedc = max64(0, min64(s.inscp, due))
    if basis != DEDC_NONE:
        trace_row(s, TS_DEDUCTIBLE, -1, s.inscp, 0, s.act_pay_dedc, due)
    return S_OK


cdef int pay_bands(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Pay the pooled fund band by band up to its cap and find the expense above the cap."""
    cdef int64_t cum = read_acc(acc, p[P_BAND_ACC])
    cdef int64_t count = p[P_BAND_COUNT]
    cdef int64_t lo = 0
    cdef int64_t hi = 0
    cdef int64_t band_hi, length, ratio, remaining
    cdef int64_t pay = 0
    cdef int64_t expense = 0
    cdef int64_t limit = cap_left(p[P_FUND_CAP], acc, p[P_FUND_CAP_ACC])
    cdef int64_t cap_band = -1
    cdef int64_t cap_expense = 0
    cdef bint found_first = False
    cdef Py_ssize_t b
    cdef int overflow = 0

    s.hifp_limit = limit
    overflow |= sk_add(cum, s.act_pay_dedc, &lo)
    overflow |= sk_add(cum, s.inscp, &hi)
    if overflow:
        return S_OVERFLOW

    for b in range(count):
        band_hi = p[P_BAND_LOWER + b + 1] if b + 1 < count else INT64_MAX
        length = overlap(lo, hi, p[P_BAND_LOWER + b], band_hi)
        if length == 0:
            continue
        ratio = p[P_BAND_RATIO + b]
        if not found_first:
            s.pool_prop = ratio
            found_first = True
        if cap_band >= 0:
            s.above_cap += length
            continue

        overflow |= sk_mul_div_round(length, ratio, RATIO_SCALE_C, &pay)
        remaining = NO_LIMIT if limit == NO_LIMIT else limit - s.hifp
        if remaining != NO_LIMIT and pay > remaining:
            # The cap runs out inside this band: the fund pays exactly what is left, and the
            # expense that used it up is rounded up so the fund is never short by a fen.
            # pay > remaining >= 0 implies ratio > 0.
            overflow |= sk_mul_div_ceil(remaining, RATIO_SCALE_C, ratio, &expense)
            trace_row(s, TS_BAND, b, length, ratio, remaining, remaining)
            s.hifp += remaining
            s.above_cap += length - expense
            cap_band = b
            cap_expense = expense
        else:
            trace_row(s, TS_BAND, b, length, ratio, pay, remaining)
            s.hifp += pay

    if cap_band >= 0:
        trace_row(s, TS_CAP, cap_band, cap_expense, p[P_BAND_RATIO + cap_band], s.above_cap, limit)
    if overflow:
        return S_OVERFLOW
    return S_OK


cdef int pay_large_amount(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Pay the employee large-amount layer on the expense above the pooled cap."""
    cdef int64_t pay = 0
    s.hifob_base = s.above_cap
    s.hifob_limit = cap_left(p[P_LA_CAP], acc, p[P_LA_ACC])
    if sk_mul_div_round(s.above_cap, p[P_LA_RATIO], RATIO_SCALE_C, &pay):
        return S_OVERFLOW
    s.hifob = within_limit(pay, s.hifob_limit)
    if s.above_cap != 0:
        trace_row(s, TS_LARGE_AMOUNT, -1, s.above_cap, p[P_LA_RATIO], s.hifob, s.hifob_limit)
    return S_OK


cdef int pay_critical_illness(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Pay the resident critical illness layer band by band on the cumulative base."""
    cdef int64_t count = p[P_CII_BAND_COUNT]
    cdef int64_t lo = read_acc(acc, p[P_CII_BASE_ACC])
    cdef int64_t hi = 0
    cdef int64_t band_hi, length, ratio, remaining
    cdef int64_t pay = 0
    cdef int64_t limit = cap_left(p[P_CII_CAP], acc, p[P_CII_PAID_ACC])
    cdef Py_ssize_t b
    cdef int overflow = 0

    # hifp + hifob never exceed the in-scope amount, so only adding first self-pay can overflow.
    s.cii_base = s.inscp - s.hifp - s.hifob
    if p[P_CII_INCLUDE_PRESELFPAY]:
        overflow |= sk_add(s.cii_base, s.preselfpay, &s.cii_base)
    s.hifmi_limit = limit
    overflow |= sk_add(lo, s.cii_base, &hi)

    for b in range(count):
        band_hi = p[P_CII_BAND_FROM + b + 1] if b + 1 < count else INT64_MAX
        length = overlap(lo, hi, p[P_CII_BAND_FROM + b], band_hi)
        if length == 0:
            continue
        ratio = p[P_CII_BAND_RATIO + b]
        overflow |= sk_mul_div_round(length, ratio, RATIO_SCALE_C, &pay)
        remaining = NO_LIMIT if limit == NO_LIMIT else limit - s.hifmi
        pay = within_limit(pay, remaining)
        trace_row(s, TS_CRITICAL_ILLNESS, b, length, ratio, pay, remaining)
        s.hifmi += pay

    if overflow:
        return S_OVERFLOW
    return S_OK


cdef int pay_civil_servant(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Pay the civil servant subsidy on the deductible and the in-scope co-payment.

    Critical illness insurance, when the scheme has both, has already paid part of the
    same burden, so its payment is taken off the co-payment first and then off the
    deductible; otherwise the two layers together could pay more than the person owed.
    """
    cdef int64_t copay_before = max64(0, s.inscp - s.act_pay_dedc - s.hifp - s.hifob)
    cdef int64_t copay = max64(0, copay_before - s.hifmi)
    cdef int64_t dedc_base = max64(0, s.act_pay_dedc - max64(0, s.hifmi - copay_before))
    cdef int64_t limit = cap_left(p[P_CVL_CAP], acc, p[P_CVL_ACC])
    cdef int64_t dedc_part = 0
    cdef int64_t copay_part = 0
    cdef int overflow = 0

    overflow |= sk_mul_div_round(dedc_base, p[P_CVL_DEDC_RATIO], RATIO_SCALE_C, &dedc_part)
    overflow |= sk_mul_div_round(copay, p[P_CVL_COPAY_RATIO], RATIO_SCALE_C, &copay_part)
    if overflow:
        return S_OVERFLOW

    dedc_part = within_limit(dedc_part, limit)
    trace_row(s, TS_CIVIL_SERVANT, 0, dedc_base, p[P_CVL_DEDC_RATIO], dedc_part, limit)
    if limit != NO_LIMIT:
        limit -= dedc_part
    copay_part = within_limit(copay_part, limit)
    trace_row(s, TS_CIVIL_SERVANT, 1, copay, p[P_CVL_COPAY_RATIO], copay_part, limit)

    s.cvl_base = dedc_base + copay
    s.cvlserv = dedc_part + copay_part
    s.cvlserv_limit = cap_left(p[P_CVL_CAP], acc, p[P_CVL_ACC])
    return S_OK


cdef int pay_medical_assistance(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Pay medical assistance on the in-scope burden the other funds left."""
    cdef int64_t pay = 0
    s.maf_base = max64(0, s.inscp - s.hifp - s.hifob - s.hifmi - s.cvlserv)
    s.maf_limit = cap_left(p[P_MAF_CAP], acc, p[P_MAF_ACC])
    if sk_mul_div_round(s.maf_base, p[P_MAF_RATIO], RATIO_SCALE_C, &pay):
        return S_OVERFLOW
    s.maf = within_limit(pay, s.maf_limit)
    trace_row(s, TS_MEDICAL_ASSISTANCE, -1, s.maf_base, p[P_MAF_RATIO], s.maf, s.maf_limit)
    return S_OK


cdef int pay_accounts(const int64_t* p, const int64_t* acc, int64_t flags, ClaimState* s) noexcept nogil:
    """Split the personal part into own account, family mutual aid and cash."""
    cdef bint has_account = p[P_ACCT_HAS] != 0
    cdef int64_t balance = acc[A_ACCT_BALC] if has_account else 0
    cdef int64_t family = 0
    cdef int64_t payable = 0
    cdef int overflow = 0

    overflow |= sk_add(s.hifp, s.hifob, &s.fund)
    overflow |= sk_add(s.fund, s.hifmi, &s.fund)
    overflow |= sk_add(s.fund, s.cvlserv, &s.fund)
    overflow |= sk_add(s.fund, s.maf, &s.fund)
    overflow |= sk_sub(s.medfee, s.fund, &s.psn_part)
    if overflow:
        return S_OVERFLOW

    if flags & F_ACCT_USED:
        payable = s.psn_part
        if not p[P_ACCT_PAYS_FULAMT]:
            overflow |= sk_sub(payable, s.fulamt, &payable)
        if not p[P_ACCT_PAYS_OVERLMT]:
            overflow |= sk_sub(payable, s.overlmt, &payable)
        if overflow:
            return S_OVERFLOW
        payable = max64(0, payable)
        s.acct_base = payable

        s.acct_own = min64(max64(0, balance), payable)
        s.acct_limit = max64(0, balance)
        if has_account:
            trace_row(s, TS_ACCOUNT, -1, payable, 0, s.acct_own, balance)

        if p[P_ACCT_MUTUAL_AID] and (flags & F_HAS_FAMILY_ACCOUNT):
            family = acc[A_FAMILY_ACCT_BALC]
            s.acct_mulaid = min64(max64(0, family), payable - s.acct_own)
            s.acct_limit = saturating_add(s.acct_limit, max64(0, family))
            trace_row(s, TS_MUTUAL_AID, -1, payable - s.acct_own, 0, s.acct_mulaid, family)

    s.balc = balance - s.acct_own
    s.cash = s.psn_part - s.acct_own - s.acct_mulaid
    return S_OK


# ---------------------------------------------------------------------------------------
# Invariants, writing the results

cdef inline bint over_limit(int64_t pay, int64_t limit) noexcept nogil:
    return pay < 0 or (limit != NO_LIMIT and pay > limit)


cdef int check_invariants(const int64_t* acc, ClaimState* s) noexcept nogil:
    """Return the first broken money invariant of a settled claim, in calculation order."""
    cdef int64_t acct_pay = s.acct_own + s.acct_mulaid

    if s.fulamt + s.overlmt + s.preselfpay + s.inscp != s.medfee:
        return S_SPLIT_MISMATCH
    if s.hifp < 0 or s.hifp > max64(0, s.inscp - s.act_pay_dedc):
        return S_FUND_OVER_SCOPE
    if over_limit(s.hifp, s.hifp_limit) or over_limit(s.hifob, s.hifob_limit):
        return S_CAP_EXCEEDED
    if over_limit(s.hifmi, s.hifmi_limit) or over_limit(s.cvlserv, s.cvlserv_limit):
        return S_CAP_EXCEEDED
    if over_limit(s.maf, s.maf_limit):
        return S_CAP_EXCEEDED
    if s.acct_own < 0 or (s.acct_own > 0 and s.balc < 0):
        return S_ACCOUNT_NEGATIVE
    if s.acct_mulaid < 0 or (s.acct_mulaid > 0 and acc[A_FAMILY_ACCT_BALC] - s.acct_mulaid < 0):
        return S_ACCOUNT_NEGATIVE
    if s.psn_part != acct_pay + s.cash or s.psn_part != s.medfee - s.fund:
        return S_PERSON_PART_MISMATCH
    if SETTLEMENT_DEBUG and s.hifp + s.above_cap > max64(0, s.inscp - s.act_pay_dedc):
        return S_FUND_OVER_SCOPE
    if SETTLEMENT_DEBUG and s.hifob > s.above_cap:
        return S_FUND_OVER_SCOPE
    return S_OK


cdef void write_outputs(ClaimState* s, int64_t* out) noexcept nogil:
    out[O_MEDFEE_SUMAMT] = s.medfee
    out[O_FULAMT_OWNPAY_AMT] = s.fulamt
    out[O_OVERLMT_SELFPAY] = s.overlmt
    out[O_PRESELFPAY_AMT] = s.preselfpay
    out[O_INSCP_SCP_AMT] = s.inscp
    out[O_ACT_PAY_DEDC] = s.act_pay_dedc
    out[O_HIFP_PAY] = s.hifp
    out[O_HIFOB_PAY] = s.hifob
    out[O_HIFMI_PAY] = s.hifmi
    out[O_CVLSERV_PAY] = s.cvlserv
    out[O_MAF_PAY] = s.maf
    out[O_FUND_PAY_SUMAMT] = s.fund
    out[O_PSN_PART_AMT] = s.psn_part
    out[O_ACCT_PAY] = s.acct_own + s.acct_mulaid
    out[O_ACCT_MULAID_PAY] = s.acct_mulaid
    out[O_PSN_CASH_PAY] = s.cash
    out[O_HOSP_PART_AMT] = 0
    out[O_BALC] = s.balc
    out[O_POOL_PROP_SELFPAY] = s.pool_prop
    out[O_HIFP_LIMIT] = s.hifp_limit
    out[O_HIFOB_BASE] = s.hifob_base
    out[O_HIFOB_LIMIT] = s.hifob_limit
    out[O_HIFMI_BASE] = s.cii_base
    out[O_HIFMI_LIMIT] = s.hifmi_limit
    out[O_CVLSERV_BASE] = s.cvl_base
    out[O_CVLSERV_LIMIT] = s.cvlserv_limit
    out[O_MAF_BASE] = s.maf_base
    out[O_MAF_LIMIT] = s.maf_limit
    out[O_ACCT_BASE] = s.acct_base
    out[O_ACCT_LIMIT] = s.acct_limit


cdef inline int move_acc(int64_t* acc, int64_t index, int64_t delta) noexcept nogil:
    """Add delta to an accumulator; returns 1 on overflow, 0 otherwise (also for NO_ACCUMULATOR)."""
    if index == NO_ACCUMULATOR:
        return 0
    return sk_add(acc[index], delta, &acc[index])


cdef int update_accumulators(
    const int64_t* p, const int64_t* before, ClaimState* s, int64_t* after
) noexcept nogil:
    """Move every accumulator by exactly what this claim used."""
    cdef int overflow = 0
    memcpy(after, before, A_COUNT * sizeof(int64_t))

    if p[P_FUND_ENABLED]:
        if p[P_DEDC_BASIS] == DEDC_ANNUAL:
            overflow |= move_acc(after, p[P_DEDC_ACC], s.act_pay_dedc)
        elif p[P_DEDC_BASIS] == DEDC_PER_ADMISSION:
            overflow |= move_acc(after, p[P_DEDC_ACC], 1)
        overflow |= move_acc(after, p[P_BAND_ACC], s.inscp)
        overflow |= move_acc(after, p[P_FUND_CAP_ACC], s.hifp)
        if p[P_LA_ENABLED]:
            overflow |= move_acc(after, p[P_LA_ACC], s.hifob)
        if p[P_CII_ENABLED]:
            overflow |= move_acc(after, p[P_CII_BASE_ACC], s.cii_base)
            overflow |= move_acc(after, p[P_CII_PAID_ACC], s.hifmi)
        if p[P_CVL_ENABLED]:
            overflow |= move_acc(after, p[P_CVL_ACC], s.cvlserv)
        if p[P_MAF_ENABLED]:
            overflow |= move_acc(after, p[P_MAF_ACC], s.maf)

    overflow |= move_acc(after, A_ACCT_BALC, -s.acct_own)
    overflow |= move_acc(after, A_FAMILY_ACCT_BALC, -s.acct_mulaid)
    if overflow:
        return S_OVERFLOW
    return S_OK


# ---------------------------------------------------------------------------------------
# Entry points

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
) noexcept nogil:
    """Settle one claim. ``params`` must have passed check_params; ``line_results`` and ``trace`` may be NULL."""
    cdef ClaimState s
    cdef int status
    cdef const int64_t* p = params
    cdef const int64_t* acc = accumulators_before

    reset_state(&s)
    s.trace = trace
    s.trace_capacity = trace_capacity

    status = split_lines(lines, n_lines, line_results, &s)
    if status == S_OK and p[P_FUND_ENABLED]:
        status = run_funds(p, acc, &s)
    if status == S_OK:
        status = pay_accounts(p, acc, flags, &s)
    if status == S_OK:
        status = check_invariants(acc, &s)
    if status == S_OK:
        status = update_accumulators(p, acc, &s, accumulators_after)
    if status == S_OK and s.trace_full:
        status = S_TRACE_FULL

    write_outputs(&s, outputs)
    trace_len[0] = s.trace_len
    return status


cdef int run_funds(const int64_t* p, const int64_t* acc, ClaimState* s) noexcept nogil:
    """Run the fund layers in their order: deductible, pooled fund, then each top-up layer."""
    cdef int status = apply_deductible(p, acc, s)
    if status == S_OK:
        status = pay_bands(p, acc, s)
    if status == S_OK and p[P_LA_ENABLED]:
        status = pay_large_amount(p, acc, s)
    if status == S_OK and p[P_CII_ENABLED]:
        status = pay_critical_illness(p, acc, s)
    if status == S_OK and p[P_CVL_ENABLED]:
        status = pay_civil_servant(p, acc, s)
    if status == S_OK and p[P_MAF_ENABLED]:
        status = pay_medical_assistance(p, acc, s)
    return status


cdef inline void reset_state(ClaimState* s) noexcept nogil:
    """Zero every amount and mark every limit as not configured."""
    memset(s, 0, sizeof(ClaimState))
    s.hifp_limit = NO_LIMIT
    s.hifob_limit = NO_LIMIT
    s.hifmi_limit = NO_LIMIT
    s.cvlserv_limit = NO_LIMIT
    s.maf_limit = NO_LIMIT


cdef int cancel_claim(
    const int64_t* original_outputs,
    const int64_t* original_accumulators_before,
    const int64_t* original_accumulators_after,
    const int64_t* accumulators_now,
    int64_t* outputs,
    int64_t* accumulators_after,
) noexcept nogil:
    """Reverse a settlement without recomputing it.

    Every amount is negated; each accumulator moves back by exactly what the original added,
    which returns the own account payment and the mutual-aid payment to their accounts.
    ``balc`` is the restored own balance. Ratios and cap-left values are copied unchanged.
    """
    cdef Py_ssize_t k
    cdef int64_t added, own
    cdef int overflow = 0

    for k in range(O_WIDTH):
        outputs[k] = -original_outputs[k]
    outputs[O_POOL_PROP_SELFPAY] = original_outputs[O_POOL_PROP_SELFPAY]
    outputs[O_HIFP_LIMIT] = original_outputs[O_HIFP_LIMIT]
    outputs[O_HIFOB_LIMIT] = original_outputs[O_HIFOB_LIMIT]
    outputs[O_HIFMI_LIMIT] = original_outputs[O_HIFMI_LIMIT]
    outputs[O_CVLSERV_LIMIT] = original_outputs[O_CVLSERV_LIMIT]
    outputs[O_MAF_LIMIT] = original_outputs[O_MAF_LIMIT]
    outputs[O_ACCT_LIMIT] = original_outputs[O_ACCT_LIMIT]

    for k in range(A_COUNT):
        overflow |= sk_sub(original_accumulators_after[k], original_accumulators_before[k], &added)
        overflow |= sk_sub(accumulators_now[k], added, &accumulators_after[k])
    own = original_outputs[O_ACCT_PAY] - original_outputs[O_ACCT_MULAID_PAY]
    overflow |= sk_add(accumulators_now[A_ACCT_BALC], own, &outputs[O_BALC])
    if overflow:
        return S_OVERFLOW

    # The original's account movement must agree with its own outputs, or the caller paired
    # it with the wrong accumulators.
    if accumulators_after[A_ACCT_BALC] != outputs[O_BALC]:
        return S_REVERSAL_MISMATCH
    if (original_accumulators_before[A_FAMILY_ACCT_BALC] - original_accumulators_after[A_FAMILY_ACCT_BALC]
            != original_outputs[O_ACCT_MULAID_PAY]):
        return S_REVERSAL_MISMATCH
    if -outputs[O_PSN_PART_AMT] != original_outputs[O_ACCT_PAY] + original_outputs[O_PSN_CASH_PAY]:
        return S_PERSON_PART_MISMATCH
    return S_OK
