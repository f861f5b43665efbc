"""Recompute every balance and accumulator from the journal and compare them with the stored ones.

The checks run on one read snapshot and use SQL that both PostgreSQL and SQLite accept:

* every transaction balances, and every line names an existing header and account;
* every account's stored debit and credit totals equal the sums of its lines, and no
  personal account is below zero;
* every cancel reverses exactly one settlement, with the original's lines swapped;
* every stored accumulator equals the sum of its journal changes;
* every settlement or cancel record agrees with the journal: its lines and its counter
  changes match, and its "before" values equal the running totals of the person's
  account and counters at that point of the journal. This relies on transaction ids
  following the order in which one person's transactions were serialized;
* the hash chain over the records is unbroken (``verify_chain.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


from adapters.ledger.verify_chain import CHAIN_SQL, HEAD_SQL, ChainCheck
from settlement.ledger_posting import STORED_ACCUMULATOR_KEYS, stored_deltas
from settlement.store import SettlementRecord, VerifyReport
from settlement.stored_record import decode_stored_record

__all__ = ["ReadSession", "verify_ledger"]


class ReadSession(Protocol):
    """Queries on one consistent snapshot; SQL uses ``?`` placeholders."""

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...

    def stream(self, sql: str) -> AsyncIterator[tuple[Any, ...]]: ...


_COUNTS = {
    "transactions": "SELECT count(*) FROM journal_transactions",
    "postings": "SELECT count(*) FROM journal_postings",
    "accounts": "SELECT count(*) FROM ledger_accounts",
    "accumulators": "SELECT count(*) FROM ledger_accumulators",
    "settlements": "SELECT count(*) FROM ledger_settlements WHERE kind = 'settle'",
    "cancels": "SELECT count(*) FROM ledger_settlements WHERE kind = 'cancel'",
}

# (SQL, message template in English and Chinese); every row is one difference.
_CHECKS = (
    (
        "SELECT txn_id, sum(debit), sum(credit) FROM journal_postings GROUP BY txn_id HAVING sum(debit) <> sum(credit) ORDER BY txn_id",
        "transaction {0} does not balance: debits {1} fen, credits {2} fen",
        "交易 {0} 借贷不平衡：借方 {1} 分，贷方 {2} 分",
    ),
    (
        "SELECT p.txn_id, p.seq FROM journal_postings p LEFT JOIN journal_transactions t ON t.txn_id = p.txn_id "
        "WHERE t.txn_id IS NULL ORDER BY p.txn_id, p.seq",
        "line {1} of transaction {0} has no transaction header",
        "交易 {0} 的第 {1} 条分录没有交易头",
    ),
    (
        "SELECT p.txn_id, p.seq, p.account_id FROM journal_postings p LEFT JOIN ledger_accounts a ON a.account_id = p.account_id "
        "WHERE a.account_id IS NULL ORDER BY p.txn_id, p.seq",
        "line {1} of transaction {0} names account id {2}, which does not exist",
        "交易 {0} 的第 {1} 条分录指向不存在的账户编号 {2}",
    ),
    (
        "SELECT a.account_key, a.debits_posted, a.credits_posted, coalesce(p.d, 0), coalesce(p.c, 0) "
        "FROM ledger_accounts a LEFT JOIN (SELECT account_id, sum(debit) AS d, sum(credit) AS c FROM journal_postings GROUP BY account_id) p "
        "ON p.account_id = a.account_id "
        "WHERE a.debits_posted <> coalesce(p.d, 0) OR a.credits_posted <> coalesce(p.c, 0) ORDER BY a.account_key",
        "account {0}: stored debits {1} credits {2}, journal debits {3} credits {4} (fen)",
        "账户 {0}：存储的借方 {1} 贷方 {2}，按分录重算借方 {3} 贷方 {4}（分）",
    ),
    (
        "SELECT a.account_key, p.c - p.d FROM ledger_accounts a "
        "JOIN (SELECT account_id, sum(debit) AS d, sum(credit) AS c FROM journal_postings GROUP BY account_id) p ON p.account_id = a.account_id "
        "WHERE a.kind = 'personal' AND p.c < p.d ORDER BY a.account_key",
        "personal account {0} is below zero in the journal: {1} fen",
        "个人账户 {0} 按分录计算为负数：{1} 分",
    ),
    (
        "SELECT c.txn_id, c.reverses_txn_id FROM journal_transactions c LEFT JOIN journal_transactions o ON o.txn_id = c.reverses_txn_id "
        "WHERE c.kind = 'cancel' AND (o.txn_id IS NULL OR o.kind <> 'settle') ORDER BY c.txn_id",
        "cancel {0} points at transaction {1}, which is not a settlement",
        "撤销交易 {0} 指向的交易 {1} 不是结算",
    ),
    (
        "SELECT reverses_txn_id, count(*) FROM journal_transactions WHERE kind = 'cancel' GROUP BY reverses_txn_id HAVING count(*) <> 1 "
        "ORDER BY reverses_txn_id",
        "settlement transaction {0} is cancelled {1} times",
        "结算交易 {0} 被撤销了 {1} 次",
    ),
    (
        "SELECT c.txn_id, c.reverses_txn_id FROM journal_transactions c WHERE c.kind = 'cancel' AND ("
        "EXISTS (SELECT account_id, debit, credit FROM journal_postings WHERE txn_id = c.reverses_txn_id "
        "EXCEPT SELECT account_id, credit, debit FROM journal_postings WHERE txn_id = c.txn_id) OR "
        "EXISTS (SELECT account_id, credit, debit FROM journal_postings WHERE txn_id = c.txn_id "
        "EXCEPT SELECT account_id, debit, credit FROM journal_postings WHERE txn_id = c.reverses_txn_id)) ORDER BY c.txn_id",
        "cancel {0} does not mirror the lines of transaction {1}",
        "撤销交易 {0} 的分录不是交易 {1} 分录的反向",
    ),
    (
        "SELECT t.txn_id, t.kind, s.kind FROM journal_transactions t LEFT JOIN ledger_settlements s ON s.txn_id = t.txn_id "
        "WHERE t.kind IN ('settle', 'cancel') AND (s.txn_id IS NULL OR s.kind <> t.kind) ORDER BY t.txn_id",
        "{1} transaction {0} has no matching settlement record (record kind {2})",
        "{1} 交易 {0} 没有对应的结算记录（记录类型 {2}）",
    ),
    (
        "SELECT s.txn_id, s.original_setl_id FROM ledger_settlements s JOIN journal_transactions c ON c.txn_id = s.txn_id "
        "LEFT JOIN ledger_settlements o ON o.txn_id = c.reverses_txn_id "
        "WHERE s.kind = 'cancel' AND (o.setl_id IS NULL OR o.setl_id <> s.original_setl_id) ORDER BY s.txn_id",
        "cancel record {0} names original {1}, but its transaction reverses another one",
        "撤销记录 {0} 指明原结算 {1}，但其交易冲销的是另一笔",
    ),
    (
        "SELECT a.psn_no, a.year, a.acc_key, a.value, coalesce(d.total, 0) FROM ledger_accumulators a "
        "LEFT JOIN (SELECT psn_no, year, acc_key, sum(delta) AS total FROM journal_accumulator_deltas GROUP BY psn_no, year, acc_key) d "
        "ON d.psn_no = a.psn_no AND d.year = a.year AND d.acc_key = a.acc_key "
        "WHERE a.value <> coalesce(d.total, 0) "
        "UNION ALL "
        "SELECT d.psn_no, d.year, d.acc_key, 0, d.total FROM "
        "(SELECT psn_no, year, acc_key, sum(delta) AS total FROM journal_accumulator_deltas GROUP BY psn_no, year, acc_key) d "
        "LEFT JOIN ledger_accumulators a ON a.psn_no = d.psn_no AND a.year = d.year AND a.acc_key = d.acc_key "
        "WHERE a.psn_no IS NULL AND d.total <> 0 ORDER BY 1, 2, 3",
        "accumulator {2} of person {0} in {1}: stored {3}, journal {4}",
        "人员 {0} {1} 年累计项 {2}：存储值 {3}，按日志重算 {4}",
    ),
)

# One ordered pass over the journal: lines (part 0), counter changes (1) and records (2).
_REPLAY_SQL = (
    "SELECT p.txn_id, 0, p.seq, a.account_key, p.debit, p.credit, CAST(NULL AS BYTEA) FROM journal_postings p "
    "JOIN ledger_accounts a ON a.account_id = p.account_id "
    "UNION ALL SELECT txn_id, 1, 0, psn_no || ' ' || CAST(year AS TEXT) || ' ' || acc_key, delta, 0, CAST(NULL AS BYTEA) "
    "FROM journal_accumulator_deltas "
    "UNION ALL SELECT txn_id, 2, 0, kind, 0, 0, record FROM ledger_settlements "
    "ORDER BY 1, 2, 3, 4"
)


class _Replay:
    """Replays the journal in transaction order and checks each record against it."""

    def __init__(self, report: _Differences) -> None:
        self.report = report
        self.balances: dict[str, int] = {}
        self.counters: dict[tuple[str, int, str], int] = {}
        self.txn_id: int | None = None
        self.lines: list[tuple[str, int, int]] = []
        self.deltas: dict[tuple[str, int, str], int] = {}
        self.record: bytes | None = None

    def feed(self, row: tuple[Any, ...]) -> None:
        txn_id, part, _, text, first, second, body = row
        if txn_id != self.txn_id:
            self.finish()
            self.txn_id = txn_id
        if part == 0:
            self.lines.append((text, first, second))
        elif part == 1:
            psn_no, year, key = text.split(" ")
            self.deltas[(psn_no, int(year), key)] = first
        else:
            self.record = bytes(body)

    def finish(self) -> None:
        """Check the collected transaction against the running totals, then apply it."""
        if self.txn_id is not None and self.record is not None:
            self._check_record(decode_stored_record(self.record))
        for account, debit, credit in self.lines:
            if account.startswith("personal:"):
                psn_no = account.split(":", 1)[1]
                self.balances[psn_no] = self.balances.get(psn_no, 0) + credit - debit
        for key, delta in self.deltas.items():
            self.counters[key] = self.counters.get(key, 0) + delta
        self.lines, self.deltas, self.record = [], {}, None

    def _check_record(self, record: SettlementRecord) -> None:
        txn = self.txn_id
        journal_lines = sorted(self.lines)
        record_lines = sorted((p.account, p.debit, p.credit) for p in record.postings)
        if journal_lines != record_lines:
            self.report.add(f"record {record.setl_id} (transaction {txn}): its lines differ from the journal", f"记录 {record.setl_id}（交易 {txn}）的分录与日志不一致")

        changes = stored_deltas(record.accumulators_before, record.accumulators_after)
        journal_changes = {key: delta for (psn_no, year, key), delta in self.deltas.items() if (psn_no, year) == (record.psn_no, record.year)}
        if changes != journal_changes or len(journal_changes) != len(self.deltas):
            self.report.add(
                f"record {record.setl_id} (transaction {txn}): counter changes {changes} differ from the journal {journal_changes}",
                f"记录 {record.setl_id}（交易 {txn}）的累计变动 {changes} 与日志 {journal_changes} 不一致",
            )

        for key in STORED_ACCUMULATOR_KEYS:
            running = self.counters.get((record.psn_no, record.year, key), 0)
            if record.accumulators_before.get(key, 0) != running:
                self.report.add(
                    f"record {record.setl_id} (transaction {txn}): {key} before is {record.accumulators_before.get(key, 0)}, the journal has {running}",
                    f"记录 {record.setl_id}（交易 {txn}）：{key} 之前为 {record.accumulators_before.get(key, 0)}，日志累计为 {running}",
                )
        balances = (("acct_balc", record.psn_no), ("family_acct_balc", record.family_psn_no))
        for key, psn_no in balances:
            running = self.balances.get(psn_no, 0) if psn_no else 0
            if record.accumulators_before[key] != running:
                self.report.add(
                    f"record {record.setl_id} (transaction {txn}): {key} before is {record.accumulators_before[key]}, the account had {running}",
                    f"记录 {record.setl_id}（交易 {txn}）：{key} 之前为 {record.accumulators_before[key]}，账户余额为 {running}",
                )


class _Differences:
    def __init__(self, limit: int, lang: str) -> None:
        self.limit = limit
        self.lang = lang
        self.items: list[str] = []
        self.count = 0

    def add(self, english: str, chinese: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(english if self.lang == "en" else chinese)


async def verify_ledger(session: ReadSession, *, max_differences: int = 20, lang: str = "zh") -> VerifyReport:
    """Run every check on ``session`` and return the counts and the first differences."""
    differences = _Differences(max_differences, lang)
    counts = {}
    for name, sql in _COUNTS.items():
        rows = await session.fetch(sql)
        counts[name] = int(rows[0][0])

    for sql, english, chinese in _CHECKS:
        for row in await session.fetch(sql):
            differences.add(english.format(*row), chinese.format(*row))

    replay = _Replay(differences)
    async for row in session.stream(_REPLAY_SQL):
        replay.feed(row)
    replay.finish()

    chain = ChainCheck(differences, lang)
    async for row in session.stream(CHAIN_SQL):
        chain.feed(row)
    heads = await session.fetch(HEAD_SQL)
    chain.finish(heads[0] if heads else None)
    counts["chain_links"] = chain.links
    return VerifyReport(
        counts=counts, differences=tuple(differences.items), difference_count=differences.count, chain_break=chain.first_break
    )
