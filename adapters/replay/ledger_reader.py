"""Read settlement records, their journal postings and hash links from a ledger, for replay and export.

Replay audits what the ledger contains. So the record's summary columns (the amounts
reconciliation sums) and the journal's posting rows are read beside the record body and
take precedence over it. An amount changed in a column or a posting deleted from the
journal then shows as a difference from the replay. Cancels whose original falls
outside the selection bring the original along as context.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from adapters.ledger import existing_ledger
from adapters.ledger.batch import decode_record
from settlement.errors import SettlementError
from settlement.policy.loader import RuleSet
from settlement.replay.record import OUTPUT_FIELDS, PostingRow, ReplayRecord, Resolution, body_raw, from_settlement_record
from settlement.replay.resolve import infer_resolution
from settlement.store import SettlementRecord
from settlement.types import SchemeParams

__all__ = ["CHUNK", "LedgerFilter", "iter_ledger_records", "read_ledger_records", "stream_ledger_records"]

# Records read and built at a time: large enough to keep round trips few, small enough
# that a chunk of 20-line records with their bodies stays within tens of megabytes.
CHUNK = 4096

# Summary columns of ledger_settlements that override the record body.
_COLUMN_FIELDS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
_COLUMN_INDEX = tuple(OUTPUT_FIELDS.index(field) for field in _COLUMN_FIELDS)


class LedgerFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Selection of settlements to read: ``yyyy-MM-dd`` dates (inclusive), an institution and a pooling region."""

    date_from: str | None = None
    date_to: str | None = None
    institution: str | None = None
    region: str | None = None

    @property
    def whole(self) -> bool:
        """Tell whether the filter selects the whole ledger (so the hash chain must start at its beginning)."""
        return not (self.date_from or self.date_to or self.institution or self.region)


def _where(selection: LedgerFilter, placeholder, alias: str) -> tuple[str, list[Any]]:
    """Return the selection as one condition on the table ``alias`` ("" for none) and its arguments."""
    clauses, args = [], []
    if selection.date_from:
        args.append(selection.date_from)
        clauses.append(f"{alias}.setl_time >= {placeholder(len(args))}")
    if selection.date_to:
        args.append(selection.date_to + " 99")
        clauses.append(f"{alias}.setl_time < {placeholder(len(args))}")
    if selection.institution:
        args.append(selection.institution)
        clauses.append(f"{alias}.fixmedins_code = {placeholder(len(args))}")
    if selection.region:
        args.append(selection.region)
        clauses.append(f"{alias}.insuplc_admdvs = {placeholder(len(args))}")
    return " AND ".join(clauses), args


def _order_query(selection: LedgerFilter, placeholder, numbered: bool) -> tuple[str, list[Any]]:
    """Return the query of the selected records' ids in export order, with a context flag, and its arguments.

    Only ids are sorted here, so the database never sorts the record bodies. A cancel
    inside the selection brings its original along as context (flag 1) when the original
    is outside it, and the original takes its place among its person's records.
    """
    selected, args = _where(selection, placeholder, "s")
    if not selected:
        return "SELECT s.txn_id, 0 FROM ledger_settlements s ORDER BY s.psn_no, s.txn_id", []
    cancels, _ = _where(selection, placeholder, "c")
    # With $n placeholders the three copies of the condition share one set of arguments.
    copies = 1 if numbered else 3
    return (
        f"SELECT s.txn_id, CASE WHEN {selected} THEN 0 ELSE 1 END FROM ledger_settlements s"
        f" WHERE ({selected}) OR s.setl_id IN (SELECT c.original_setl_id FROM ledger_settlements c"
        f" WHERE c.kind = 'cancel' AND {cancels}) ORDER BY s.psn_no, s.txn_id"
    ), args * copies


def _records_query(count: int, placeholder, has_chain: bool) -> str:
    chain = ", s.chain_seq, s.prev_hash, s.record_hash" if has_chain else ", 0, '', ''"
    return (
        "SELECT s.txn_id, s.medfee_sumamt, s.fund_pay_sumamt, s.acct_pay, s.psn_cash_pay, s.record" + chain +
        f" FROM ledger_settlements s WHERE s.txn_id {_among(count, placeholder)}"
    )


def _postings_query(count: int, placeholder) -> str:
    return (
        "SELECT p.txn_id, a.account_key, p.debit, p.credit FROM journal_postings p"
        " JOIN ledger_accounts a ON a.account_id = p.account_id"
        f" WHERE p.txn_id {_among(count, placeholder)} ORDER BY p.txn_id, p.seq"
    )


def _among(count: int, placeholder) -> str:
    """Return a test that a column is one of ``count`` ids: a list on SQLite, one array argument on PostgreSQL."""
    if placeholder(1) == "$1":
        return "= ANY($1::bigint[])"
    return "IN (" + ", ".join("?" for _ in range(count)) + ")"


class _Builder:
    """Turn ledger rows into replay records, inferring each record's resolution once per scheme."""

    def __init__(self, rules: RuleSet, with_bodies: bool) -> None:
        self.rules = rules
        self.with_bodies = with_bodies
        self._found: dict[tuple[str, str, SchemeParams], Resolution | None] = {}

    def resolution(self, record: SettlementRecord) -> Resolution | None:
        """Return the selection that gives the record's stored parameters, or None to keep them."""
        claim = record.claim
        if claim is None:
            return None
        policy_id = record.rule_version.split("@", 1)[0] or claim.params.policy_id
        try:
            policy = self.rules.policy(policy_id, datetime.date.fromisoformat(record.setl_time[:10]))
        except SettlementError:
            return None
        key = (policy.policy_id, policy.effective_from.isoformat(), claim.params)
        if key not in self._found:
            self._found[key] = infer_resolution(policy, claim.params)
        return self._found[key]

    def build(self, row: Sequence[Any], postings: dict[int, list[PostingRow]], *, context_only: bool = False) -> ReplayRecord:
        txn_id, *columns, body, chain_seq, prev_hash, record_hash = row
        record = decode_record(bytes(body))
        replay = from_settlement_record(record, self.resolution(record))
        outputs = list(replay.outputs)
        for index, value in zip(_COLUMN_INDEX, columns, strict=True):
            outputs[index] = int(value)
        return msgspec.structs.replace(
            replay, seq=int(txn_id), outputs=tuple(outputs), postings=tuple(postings.get(int(txn_id), ())),
            context_only=context_only, chain_seq=int(chain_seq or 0), prev_hash=prev_hash or "",
            record_hash=record_hash or "", ledger_body=body_raw(bytes(body)) if self.with_bodies and chain_seq else msgspec.Raw(),
        )


def _group_postings(rows: Sequence[Sequence[Any]]) -> dict[int, list[PostingRow]]:
    grouped: dict[int, list[PostingRow]] = {}
    for txn_id, account, debit, credit in rows:
        grouped.setdefault(int(txn_id), []).append(PostingRow(account, int(debit), int(credit)))
    return grouped


def _chunks(order: Sequence[Sequence[Any]]) -> Iterator[list[tuple[int, bool]]]:
    for first in range(0, len(order), CHUNK):
        yield [(int(txn_id), bool(context)) for txn_id, context in order[first:first + CHUNK]]


def _chunk_records(builder: _Builder, chunk: list[tuple[int, bool]], rows: Iterable[Sequence[Any]],
                   postings: Sequence[Sequence[Any]]) -> list[ReplayRecord]:
    by_id = {int(row[0]): row for row in rows}
    grouped = _group_postings(postings)
    return [builder.build(tuple(by_id[txn_id]), grouped, context_only=context) for txn_id, context in chunk]


def _sqlite_chunks(path: str, selection: LedgerFilter, rules: RuleSet, with_bodies: bool) -> Iterator[list[ReplayRecord]]:
    # Each chunk is read on a worker thread, one at a time, so the connection moves between threads.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        # One read transaction, so that every chunk reads the state the order query read.
        conn.execute("BEGIN")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger_settlements)")}
        has_chain = "chain_seq" in columns
        order_sql, args = _order_query(selection, lambda n: "?", numbered=False)
        order = conn.execute(order_sql, args).fetchall()
        builder = _Builder(rules, with_bodies)
        for chunk in _chunks(order):
            ids = [txn_id for txn_id, _ in chunk]
            rows = conn.execute(_records_query(len(ids), lambda n: "?", has_chain), ids).fetchall()
            postings = conn.execute(_postings_query(len(ids), lambda n: "?"), ids).fetchall()
            yield _chunk_records(builder, chunk, rows, postings)
    finally:
        conn.close()


async def _postgres_chunks(dsn: str, selection: LedgerFilter, rules: RuleSet, with_bodies: bool) -> AsyncIterator[list[ReplayRecord]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        # One repeatable-read snapshot, so that every chunk reads the state the order query read.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            has_chain = bool(await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ledger_settlements' "
                "AND column_name = 'chain_seq' AND table_schema = current_schema()"
            ))
            order_sql, args = _order_query(selection, lambda n: f"${n}", numbered=True)
            order = await conn.fetch(order_sql, *args)
            builder = _Builder(rules, with_bodies)
            for chunk in _chunks(order):
                ids = [txn_id for txn_id, _ in chunk]
                rows = await conn.fetch(_records_query(len(ids), lambda n: f"${n}", has_chain), ids)
                postings = await conn.fetch(_postings_query(len(ids), lambda n: f"${n}"), ids)
                yield _chunk_records(builder, chunk, rows, postings)
    finally:
        await conn.close()


async def iter_ledger_records(dsn: str, selection: LedgerFilter, rules: RuleSet, *,
                              with_bodies: bool = True) -> AsyncIterator[list[ReplayRecord]]:
    """Yield the selected records in chunks: each person's together in ledger order, context originals in place.

    Only the ids of the selection are held at once, so a ledger of any size streams
    through. ``with_bodies`` keeps each record's stored bytes so that its hash can be
    checked.
    """
    dialect, target = existing_ledger(dsn)
    if dialect == "pg":
        async for chunk in _postgres_chunks(target, selection, rules, with_bodies):
            yield chunk
        return
    chunks = _sqlite_chunks(target, selection, rules, with_bodies)
    try:
        while chunk := await asyncio.to_thread(next, chunks, None):
            yield chunk
    finally:
        chunks.close()


async def stream_ledger_records(dsn: str, selection: LedgerFilter, rules: RuleSet, write: Callable[[list[ReplayRecord]], None], *,
                                with_bodies: bool = True) -> int:
    """Pass the selected records to ``write`` a chunk at a time; return how many kept their stored scheme parameters."""
    unresolved = 0
    async for chunk in iter_ledger_records(dsn, selection, rules, with_bodies=with_bodies):
        write(chunk)
        unresolved += sum(1 for record in chunk if record.resolution is None)
    return unresolved


async def read_ledger_records(dsn: str, selection: LedgerFilter, rules: RuleSet, *, with_bodies: bool = True) -> list[ReplayRecord]:
    """Return the selected records, each person's together in ledger order, context originals in place."""
    return [record async for chunk in iter_ledger_records(dsn, selection, rules, with_bodies=with_bodies) for record in chunk]
