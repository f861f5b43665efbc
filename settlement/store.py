"""The ledger store interface of the domain: request and record types and an async protocol.

A store records every settlement, cancel, personal-account deposit and adjustment as a
balanced journal transaction, keeps each person's year-to-date accumulators, and makes
retries idempotent. The adapters in ``adapters.ledger`` implement it on PostgreSQL
(asyncpg) and SQLite. This module imports no driver.

Money is integer fen. A settlement is written in four steps under the person's lock:
read the committed accumulators, call the caller's ``compute`` with them, check the
plan, then write the record, its postings and the new accumulators in one database
transaction. The compute callback must be pure and fast, because the person's other
settlements wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import msgspec

from settlement.types import ClaimInput, SettlementOutputs, SettlementResult

__all__ = [
    "AccumulatorDelta",
    "AdjustmentRequest",
    "CancelCompute",
    "CancelRequest",
    "DepositRequest",
    "JournalEntry",
    "LedgerStore",
    "Posting",
    "ReconciliationTotals",
    "SetlDetailRow",
    "SettleCompute",
    "SettlementPlan",
    "SettlementRecord",
    "SettlementRequest",
    "SettlementSummary",
    "VerifyReport",
]


class SettlementRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One settlement as received (2207, 2304 or 2102), enough to lock, key and replay it.

    ``insuplc_admdvs`` is the pooling region whose funds pay. ``setl_time`` is
    ``yyyy-MM-dd HH:mm:ss``; its year selects the accumulators. ``feedetl_sns`` lists the
    fee lines the settlement covers. ``family_psn_no`` names the relative whose account
    pays mutual aid (家庭共济), if one is bound. ``input`` is the request body as the server
    decoded it, kept for replay. ``year`` names the accumulator year when the region's
    ``year_rule`` picks another year than that of ``setl_time`` (an inpatient stay admitted
    last year, under ``admission_year``); ``None`` means the year of ``setl_time``.

    Two requests have the same content when every field except ``msgid`` and
    ``setl_time`` is equal, so a retry under a new msgid or stamped at a later time is still
    recognised as the same settlement.
    """

    fixmedins_code: str
    msgid: str
    mdtrt_id: str
    chrg_bchno: str
    psn_no: str
    insuplc_admdvs: str
    insutype: str
    med_type: str
    clr_type: str
    setl_time: str
    acct_used: bool
    feedetl_sns: tuple[str, ...] = ()
    family_psn_no: str | None = None
    clr_optins: str = ""
    input: dict[str, Any] = {}
    year: int | None = None

    @property
    def accumulator_year(self) -> int:
        """Return the year whose accumulators this settlement reads and moves."""
        return self.year if self.year is not None else int(self.setl_time[:4])


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A whole-settlement cancel (2208, 2305 or 2103) of ``setl_id``."""

    fixmedins_code: str
    msgid: str
    setl_id: str
    mdtrt_id: str
    psn_no: str
    setl_time: str


class SettlementPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What ``compute`` returns: the kernel's result and what is needed to replay it.

    ``claim`` is the exact kernel input, stored so that the settlement can be re-run.
    ``setlinfo_extra`` contains national output fields the ledger does not compute (person
    name, certificate, clearing way...), stored as given.
    """

    result: SettlementResult
    rule_version: str
    catalog_version: str = ""
    claim: ClaimInput | None = None
    setlinfo_extra: dict[str, str] = {}


class Posting(msgspec.Struct, frozen=True):
    """One journal line: an account key and a debit or a credit in fen (exactly one is non-zero)."""

    account: str
    debit: int = 0
    credit: int = 0


class AccumulatorDelta(msgspec.Struct, frozen=True):
    """A change of one year-to-date counter of one person."""

    psn_no: str
    year: int
    key: str
    delta: int


class SetlDetailRow(msgspec.Struct, frozen=True):
    """One ``setldetail`` row with its national ``fund_pay_type`` chosen; amounts in fen."""

    fund_pay_type: str
    fund_pay_type_name: str
    layer: str
    inscp_scp_amt: int
    crt_payb_lmt_amt: int | None
    fund_payamt: int


class SettlementRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored settlement or cancel: identity, national outputs, versions and accumulators.

    ``kind`` is ``settle`` or ``cancel``. A cancel carries ``original_setl_id`` and the
    original's ``chrg_bchno`` and ``feedetl_sns``. ``batch_attempt`` counts the earlier
    settlements of the same charge batch, all cancelled, so that a batch can be settled
    again after a cancel. ``accumulators_before`` and ``accumulators_after`` list every key
    of ``ACCUMULATOR_KEYS``; ``acct_balc`` and ``family_acct_balc`` are personal-account
    balances from the journal.
    """

    txn_id: int
    setl_id: str
    kind: Literal["settle", "cancel"]
    fixmedins_code: str
    msgid: str
    mdtrt_id: str
    chrg_bchno: str
    batch_attempt: int
    psn_no: str
    family_psn_no: str | None
    insuplc_admdvs: str
    insutype: str
    med_type: str
    clr_type: str
    clr_optins: str
    setl_time: str
    year: int
    feedetl_sns: tuple[str, ...]
    original_setl_id: str | None
    request_digest: str
    rule_version: str
    catalog_version: str
    setldetail: tuple[SetlDetailRow, ...]
    setlinfo_extra: dict[str, str]
    result: SettlementResult
    claim: ClaimInput | None
    accumulators_before: dict[str, int]
    accumulators_after: dict[str, int]
    postings: tuple[Posting, ...]
    request_input: dict[str, Any] = {}

    @property
    def outputs(self) -> SettlementOutputs:
        """The national settlement amounts (stored once, inside ``result``)."""
        return self.result.outputs


class DepositRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An injection into a personal account (yearly or monthly); a negative amount withdraws.

    ``origin`` and ``msgid`` are the idempotency key (for example the funding batch and a
    per-person line id). ``period`` is ``yyyy`` or ``yyyy-MM``.
    """

    msgid: str
    psn_no: str
    insuplc_admdvs: str
    insutype: str
    amount: int
    period: str
    origin: str = "funding"
    memo: str = ""


class AdjustmentRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A correction: explicit balanced postings and accumulator changes, with the reason."""

    msgid: str
    reason: str
    postings: tuple[Posting, ...] = ()
    accumulator_deltas: tuple[AccumulatorDelta, ...] = ()
    origin: str = "adjustment"


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A stored deposit or adjustment transaction."""

    txn_id: int
    kind: Literal["deposit", "adjustment"]
    origin: str
    msgid: str
    request_digest: str
    postings: tuple[Posting, ...]
    accumulator_deltas: tuple[AccumulatorDelta, ...]
    memo: str


class SettlementSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The reconciliation view of one settlement or cancel (cancel amounts are negative)."""

    setl_id: str
    kind: Literal["settle", "cancel"]
    original_setl_id: str | None
    fixmedins_code: str
    msgid: str
    psn_no: str
    mdtrt_id: str
    insutype: str
    clr_type: str
    clr_optins: str
    setl_time: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    psn_cash_pay: int


class ReconciliationTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over an institution's settlements in a period (3201): fen, and the record count."""

    count: int
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    psn_cash_pay: int


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of recomputing balances and accumulators from the journal and checking the hash chain.

    ``counts`` has what was checked (transactions, postings, accounts, accumulators,
    settlements, cancels, chain links). ``differences`` lists the first problems found,
    each naming the transaction, account, accumulator or chain link; ``difference_count``
    counts all of them. ``chain_break`` describes the first broken link of the hash chain
    (its chain_seq, setl_id and what differs), or is empty when the chain is intact.
    """

    counts: dict[str, int]
    differences: tuple[str, ...]
    difference_count: int
    chain_break: str = ""

    @property
    def ok(self) -> bool:
        return self.difference_count == 0


# Called with every key of ACCUMULATOR_KEYS as committed, under the person's lock.
SettleCompute = Callable[[dict[str, int]], SettlementPlan]

# Called with the stored original and the accumulators now; returns the reversal result.
CancelCompute = Callable[[SettlementRecord, dict[str, int]], SettlementResult]


class LedgerStore(Protocol):
    """The ledger operations the domain needs. Every write is atomic and idempotent.

    Writes raise ``SettlementError`` with these codes:

    * ``MSGID_REUSED``: (institution, msgid) was already used for different content.
    * ``ALREADY_SETTLED``: the charge batch has a live settlement with different content.
    * ``UNKNOWN_SETTLEMENT`` and ``ALREADY_CANCELLED``: a cancel of a missing or cancelled settlement.
    * ``PLAN_INCONSISTENT``: a compute result breaks a ledger invariant.
    * ``LEDGER_FAILED``: the database failed, and nothing of that write was kept.
    """

    dialect: str

    async def settle(self, request: SettlementRequest, compute: SettleCompute) -> SettlementRecord:
        """Settle under the person's lock, or return the stored record of an identical retry."""
        ...

    async def cancel(self, request: CancelRequest, compute: CancelCompute | None = None) -> SettlementRecord:
        """Reverse a live settlement once.

        ``compute`` defaults to the exact reversal: every amount negated, each counter moved
        back by what the original added, and the account money returned.
        """
        ...

    async def deposit(self, request: DepositRequest) -> JournalEntry:
        """Post a personal-account injection (or withdrawal) as one journal transaction."""
        ...

    async def adjust(self, request: AdjustmentRequest) -> JournalEntry:
        """Post a balanced correction."""
        ...

    async def get_settlement(self, setl_id: str) -> SettlementRecord | None:
        ...

    async def get_by_msgid(self, fixmedins_code: str, msgid: str) -> SettlementRecord | None:
        ...

    async def live_settlement(self, fixmedins_code: str, mdtrt_id: str, chrg_bchno: str) -> SettlementRecord | None:
        """Return the settlement of a charge batch that is not cancelled, if any."""
        ...

    async def covered_fee_details(self, fixmedins_code: str, mdtrt_id: str) -> dict[str, str]:
        """Map each fee line of the visit covered by a live settlement to that settlement's setl_id."""
        ...

    async def accumulators(self, psn_no: str, year: int) -> dict[str, int]:
        """Return every key of ACCUMULATOR_KEYS for the person and year as committed."""
        ...

    async def account_balance(self, account: str) -> int:
        """Return the balance of an account key on its normal side (0 for an unknown account)."""
        ...

    async def settlements_in_period(self, fixmedins_code: str, begin: str, end: str) -> list[SettlementSummary]:
        """List settlements and cancels whose ``setl_time`` date is in [begin, end] (``yyyy-MM-dd``)."""
        ...

    async def reconciliation_totals(
        self, fixmedins_code: str, begin: str, end: str, insutype: str, clr_type: str, *, include_cancels: bool = True
    ) -> ReconciliationTotals:
        """Sum the period's records of one insurance and clearing type; a cancel counts on its own date."""
        ...

    async def verify(self, *, max_differences: int = 20) -> VerifyReport:
        """Recompute balances and accumulators from the journal and compare them with the stored ones."""
        ...

    async def close(self) -> None:
        ...
