"""The parts of a ledger store that do not depend on the database driver.

Writes go through the group-commit queue (``queue.py``) and the batch planner
(``batch.py``); a subclass supplies ``_run_batch``, ``_fetch`` and ``_snapshot``. Read
queries are written once with ``?`` placeholders; the PostgreSQL store numbers them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from adapters.ledger.batch import Operation, decode_record
from adapters.ledger.queue import GroupCommitQueue
from adapters.ledger.verify import ReadSession, verify_ledger
from settlement.ledger_posting import ACCOUNT_KINDS, STORED_ACCUMULATOR_KEYS, parse_account
from settlement.store import (
    AdjustmentRequest,
    CancelCompute,
    CancelRequest,
    DepositRequest,
    JournalEntry,
    ReconciliationTotals,
    SettleCompute,
    SettlementRecord,
    SettlementRequest,
    SettlementSummary,
    VerifyReport,
)
from settlement.types import ACCUMULATOR_KEYS

__all__ = ["LedgerStoreBase"]

_LIVE = "NOT EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id)"

_SUMMARY_COLUMNS = (
    "setl_id, kind, original_setl_id, fixmedins_code, msgid, psn_no, mdtrt_id, insutype, clr_type, clr_optins, "
    "setl_time, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay"
)


def _day_end(date: str) -> str:
    # setl_time is 'yyyy-MM-dd HH:mm:ss', so text order is time order and this is the day's last second.
    return f"{date} 23:59:59"


class LedgerStoreBase:
    """Public store API on top of the queue; see ``settlement.store.LedgerStore`` for the contract."""

    dialect = ""

    def __init__(self, *, batch_max: int, committers: int) -> None:
        self._queue = GroupCommitQueue(self._run_batch, batch_max=batch_max, committers=committers)

    # -- driver hooks ---------------------------------------------------------------------

    async def _run_batch(self, operations: list[Operation]) -> list[Any]:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _snapshot(self) -> contextlib.AbstractAsyncContextManager[ReadSession]:
        raise NotImplementedError

    def _decode_feedetl_sns(self, value: Any) -> list[str]:
        raise NotImplementedError

    # -- writes ---------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Batches and operations committed through this store's queue since it was opened.

        Settlements written inside a caller's transaction (``PostgresStore.settle_in_transaction``)
        are not counted, because the caller commits them.
        """
        return {"batches": self._queue.batches_committed, "operations": self._queue.operations_committed}

    async def settle(self, request: SettlementRequest, compute: SettleCompute) -> SettlementRecord:
        return await self._queue.submit(Operation("settle", request, compute))

    async def cancel(self, request: CancelRequest, compute: CancelCompute | None = None) -> SettlementRecord:
        return await self._queue.submit(Operation("cancel", request, compute))

    async def deposit(self, request: DepositRequest) -> JournalEntry:
        return await self._queue.submit(Operation("deposit", request))

    async def adjust(self, request: AdjustmentRequest) -> JournalEntry:
        return await self._queue.submit(Operation("adjust", request))

    async def close(self) -> None:
        await self._queue.close()

    # -- reads ----------------------------------------------------------------------------

    async def _one_record(self, sql: str, *args: Any) -> SettlementRecord | None:
        rows = await self._fetch(sql, *args)
        return decode_record(bytes(rows[0][0])) if rows else None

    async def get_settlement(self, setl_id: str) -> SettlementRecord | None:
        return await self._one_record("SELECT record FROM ledger_settlements WHERE setl_id = ?", setl_id)

    async def get_by_msgid(self, fixmedins_code: str, msgid: str) -> SettlementRecord | None:
        return await self._one_record(
            "SELECT s.record FROM journal_transactions t JOIN ledger_settlements s ON s.txn_id = t.txn_id "
            "WHERE t.origin = ? AND t.msgid = ?",
            fixmedins_code,
            msgid,
        )

    async def live_settlement(self, fixmedins_code: str, mdtrt_id: str, chrg_bchno: str) -> SettlementRecord | None:
        return await self._one_record(
            f"SELECT record FROM ledger_settlements s WHERE s.fixmedins_code = ? AND s.mdtrt_id = ? AND s.chrg_bchno = ? "
            f"AND s.kind = 'settle' AND {_LIVE}",
            fixmedins_code,
            mdtrt_id,
            chrg_bchno,
        )

    async def covered_fee_details(self, fixmedins_code: str, mdtrt_id: str) -> dict[str, str]:
        rows = await self._fetch(
            f"SELECT s.setl_id, s.feedetl_sns FROM ledger_settlements s WHERE s.fixmedins_code = ? AND s.mdtrt_id = ? "
            f"AND s.kind = 'settle' AND {_LIVE}",
            fixmedins_code,
            mdtrt_id,
        )
        return {sn: setl_id for setl_id, value in rows for sn in self._decode_feedetl_sns(value)}

    async def accumulators(self, psn_no: str, year: int) -> dict[str, int]:
        rows = await self._fetch("SELECT acc_key, value FROM ledger_accumulators WHERE psn_no = ? AND year = ?", psn_no, year)
        stored = dict(rows)
        values = {key: int(stored.get(key, 0)) for key in STORED_ACCUMULATOR_KEYS}
        values["acct_balc"] = await self.account_balance(f"personal:{psn_no}")
        values["family_acct_balc"] = 0
        return {key: values[key] for key in ACCUMULATOR_KEYS}

    async def account_balance(self, account: str) -> int:
        spec = parse_account(account)
        rows = await self._fetch("SELECT debits_posted, credits_posted FROM ledger_accounts WHERE account_key = ?", account)
        if not rows:
            return 0
        debits, credits = rows[0]
        return int(debits - credits) if ACCOUNT_KINDS[spec.kind][0] == "debit" else int(credits - debits)

    async def settlements_in_period(self, fixmedins_code: str, begin: str, end: str) -> list[SettlementSummary]:
        rows = await self._fetch(
            f"SELECT {_SUMMARY_COLUMNS} FROM ledger_settlements WHERE fixmedins_code = ? AND setl_time >= ? AND setl_time <= ? "
            "ORDER BY setl_time, txn_id",
            fixmedins_code,
            begin,
            _day_end(end),
        )
        names = [name.strip() for name in _SUMMARY_COLUMNS.split(",")]
        return [SettlementSummary(**dict(zip(names, row, strict=True))) for row in rows]

    async def reconciliation_totals(
        self, fixmedins_code: str, begin: str, end: str, insutype: str, clr_type: str, *, include_cancels: bool = True
    ) -> ReconciliationTotals:
        """Sum one institution's records of a period; without cancels, only settlement records count."""
        kinds = "" if include_cancels else "AND kind = 'settle' "
        rows = await self._fetch(
            "SELECT count(*), coalesce(sum(medfee_sumamt), 0), coalesce(sum(fund_pay_sumamt), 0), coalesce(sum(acct_pay), 0), "
            "coalesce(sum(psn_cash_pay), 0) FROM ledger_settlements "
            f"WHERE fixmedins_code = ? AND insutype = ? AND clr_type = ? AND setl_time >= ? AND setl_time <= ? {kinds}",
            fixmedins_code,
            insutype,
            clr_type,
            begin,
            _day_end(end),
        )
        count, medfee, fund, acct, cash = (int(value) for value in rows[0])
        return ReconciliationTotals(count=count, medfee_sumamt=medfee, fund_pay_sumamt=fund, acct_pay=acct, psn_cash_pay=cash)

    async def verify(self, *, max_differences: int = 20, lang: str = "zh") -> VerifyReport:
        async with self._snapshot() as session:
            return await verify_ledger(session, max_differences=max_differences, lang=lang)

    async def __aenter__(self) -> LedgerStoreBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
