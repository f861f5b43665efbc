"""One group-commit batch, independent of the database: what to lock and read, then what to write.

Both stores run a batch the same way, inside one database transaction:

1. ``Batch.read_request()`` names the persons to lock and the rows to read.
2. The store takes the locks, then reads them into a ``LedgerState``.
3. ``Batch.plan(state)`` runs each operation in queue order against the state as the
   earlier operations of the batch left it, and returns the rows to write plus one
   outcome per operation. An operation that fails (a coded error or an exception in its
   compute callback) writes nothing and leaves the state as it was.
4. The store writes the rows and commits, and only then outcomes the callers.

Idempotency is checked here against the committed rows and against the batch itself (two
copies of one request in one batch get the same outcome). The database's unique indexes
still reject a duplicate that slips past, for example from another process; the store
then retries the operations one by one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from settlement.errors import ErrorCode, SettlementError
from settlement.ledger_posting import (
    STORED_ACCUMULATOR_KEYS,
    accumulator_delta_rows,
    build_cancel_record,
    build_settlement_record,
    check_balanced,
    check_request,
    deposit_postings,
    lock_key,
    parse_account,
    request_digest,
    reverse_result,
)
from settlement.stored_record import decode_stored_record, stored_record_bytes
from settlement.store import (
    AccumulatorDelta,
    AdjustmentRequest,
    CancelCompute,
    CancelRequest,
    DepositRequest,
    JournalEntry,
    Posting,
    SettleCompute,
    SettlementRecord,
    SettlementRequest,
)
from settlement.types import ACCUMULATOR_KEYS

__all__ = [
    "Batch",
    "BatchPlan",
    "LedgerState",
    "Operation",
    "ReadRequest",
    "SameAs",
    "StoredTxn",
    "decode_entry",
    "decode_record",
]

_entry_decoder = msgspec.json.Decoder(JournalEntry)
_encoder = msgspec.json.Encoder()


def decode_record(body: bytes) -> SettlementRecord:
    """Decode a stored settlement record, LZ4-framed or the plain JSON of older ledgers."""
    return decode_stored_record(body)


def decode_entry(body: bytes) -> JournalEntry:
    return _entry_decoder.decode(body)


@dataclasses.dataclass
class Operation:
    """One queued write: its request, its compute callback (settle and cancel) and its content digest."""

    kind: str
    request: Any
    compute: Any = None
    digest: str = ""

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = request_digest(self.request)

    @property
    def origin(self) -> str:
        if isinstance(self.request, (SettlementRequest, CancelRequest)):
            return self.request.fixmedins_code
        return self.request.origin


@dataclasses.dataclass(frozen=True)
class SameAs:
    """The outcome of an identical request earlier in the same batch."""

    index: int


@dataclasses.dataclass
class StoredTxn:
    """A committed journal transaction found by its (origin, msgid) key."""

    txn_id: int
    kind: str
    digest: str
    body: bytes | None


@dataclasses.dataclass
class ReadRequest:
    """What a batch needs locked and read. Lock keys are sorted, so two batches cannot deadlock on person locks."""

    lock_keys: list[int]
    msgid_keys: list[tuple[str, str]]
    batch_keys: list[tuple[str, str, str]]
    setl_ids: list[str]
    accumulator_keys: list[tuple[str, int]]
    persons: list[str]
    id_count: int


@dataclasses.dataclass
class LedgerState:
    """The committed rows a batch reads under its locks.

    ``batches`` maps a charge batch to (settlements so far, the live one or None).
    ``originals`` maps a setl_id to (record, already cancelled). ``accumulators`` contains
    stored counters only, and ``balances`` the personal-account balances by psn_no.
    """

    txn_ids: list[int]
    by_msgid: dict[tuple[str, str], StoredTxn]
    batches: dict[tuple[str, str, str], tuple[int, SettlementRecord | None]]
    originals: dict[str, tuple[SettlementRecord, bool]]
    accumulators: dict[tuple[str, int], dict[str, int]]
    balances: dict[str, int]


@dataclasses.dataclass
class BatchPlan:
    """Rows to write for a batch, and one outcome per operation.

    ``transactions`` rows are (txn_id, kind, origin, msgid, reverses_txn_id, digest, body).
    ``settlements`` contains the records with their canonical bytes (``settlement.chain``),
    in the order the store links them into the hash chain. ``postings`` rows are
    (txn_id, seq, account key, debit, credit); ``deltas`` rows are (txn_id, psn_no, year,
    key, delta).
    ``accumulators`` contains the final value of every counter the batch changed, and
    ``account_moves`` the debit and credit added to each account.
    """

    transactions: list[tuple[int, str, str, str, int | None, str, bytes | None]] = dataclasses.field(default_factory=list)
    settlements: list[tuple[SettlementRecord, bytes]] = dataclasses.field(default_factory=list)
    postings: list[tuple[int, int, str, int, int]] = dataclasses.field(default_factory=list)
    deltas: list[tuple[int, str, int, str, int]] = dataclasses.field(default_factory=list)
    accumulators: dict[tuple[str, int, str], int] = dataclasses.field(default_factory=dict)
    account_moves: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    outcomes: list[Any] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.transactions


def _msgid_reused(msgid: str, detail: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.MSGID_REUSED, field="msgid", value=msgid, detail=detail, detail_en=detail_en)


class Batch:
    """Plans the operations of one batch; see the module docstring for the steps."""

    def __init__(self, operations: list[Operation]) -> None:
        self.operations = operations
        # Originals of cancels, read before locking: records never change once written.
        self.known_originals: dict[str, SettlementRecord] = {}

    def cancel_setl_ids(self) -> list[str]:
        return sorted({op.request.setl_id for op in self.operations if op.kind == "cancel"})

    def _persons_of(self, op: Operation) -> list[str]:
        request = op.request
        if op.kind == "settle":
            return [request.psn_no] + ([request.family_psn_no] if request.family_psn_no else [])
        if op.kind == "cancel":
            original = self.known_originals.get(request.setl_id)
            if original is None:
                return [request.psn_no]
            return [original.psn_no] + ([original.family_psn_no] if original.family_psn_no else [])
        if op.kind == "deposit":
            return [request.psn_no]
        persons = [d.psn_no for d in request.accumulator_deltas]
        for posting in request.postings:
            if posting.account.startswith("personal:"):
                persons.append(posting.account.split(":", 1)[1])
        return persons

    def _years_of(self, op: Operation) -> list[tuple[str, int]]:
        request = op.request
        if op.kind == "settle":
            # A malformed time is rejected when the operation runs; it must not fail the batch here.
            if request.year is not None:
                return [(request.psn_no, request.year)]
            year = request.setl_time[:4]
            return [(request.psn_no, int(year))] if year.isdigit() else []
        if op.kind == "cancel":
            original = self.known_originals.get(request.setl_id)
            return [(original.psn_no, original.year)] if original else []
        if op.kind == "adjust":
            return [(d.psn_no, d.year) for d in request.accumulator_deltas]
        return []

    def persons(self) -> set[str]:
        """Return the persons whose lock the batch needs, as far as known before reading the ledger."""
        found: set[str] = set()
        for op in self.operations:
            found.update(self._persons_of(op))
        return found

    def read_request(self) -> ReadRequest:
        persons: set[str] = set()
        years: set[tuple[str, int]] = set()
        msgid_keys: set[tuple[str, str]] = set()
        batch_keys: set[tuple[str, str, str]] = set()
        for op in self.operations:
            persons.update(self._persons_of(op))
            years.update(self._years_of(op))
            msgid_keys.add((op.origin, op.request.msgid))
            if op.kind == "settle":
                batch_keys.add((op.request.fixmedins_code, op.request.mdtrt_id, op.request.chrg_bchno))
        return ReadRequest(
            lock_keys=sorted({lock_key(p) for p in persons}),
            msgid_keys=sorted(msgid_keys),
            batch_keys=sorted(batch_keys),
            setl_ids=self.cancel_setl_ids(),
            accumulator_keys=sorted(years),
            persons=sorted(persons),
            id_count=len(self.operations),
        )

    def plan(self, state: LedgerState) -> BatchPlan:
        """Run every operation in order against ``state``; see the module docstring."""
        run = _Run(state)
        for index, op in enumerate(self.operations):
            try:
                outcome = run.apply(index, op)
            except Exception as error:  # noqa: BLE001 - a failed operation outcomes its own caller only
                run.discard()
                run.out.outcomes.append(error)
                continue
            run.keep()
            run.out.outcomes.append(outcome)
        return run.finish()


class _Run:
    """Working state of one plan: the committed state plus the effects of the kept operations."""

    def __init__(self, state: LedgerState) -> None:
        self.state = state
        self.out = BatchPlan()
        self.ids = iter(state.txn_ids)
        self.accumulators = {key: dict(values) for key, values in state.accumulators.items()}
        self.balances = dict(state.balances)
        self.msgids: dict[tuple[str, str], tuple[int, str, str]] = {}
        self.batches = dict(state.batches)
        self.records: dict[str, tuple[SettlementRecord, bool]] = dict(state.originals)
        # Charge batch -> index of the operation of this batch that settled it.
        self._batch_index: dict[tuple[str, str, str], int] = {}
        self._undo: list[tuple[dict, Any, Any]] = []
        self._rows_mark = self._marks()

    # Undo log: every change to the working state records the previous value, so that a
    # failed operation leaves the state exactly as the operations before it left it.
    def _set(self, mapping: dict, key: Any, value: Any) -> None:
        self._undo.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _marks(self) -> tuple[int, int, int, int, int]:
        out = self.out
        return (len(out.transactions), len(out.settlements), len(out.postings), len(out.deltas), len(out.outcomes))

    def keep(self) -> None:
        self._undo.clear()
        self._rows_mark = self._marks()

    def discard(self) -> None:
        for mapping, key, previous in reversed(self._undo):
            if previous is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = previous
        self._undo.clear()
        out = self.out
        transactions, settlements, postings, deltas, _ = self._rows_mark
        del out.transactions[transactions:]
        del out.settlements[settlements:]
        del out.postings[postings:]
        del out.deltas[deltas:]

    def apply(self, index: int, op: Operation) -> Any:
        if op.kind != "adjust":
            check_request(op.request)
        earlier = self._check_msgid(index, op)
        if earlier is not None:
            return earlier
        if op.kind == "settle":
            return self._settle(index, op)
        if op.kind == "cancel":
            return self._cancel(index, op)
        if op.kind == "deposit":
            return self._deposit(index, op)
        return self._adjust(index, op)

    # -- idempotency -------------------------------------------------------------------

    def _check_msgid(self, index: int, op: Operation) -> Any:
        """Return the earlier outcome of an identical request, raise on a reused msgid, else None."""
        key = (op.origin, op.request.msgid)
        in_batch = self.msgids.get(key)
        if in_batch is not None:
            earlier_index, kind, digest = in_batch
            if kind == op.kind and digest == op.digest:
                return SameAs(earlier_index)
            raise _msgid_reused(op.request.msgid, "本批次中内容不同的请求", "a request with other content in the same batch")

        stored = self.state.by_msgid.get(key)
        if stored is None:
            self._set(self.msgids, key, (index, op.kind, op.digest))
            return None
        if stored.kind != op.kind or stored.digest != op.digest:
            raise _msgid_reused(op.request.msgid, f"内容不同的{stored.kind}交易 {stored.txn_id}", f"{stored.kind} transaction {stored.txn_id} with other content")
        if stored.kind in ("settle", "cancel"):
            return decode_record(stored.body)
        return decode_entry(stored.body)

    # -- state helpers ---------------------------------------------------------------

    def _counters(self, psn_no: str, year: int) -> dict[str, int]:
        stored = self.accumulators.get((psn_no, year), {})
        return {key: stored.get(key, 0) for key in STORED_ACCUMULATOR_KEYS}

    def _full_accumulators(self, psn_no: str, year: int, family_psn_no: str | None) -> dict[str, int]:
        values = self._counters(psn_no, year)
        values["acct_balc"] = self.balances.get(psn_no, 0)
        values["family_acct_balc"] = self.balances.get(family_psn_no, 0) if family_psn_no else 0
        return {key: values[key] for key in ACCUMULATOR_KEYS}

    def _next_id(self) -> int:
        return next(self.ids)

    def _post(self, txn_id: int, postings: tuple[Posting, ...]) -> None:
        """Append postings, move the working balances and refuse a personal account below zero."""
        for seq, posting in enumerate(postings):
            self.out.postings.append((txn_id, seq, posting.account, posting.debit, posting.credit))
            if posting.account.startswith("personal:"):
                psn_no = posting.account.split(":", 1)[1]
                balance = self.balances.get(psn_no, 0) + posting.credit - posting.debit
                if balance < 0:
                    raise SettlementError(
                        ErrorCode.INSUFFICIENT_BALANCE,
                        value=posting.account,
                        detail=f"本次借记 {posting.debit} 分后余额为 {balance} 分",
                        detail_en=f"a debit of {posting.debit} fen would leave {balance} fen",
                    )
                self._set(self.balances, psn_no, balance)

    def _move_counters(self, txn_id: int, deltas: tuple[AccumulatorDelta, ...]) -> None:
        for delta in deltas:
            if delta.key not in STORED_ACCUMULATOR_KEYS:
                raise SettlementError(
                    ErrorCode.INVALID_FIELD,
                    field="accumulator_deltas.key",
                    value=delta.key,
                    detail="不是可调整的累计项",
                    detail_en="is not an adjustable accumulator",
                )
            counters = dict(self.accumulators.get((delta.psn_no, delta.year), {}))
            value = counters.get(delta.key, 0) + delta.delta
            if value < 0:
                raise SettlementError(
                    ErrorCode.AMOUNT_OUT_OF_RANGE,
                    field=f"accumulators.{delta.key}",
                    value=value,
                    detail="累计项不能为负数",
                    detail_en="an accumulator cannot be negative",
                )
            counters[delta.key] = value
            self._set(self.accumulators, (delta.psn_no, delta.year), counters)
            self.out.deltas.append((txn_id, delta.psn_no, delta.year, delta.key, delta.delta))

    def finish(self) -> BatchPlan:
        """Fold the kept operations into account moves and final counter values."""
        out = self.out
        for _, _, account, debit, credit in out.postings:
            move = out.account_moves.setdefault(account, [0, 0])
            move[0] += debit
            move[1] += credit
        for _, psn_no, year, key, _ in out.deltas:
            out.accumulators[(psn_no, year, key)] = self.accumulators[(psn_no, year)][key]
        return out

    # -- operations ------------------------------------------------------------------

    def _settle(self, index: int, op: Operation) -> Any:
        request: SettlementRequest = op.request
        compute: SettleCompute = op.compute
        batch_key = (request.fixmedins_code, request.mdtrt_id, request.chrg_bchno)
        count, live = self.batches.get(batch_key, (0, None))
        if live is not None:
            if live.request_digest == op.digest:
                return SameAs(self._batch_index[batch_key]) if batch_key in self._batch_index else live
            raise SettlementError(ErrorCode.ALREADY_SETTLED, field="chrg_bchno", value=request.chrg_bchno, detail=live.setl_id)

        year = request.accumulator_year
        before = self._full_accumulators(request.psn_no, year, request.family_psn_no)
        plan = compute(dict(before))
        txn_id = self._next_id()
        record = build_settlement_record(request, plan, before, txn_id=txn_id, batch_attempt=count, digest=op.digest)

        self._post(txn_id, record.postings)
        self._move_counters(txn_id, accumulator_delta_rows(record))
        self._set(self.batches, batch_key, (count + 1, record))
        self._set(self._batch_index, batch_key, index)
        self._set(self.records, record.setl_id, (record, False))
        self.out.transactions.append((txn_id, "settle", request.fixmedins_code, request.msgid, None, op.digest, None))
        self.out.settlements.append((record, stored_record_bytes(record)))
        return record

    def _cancel(self, index: int, op: Operation) -> Any:
        request: CancelRequest = op.request
        compute: CancelCompute | None = op.compute
        found = self.records.get(request.setl_id)
        original = found[0] if found else None
        if (
            original is None
            or original.kind != "settle"
            or original.fixmedins_code != request.fixmedins_code
            or original.mdtrt_id != request.mdtrt_id
            or original.psn_no != request.psn_no
        ):
            raise SettlementError(ErrorCode.UNKNOWN_SETTLEMENT, field="setl_id", value=request.setl_id)
        if found[1]:
            raise SettlementError(ErrorCode.ALREADY_CANCELLED, field="setl_id", value=request.setl_id)

        now = self._full_accumulators(original.psn_no, original.year, original.family_psn_no)
        result = compute(original, dict(now)) if compute is not None else reverse_result(original, now)
        txn_id = self._next_id()
        record = build_cancel_record(request, original, result, now, txn_id=txn_id, digest=op.digest)

        self._post(txn_id, record.postings)
        self._move_counters(txn_id, accumulator_delta_rows(record))
        batch_key = (original.fixmedins_code, original.mdtrt_id, original.chrg_bchno)
        count, live = self.batches.get(batch_key, (original.batch_attempt + 1, None))
        if live is not None and live.setl_id == original.setl_id:
            self._set(self.batches, batch_key, (count, None))
        self._set(self.records, original.setl_id, (original, True))
        self.out.transactions.append((txn_id, "cancel", request.fixmedins_code, request.msgid, original.txn_id, op.digest, None))
        self.out.settlements.append((record, stored_record_bytes(record)))
        return record

    def _deposit(self, index: int, op: Operation) -> Any:
        request: DepositRequest = op.request
        if request.amount == 0:
            raise SettlementError(ErrorCode.INVALID_FIELD, field="amount", value=0, detail="存入金额不能为 0", detail_en="a deposit cannot be zero")
        parse_account(f"personal_funding:{request.insuplc_admdvs}:{request.insutype}", "insuplc_admdvs")
        txn_id = self._next_id()
        postings = deposit_postings(request)
        check_balanced(postings, request.msgid)
        self._post(txn_id, postings)
        memo = request.memo or f"{request.period} 个人账户划入"
        entry = JournalEntry(
            txn_id=txn_id, kind="deposit", origin=request.origin, msgid=request.msgid,
            request_digest=op.digest, postings=postings, accumulator_deltas=(), memo=memo,
        )
        self.out.transactions.append((txn_id, "deposit", request.origin, request.msgid, None, op.digest, _encoder.encode(entry)))
        return entry

    def _adjust(self, index: int, op: Operation) -> Any:
        request: AdjustmentRequest = op.request
        if not request.reason.strip():
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field="reason")
        for n, posting in enumerate(request.postings):
            parse_account(posting.account, f"postings[{n}].account")
        check_balanced(request.postings, request.msgid)
        txn_id = self._next_id()
        self._post(txn_id, request.postings)
        self._move_counters(txn_id, request.accumulator_deltas)
        entry = JournalEntry(
            txn_id=txn_id, kind="adjustment", origin=request.origin, msgid=request.msgid,
            request_digest=op.digest, postings=request.postings,
            accumulator_deltas=request.accumulator_deltas, memo=request.reason,
        )
        self.out.transactions.append((txn_id, "adjustment", request.origin, request.msgid, None, op.digest, _encoder.encode(entry)))
        return entry


_MISSING = object()
