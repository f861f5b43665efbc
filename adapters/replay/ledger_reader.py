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
from collections.abc import Sequence
from typing import Any

import msgspec

from adapters.ledger import parse_dsn
from adapters.ledger.batch import decode_record
from settlement.errors import SettlementError
from settlement.policy.loader import RuleSet
from settlement.replay.record import OUTPUT_FIELDS, PostingRow, ReplayRecord, Resolution, body_raw, from_settlement_record
from settlement.replay.resolve import infer_resolution
from settlement.store import SettlementRecord
from settlement.types import SchemeParams

__all__ = ["LedgerFilter", "read_ledger_records"]

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


def _where(selection: LedgerFilter, placeholder) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if selection.date_from:
        args.append(selection.date_from)
        clauses.append(f"s.setl_time >= {placeholder(len(args))}")
    if selection.date_to:
        args.append(selection.date_to + " 99")
        clauses.append(f"s.setl_time < {placeholder(len(args))}")
    if selection.institution:
        args.append(selection.institution)
        clauses.append(f"s.fixmedins_code = {placeholder(len(args))}")
    if selection.region:
        args.append(selection.region)
        clauses.append(f"s.insuplc_admdvs = {placeholder(len(args))}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _queries(selection: LedgerFilter, placeholder, has_chain: bool) -> tuple[str, str, list[Any]]:
    where, args = _where(selection, placeholder)
    chain = ", s.chain_seq, s.prev_hash, s.record_hash" if has_chain else ", 0, '', ''"
    records = (
        "SELECT s.txn_id, s.medfee_sumamt, s.fund_pay_sumamt, s.acct_pay, s.psn_cash_pay, s.record" + chain +
        f" FROM ledger_settlements s{where} ORDER BY s.psn_no, s.txn_id"
    )
    postings = (
        "SELECT p.txn_id, a.account_key, p.debit, p.credit FROM journal_postings p"
        " JOIN ledger_accounts a ON a.account_id = p.account_id"
        f" JOIN ledger_settlements s ON s.txn_id = p.txn_id{where} ORDER BY p.txn_id, p.seq"
    )
    return records, postings, args


def _originals_query(count: int, placeholder, has_chain: bool) -> str:
    chain = ", s.chain_seq, s.prev_hash, s.record_hash" if has_chain else ", 0, '', ''"
    marks = ", ".join(placeholder(n + 1) for n in range(count))
    return (
        "SELECT s.txn_id, s.medfee_sumamt, s.fund_pay_sumamt, s.acct_pay, s.psn_cash_pay, s.record" + chain +
        f" FROM ledger_settlements s WHERE s.setl_id IN ({marks})"
    )


def _original_postings_query(count: int, placeholder) -> str:
    marks = ", ".join(placeholder(n + 1) for n in range(count))
    return (
        "SELECT p.txn_id, a.account_key, p.debit, p.credit FROM journal_postings p"
        " JOIN ledger_accounts a ON a.account_id = p.account_id"
        f" JOIN ledger_settlements s ON s.txn_id = p.txn_id WHERE s.setl_id IN ({marks}) ORDER BY p.txn_id, p.seq"
    )


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


def _missing_originals(records: Sequence[ReplayRecord]) -> list[str]:
    present = {record.setl_id for record in records}
    return sorted({r.original_setl_id for r in records if r.kind == "cancel" and r.original_setl_id and r.original_setl_id not in present})


def _read_sqlite(path: str, selection: LedgerFilter, rules: RuleSet, with_bodies: bool) -> list[ReplayRecord]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger_settlements)")}
        has_chain = "chain_seq" in columns
        records_sql, postings_sql, args = _queries(selection, lambda n: "?", has_chain)
        postings = _group_postings(conn.execute(postings_sql, args).fetchall())
        builder = _Builder(rules, with_bodies)
        records = [builder.build(row, postings) for row in conn.execute(records_sql, args)]
        missing = _missing_originals(records)
        if missing:
            extra_postings = _group_postings(conn.execute(_original_postings_query(len(missing), lambda n: "?"), missing).fetchall())
            rows = conn.execute(_originals_query(len(missing), lambda n: "?", has_chain), missing).fetchall()
            records += [builder.build(row, extra_postings, context_only=True) for row in rows]
        return records
    finally:
        conn.close()


async def _read_postgres(dsn: str, selection: LedgerFilter, rules: RuleSet, with_bodies: bool) -> list[ReplayRecord]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        has_chain = bool(await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ledger_settlements' "
            "AND column_name = 'chain_seq' AND table_schema = current_schema()"
        ))
        records_sql, postings_sql, args = _queries(selection, lambda n: f"${n}", has_chain)
        postings = _group_postings(await conn.fetch(postings_sql, *args))
        builder = _Builder(rules, with_bodies)
        records = [builder.build(tuple(row), postings) for row in await conn.fetch(records_sql, *args)]
        missing = _missing_originals(records)
        if missing:
            extra_postings = _group_postings(await conn.fetch(_original_postings_query(len(missing), lambda n: f"${n}"), *missing))
            rows = await conn.fetch(_originals_query(len(missing), lambda n: f"${n}", has_chain), *missing)
            records += [builder.build(tuple(row), extra_postings, context_only=True) for row in rows]
        return records
    finally:
        await conn.close()


async def read_ledger_records(dsn: str, selection: LedgerFilter, rules: RuleSet, *, with_bodies: bool = True) -> list[ReplayRecord]:
    """Return the selected records, each person's together in ledger order, plus context originals.

    ``with_bodies`` keeps each record's stored bytes so that its hash can be checked.
    """
    dialect, target = parse_dsn(dsn)
    if dialect == "pg":
        return await _read_postgres(target, selection, rules, with_bodies)
    return await asyncio.to_thread(_read_sqlite, target, selection, rules, with_bodies)
