"""What-if replay: settle the recorded claims again under other rules and derive the adjustments.

Under changed rules a settlement pays differently, so the accumulators it leaves differ
and every later settlement of the same person starts from another state. Records are
therefore replayed in waves: wave k contains the k-th record of every person and goes
through the kernel's batch entry point in one call, starting from the state the
previous wave left. Anything that moved a person's state between two recorded
settlements (a deposit, an adjustment) is carried over as the recorded gap between
them, so it applies unchanged.

Each settlement whose figures change gets one proposed adjustment transaction: the
postings under the other rules minus the recorded postings (netted per account, so the
transaction balances because both sides balance), and the change of each stored
counter. Across a person's records the counter changes add up to the difference between
the what-if state and the recorded state.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from settlement import _core
from settlement.compiled import ParamTable
from settlement.engine import ClaimBatch, settle_arrays
from settlement.errors import SettlementError
from settlement.ledger_posting import FUND_LAYERS, STORED_ACCUMULATOR_KEYS, settlement_postings
from settlement.replay.compare import record_flags
from settlement.replay.record import OUTPUT_FIELDS, ReplayRecord
from settlement.replay.resolve import Resolver
from settlement.store import AccumulatorDelta, AdjustmentRequest, Posting
from settlement.types import ACCUMULATOR_KEYS, SettlementOutputs

__all__ = ["ADJUSTMENT_ORIGIN", "ProposedAdjustment", "WhatIfResult", "what_if_partition"]

# Journal origin of adjustments proposed by a what-if replay; with the setl_id it makes the posting idempotent.
ADJUSTMENT_ORIGIN = "replay-whatif"

N_OUTPUTS = len(OUTPUT_FIELDS)
_BALANCE_COLUMNS = np.array([ACCUMULATOR_KEYS.index("acct_balc"), ACCUMULATOR_KEYS.index("family_acct_balc")])
_STORED_COLUMNS = [ACCUMULATOR_KEYS.index(key) for key in STORED_ACCUMULATOR_KEYS]
_COMPARED_OUTPUTS = tuple(field for field in OUTPUT_FIELDS if field != "pool_prop_selfpay")


class ProposedAdjustment(msgspec.Struct, frozen=True, kw_only=True):
    """The correction one settlement needs under the other rules.

    ``changes`` maps each changed output field to ``[recorded, what-if]``.
    """

    setl_id: str
    kind: str
    original_setl_id: str | None
    psn_no: str
    fixmedins_code: str
    insuplc_admdvs: str
    insutype: str
    setl_date: str
    changes: dict[str, list[int]]
    request: AdjustmentRequest


class WhatIfResult(msgspec.Struct, kw_only=True):
    """Proposed adjustments, with their sums per fund and per person, and records that could not be replayed.

    ``per_fund`` is keyed ``admdvs|insutype|layer`` (layer as in ``FUND_LAYERS``, plus
    ``acct`` and ``cash``) and ``per_person`` by ``psn_no``; both hold what-if minus
    recorded payments in fen.
    """

    records: int = 0
    adjustments: list[ProposedAdjustment] = []
    per_fund: dict[str, int] = msgspec.field(default_factory=dict)
    per_person: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    failures: list[list[str]] = []

    def merge(self, other: WhatIfResult) -> None:
        """Add another partition's result to this one."""
        self.records += other.records
        self.adjustments.extend(other.adjustments)
        self.failures.extend(other.failures)
        for key, value in other.per_fund.items():
            self.per_fund[key] = self.per_fund.get(key, 0) + value
        for psn_no, values in other.per_person.items():
            mine = self.per_person.setdefault(psn_no, {})
            for field, value in values.items():
                mine[field] = mine.get(field, 0) + value


def _waves(records: Sequence[ReplayRecord]) -> list[list[int]]:
    """Return record indices grouped by their position in their person's sequence."""
    waves: list[list[int]] = []
    position = 0
    for index, record in enumerate(records):
        position = position + 1 if index and records[index - 1].psn_no == record.psn_no else 0
        if position == len(waves):
            waves.append([])
        waves[position].append(index)
    return waves


def what_if_partition(records: Sequence[ReplayRecord], resolver: Resolver, *, threads: int = 1,
                      reason: str = "") -> WhatIfResult:
    """Replay a partition of whole persons under ``resolver``'s rules and propose adjustments."""
    ordered = sorted(records, key=lambda record: (record.psn_no, record.seq))
    count = len(ordered)
    recorded_before = np.array([record.before for record in ordered], dtype=np.int64).reshape(count, _core.A_COUNT)
    recorded_after = np.array([record.after for record in ordered], dtype=np.int64).reshape(count, _core.A_COUNT)
    before = recorded_before.copy()
    after = recorded_after.copy()
    outputs = np.zeros((count, _core.O_WIDTH), dtype=np.int64)
    position = {record.setl_id: index for index, record in enumerate(ordered)}
    result = WhatIfResult(records=sum(1 for record in ordered if not record.context_only))
    failed: set[int] = set()

    for wave in _waves(ordered):
        for index in wave:
            _carry_state(ordered, index, before, after, recorded_before, recorded_after)
        settles = [index for index in wave if ordered[index].kind == "settle"]
        _settle_wave(ordered, settles, resolver, before, after, outputs, failed, result, threads)
        for index in wave:
            if ordered[index].kind == "cancel":
                _cancel(ordered, index, position, before, after, outputs, failed, result)

    for index, record in enumerate(ordered):
        if index not in failed and not record.context_only:
            _propose(record, outputs[index].tolist(), before[index], after[index],
                     recorded_before[index], recorded_after[index], result, reason)
    return result


def _carry_state(records: Sequence[ReplayRecord], index: int, before: np.ndarray, after: np.ndarray,
                 recorded_before: np.ndarray, recorded_after: np.ndarray) -> None:
    """Start a record from its recorded state plus how far the previous what-if record drifted from its record."""
    if index == 0 or records[index - 1].psn_no != records[index].psn_no:
        return
    drift = after[index - 1] - recorded_after[index - 1]
    if records[index - 1].year != records[index].year:
        # A new year starts the counters afresh; only the account balances carry over.
        kept = np.zeros_like(drift)
        kept[_BALANCE_COLUMNS] = drift[_BALANCE_COLUMNS]
        drift = kept
    before[index] = recorded_before[index] + drift


def _settle_wave(records: Sequence[ReplayRecord], indices: list[int], resolver: Resolver, before: np.ndarray,
                 after: np.ndarray, outputs: np.ndarray, failed: set[int], result: WhatIfResult, threads: int) -> None:
    table = ParamTable()
    kept: list[int] = []
    param_rows: list[int] = []
    for index in indices:
        record = records[index]
        try:
            params, _ = resolver.params(record)
        except SettlementError as error:
            failed.add(index)
            result.failures.append([record.setl_id, error.code.name])
            continue
        kept.append(index)
        param_rows.append(table.add(params))
    if not kept:
        return

    # Catalogue differences are the plain replay's to report; here the values in force are simply used.
    lines, offsets, _ = resolver.line_arrays([records[index] for index in kept])
    flags = np.fromiter((record_flags(records[index]) for index in kept), dtype=np.int64, count=len(kept))
    batch = ClaimBatch(table.to_array(), np.array(param_rows, dtype=np.int64), offsets, lines, flags,
                       np.ascontiguousarray(before[kept]))
    settled = settle_arrays(batch, with_line_results=False, threads=threads)
    for row, index in enumerate(kept):
        if settled.status[row] != _core.S_OK:
            failed.add(index)
            result.failures.append([records[index].setl_id, f"status {int(settled.status[row])}"])
            continue
        outputs[index] = settled.outputs[row]
        after[index] = settled.accumulators_after[row]


def _cancel(records: Sequence[ReplayRecord], index: int, position: dict[str, int], before: np.ndarray,
            after: np.ndarray, outputs: np.ndarray, failed: set[int], result: WhatIfResult) -> None:
    """Reverse the what-if original exactly, as the kernel's cancel does."""
    record = records[index]
    original = position.get(record.original_setl_id or "")
    if original is None or original in failed:
        failed.add(index)
        result.failures.append([record.setl_id, "original_setl_id"])
        return
    status = _core.cancel(outputs[original], before[original], after[original], before[index], outputs[index], after[index])
    if status != _core.S_OK:
        failed.add(index)
        result.failures.append([record.setl_id, f"status {status}"])


def _net(postings: Sequence[Posting], sign: int, into: dict[str, int]) -> None:
    for posting in postings:
        into[posting.account] = into.get(posting.account, 0) + sign * (posting.debit - posting.credit)


def _propose(record: ReplayRecord, row: list[int], before: np.ndarray, after: np.ndarray, recorded_before: np.ndarray,
             recorded_after: np.ndarray, result: WhatIfResult, reason: str) -> None:
    """Add the adjustment of one record when its what-if figures differ from the recorded ones."""
    changes = {
        field: [record.outputs[column], row[column]]
        for column, field in enumerate(OUTPUT_FIELDS)
        if field in _COMPARED_OUTPUTS and record.outputs[column] != row[column]
    }
    counter_changes = {
        ACCUMULATOR_KEYS[column]: int((after[column] - before[column]) - (recorded_after[column] - recorded_before[column]))
        for column in _STORED_COLUMNS
    }
    counter_changes = {key: delta for key, delta in counter_changes.items() if delta}
    if not changes and not counter_changes:
        return

    # A cancel's outputs are its original's negated, so the same function gives its
    # postings, with every side swapped.
    what_if_postings = settlement_postings(record, SettlementOutputs(*row[:N_OUTPUTS]))  # type: ignore[arg-type]
    recorded_postings = (
        tuple(Posting(p.account, debit=p.debit, credit=p.credit) for p in record.postings)
        if record.postings is not None
        else settlement_postings(record, SettlementOutputs(*record.outputs))  # type: ignore[arg-type]
    )
    net: dict[str, int] = {}
    _net(what_if_postings, 1, net)
    _net(recorded_postings, -1, net)
    postings = tuple(
        Posting(account, debit=amount) if amount > 0 else Posting(account, credit=-amount)
        for account, amount in sorted(net.items())
        if amount
    )
    deltas = tuple(AccumulatorDelta(record.psn_no, record.year, key, delta) for key, delta in sorted(counter_changes.items()))
    request = AdjustmentRequest(
        msgid=record.setl_id, reason=reason or f"what-if replay of {record.setl_id}", postings=postings,
        accumulator_deltas=deltas, origin=ADJUSTMENT_ORIGIN,
    )
    result.adjustments.append(ProposedAdjustment(
        setl_id=record.setl_id, kind=record.kind, original_setl_id=record.original_setl_id, psn_no=record.psn_no, fixmedins_code=record.fixmedins_code,
        insuplc_admdvs=record.insuplc_admdvs, insutype=record.insutype, setl_date=record.setl_date,
        changes=changes, request=request,
    ))
    _add_sums(record, changes, result)


def _add_sums(record: ReplayRecord, changes: dict[str, list[int]], result: WhatIfResult) -> None:
    for layer, field in (*FUND_LAYERS, ("acct", "acct_pay"), ("cash", "psn_cash_pay")):
        if field in changes:
            recorded, what_if = changes[field]
            key = f"{record.insuplc_admdvs}|{record.insutype}|{layer}"
            result.per_fund[key] = result.per_fund.get(key, 0) + what_if - recorded
            person = result.per_person.setdefault(record.psn_no, {})
            person[field] = person.get(field, 0) + what_if - recorded
