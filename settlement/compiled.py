"""Compile resolved policies and claims into the flat int64 arrays the kernel reads.

``compile_params`` turns a ``SchemeParams`` into one parameter row (``P_*`` indices of
``settlement._core``), with every accumulator name already resolved to its index in
``ACCUMULATOR_KEYS`` so that the kernel follows plain indices. ``ParamTable`` collects
rows for a batch. The helpers below move accumulators and fee lines between their Python
form and the kernel's vectors. Nothing here computes a settlement amount.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from settlement import _core
from settlement.errors import ErrorCode, SettlementError
from settlement.types import ACCUMULATOR_KEYS, RATIO_SCALE, Band, ClaimInput, FeeLine, SchemeParams

__all__ = [
    "ACCUMULATOR_INDEX",
    "ParamTable",
    "accumulators_to_vector",
    "claim_flags",
    "compile_params",
    "fill_lines",
    "line_rows",
    "vector_to_accumulators",
]

ACCUMULATOR_INDEX = {name: index for index, name in enumerate(ACCUMULATOR_KEYS)}

DEDUCTIBLE_BASES = {
    "none": _core.DEDC_NONE,
    "annual": _core.DEDC_ANNUAL,
    "per_admission": _core.DEDC_PER_ADMISSION,
}

# compile_params results are cached, so a policy resolved once per visit is compiled once.
PARAMS_CACHE_SIZE = 4096


def _invalid(params: SchemeParams, field: str, detail: str) -> SettlementError:
    return SettlementError(ErrorCode.RULE_FILE_INVALID, field=field, value=params.policy_id, detail=detail)


# ---------------------------------------------------------------------------
# Parameter rows


class _RowWriter:
    """Fill one parameter row, checking each value as it goes in."""

    def __init__(self, params: SchemeParams) -> None:
        self.params = params
        self.row = np.zeros(_core.P_WIDTH, dtype=np.int64)

    def flag(self, index: int, value: bool) -> None:
        self.row[index] = 1 if value else 0

    def amount(self, index: int, value: int, field: str) -> None:
        if value < 0:
            raise _invalid(self.params, field, f"amount {value} must not be negative")
        self.row[index] = value

    def cap(self, index: int, value: int | None, field: str) -> None:
        if value is None:
            self.row[index] = _core.NO_LIMIT
        else:
            self.amount(index, value, field)

    def ratio(self, index: int, value: int, field: str) -> None:
        if not 0 <= value <= RATIO_SCALE:
            raise _invalid(self.params, field, f"ratio {value} must lie between 0 and {RATIO_SCALE}")
        self.row[index] = value

    def accumulator(self, index: int, name: str | None, field: str) -> None:
        if name is None:
            self.row[index] = _core.NO_ACCUMULATOR
            return
        if name not in ACCUMULATOR_INDEX:
            raise _invalid(self.params, field, f"unknown accumulator {name!r}")
        self.row[index] = ACCUMULATOR_INDEX[name]

    def bands(self, count_index: int, lower_index: int, ratio_index: int, bands: tuple[Band, ...],
              max_count: int, field: str) -> None:
        if len(bands) > max_count:
            raise _invalid(self.params, field, f"{len(bands)} bands exceed the kernel's {max_count}")
        for number, band in enumerate(bands):
            if number > 0 and band.lower <= bands[number - 1].lower:
                raise _invalid(self.params, f"{field}[{number}].lower", "band edges must be strictly ascending")
            self.row[lower_index + number] = band.lower
            self.ratio(ratio_index + number, band.ratio, f"{field}[{number}].ratio")
        self.row[count_index] = len(bands)


def _write_basic_fund(writer: _RowWriter, params: SchemeParams) -> None:
    if params.deductible_basis not in DEDUCTIBLE_BASES:
        raise _invalid(params, "deductible_basis", f"unknown basis {params.deductible_basis!r}")
    writer.row[_core.P_DEDC_BASIS] = DEDUCTIBLE_BASES[params.deductible_basis]
    writer.amount(_core.P_DEDC_AMOUNT, params.deductible_amount, "deductible_amount")
    writer.amount(_core.P_DEDC_SUBSEQUENT, params.deductible_subsequent, "deductible_subsequent")
    writer.accumulator(_core.P_DEDC_ACC, params.deductible_accumulator, "deductible_accumulator")

    if not params.bands or params.bands[0].lower != 0:
        raise _invalid(params, "bands", "there must be at least one band and the first must start at 0")
    writer.accumulator(_core.P_BAND_ACC, params.band_accumulator, "band_accumulator")
    writer.bands(_core.P_BAND_COUNT, _core.P_BAND_LOWER, _core.P_BAND_RATIO, params.bands,
                 _core.MAX_BANDS, "bands")
    writer.cap(_core.P_FUND_CAP, params.fund_cap, "fund_cap")
    writer.accumulator(_core.P_FUND_CAP_ACC, params.fund_cap_accumulator, "fund_cap_accumulator")

    writer.flag(_core.P_LA_ENABLED, params.large_amount_ratio is not None)
    writer.ratio(_core.P_LA_RATIO, params.large_amount_ratio or 0, "large_amount_ratio")
    writer.cap(_core.P_LA_CAP, params.large_amount_cap, "large_amount_cap")
    writer.accumulator(_core.P_LA_ACC, params.large_amount_accumulator, "large_amount_accumulator")


def _write_layers(writer: _RowWriter, params: SchemeParams) -> None:
    cii = params.critical_illness
    writer.cap(_core.P_CII_CAP, None, "critical_illness.cap")
    writer.accumulator(_core.P_CII_BASE_ACC, None, "critical_illness.base_accumulator")
    writer.accumulator(_core.P_CII_PAID_ACC, None, "critical_illness.paid_accumulator")
    if cii is not None:
        writer.flag(_core.P_CII_ENABLED, True)
        writer.flag(_core.P_CII_INCLUDE_PRESELFPAY, cii.include_preselfpay)
        writer.accumulator(_core.P_CII_BASE_ACC, cii.base_accumulator, "critical_illness.base_accumulator")
        writer.accumulator(_core.P_CII_PAID_ACC, cii.paid_accumulator, "critical_illness.paid_accumulator")
        writer.cap(_core.P_CII_CAP, cii.cap, "critical_illness.cap")
        writer.bands(_core.P_CII_BAND_COUNT, _core.P_CII_BAND_FROM, _core.P_CII_BAND_RATIO, cii.bands,
                     _core.MAX_CII_BANDS, "critical_illness.bands")

    cvl = params.civil_servant
    writer.cap(_core.P_CVL_CAP, None, "civil_servant.cap")
    writer.accumulator(_core.P_CVL_ACC, None, "civil_servant.accumulator")
    if cvl is not None:
        writer.flag(_core.P_CVL_ENABLED, True)
        writer.ratio(_core.P_CVL_DEDC_RATIO, cvl.dedc_ratio, "civil_servant.dedc_ratio")
        writer.ratio(_core.P_CVL_COPAY_RATIO, cvl.copay_ratio, "civil_servant.copay_ratio")
        writer.cap(_core.P_CVL_CAP, cvl.cap, "civil_servant.cap")
        writer.accumulator(_core.P_CVL_ACC, cvl.accumulator, "civil_servant.accumulator")

    maf = params.medical_assistance
    writer.cap(_core.P_MAF_CAP, None, "medical_assistance.cap")
    writer.accumulator(_core.P_MAF_ACC, None, "medical_assistance.accumulator")
    if maf is not None:
        writer.flag(_core.P_MAF_ENABLED, True)
        writer.ratio(_core.P_MAF_RATIO, maf.ratio, "medical_assistance.ratio")
        writer.cap(_core.P_MAF_CAP, maf.cap, "medical_assistance.cap")
        writer.accumulator(_core.P_MAF_ACC, maf.accumulator, "medical_assistance.accumulator")


@functools.lru_cache(maxsize=PARAMS_CACHE_SIZE)
def compile_params(params: SchemeParams) -> np.ndarray:
    """Return the read-only kernel parameter row of a resolved scheme.

    Raises ``SettlementError(RULE_FILE_INVALID)`` naming the field when a value cannot be
    expressed: a negative amount, a ratio outside 0..1, an unknown accumulator, bands out
    of order or more bands than the kernel's fixed slots.
    """
    writer = _RowWriter(params)
    writer.flag(_core.P_FUND_ENABLED, params.fund_enabled)
    _write_basic_fund(writer, params)
    _write_layers(writer, params)

    account = params.account
    writer.flag(_core.P_ACCT_HAS, account.has_account)
    writer.flag(_core.P_ACCT_PAYS_FULAMT, account.pays_fulamt)
    writer.flag(_core.P_ACCT_PAYS_OVERLMT, account.pays_overlmt)
    writer.flag(_core.P_ACCT_MUTUAL_AID, account.mutual_aid)

    # The kernel checks rows again before use; a row that fails here is a bug in this module.
    status = _core.check_param_row(writer.row)
    assert status == _core.S_OK, f"compiled row for {params.policy_id} rejected by the kernel (status {status})"
    writer.row.setflags(write=False)
    return writer.row


class ParamTable:
    """Parameter rows for a batch; claims refer to a row by its index, and equal schemes share a row."""

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._index: dict[SchemeParams, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, params: SchemeParams) -> int:
        """Return the row index of ``params``, compiling it on first use."""
        index = self._index.get(params)
        if index is None:
            index = len(self._rows)
            self._rows.append(compile_params(params))
            self._index[params] = index
        return index

    def to_array(self) -> np.ndarray:
        """Return the rows as one C-contiguous ``(len(self), P_WIDTH)`` int64 array."""
        if not self._rows:
            return np.zeros((0, _core.P_WIDTH), dtype=np.int64)
        return np.ascontiguousarray(np.stack(self._rows))


# ---------------------------------------------------------------------------
# Accumulators


def accumulators_to_vector(accumulators: Mapping[str, int], out: np.ndarray | None = None) -> np.ndarray:
    """Write accumulators into an ``A_COUNT`` int64 vector in ACCUMULATOR_KEYS order; a missing key is 0.

    Raises ``SettlementError(INVALID_FIELD)`` for a key the engine does not keep.
    """
    vector = np.zeros(_core.A_COUNT, dtype=np.int64) if out is None else out
    if out is not None:
        vector[:] = 0
    for name, value in accumulators.items():
        index = ACCUMULATOR_INDEX.get(name)
        if index is None:
            raise SettlementError(
                ErrorCode.INVALID_FIELD, field=f"accumulators.{name}", value=value,
                detail="未知的累计值名称", detail_en="unknown accumulator name",
            )
        try:
            vector[index] = value
        except OverflowError:
            raise SettlementError(
                ErrorCode.AMOUNT_OUT_OF_RANGE, field=f"accumulators.{name}", value=value,
                detail="超出 64 位整数范围", detail_en="outside the 64-bit integer range",
            ) from None
    return vector


def vector_to_accumulators(vector: np.ndarray, keys: Iterable[str] = ACCUMULATOR_KEYS) -> dict[str, int]:
    """Return the accumulators named in ``keys`` from a kernel vector, in ACCUMULATOR_KEYS order."""
    selected = set(keys)
    values = vector.tolist()
    return {name: values[index] for index, name in enumerate(ACCUMULATOR_KEYS) if name in selected}


# ---------------------------------------------------------------------------
# Claims and lines


def claim_flags(claim: ClaimInput) -> int:
    """Return the kernel's flag word for a claim (F_* bits)."""
    flags = 0
    if claim.acct_used:
        flags |= _core.F_ACCT_USED
    if claim.has_family_account:
        flags |= _core.F_HAS_FAMILY_ACCOUNT
    return flags


def line_rows(lines: Sequence[FeeLine]) -> list[tuple[int, int, int, int, int, int]]:
    """Return the fee lines as kernel line rows (L_* columns)."""
    no_cap = _core.NO_PRICE_CAP
    not_given = _core.AMOUNT_NOT_GIVEN
    return [
        (
            int(line.charge_class),
            line.price_micro,
            line.quantity,
            line.selfpay_prop,
            no_cap if line.price_cap_micro is None else line.price_cap_micro,
            not_given if line.amount is None else line.amount,
        )
        for line in lines
    ]


def fill_lines(lines: Sequence[FeeLine], out: np.ndarray) -> None:
    """Write fee lines into the first ``len(lines)`` rows of a kernel line buffer."""
    if lines:
        out[: len(lines)] = line_rows(lines)
