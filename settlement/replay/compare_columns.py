"""Replay a range of rows of a columnar record file with array operations, the same comparison as ``compare``.

The checks and their results are those of ``replay_partition``. Each settlement is
settled from the accumulators recorded before it, the same as there. Cancels go through
the kernel's cancel operation, and each person's consecutive records are checked for
continuity. What changes is how: rules are resolved once per distinct
(version, date, selection), lines are checked against the catalogue once per distinct
(code, date), and every recorded output, accumulator, fund row and posting is compared
with numpy. Only a row whose figures differ is rebuilt as a ``ReplayRecord`` and handed
to the per-record code of ``compare``, which names each differing field and the step of
the trace where it parts.

The range must contain whole persons, sorted by person and ``seq``, as the export writes
it. Any other range is rebuilt as records and replayed by ``replay_partition``.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable

import numpy as np
# np.unique (numpy 2.4) imports numpy.ma on its first call, about 13 ms on the benchmark
# machine. Importing it with this module keeps that code loading out of a new worker's first range.
import numpy.ma  # noqa: F401

from settlement import _core
from settlement.compiled import ParamTable
from settlement.engine import ClaimBatch, fund_layer_columns, settle_arrays
from settlement.errors import SettlementError
from settlement.ledger_posting import FUND_LAYERS, settlement_posting_sides
from settlement.policy.model import Policy
from settlement.replay import columns as col
from settlement.replay.columns import TABLE_OF_FIELD, RecordColumns
from settlement.replay.compare import (
    COUNTER_COLUMNS,
    N_OUTPUTS,
    Collector,
    PartitionResult,
    describe_settlement,
    masked_differences,
    replay_cancel,
    replay_partition,
    status_name,
    version_differs,
)
from settlement.replay.record import OUTPUT_FIELDS, ReplayRecord
from settlement.replay.resolve import Resolver
from settlement.replay.totals import TOTAL_FIELDS, total_key
from settlement.types import ACCUMULATOR_KEYS, SchemeParams

__all__ = ["replay_columns"]

_TOTAL_COLUMNS = np.array([OUTPUT_FIELDS.index(field) for field in TOTAL_FIELDS])
_OUT = {name: column for column, name in enumerate(OUTPUT_FIELDS)}
# Stand-ins for the per-person and per-institution fields in candidate account names.
_MARKERS = {field: f"\x00{field}\x00" for field in ("psn_no", "family_psn_no", "fixmedins_code")}
# Most fund rows a settlement can have: every fund layer plus the personal account.
_MAX_FUND_ROWS = 6


class _Rows:
    """Records of one range, rebuilt on demand and kept, because a differing record is reported several times."""

    def __init__(self, columns: RecordColumns, start: int) -> None:
        self.columns = columns
        self.start = start
        self._built: dict[int, ReplayRecord] = {}

    def __getitem__(self, row: int) -> ReplayRecord:
        found = self._built.get(row)
        if found is None:
            found = self._built[row] = self.columns.record(self.start + row)
        return found


def _distinct(*keys: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Return the distinct rows of integer key columns and each row's distinct number.

    The columns are packed into one int64 key when their ranges allow, because one
    integer column is many times faster to group than ``np.unique(axis=0)``. A small key
    range is grouped through a dense table, without sorting.
    """
    count = len(keys[0])
    if not count:
        return [], np.zeros(0, dtype=np.int64)
    lows = [int(key.min()) for key in keys]
    sizes = [int(key.max()) - low + 1 for key, low in zip(keys, lows, strict=True)]
    span = float(np.prod([float(size) for size in sizes]))
    if span >= 2.0**62:
        unique, inverse = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)
        return [tuple(row) for row in unique.tolist()], inverse.reshape(-1)
    packed = np.zeros(count, dtype=np.int64)
    for key, low, size in zip(keys, lows, sizes, strict=True):
        packed = packed * size + (key - low)
    if span <= max(4 * count, 1 << 16):
        present = np.zeros(int(span), dtype=bool)
        present[packed] = True
        unique = np.nonzero(present)[0]
        number = np.zeros(int(span), dtype=np.int64)
        number[unique] = np.arange(len(unique), dtype=np.int64)
        inverse = number[packed]
    else:
        unique, inverse = np.unique(packed, return_inverse=True)
    rows = []
    for value in unique.tolist():
        parts = []
        for low, size in zip(reversed(lows), reversed(sizes), strict=True):
            value, part = divmod(value, size)
            parts.append(part + low)
        rows.append(tuple(reversed(parts)))
    return rows, inverse.reshape(-1)


def _is_grouped(person: np.ndarray, seq: np.ndarray) -> bool:
    """Return True when rows are sorted by person id then seq, and each person's rows are adjacent."""
    if len(person) < 2:
        return True
    same = person[1:] == person[:-1]
    if np.any(same & (seq[1:] < seq[:-1])):
        return False
    starts = person[np.concatenate(([True], ~same))]
    return len(np.unique(starts)) == len(starts)


def replay_columns(columns: RecordColumns, start: int, end: int, resolver: Resolver, *, threads: int = 1,
                   check_versions: bool = True, check_order: bool = True) -> PartitionResult:
    """Replay rows ``start`` to ``end`` of a columnar file and compare them with what was recorded.

    The options mean the same as for ``replay_partition``.
    """
    a = columns.arrays
    if not _is_grouped(a["psn_no"][start:end], a["seq"][start:end]):
        records = [columns.record(row) for row in range(start, end)]
        return replay_partition(records, resolver, threads=threads, check_versions=check_versions, check_order=check_order)

    rows = _Rows(columns, start)
    collector = Collector()
    bits = a["bits"][start:end]
    checked = (bits & col.BIT_CONTEXT_ONLY) == 0
    cancel = (bits & col.BIT_CANCEL) != 0
    settles = np.nonzero(checked & ~cancel)[0]
    cancels = np.nonzero(checked & cancel)[0]

    _replay_settlements(columns, start, end, settles, resolver, rows, collector, threads=threads, check_versions=check_versions)
    _replay_cancels(columns, start, end, cancels, rows, collector)
    if check_order:
        _check_continuity(columns, start, end, rows, collector)

    result = PartitionResult(
        checked=int(checked.sum()), settlements=len(settles), cancels=len(cancels),
        differing=len(collector.differing), discrepancies=collector.rows,
    )
    result.matching = result.checked - result.differing
    _add_totals(columns, start, np.nonzero(checked)[0], result)
    return result


# ---------------------------------------------------------------------------
# Rules


def _resolve(columns: RecordColumns, start: int, settles: np.ndarray, resolver: Resolver, rows: _Rows,
             collector: Collector, check_versions: bool) -> tuple[np.ndarray, np.ndarray, ParamTable, list[SchemeParams]]:
    """Return the rows that resolved, their ParamTable rows, the table and its params by table row.

    A year has hundreds of dates but only a few policy versions, so resolution goes in
    two steps over distinct keys: (rule version, stored params, date) to the policy
    version in force, then (policy version, resolution) to the scheme. A failure or a
    version mismatch is reported on each record that shares its key.
    """
    a = columns.arrays
    absolute = settles + start
    version_ids = a["rule_version"][absolute]
    resolution_ids = a["resolution"][absolute]
    count = len(settles)
    scheme = np.full(count, -1, dtype=np.int64)          # index into ``schemes``
    failure = np.full(count, -1, dtype=np.int64)         # index into ``failures``
    schemes: list[tuple[SchemeParams, str]] = []
    failures: list[str] = []

    def fail(where: np.ndarray, code: str) -> None:
        failure[where] = len(failures)
        failures.append(code)

    # Records without a resolution keep their stored parameters and their own version label.
    stored = resolution_ids < 0
    if stored.any():
        unique, inverse = _distinct(version_ids[stored], a["params"][absolute[stored]])
        numbers = np.full(len(unique), -1, dtype=np.int64)
        for number, (version_id, params_id) in enumerate(unique):
            if params_id < 0:
                row = int(absolute[np.nonzero(stored)[0][np.flatnonzero(inverse == number)[0]]])
                raise ValueError(f"record {columns.string('setl_id', row)} has neither a resolution nor parameters")
            numbers[number] = len(schemes)
            schemes.append((columns.struct_of_id("params", params_id), columns.tables["rule_version"].get(version_id) or ""))
        scheme[stored] = numbers[inverse]

    resolved = np.nonzero(~stored)[0]
    if len(resolved):
        policy_number, policies = _policies_in_force(columns, absolute[resolved], resolver, fail, resolved)
        found = policy_number >= 0
        unique, inverse = _distinct(policy_number[found], resolution_ids[resolved[found]])
        numbers = np.full(len(unique), -1, dtype=np.int64)
        for number, (policy, resolution_id) in enumerate(unique):
            try:
                found_scheme = resolver.resolve_in(policies[policy], columns.struct_of_id("resolution", resolution_id))  # type: ignore[arg-type]
            except SettlementError as error:
                fail(resolved[found][inverse == number], error.code.name)
                continue
            numbers[number] = len(schemes)
            schemes.append(found_scheme)
        scheme[resolved[found]] = numbers[inverse]

    for index in np.nonzero(failure >= 0)[0].tolist():
        record = rows[int(settles[index])]
        collector.add(record, "rule_version", record.rule_version, failures[int(failure[index])], "policy")

    checkable = np.nonzero((failure < 0) & (scheme >= 0))[0]
    table = ParamTable()
    table_rows = np.array([table.add(params) for params, _ in schemes], dtype=np.int64)
    params_by_table: list[SchemeParams] = [params for params, _ in schemes]
    by_table = {int(row): params_by_table[number] for number, row in enumerate(table_rows.tolist())}
    if check_versions and len(checkable):
        pairs, inverse = _distinct(version_ids[checkable], scheme[checkable])
        for number, (version_id, scheme_number) in enumerate(pairs):
            recorded = columns.tables["rule_version"].get(version_id) or ""
            version = schemes[scheme_number][1]
            if recorded and version and version_differs(recorded, version):
                for index in checkable[inverse == number].tolist():
                    collector.add(rows[int(settles[index])], "rule_version", recorded, version, "policy")
    return settles[checkable], table_rows[scheme[checkable]], table, [by_table[row] for row in range(len(table))]


def _policies_in_force(columns: RecordColumns, absolute: np.ndarray, resolver: Resolver, fail: Callable[[np.ndarray, str], None],
                       positions: np.ndarray) -> tuple[np.ndarray, list[Policy]]:
    """Return per row the number of its policy version in force (-1 where none is), and the versions by number.

    ``fail(positions, code)`` records a failure for the rows at ``positions``.
    """
    a = columns.arrays
    unique, inverse = _distinct(a["rule_version"][absolute], a["params"][absolute], a["setl_date"][absolute])
    numbers = np.full(len(unique), -1, dtype=np.int64)
    policies: list[Policy] = []
    seen: dict[int, int] = {}
    for number, (version_id, params_id, date_id) in enumerate(unique):
        recorded = columns.tables["rule_version"].get(version_id) or ""
        if recorded:
            policy_id = recorded.split("@", 1)[0]
        else:
            stored = columns.struct_of_id("params", params_id) if params_id >= 0 else None
            policy_id = stored.policy_id if stored is not None else ""  # type: ignore[attr-defined]
        try:
            policy = resolver.policy_in_force(policy_id, columns.tables["setl_date"].get(date_id) or "")
        except SettlementError as error:
            fail(positions[inverse == number], error.code.name)
            continue
        numbers[number] = seen.setdefault(id(policy), len(policies))
        if numbers[number] == len(policies):
            policies.append(policy)
    return numbers[inverse], policies


def _gather(offsets: np.ndarray, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the flat indices of the picked records' items and the new offsets, given absolute ``offsets``."""
    counts = offsets[picked + 1] - offsets[picked]
    new_offsets = np.zeros(len(picked) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    indices = np.arange(int(new_offsets[-1]), dtype=np.int64) + np.repeat(offsets[picked] - new_offsets[:-1], counts)
    return indices, new_offsets


# ---------------------------------------------------------------------------
# Settlements


def _replay_settlements(columns: RecordColumns, start: int, end: int, settles: np.ndarray, resolver: Resolver, rows: _Rows,
                        collector: Collector, *, threads: int, check_versions: bool) -> None:
    """Settle the range's settlements in one kernel batch and compare every recorded figure.

    The batch has every row of the range, so the kernel reads the file's line rows in
    place, without gathering them. Rows that are not settlements to check (cancels,
    context-only originals, rows whose rules failed) are settled with the first
    scheme of the table and their results ignored.
    """
    a = columns.arrays
    checkable, param_rows, table, params_by_row = _resolve(columns, start, settles, resolver, rows, collector, check_versions)
    if not len(checkable):
        return
    count = end - start
    in_scope = np.zeros(count, dtype=bool)
    in_scope[checkable] = True
    all_param_rows = np.zeros(count, dtype=np.int64)
    all_param_rows[checkable] = param_rows

    first_line = int(a["line_offsets"][start])
    offsets = a["line_offsets"][start:end + 1] - first_line
    line_counts = np.diff(offsets)
    recorded_lines = a["lines"][first_line:first_line + int(offsets[-1])]
    table_of_pairs, pair_of_line = _catalog_in_force(columns, resolver, a["line_code"][first_line:first_line + int(offsets[-1])],
                                                     np.repeat(a["setl_date"][start:end], line_counts))
    lines, differences = resolver.apply_catalog(recorded_lines, offsets, table_of_pairs, pair_of_line,
                                                np.repeat(in_scope, line_counts))
    for difference in differences:
        record = rows[difference.record]
        collector.add(record, f"lines[{difference.line}].{difference.column}", difference.recorded, difference.in_force, "catalog")

    bits = a["bits"][start:end]
    flags = np.where(bits & col.BIT_ACCT_USED, _core.F_ACCT_USED, 0) | np.where(bits & col.BIT_FAMILY_ACCOUNT,
                                                                                _core.F_HAS_FAMILY_ACCOUNT, 0)
    batch = ClaimBatch(table.to_array(), all_param_rows, np.ascontiguousarray(offsets), lines, flags.astype(np.int64),
                       a["before"][start:end])
    result = settle_arrays(batch, with_line_results=False, threads=threads)
    outputs = result.outputs

    ok = result.status == _core.S_OK
    for index in np.nonzero(in_scope & ~ok)[0].tolist():
        collector.add(rows[index], "status", "S_OK", status_name(int(result.status[index])), "kernel")

    checked = in_scope & ok
    differs = masked_differences(a["outputs"][start:end], outputs[:, :N_OUTPUTS], a["output_mask"][start:end]) & checked[:, None]
    after_differs = masked_differences(a["after"][start:end], result.accumulators_after, a["after_mask"][start:end]) & checked[:, None]
    everything = np.arange(start, end, dtype=np.int64)
    suspect = differs.any(axis=1) | after_differs.any(axis=1)
    suspect |= checked & _fund_rows_differ(columns, everything, all_param_rows, params_by_row, outputs)
    suspect |= checked & _postings_differ(columns, everything, outputs)

    for index in np.nonzero(suspect)[0].tolist():
        describe_settlement(rows[index], params_by_row[int(all_param_rows[index])], lines[offsets[index]:offsets[index + 1]],
                            outputs[index].tolist(), differs[index], result.accumulators_after[index], after_differs[index],
                            collector)


def _catalog_in_force(columns: RecordColumns, resolver: Resolver, line_codes: np.ndarray,
                      line_dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return a matrix of ``Resolver.catalog_row`` over the file's (code, date) pairs, and each line's pair.

    The matrix is kept with the columns and filled only for pairs that occur, so each
    (code, date) is looked up once per process, and the pairs of one code at once
    (``Resolver.catalog_rows``).
    """
    dates = columns.tables["setl_date"]
    codes = columns.tables["line_code"]
    date_count = len(dates)
    key = ("catalog", id(resolver))
    cached = columns.cache.get(key)
    if cached is None:
        size = len(codes) * date_count
        # The resolver is kept in the entry so that its id cannot be reused by another one.
        cached = columns.cache[key] = (resolver, np.zeros((size, 4), dtype=np.int64), np.zeros(size, dtype=bool))
    _, matrix, filled = cached  # type: ignore[misc]
    keys = line_codes * date_count + line_dates
    needed = np.zeros(len(filled), dtype=bool)
    needed[keys] = True
    needed &= ~filled
    pairs = np.nonzero(needed)[0]
    if not len(pairs):
        return matrix, keys
    pair_codes, pair_dates = np.divmod(pairs, date_count)
    date_ids, date_of_pair = np.unique(pair_dates, return_inverse=True)
    days = np.array([datetime.date.fromisoformat(dates.get(date_id) or "").toordinal() for date_id in date_ids.tolist()],
                    dtype=np.int64)[date_of_pair.reshape(-1)]
    # ``pairs`` are sorted, so each code's pairs are one run.
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(pair_codes)) + 1, [len(pairs)])).tolist()
    for first, last in itertools.pairwise(bounds):
        code = codes.get(int(pair_codes[first])) or ""
        matrix[pairs[first:last]] = resolver.catalog_rows(code, days[first:last])
    filled[pairs] = True
    return matrix, keys


def _fund_rows_differ(columns: RecordColumns, absolute: np.ndarray, param_rows: np.ndarray, params_by_row: list[SchemeParams],
                      outputs: np.ndarray) -> np.ndarray:
    """Return True per settlement whose recorded fund rows differ from those the engine builds from the outputs."""
    a = columns.arrays
    layer_ids = {name: index for index, name in enumerate(columns.tables["fund_layer"].all())}
    count = len(params_by_row)
    layer_counts = np.zeros(count, dtype=np.int64)
    layer_columns = np.zeros((count, _MAX_FUND_ROWS - 1, 3), dtype=np.int64)
    layer_names = np.full((count, _MAX_FUND_ROWS - 1), -2, dtype=np.int64)
    for row, params in enumerate(params_by_row):
        layers = fund_layer_columns(params)
        layer_counts[row] = len(layers)
        for position, (layer, base, limit, paid) in enumerate(layers):
            layer_columns[row, position] = (base, limit, paid)
            layer_names[row, position] = layer_ids.get(layer, -2)

    has_rows = (a["bits"][absolute] & col.BIT_HAS_FUND_DETAILS) != 0
    acct = outputs[:, _core.O_ACCT_PAY] != 0
    expected_counts = layer_counts[param_rows] + acct
    recorded_counts = a["fund_offsets"][absolute + 1] - a["fund_offsets"][absolute]
    differ = has_rows & (expected_counts != recorded_counts)
    same = np.nonzero(has_rows & ~differ)[0]
    if not len(same):
        return differ

    recorded_index, offsets = _gather(a["fund_offsets"], absolute[same])
    owner = np.repeat(same, np.diff(offsets))
    position = np.arange(len(owner), dtype=np.int64) - np.repeat(offsets[:-1], np.diff(offsets))
    param_of = param_rows[owner]
    is_layer = position < layer_counts[param_of]
    slot = np.minimum(position, _MAX_FUND_ROWS - 2)
    picked = layer_columns[param_of, slot]
    acct_columns = np.array([_core.O_ACCT_BASE, _core.O_ACCT_LIMIT, _core.O_ACCT_PAY], dtype=np.int64)
    picked = np.where(is_layer[:, None], picked, acct_columns[None, :])
    values = outputs[owner[:, None], picked]
    layer = np.where(is_layer, layer_names[param_of, slot], layer_ids.get("acct", -2))
    limit_none = is_layer & (values[:, 1] == _core.NO_LIMIT)

    recorded_none = a["fund_limit_none"][recorded_index]
    mismatch = (
        (a["fund_layer"][recorded_index] != layer)
        | (a["fund_base"][recorded_index] != values[:, 0])
        | (recorded_none != limit_none)
        | (~limit_none & (a["fund_limit"][recorded_index] != values[:, 1]))
        | (a["fund_paid"][recorded_index] != values[:, 2])
    )
    differ[owner[mismatch]] = True
    return differ


def _postings_differ(columns: RecordColumns, absolute: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Return True per settlement whose recorded postings differ from those the ledger posts for the outputs.

    The ledger's rules (``settlement_posting_sides``) give each settlement a fixed list of
    candidate lines: one per fund layer, the person's account, the family account, the
    cash fund, and the institution's payable and cash. A zero amount gives no line and a
    negative one goes on the other side. The candidates are built here as columns, with
    account names turned into table ids once per distinct person, institution and region
    (``StringTable.find``, a search of the export's sorted key index).
    """
    a = columns.arrays
    has = (a["bits"][absolute] & col.BIT_HAS_POSTINGS) != 0
    if not has.any():
        return np.zeros(len(absolute), dtype=bool)
    offsets = a["posting_offsets"]
    accounts = columns.tables["posting_account"]

    # The accounts of a region's candidates, with a marker for each per-person or per-institution field.
    regions, region_of = _distinct(a["insuplc_admdvs"][absolute], a["insutype"][absolute])
    templates = [_account_templates(columns.tables["insuplc_admdvs"].get(admdvs) or "", columns.tables["insutype"].get(kind) or "")
                 for admdvs, kind in regions]

    def name_of(template: str, field: str, value: str | None) -> str:
        # Formatted as the ledger's f-strings do: a missing family member is "None".
        return template.replace(_MARKERS[field], str(value))

    def account_column(slot: int) -> np.ndarray:
        """Return the table id of candidate ``slot``'s account per record (-1 when no recorded posting uses it)."""
        fields = [field for field, marker in _MARKERS.items() if any(marker in names[slot] for names in templates)]
        if not fields:
            return accounts.find([names[slot] for names in templates])[region_of]
        if len(fields) == 1:
            # One id range of the field's table; in a grouped file a range's persons have neighbouring ids.
            field = fields[0]
            values = a[field][absolute]
            present_ids = values[values >= 0]
            low = int(present_ids.min()) if len(present_ids) else 0
            high = int(present_ids.max()) + 1 if len(present_ids) else 0
            strings = [None, *columns.tables[TABLE_OF_FIELD[field]].strings(low, high)]
            mapped = accounts.find([name_of(names[slot], field, value) for names in templates for value in strings])
            return mapped.reshape(len(templates), len(strings))[region_of, np.where(values >= 0, values - low + 1, 0)]
        unique, inverse = _distinct(region_of, *(a[field][absolute] for field in fields))
        found = []
        for region, *values in unique:
            name = templates[region][slot]
            for field, value in zip(fields, values, strict=True):
                name = name_of(name, field, columns.tables[TABLE_OF_FIELD[field]].get(value))
            found.append(name)
        return accounts.find(found)[inverse]

    layers = len(FUND_LAYERS)
    mutual_aid = outputs[:, _OUT["acct_mulaid_pay"]]
    cash = outputs[:, _OUT["psn_cash_pay"]]
    candidates: list[tuple[np.ndarray, np.ndarray, bool]] = [
        (account_column(slot), outputs[:, _OUT[field]], True) for slot, (_, field) in enumerate(FUND_LAYERS)
    ]
    candidates += [
        (account_column(layers), outputs[:, _OUT["acct_pay"]] - mutual_aid, True),
        (account_column(layers + 1), mutual_aid, True),
        (account_column(layers + 2), cash, True),
        (account_column(layers + 3), outputs[:, _OUT["fund_pay_sumamt"]] + outputs[:, _OUT["acct_pay"]], False),
        (account_column(layers + 4), cash, False),
    ]
    account = np.stack([item[0] for item in candidates], axis=1)
    value = np.stack([item[1] for item in candidates], axis=1)
    normal_debit = np.array([item[2] for item in candidates])[None, :]
    debit_side = (value > 0) == normal_debit
    magnitude = np.abs(value)
    present = value != 0
    expected = (account, np.where(debit_side, magnitude, 0), np.where(debit_side, 0, magnitude))
    return has & _multisets_differ(offsets, absolute, present, expected, a["posting_account"], a["posting_debit"],
                                   a["posting_credit"])


def _account_templates(admdvs: str, insutype: str) -> list[str]:
    """Return the account of every candidate posting line of a region, by the ledger's own rules, with markers.

    The amounts make every line appear (``acct_pay`` 2, everything else 1), so the list
    has one entry per candidate, in the rules' order.
    """
    sides = settlement_posting_sides(admdvs, insutype, *_MARKERS.values(), lambda field: 2 if field == "acct_pay" else 1)
    return [account for account, _, _ in sides]


def _multisets_differ(offsets: np.ndarray, absolute: np.ndarray, present: np.ndarray,
                      expected: tuple[np.ndarray, np.ndarray, np.ndarray], accounts: np.ndarray, debits: np.ndarray,
                      credits: np.ndarray) -> np.ndarray:
    """Return True per record whose recorded (account, debit, credit) rows are not the expected multiset.

    ``expected`` has one (records, candidates) array per column and ``present`` marks
    the candidates that exist; the recorded rows are cut by ``offsets``.
    """
    expected_counts = present.sum(axis=1)
    recorded_counts = offsets[absolute + 1] - offsets[absolute]
    differ = expected_counts != recorded_counts
    same = np.nonzero(~differ)[0]
    if not len(same):
        return differ
    recorded_index, new_offsets = _gather(offsets, absolute[same])
    recorded_owner = np.repeat(same, np.diff(new_offsets))
    recorded = (accounts[recorded_index], debits[recorded_index], credits[recorded_index])
    mask = present & ~differ[:, None]
    expected_rows = tuple(column[mask] for column in expected)

    # The ledger writes the lines in the candidates' order, so most records match as they
    # stand. Only the others are sorted and compared again as multisets.
    mismatch = np.zeros(len(recorded_owner), dtype=bool)
    for mine, theirs in zip(recorded, expected_rows, strict=True):
        mismatch |= mine != theirs
    unordered = np.unique(recorded_owner[mismatch])
    if not len(unordered):
        return differ
    again = np.isin(recorded_owner, unordered)
    mine_sorted = _sorted_rows(recorded_owner[again], *(column[again] for column in recorded))
    theirs_sorted = _sorted_rows(recorded_owner[again], *(column[again] for column in expected_rows))
    mismatch = np.zeros(len(mine_sorted[0]), dtype=bool)
    for mine, theirs in zip(mine_sorted[1:], theirs_sorted[1:], strict=True):
        mismatch |= mine != theirs
    differ[mine_sorted[0][mismatch]] = True
    return differ


def _sorted_rows(owner: np.ndarray, account: np.ndarray, debit: np.ndarray, credit: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort rows by owner and account.

    Rows of one record with the same account may then stand in either order, so two equal
    multisets can compare unequal. That only sends the record to the exact per-record
    check, which finds nothing to report.
    """
    order = np.argsort(owner * (int(account.max(initial=0)) + 2) + (account + 1))
    return owner[order], account[order], debit[order], credit[order]


# ---------------------------------------------------------------------------
# Cancels, order and totals


def _replay_cancels(columns: RecordColumns, start: int, end: int, cancels: np.ndarray, rows: _Rows,
                    collector: Collector) -> None:
    """Replay each cancel as the kernel's cancel of its original; hand any that differ to ``replay_cancel``."""
    if not len(cancels):
        return
    a = columns.arrays
    absolute = cancels + start
    original = a["original_row"][absolute]
    inside = (original >= start) & (original < end)
    usable = inside & ((a["bits"][np.where(inside, original, start)] & col.BIT_CANCEL) == 0)
    suspect = ~usable

    picked = np.nonzero(usable)[0]
    source = original[picked]
    count = len(picked)
    original_outputs = np.zeros((count, _core.O_WIDTH), dtype=np.int64)
    original_outputs[:, :N_OUTPUTS] = a["outputs"][source]
    original_before = np.ascontiguousarray(a["before"][source])
    original_after = np.ascontiguousarray(a["after"][source])
    now = np.ascontiguousarray(a["before"][absolute[picked]])
    outputs = np.zeros((count, _core.O_WIDTH), dtype=np.int64)
    after = np.zeros((count, _core.A_COUNT), dtype=np.int64)
    status = np.fromiter(
        (_core.cancel(original_outputs[index], original_before[index], original_after[index], now[index], outputs[index], after[index])
         for index in range(count)),
        dtype=np.int64, count=count,
    )
    mine = absolute[picked]
    wrong = (status != _core.S_OK)
    wrong |= masked_differences(a["outputs"][mine], outputs[:, :N_OUTPUTS], a["output_mask"][mine]).any(axis=1)
    wrong |= masked_differences(a["after"][mine], after, a["after_mask"][mine]).any(axis=1)
    wrong |= _reversed_rows_differ(columns, mine, source)
    suspect[picked[wrong]] = True

    for index in np.nonzero(suspect)[0].tolist():
        record = rows[int(cancels[index])]
        row = int(original[index])
        replay_cancel(record, rows[row - start] if start <= row < end else None, collector)


def _reversed_rows_differ(columns: RecordColumns, cancels: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """Return True per cancel whose fund rows or postings are not its original's reversed."""
    a = columns.arrays
    differ = np.zeros(len(cancels), dtype=bool)
    both = (a["bits"][cancels] & a["bits"][originals] & col.BIT_HAS_FUND_DETAILS) != 0
    offsets = a["fund_offsets"]
    counts_differ = both & ((offsets[cancels + 1] - offsets[cancels]) != (offsets[originals + 1] - offsets[originals]))
    differ |= counts_differ
    same = np.nonzero(both & ~counts_differ)[0]
    if len(same):
        mine, mine_offsets = _gather(offsets, cancels[same])
        theirs, _ = _gather(offsets, originals[same])
        owner = np.repeat(same, np.diff(mine_offsets))
        mismatch = (
            (a["fund_layer"][mine] != a["fund_layer"][theirs])
            | (a["fund_base"][mine] != -a["fund_base"][theirs])
            | (a["fund_limit_none"][mine] != a["fund_limit_none"][theirs])
            | (~a["fund_limit_none"][mine] & (a["fund_limit"][mine] != a["fund_limit"][theirs]))
            | (a["fund_paid"][mine] != -a["fund_paid"][theirs])
        )
        differ[owner[mismatch]] = True

    both = (a["bits"][cancels] & a["bits"][originals] & col.BIT_HAS_POSTINGS) != 0
    picked = np.nonzero(both)[0]
    if len(picked):
        offsets = a["posting_offsets"]
        theirs, their_offsets = _gather(offsets, originals[picked])
        width = int(np.diff(their_offsets).max()) if len(theirs) else 0
        # The expected rows are the original's with debit and credit swapped, laid out as candidates.
        position = np.arange(len(theirs), dtype=np.int64) - np.repeat(their_offsets[:-1], np.diff(their_offsets))
        owner = np.repeat(np.arange(len(picked)), np.diff(their_offsets))
        present = np.zeros((len(picked), width), dtype=bool)
        account = np.zeros((len(picked), width), dtype=np.int64)
        debit = np.zeros((len(picked), width), dtype=np.int64)
        credit = np.zeros((len(picked), width), dtype=np.int64)
        present[owner, position] = True
        account[owner, position] = a["posting_account"][theirs]
        debit[owner, position] = a["posting_credit"][theirs]
        credit[owner, position] = a["posting_debit"][theirs]
        differ[picked] |= _multisets_differ(offsets, cancels[picked], present, (account, debit, credit),
                                            a["posting_account"], a["posting_debit"], a["posting_credit"])
    return differ


def _check_continuity(columns: RecordColumns, start: int, end: int, rows: _Rows, collector: Collector) -> None:
    """Report a record whose counters before differ from its person's previous record's counters after (same year)."""
    a = columns.arrays
    if end - start < 2:
        return
    person, year = a["psn_no"][start:end], a["year"][start:end]
    context = (a["bits"][start:end] & col.BIT_CONTEXT_ONLY) != 0
    pairs = (person[1:] == person[:-1]) & (year[1:] == year[:-1]) & ~context[1:] & ~context[:-1]
    before = a["before"][start + 1:end][:, COUNTER_COLUMNS]
    previous = a["after"][start:end - 1][:, COUNTER_COLUMNS]
    breaks = (before != previous) & pairs[:, None]
    for index, position in zip(*np.nonzero(breaks), strict=True):
        column = int(COUNTER_COLUMNS[position])
        record = rows[int(index) + 1]
        collector.add(record, f"accumulators_before.{ACCUMULATOR_KEYS[column]}", record.before[column],
                      int(a["after"][start + int(index), column]), "order")


def _add_totals(columns: RecordColumns, start: int, checked: np.ndarray, result: PartitionResult) -> None:
    """Add each checked record's count and recorded amounts to its day and institution."""
    if not len(checked):
        return
    a = columns.arrays
    absolute = checked + start
    unique, inverse = _distinct(a["setl_date"][absolute], a["fixmedins_code"][absolute])
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate(([0], np.nonzero(np.diff(inverse[order]))[0] + 1))
    end = start + int(checked[-1]) + 1
    amounts = np.add.reduceat(np.take(a["outputs"][start:end], _TOTAL_COLUMNS, axis=1)[checked[order]], bounds, axis=0)
    counts = np.diff(np.concatenate((bounds, [len(order)])))
    dates, institutions = columns.tables["setl_date"], columns.tables["fixmedins_code"]
    for (date_id, institution_id), count, sums in zip(unique, counts.tolist(), amounts.tolist(), strict=True):
        key = total_key(dates.get(date_id) or "", institutions.get(institution_id) or "")
        row = result.totals.get(key)
        if row is None:
            row = result.totals[key] = [0] * (len(TOTAL_FIELDS) + 1)
        row[0] += count
        for position, value in enumerate(sums, start=1):
            row[position] += value
