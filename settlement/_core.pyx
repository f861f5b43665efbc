# cython: language_level=3
"""Settlement kernel: plain int64 arrays in, plain int64 arrays out.

The kernel settles one claim from a compiled parameter row (``P_*``), a block of fee
lines (``L_*``) and the person's accumulators (``A_*``), and writes the outputs (``O_*``),
the accumulators after, the line splits (``LR_*``) and optionally a step trace (``T_*``).
The layouts are declared in ``_core.pxd``. The kernel imports nothing from the project,
does no I/O and never allocates on the per-claim path.

Rounding is half away from zero to the fen at exactly these points: the line amount, a
line's capped amount and first self-pay, each band's fund payment and each layer's
payment. The expense that uses up the pooled cap is rounded up. Nothing else is rounded.

Every invariant failure returns a nonzero ``Status``; the kernel never carries on past one.
"""

cimport numpy as cnp
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t
from libc.string cimport memcpy, memset

import numpy as np

cnp.import_array()


include "_arith.pxi"


cdef enum:
    RATIO_SCALE_C = 10000
    # price (1e-6 yuan = 1e-4 fen) times quantity (1e-4 units) is in 1e-8 fen
    PRICE_QUANTITY_SCALE_C = 100000000
    CLASS_A = 1
    CLASS_C = 3


# Python face of the constants that are not enum members.
RATIO_SCALE = RATIO_SCALE_C
PRICE_QUANTITY_SCALE = PRICE_QUANTITY_SCALE_C
AMOUNT_NOT_GIVEN = SK_AMOUNT_NOT_GIVEN
DEBUG = SETTLEMENT_DEBUG

# Names of the vectors, written here independently of settlement.types so that a contract
# test can compare the two.
ACCUMULATOR_NAMES = (
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
OUTPUT_NAMES = (
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
    "pool_prop_selfpay",
)
TRACE_STEP_NAMES = {
    TS_LINE: "line",
    TS_DEDUCTIBLE: "deductible",
    TS_BAND: "band",
    TS_CAP: "cap",
    TS_LARGE_AMOUNT: "large_amount",
    TS_CRITICAL_ILLNESS: "critical_illness",
    TS_CIVIL_SERVANT: "civil_servant",
    TS_MEDICAL_ASSISTANCE: "medical_assistance",
    TS_ACCOUNT: "account",
    TS_MUTUAL_AID: "mutual_aid",
    TS_REVERSAL: "reversal",
}


include "_claim.pxi"


# ---------------------------------------------------------------------------------------
# Python entry points

cdef inline int64_t* int64_data(cnp.ndarray array, Py_ssize_t size, str name) except NULL:
    """Return the data pointer of a C-contiguous int64 array of ``size`` items, else raise."""
    if cnp.PyArray_TYPE(array) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(array):
        raise ValueError(f"{name} must be a C-contiguous int64 array")
    if cnp.PyArray_SIZE(array) != size:
        raise ValueError(f"{name} must have {size} items, not {cnp.PyArray_SIZE(array)}")
    return <int64_t*>cnp.PyArray_DATA(array)


def check_param_row(cnp.ndarray params not None) -> int:
    """Return the Status of a compiled parameter row: S_OK or S_BAD_PARAMS."""
    return check_params(int64_data(params, P_WIDTH, "params"))


cdef class Workspace:
    """Reusable buffers for settling one claim at a time without allocating.

    The caller fills ``lines[:n]`` (``L_*`` columns) and ``accumulators_before``, then calls
    ``settle``; the results are in ``outputs``, ``accumulators_after``, ``line_results[:n]``
    and ``trace[:trace_len]``. A workspace is not thread-safe: use one per thread.
    """

    cdef readonly cnp.ndarray lines
    cdef readonly cnp.ndarray line_results
    cdef readonly cnp.ndarray accumulators_before
    cdef readonly cnp.ndarray accumulators_after
    cdef readonly cnp.ndarray outputs
    cdef readonly cnp.ndarray trace
    cdef readonly Py_ssize_t max_lines
    cdef readonly Py_ssize_t trace_len
    cdef int64_t* _lines
    cdef int64_t* _line_results
    cdef int64_t* _before
    cdef int64_t* _after
    cdef int64_t* _outputs
    cdef int64_t* _trace

    def __cinit__(self, Py_ssize_t max_lines=256):
        self.accumulators_before = np.zeros(A_COUNT, dtype=np.int64)
        self.accumulators_after = np.zeros(A_COUNT, dtype=np.int64)
        self.outputs = np.zeros(O_WIDTH, dtype=np.int64)
        self._before = <int64_t*>cnp.PyArray_DATA(self.accumulators_before)
        self._after = <int64_t*>cnp.PyArray_DATA(self.accumulators_after)
        self._outputs = <int64_t*>cnp.PyArray_DATA(self.outputs)
        self.trace_len = 0
        self._allocate_lines(max_lines)

    cdef _allocate_lines(self, Py_ssize_t max_lines):
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, not {max_lines}")
        self.max_lines = max_lines
        self.lines = np.zeros((max_lines, L_WIDTH), dtype=np.int64)
        self.line_results = np.zeros((max_lines, LR_WIDTH), dtype=np.int64)
        self.trace = np.zeros((max_lines + TRACE_FIXED_ROWS, T_WIDTH), dtype=np.int64)
        self._lines = <int64_t*>cnp.PyArray_DATA(self.lines)
        self._line_results = <int64_t*>cnp.PyArray_DATA(self.line_results)
        self._trace = <int64_t*>cnp.PyArray_DATA(self.trace)

    def reserve(self, Py_ssize_t n_lines):
        """Make room for ``n_lines`` lines; growing replaces the line buffers, discarding their content."""
        if n_lines > self.max_lines:
            self._allocate_lines(max(n_lines, 2 * self.max_lines))

    def set_line(
        self,
        Py_ssize_t index,
        int64_t charge_class,
        int64_t price_micro,
        int64_t quantity,
        int64_t selfpay_prop,
        object price_cap_micro,
        object amount,
    ):
        """Write line ``index`` of the line buffer; None means no price cap or no amount of record."""
        cdef int64_t* row
        if index < 0 or index >= self.max_lines:
            raise IndexError(f"line index {index} outside 0..{self.max_lines - 1}")
        row = self._lines + index * L_WIDTH
        row[L_CLASS] = charge_class
        row[L_PRICE] = price_micro
        row[L_QUANTITY] = quantity
        row[L_SELFPAY_PROP] = selfpay_prop
        row[L_PRICE_CAP] = NO_PRICE_CAP if price_cap_micro is None else <int64_t>price_cap_micro
        row[L_AMOUNT] = SK_AMOUNT_NOT_GIVEN if amount is None else <int64_t>amount

    def settle(self, cnp.ndarray params not None, Py_ssize_t n_lines, int64_t flags, bint with_trace=True) -> int:
        """Settle the claim held in the buffers under ``params`` (a P_WIDTH int64 row); return its Status."""
        cdef const int64_t* p = int64_data(params, P_WIDTH, "params")
        cdef int status
        if n_lines < 0 or n_lines > self.max_lines:
            raise ValueError(f"n_lines must be between 0 and {self.max_lines}, not {n_lines}")
        status = check_params(p)
        if status != S_OK:
            return status
        status = settle_claim(
            p, self._lines, n_lines, self._before, flags, self._outputs, self._after,
            self._line_results, self._trace if with_trace else NULL,
            n_lines + TRACE_FIXED_ROWS, &self.trace_len,
        )
        return status


def cancel(
    const int64_t[::1] original_outputs not None,
    const int64_t[::1] original_accumulators_before not None,
    const int64_t[::1] original_accumulators_after not None,
    const int64_t[::1] accumulators_now not None,
    int64_t[::1] outputs not None,
    int64_t[::1] accumulators_after not None,
) -> int:
    """Reverse a settlement into ``outputs`` and ``accumulators_after``; return the Status."""
    if original_outputs.shape[0] != O_WIDTH or outputs.shape[0] != O_WIDTH:
        raise ValueError(f"outputs must have {O_WIDTH} items")
    if (original_accumulators_before.shape[0] != A_COUNT or original_accumulators_after.shape[0] != A_COUNT
            or accumulators_now.shape[0] != A_COUNT or accumulators_after.shape[0] != A_COUNT):
        raise ValueError(f"accumulator vectors must have {A_COUNT} items")
    return cancel_claim(
        &original_outputs[0], &original_accumulators_before[0], &original_accumulators_after[0],
        &accumulators_now[0], &outputs[0], &accumulators_after[0],
    )


def settle_batch(
    const int64_t[:, ::1] param_table not None,
    const int64_t[::1] param_rows not None,
    const int64_t[::1] line_offsets not None,
    const int64_t[:, ::1] lines not None,
    const int64_t[::1] flags not None,
    const int64_t[:, ::1] accumulators_before not None,
    int64_t[:, ::1] outputs not None,
    int64_t[:, ::1] accumulators_after not None,
    int64_t[:, ::1] line_results not None,
    int32_t[::1] status not None,
    Py_ssize_t start=0,
    Py_ssize_t stop=-1,
) -> int:
    """Settle claims ``start:stop`` of a batch with the GIL released; return how many failed.

    Claim ``c`` uses parameter row ``param_rows[c]`` and lines
    ``line_offsets[c]:line_offsets[c + 1]``. Pass a ``line_results`` array with no rows to
    skip the line splits. A claim whose status is not S_OK has undefined outputs.
    """
    cdef Py_ssize_t n_claims = param_rows.shape[0]
    cdef Py_ssize_t n_rows = param_table.shape[0]
    cdef Py_ssize_t n_lines = lines.shape[0]
    cdef Py_ssize_t c, first, last
    cdef int64_t row
    cdef Py_ssize_t trace_len = 0
    cdef Py_ssize_t failures = 0
    cdef const int64_t* line_base = NULL
    cdef int64_t* result_base = NULL
    cdef int32_t[::1] row_status

    if stop < 0:
        stop = n_claims
    check_batch_shapes(param_table, param_rows, line_offsets, lines, flags, accumulators_before,
                       outputs, accumulators_after, line_results, status, start, stop)

    row_status = np.empty(n_rows, dtype=np.int32)
    for c in range(n_rows):
        row_status[c] = check_params(&param_table[c, 0])
    if n_lines > 0:
        line_base = &lines[0, 0]
        if line_results.shape[0] > 0:
            result_base = &line_results[0, 0]

    with nogil:
        for c in range(start, stop):
            row = param_rows[c]
            first = line_offsets[c]
            last = line_offsets[c + 1]
            if row < 0 or row >= n_rows or row_status[row] != S_OK:
                status[c] = S_BAD_PARAMS
            elif first < 0 or last < first or last > n_lines:
                status[c] = S_BAD_SHAPE
            else:
                status[c] = settle_claim(
                    &param_table[row, 0],
                    line_base + first * L_WIDTH if line_base != NULL else NULL,
                    last - first,
                    &accumulators_before[c, 0],
                    flags[c],
                    &outputs[c, 0],
                    &accumulators_after[c, 0],
                    result_base + first * LR_WIDTH if result_base != NULL else NULL,
                    NULL,
                    0,
                    &trace_len,
                )
            if status[c] != S_OK:
                failures += 1
    return failures


cdef check_batch_shapes(
    const int64_t[:, ::1] param_table,
    const int64_t[::1] param_rows,
    const int64_t[::1] line_offsets,
    const int64_t[:, ::1] lines,
    const int64_t[::1] flags,
    const int64_t[:, ::1] accumulators_before,
    int64_t[:, ::1] outputs,
    int64_t[:, ::1] accumulators_after,
    int64_t[:, ::1] line_results,
    int32_t[::1] status,
    Py_ssize_t start,
    Py_ssize_t stop,
):
    """Raise ValueError unless every batch array has the shape the kernel indexes."""
    cdef Py_ssize_t n = param_rows.shape[0]
    if param_table.shape[1] != P_WIDTH:
        raise ValueError(f"param_table must have {P_WIDTH} columns, not {param_table.shape[1]}")
    if lines.shape[1] != L_WIDTH:
        raise ValueError(f"lines must have {L_WIDTH} columns, not {lines.shape[1]}")
    if line_results.shape[0] != 0 and (line_results.shape[0] != lines.shape[0] or line_results.shape[1] != LR_WIDTH):
        raise ValueError(f"line_results must be empty or have the shape ({lines.shape[0]}, {LR_WIDTH})")
    if line_offsets.shape[0] != n + 1:
        raise ValueError(f"line_offsets must have {n + 1} items, not {line_offsets.shape[0]}")
    if flags.shape[0] != n or status.shape[0] != n:
        raise ValueError(f"flags and status must have {n} items")
    for name, rows, columns, width in (
        ("accumulators_before", accumulators_before.shape[0], accumulators_before.shape[1], A_COUNT),
        ("accumulators_after", accumulators_after.shape[0], accumulators_after.shape[1], A_COUNT),
        ("outputs", outputs.shape[0], outputs.shape[1], O_WIDTH),
    ):
        if rows != n or columns != width:
            raise ValueError(f"{name} must have the shape ({n}, {width}), not ({rows}, {columns})")
    if start < 0 or stop > n or start > stop:
        raise ValueError(f"start:stop must lie within 0:{n}, not {start}:{stop}")
