"""The replay record: one settlement or cancel as the ledger stored it, in a compact form.

The structs are not tracked by the cycle collector (``gc=False``): they contain only
strings, numbers and tuples of them, and a partition has millions of them.

``settlement export`` writes one record per line (JSON Lines) and replay reads them. The
columnar export stores the same fields as arrays (``columns``). In a JSON Lines record, fee
lines are stored as columns and fund details and postings as arrays (``array_like``),
because a province's year has hundreds of millions of lines: field names would triple
the file and one object per line would dominate the time to read it. Amounts are fen,
``outputs`` follow ``OUTPUT_FIELDS`` and ``before``/``after`` follow ``ACCUMULATOR_KEYS``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Literal

import msgspec

from settlement.store import SettlementRecord
from settlement.types import ACCUMULATOR_KEYS, SETTLEMENT_OUTPUT_FIELDS, FeeLine, SchemeParams

__all__ = [
    "ALL_RECORDED",
    "OUTPUT_FIELDS",
    "FundRow",
    "Lines",
    "PostingRow",
    "ReplayRecord",
    "Resolution",
    "body_raw",
    "from_settlement_record",
    "lines_of",
    "stored_body",
]

# The national amounts followed by pool_prop_selfpay, as in SettlementOutputs.
OUTPUT_FIELDS = SETTLEMENT_OUTPUT_FIELDS + ("pool_prop_selfpay",)

# Mask value meaning "every output field / accumulator was recorded".
ALL_RECORDED = -1


class Resolution(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The inputs that select a scheme inside a policy: medical type word, person group, level and flags."""

    med_type: str
    group: str
    hosp_lv: str
    cvlserv: bool
    maf_type: str | None


class Lines(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A record's fee lines as columns, because a batch file has hundreds of millions of them.

    ``values`` has four integers per line: class (1 A, 2 B, 3 C), unit price in 1e-6 yuan,
    quantity in 1e-4 and first self-pay ratio in 1e-4. ``caps`` has the price cap per
    line in 1e-6 yuan, -1 for none. ``amounts`` lists ``[line index, amount in fen]`` for
    the lines whose total of record was kept instead of price x quantity.
    """

    sns: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    values: tuple[int, ...] = ()
    caps: tuple[int, ...] = ()
    amounts: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.codes)


def lines_of(fee_lines: Iterable[FeeLine]) -> Lines:
    """Return fee lines in the record's column layout."""
    fee_lines = tuple(fee_lines)
    return Lines(
        sns=tuple(line.feedetl_sn for line in fee_lines),
        codes=tuple(line.med_list_codg for line in fee_lines),
        values=tuple(value for line in fee_lines
                     for value in (int(line.charge_class), line.price_micro, line.quantity, line.selfpay_prop)),
        caps=tuple(-1 if line.price_cap_micro is None else line.price_cap_micro for line in fee_lines),
        amounts=tuple((index, line.amount) for index, line in enumerate(fee_lines) if line.amount is not None),
    )


class FundRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One setldetail row: layer, base, cap left before the claim (None: no cap), payment."""

    layer: str
    inscp_scp_amt: int
    crt_payb_lmt_amt: int | None
    fund_payamt: int


class PostingRow(msgspec.Struct, frozen=True, array_like=True, order=True, gc=False):
    """One journal posting: account key, debit and credit in fen."""

    account: str
    debit: int
    credit: int


class ReplayRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One settlement or cancel with everything replay compares.

    ``seq`` orders records (the ledger's transaction id). ``resolution`` selects the scheme
    under any rules; when it is None, ``params`` contains the scheme as settled and is used
    as is. ``output_mask`` and ``after_mask`` are bit sets of the output fields and
    accumulators that were recorded (claim vectors list only some); ``fund_details`` and
    ``postings`` are None when not recorded. ``context_only`` marks an original fetched
    only so that a cancel inside the selection can be replayed; it is not itself checked.
    ``chain_seq``, ``prev_hash`` and ``record_hash`` are the record's link in the ledger's
    hash chain (0 and empty when absent), and ``ledger_body`` the record's stored bytes,
    which the chain hashes (empty when exported without them). ``ledger_body`` is JSON, so
    stored bytes that are not JSON (an LZ4 frame) travel as a base64 string: build it with
    ``body_raw`` and read it with ``stored_body``.
    """

    seq: int
    setl_id: str
    kind: Literal["settle", "cancel"] = "settle"
    original_setl_id: str | None = None
    psn_no: str
    family_psn_no: str | None = None
    fixmedins_code: str = ""
    insuplc_admdvs: str = ""
    insutype: str = ""
    med_type: str = ""
    clr_type: str = ""
    clr_optins: str = ""
    mdtrt_id: str = ""
    msgid: str = ""
    setl_time: str
    year: int
    rule_version: str = ""
    catalog_version: str = ""
    resolution: Resolution | None = None
    params: SchemeParams | None = None
    acct_used: bool = False
    has_family_account: bool = False
    lines: Lines = Lines()
    outputs: tuple[int, ...]
    output_mask: int = ALL_RECORDED
    fund_details: tuple[FundRow, ...] | None = None
    before: tuple[int, ...]
    after: tuple[int, ...]
    after_mask: int = ALL_RECORDED
    postings: tuple[PostingRow, ...] | None = None
    context_only: bool = False
    chain_seq: int = 0
    prev_hash: str = ""
    record_hash: str = ""
    ledger_body: msgspec.Raw = msgspec.Raw()

    @property
    def setl_date(self) -> str:
        """The settlement date, ``yyyy-MM-dd``."""
        return self.setl_time[:10]


def body_raw(stored: bytes) -> msgspec.Raw:
    """Wrap a record's stored bytes for ``ReplayRecord.ledger_body``.

    Plain JSON (older ledgers) is embedded as it is, which is also how exports written
    before the LZ4 frame carry it. Other bytes become a JSON string of their base64.
    """
    if not stored or stored[:1] == b"{":
        return msgspec.Raw(stored)
    return msgspec.Raw(b'"' + base64.b64encode(stored) + b'"')


def stored_body(raw: msgspec.Raw) -> bytes:
    """Return the stored bytes that ``body_raw`` wrapped; the chain hashes these."""
    embedded = bytes(raw)
    if embedded[:1] == b'"':
        return base64.b64decode(embedded[1:-1], validate=True)
    return embedded


def from_settlement_record(record: SettlementRecord, resolution: Resolution | None) -> ReplayRecord:
    """Convert a ledger record; ``params`` is kept only when no ``resolution`` could be found."""
    claim = record.claim
    lines = lines_of(claim.lines) if claim is not None else Lines()
    outputs = msgspec.structs.astuple(record.result.outputs)
    return ReplayRecord(
        seq=record.txn_id,
        setl_id=record.setl_id,
        kind=record.kind,
        original_setl_id=record.original_setl_id,
        psn_no=record.psn_no,
        family_psn_no=record.family_psn_no,
        fixmedins_code=record.fixmedins_code,
        insuplc_admdvs=record.insuplc_admdvs,
        insutype=record.insutype,
        med_type=record.med_type,
        clr_type=record.clr_type,
        clr_optins=record.clr_optins,
        mdtrt_id=record.mdtrt_id,
        msgid=record.msgid,
        setl_time=record.setl_time,
        year=record.year,
        rule_version=record.rule_version,
        catalog_version=record.catalog_version,
        resolution=resolution,
        params=None if resolution is not None or claim is None else claim.params,
        acct_used=bool(claim and claim.acct_used),
        has_family_account=bool(claim and claim.has_family_account),
        lines=lines,
        outputs=outputs,
        fund_details=tuple(
            FundRow(row.layer, row.inscp_scp_amt, row.crt_payb_lmt_amt, row.fund_payamt) for row in record.result.fund_details
        ),
        before=tuple(record.accumulators_before.get(key, 0) for key in ACCUMULATOR_KEYS),
        after=tuple(record.accumulators_after.get(key, 0) for key in ACCUMULATOR_KEYS),
        postings=tuple(PostingRow(p.account, p.debit, p.credit) for p in record.postings),
    )
