"""Replay one partition of records through the kernel and compare every recorded figure.

A partition contains whole persons, so every cancel finds its original and each person's
records can be checked in order. Settlements go through the kernel's batch entry point
in one call; cancels go through the kernel's cancel operation, one by one, because they
are few. Differences become ``Discrepancy`` rows; matching records cost no Python work
beyond building the arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from settlement import _core
from settlement.compiled import ParamTable
from settlement.engine import ClaimBatch, fund_layer_columns, settle, settle_arrays
from settlement.errors import SettlementError
from settlement.ledger_posting import STORED_ACCUMULATOR_KEYS, settlement_posting_sides
from settlement.replay.record import OUTPUT_FIELDS, FundRow, PostingRow, ReplayRecord
from settlement.replay.resolve import Resolver
from settlement.replay.steps import parting_step
from settlement.replay.totals import Totals, add_record_totals
from settlement.types import ACCUMULATOR_KEYS, ChargeClass, ClaimInput, FeeLine, SchemeParams

__all__ = [
    "COUNTER_COLUMNS",
    "Collector",
    "Discrepancy",
    "PartitionResult",
    "describe_settlement",
    "masked_differences",
    "record_flags",
    "replay_cancel",
    "replay_partition",
    "status_name",
    "version_differs",
]

N_OUTPUTS = len(OUTPUT_FIELDS)
COUNTER_COLUMNS = np.array([ACCUMULATOR_KEYS.index(key) for key in STORED_ACCUMULATOR_KEYS])


class Discrepancy(msgspec.Struct, frozen=True, kw_only=True):
    """One figure where the record and the replay disagree.

    ``field`` is an output field, ``accumulators_after.KEY``, ``fund_details[LAYER].COLUMN``,
    ``postings[ACCOUNT]``, ``lines[I].COLUMN``, ``rule_version`` or
    ``accumulators_before.KEY`` (a break between a person's consecutive records).
    ``step`` is the calculation step of the replay's trace where the figures part.
    """

    setl_id: str
    psn_no: str
    fixmedins_code: str
    setl_date: str
    kind: str
    field: str
    recorded: int | str | None
    recomputed: int | str | None
    step: str


class PartitionResult(msgspec.Struct, kw_only=True):
    """Result of replaying one partition: counts, the discrepancies and the recorded totals."""

    checked: int = 0
    matching: int = 0
    differing: int = 0
    settlements: int = 0
    cancels: int = 0
    discrepancies: list[Discrepancy] = []
    totals: Totals = msgspec.field(default_factory=dict)

    def merge(self, other: PartitionResult) -> None:
        """Add another partition's result to this one."""
        self.checked += other.checked
        self.matching += other.matching
        self.differing += other.differing
        self.settlements += other.settlements
        self.cancels += other.cancels
        self.discrepancies.extend(other.discrepancies)
        for key, values in other.totals.items():
            mine = self.totals.get(key)
            self.totals[key] = list(values) if mine is None else [a + b for a, b in zip(mine, values, strict=True)]


class Collector:
    """Collect discrepancies, remembering which records differ."""

    def __init__(self) -> None:
        self.rows: list[Discrepancy] = []
        self.differing: set[str] = set()

    def add(self, record: ReplayRecord, field: str, recorded: object, recomputed: object, step: str) -> None:
        self.differing.add(record.setl_id)
        self.rows.append(Discrepancy(
            setl_id=record.setl_id, psn_no=record.psn_no, fixmedins_code=record.fixmedins_code,
            setl_date=record.setl_date, kind=record.kind, field=field,
            recorded=recorded, recomputed=recomputed, step=step,
        ))


def replay_partition(records: Sequence[ReplayRecord], resolver: Resolver, *, threads: int = 1,
                     check_versions: bool = True, check_order: bool = True) -> PartitionResult:
    """Replay every record of a partition and compare it with what was recorded.

    ``check_versions`` reports a record settled under another policy version than the one
    in force on its date. ``check_order`` compares each record's counters before with the
    previous record's counters after. That needs every record of each person in the
    selected period, so a selection by institution or region turns it off.
    """
    ordered = sorted(records, key=lambda record: (record.psn_no, record.seq))
    by_id = {record.setl_id: record for record in ordered}
    checked = [record for record in ordered if not record.context_only]
    collector = Collector()

    settles = [record for record in checked if record.kind == "settle"]
    _replay_settlements(settles, resolver, collector, threads=threads, check_versions=check_versions)
    cancels = [record for record in checked if record.kind == "cancel"]
    for record in cancels:
        replay_cancel(record, by_id.get(record.original_setl_id or ""), collector)
    if check_order:
        _check_continuity(ordered, collector)

    result = PartitionResult(
        checked=len(checked), settlements=len(settles), cancels=len(cancels),
        differing=len(collector.differing), discrepancies=collector.rows,
    )
    result.matching = result.checked - result.differing
    add_record_totals(result.totals, checked)
    return result


# ---------------------------------------------------------------------------
# Settlements


class _Prepared(msgspec.Struct):
    records: list[ReplayRecord]
    params: list[SchemeParams]
    batch: ClaimBatch


def _prepare(settles: Sequence[ReplayRecord], resolver: Resolver, collector: Collector, check_versions: bool) -> _Prepared:
    """Resolve each settlement's scheme and lines and build the kernel's batch arrays."""
    table = ParamTable()
    kept: list[ReplayRecord] = []
    kept_params: list[SchemeParams] = []
    param_rows: list[int] = []

    for record in settles:
        try:
            params, version = resolver.params(record)
        except SettlementError as error:
            collector.add(record, "rule_version", record.rule_version, error.code.name, "policy")
            continue
        if check_versions and record.rule_version and version and version_differs(record.rule_version, version):
            collector.add(record, "rule_version", record.rule_version, version, "policy")
        kept.append(record)
        kept_params.append(params)
        param_rows.append(table.add(params))

    lines, offsets, differences = resolver.line_arrays(kept)
    for difference in differences:
        collector.add(kept[difference.record], f"lines[{difference.line}].{difference.column}", difference.recorded,
                      difference.in_force, "catalog")

    flags = np.fromiter((record_flags(record) for record in kept), dtype=np.int64, count=len(kept))
    before = np.array([record.before for record in kept], dtype=np.int64).reshape(len(kept), _core.A_COUNT)
    batch = ClaimBatch(table.to_array(), np.array(param_rows, dtype=np.int64), offsets, lines, flags, before)
    return _Prepared(kept, kept_params, batch)


def record_flags(record: ReplayRecord) -> int:
    """Return the kernel's flag word (F_* bits) of a record."""
    flags = 0
    if record.acct_used:
        flags |= _core.F_ACCT_USED
    if record.has_family_account:
        flags |= _core.F_HAS_FAMILY_ACCOUNT
    return flags


def version_differs(recorded: str, in_force: str) -> bool:
    # A label without "@date" names only the policy, so only the id is compared.
    if "@" not in recorded:
        return recorded != in_force.split("@", 1)[0]
    return recorded != in_force


def _replay_settlements(settles: Sequence[ReplayRecord], resolver: Resolver, collector: Collector, *,
                        threads: int, check_versions: bool) -> None:
    prepared = _prepare(settles, resolver, collector, check_versions)
    records = prepared.records
    if not records:
        return
    result = settle_arrays(prepared.batch, with_line_results=False, threads=threads)
    outputs = result.outputs

    ok = result.status == _core.S_OK
    for index in np.nonzero(~ok)[0].tolist():
        collector.add(records[index], "status", "S_OK", status_name(int(result.status[index])), "kernel")

    recorded_outputs = np.array([record.outputs for record in records], dtype=np.int64)
    output_masks = np.array([record.output_mask for record in records], dtype=np.int64)
    differs = masked_differences(recorded_outputs, outputs[:, :N_OUTPUTS], output_masks) & ok[:, None]

    recorded_after = np.array([record.after for record in records], dtype=np.int64)
    after_masks = np.array([record.after_mask for record in records], dtype=np.int64)
    after_differs = masked_differences(recorded_after, result.accumulators_after, after_masks) & ok[:, None]

    suspect = set(np.nonzero(differs.any(axis=1) | after_differs.any(axis=1))[0].tolist())
    output_rows = outputs.tolist()
    for index, record in enumerate(records):
        if not ok[index]:
            continue
        row = output_rows[index]
        if record.fund_details is not None and _fund_rows(prepared.params[index], row) != record.fund_details:
            suspect.add(index)
        if record.postings is not None and _postings_differ(record.postings, _settlement_postings(record, row)):
            suspect.add(index)

    offsets = prepared.batch.line_offsets
    for index in sorted(suspect):
        lines = prepared.batch.lines[offsets[index]:offsets[index + 1]]
        describe_settlement(records[index], prepared.params[index], lines, output_rows[index], differs[index],
                            result.accumulators_after[index], after_differs[index], collector)


def status_name(status: int) -> str:
    names = {getattr(_core, name): name for name in dir(_core) if name.startswith("S_")}
    return names.get(status, str(status))


def masked_differences(recorded: np.ndarray, recomputed: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Return a boolean array: True where a recorded value (its mask bit set) differs from the replay."""
    bits = (masks[:, None] >> np.arange(recorded.shape[1], dtype=np.int64)[None, :]) & 1
    return (recorded != recomputed) & (bits == 1)


def _fund_rows(params: SchemeParams, row: list[int]) -> tuple[FundRow, ...]:
    """Return the setldetail rows the engine builds from a kernel output row (same rules as ``engine.settle``)."""
    no_limit = _core.NO_LIMIT
    rows = [
        FundRow(layer, row[base], None if row[limit] == no_limit else row[limit], row[paid])
        for layer, base, limit, paid in fund_layer_columns(params)
    ]
    if row[_core.O_ACCT_PAY] != 0:
        rows.append(FundRow("acct", row[_core.O_ACCT_BASE], row[_core.O_ACCT_LIMIT], row[_core.O_ACCT_PAY]))
    return tuple(rows)


# Column of each national output field in the kernel's output row.
_OUTPUT_COLUMN = {name: column for column, name in enumerate(OUTPUT_FIELDS)}


def _settlement_postings(record: ReplayRecord, row: list[int]) -> list[PostingRow]:
    """Return the postings the ledger writes for these outputs, by the ledger's own rules.

    It reads the kernel's output row directly, because building the output struct for
    millions of records costs more than the kernel itself.
    """
    sides = settlement_posting_sides(
        record.insuplc_admdvs,
        record.insutype,
        record.psn_no,
        record.family_psn_no,
        record.fixmedins_code,
        lambda field: row[_OUTPUT_COLUMN[field]],
    )
    return [PostingRow(account, debit, credit) for account, debit, credit in sides]


def _postings_differ(recorded: Sequence[PostingRow], expected: Sequence[PostingRow]) -> bool:
    return sorted(recorded) != sorted(expected)


def _net_by_account(postings: Sequence[PostingRow]) -> dict[str, int]:
    net: dict[str, int] = {}
    for posting in postings:
        net[posting.account] = net.get(posting.account, 0) + posting.debit - posting.credit
    return net


def _describe_postings(record: ReplayRecord, expected: Sequence[PostingRow], step: str, collector: Collector) -> None:
    """Report each account whose net posting (debit minus credit) differs, or a changed line count."""
    recorded_net = _net_by_account(record.postings or ())
    expected_net = _net_by_account(expected)
    reported = False
    for account in sorted(recorded_net.keys() | expected_net.keys()):
        if recorded_net.get(account) != expected_net.get(account):
            collector.add(record, f"postings[{account}]", recorded_net.get(account), expected_net.get(account), step)
            reported = True
    if not reported:
        collector.add(record, "postings", len(record.postings or ()), len(expected), step)


def _claim_for_trace(record: ReplayRecord, params: SchemeParams, line_rows: np.ndarray) -> ClaimInput:
    """Rebuild a batch entry's claim from its kernel line rows, so that the single-claim entry point returns its trace."""
    lines = tuple(
        FeeLine(
            feedetl_sn=str(number), med_list_codg="", charge_class=ChargeClass(int(row[0])), price_micro=int(row[1]),
            quantity=int(row[2]), selfpay_prop=int(row[3]),
            price_cap_micro=None if row[4] == _core.NO_PRICE_CAP else int(row[4]),
            amount=None if row[5] == _core.AMOUNT_NOT_GIVEN else int(row[5]),
        )
        for number, row in enumerate(line_rows.tolist())
    )
    accumulators = dict(zip(ACCUMULATOR_KEYS, record.before, strict=True))
    return ClaimInput(params=params, lines=lines, accumulators=accumulators, acct_used=record.acct_used,
                      has_family_account=record.has_family_account)


def describe_settlement(record: ReplayRecord, params: SchemeParams, line_rows: np.ndarray, row: list[int], differs: np.ndarray,
                        after: np.ndarray, after_differs: np.ndarray, collector: Collector) -> None:
    """Report each differing figure of a settlement with the trace step where it parts.

    ``line_rows`` are the settlement's kernel line rows (catalogue values in force) and
    ``row`` is its kernel output row. ``differs`` and ``after_differs`` mark the output
    fields and accumulators that differ.
    """
    trace = settle(_claim_for_trace(record, params, line_rows)).trace

    for column in np.nonzero(differs)[0].tolist():
        field = OUTPUT_FIELDS[column]
        collector.add(record, field, record.outputs[column], row[column], parting_step(field, trace))
    for column in np.nonzero(after_differs)[0].tolist():
        key = ACCUMULATOR_KEYS[column]
        collector.add(record, f"accumulators_after.{key}", record.after[column], int(after[column]),
                      parting_step(f"accumulators_after.{key}", trace))

    if record.fund_details is not None:
        _describe_fund_rows(record, record.fund_details, _fund_rows(params, row), trace, collector)
    if record.postings is not None:
        expected = _settlement_postings(record, row)
        if _postings_differ(record.postings, expected):
            _describe_postings(record, expected, "posting", collector)


def _describe_fund_rows(record: ReplayRecord, recorded: Sequence[FundRow], expected: Sequence[FundRow],
                        trace: Sequence[object], collector: Collector) -> None:
    recorded_by_layer = {row.layer: row for row in recorded}
    expected_by_layer = {row.layer: row for row in expected}
    for layer in dict.fromkeys([*expected_by_layer, *recorded_by_layer]):
        mine, theirs = recorded_by_layer.get(layer), expected_by_layer.get(layer)
        field = f"fund_details[{layer}]"
        if mine is None or theirs is None:
            collector.add(record, field, None if mine is None else mine.fund_payamt,
                          None if theirs is None else theirs.fund_payamt, parting_step(field, trace))
            continue
        for column in ("inscp_scp_amt", "crt_payb_lmt_amt", "fund_payamt"):
            if getattr(mine, column) != getattr(theirs, column):
                collector.add(record, f"{field}.{column}", getattr(mine, column), getattr(theirs, column),
                              parting_step(field, trace))


# ---------------------------------------------------------------------------
# Cancels and order


def replay_cancel(record: ReplayRecord, original: ReplayRecord | None, collector: Collector) -> None:
    """Replay a cancel as the kernel's cancel of its original, against the accumulators before the cancel."""
    if original is None or original.kind != "settle":
        collector.add(record, "original_setl_id", record.original_setl_id, None, "reversal")
        return
    original_outputs = np.zeros(_core.O_WIDTH, dtype=np.int64)
    original_outputs[:N_OUTPUTS] = original.outputs
    outputs = np.zeros(_core.O_WIDTH, dtype=np.int64)
    after = np.zeros(_core.A_COUNT, dtype=np.int64)
    status = _core.cancel(
        original_outputs, np.array(original.before, dtype=np.int64), np.array(original.after, dtype=np.int64),
        np.array(record.before, dtype=np.int64), outputs, after,
    )
    if status != _core.S_OK:
        collector.add(record, "status", "S_OK", status_name(status), "reversal")
        return

    for column, field in enumerate(OUTPUT_FIELDS):
        if (record.output_mask >> column) & 1 and record.outputs[column] != int(outputs[column]):
            collector.add(record, field, record.outputs[column], int(outputs[column]), "reversal")
    for column, key in enumerate(ACCUMULATOR_KEYS):
        if (record.after_mask >> column) & 1 and record.after[column] != int(after[column]):
            collector.add(record, f"accumulators_after.{key}", record.after[column], int(after[column]), "reversal")

    if record.fund_details is not None and original.fund_details is not None:
        expected = tuple(FundRow(r.layer, -r.inscp_scp_amt, r.crt_payb_lmt_amt, -r.fund_payamt) for r in original.fund_details)
        if expected != record.fund_details:
            _describe_fund_rows(record, record.fund_details, expected, (), collector)
    if record.postings is not None and original.postings is not None:
        expected_postings = tuple(PostingRow(p.account, p.credit, p.debit) for p in original.postings)
        if _postings_differ(record.postings, expected_postings):
            _describe_postings(record, expected_postings, "reversal", collector)


def _check_continuity(ordered: Sequence[ReplayRecord], collector: Collector) -> None:
    """Report a person's record whose counters before differ from the previous record's counters after.

    Only counters of the same year are compared. Account balances are left out because
    deposits move them between settlements.
    NOTE: adjustment transactions also move counters between settlements and are not
    read here, so a ledger with adjustments shows their effect as a break.
    """
    for previous, current in zip(ordered, ordered[1:]):
        if current.context_only or previous.context_only or previous.psn_no != current.psn_no or previous.year != current.year:
            continue
        for column in COUNTER_COLUMNS.tolist():
            if current.before[column] != previous.after[column]:
                key = ACCUMULATOR_KEYS[column]
                collector.add(current, f"accumulators_before.{key}", current.before[column], previous.after[column], "order")
