"""Check the hash chain of ``ledger_settlements`` link by link (see ``settlement.chain``).

The links are read in ``chain_seq`` order. Each link must come right after the one
before it (no missing numbers), store that link's ``record_hash`` as its ``prev_hash``,
and store the hash of its own record bytes. Its summary columns (amounts, keys, times)
must equal the hashed record, so a change to a column is found as well. The chain head
must name the last link, so removing records from the end is found too.
"""

from __future__ import annotations

from typing import Any

import msgspec

from settlement.chain import GENESIS, link_hash
from settlement.stored_record import StoredRecordError, decode_stored_record

__all__ = ["CHAIN_SQL", "HEAD_SQL", "ChainCheck"]

# Columns that repeat a field of the record, and how to read that field from it.
_PROJECTED = (
    ("txn_id", lambda r: r.txn_id),
    ("setl_id", lambda r: r.setl_id),
    ("kind", lambda r: r.kind),
    ("fixmedins_code", lambda r: r.fixmedins_code),
    ("msgid", lambda r: r.msgid),
    ("mdtrt_id", lambda r: r.mdtrt_id),
    ("chrg_bchno", lambda r: r.chrg_bchno),
    ("batch_attempt", lambda r: r.batch_attempt),
    ("psn_no", lambda r: r.psn_no),
    ("insuplc_admdvs", lambda r: r.insuplc_admdvs),
    ("insutype", lambda r: r.insutype),
    ("med_type", lambda r: r.med_type),
    ("clr_type", lambda r: r.clr_type),
    ("clr_optins", lambda r: r.clr_optins),
    ("setl_time", lambda r: r.setl_time),
    ("year", lambda r: r.year),
    ("original_setl_id", lambda r: r.original_setl_id),
    ("request_digest", lambda r: r.request_digest),
    ("rule_version", lambda r: r.rule_version),
    ("catalog_version", lambda r: r.catalog_version),
    ("feedetl_sns", lambda r: list(r.feedetl_sns)),
    ("medfee_sumamt", lambda r: r.outputs.medfee_sumamt),
    ("fund_pay_sumamt", lambda r: r.outputs.fund_pay_sumamt),
    ("acct_pay", lambda r: r.outputs.acct_pay),
    ("psn_cash_pay", lambda r: r.outputs.psn_cash_pay),
)

# Unlinked rows (possible only in a ledger migrated while an old writer was running) come last.
CHAIN_SQL = (
    "SELECT chain_seq, prev_hash, record_hash, record, "
    + ", ".join(name for name, _ in _PROJECTED)
    + " FROM ledger_settlements ORDER BY CASE WHEN chain_seq IS NULL THEN 1 ELSE 0 END, chain_seq, txn_id"
)
HEAD_SQL = "SELECT last_seq, last_hash FROM ledger_chain_head WHERE chain = 'ledger'"



def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else "(none)"


class ChainCheck:
    """Checker of the links in chain order. Each problem found goes to ``report.add(english, chinese)``.

    ``first_break`` is the first problem, in the language of ``lang``.
    """

    def __init__(self, report: Any, lang: str) -> None:
        self._report = report
        self._lang = lang
        self.links = 0
        self.first_break = ""
        self._last_seq = 0
        self._last_hash = GENESIS
        self._last_setl_id = ""

    def _add(self, english: str, chinese: str) -> None:
        if not self.first_break:
            self.first_break = english if self._lang == "en" else chinese
        self._report.add(english, chinese)

    def feed(self, row: tuple[Any, ...]) -> None:
        """Check one link against the link before it, its own record and its columns."""
        seq, prev_hash, stored_hash, body, *columns = row
        setl_id, txn_id = columns[1], columns[0]
        name_en = f"chain link {seq} (record {setl_id}, transaction {txn_id})"
        name_zh = f"链节 {seq}（记录 {setl_id}，交易 {txn_id}）"
        self.links += 1
        if seq is None:
            self._add(f"record {setl_id} (transaction {txn_id}) is not linked into the hash chain", f"记录 {setl_id}（交易 {txn_id}）未链入哈希链")
            return

        expected_seq = self._last_seq + 1
        before = f"link {self._last_seq} ({self._last_setl_id})" if self._last_seq else "the chain start"
        before_zh = f"链节 {self._last_seq}（{self._last_setl_id}）" if self._last_seq else "链首"
        if seq != expected_seq:
            self._add(
                f"{name_en}: links {expected_seq} to {seq - 1} are missing after {before}",
                f"{name_zh}：{before_zh} 之后缺少链节 {expected_seq} 至 {seq - 1}",
            )
        elif prev_hash != self._last_hash:
            self._add(
                f"{name_en}: prev_hash is {_short(prev_hash)} but {before} has record_hash {_short(self._last_hash)} "
                "(a record was moved, removed or inserted here)",
                f"{name_zh}：prev_hash 为 {_short(prev_hash)}，但{before_zh}的 record_hash 为 {_short(self._last_hash)}（此处记录被移动、删除或插入）",
            )

        body = bytes(body)
        recomputed = link_hash(body, prev_hash or "")
        if recomputed != stored_hash:
            self._add(
                f"{name_en}: record_hash is {_short(stored_hash)} but its content hashes to {_short(recomputed)} (the record was changed)",
                f"{name_zh}：record_hash 为 {_short(stored_hash)}，按内容重算为 {_short(recomputed)}（记录被修改）",
            )
        self._check_columns(body, columns, name_en, name_zh)

        self._last_seq = seq
        self._last_hash = stored_hash
        self._last_setl_id = setl_id

    def _check_columns(self, body: bytes, columns: list[Any], name_en: str, name_zh: str) -> None:
        try:
            record = decode_stored_record(body)
        except (msgspec.MsgspecError, StoredRecordError) as error:
            self._add(f"{name_en}: the record cannot be decoded ({error})", f"{name_zh}：记录无法解码（{error}）")
            return
        for (column, field), stored in zip(_PROJECTED, columns, strict=True):
            if column == "feedetl_sns":
                stored = msgspec.json.decode(stored)
            expected = field(record)
            if stored != expected:
                self._add(
                    f"{name_en}: column {column} is {stored!r} but the hashed record has {expected!r}",
                    f"{name_zh}：列 {column} 为 {stored!r}，而受哈希保护的记录为 {expected!r}",
                )

    def finish(self, head: tuple[Any, ...] | None) -> None:
        """Compare the chain head with the last link (records removed from the end leave the head ahead)."""
        if head is None:
            self._add("the chain head row (ledger_chain_head) is missing", "链头记录（ledger_chain_head）缺失")
            return
        head_seq, head_hash = head
        if head_seq != self._last_seq or head_hash != self._last_hash:
            last = f"link {self._last_seq} ({self._last_setl_id}) with record_hash {_short(self._last_hash)}" if self._last_seq else "no link"
            last_zh = f"链节 {self._last_seq}（{self._last_setl_id}），record_hash {_short(self._last_hash)}" if self._last_seq else "无链节"
            self._add(
                f"chain head names link {head_seq} with record_hash {_short(head_hash)}, but the last link is {last} "
                "(records were removed from the end or the head was changed)",
                f"链头指向链节 {head_seq}（record_hash {_short(head_hash)}），但最后一个链节是{last_zh}（末尾记录被删除或链头被修改）",
            )
