"""Check the ledger's hash chain from replay records.

The ledger links every settlement record into one chain ordered by ``chain_seq``, each
link storing ``prev_hash`` and ``record_hash = sha256(record bytes || prev_hash)``
(``settlement.chain``). Hashing is the costly part, so it happens where the records are
(``chain_links``, in each worker). Ordering the links and following them needs all of
them, so that happens once (``check_links``). A record that carries its stored bytes
(``ledger_body``) has its content checked; one exported without them can only be
checked for its place in the chain.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from settlement.chain import GENESIS, link_hash
from settlement.replay.record import ReplayRecord

__all__ = ["ChainBreak", "ChainLink", "chain_links", "check_links"]


class ChainLink(msgspec.Struct, frozen=True, array_like=True):
    """One record's part in the link check: its place, its hashes and its recomputed hash.

    ``recomputed`` is empty when the record's bytes were not available.
    """

    seq: int
    setl_id: str
    prev_hash: str
    record_hash: str
    recomputed: str


class ChainBreak(msgspec.Struct, frozen=True, kw_only=True):
    """The first broken link: the record, why, and the hashes involved.

    ``reason`` is ``prev_hash`` when the record does not link to the one before it (a
    record was deleted, inserted or moved). It is ``record_hash`` when the record's content
    no longer gives its hash (it was edited), and ``chain_seq`` when a place in the chain
    is empty.
    """

    position: int
    seq: int
    setl_id: str
    reason: str
    stored: str
    recomputed: str


def chain_links(records: Iterable[ReplayRecord]) -> list[ChainLink]:
    """Hash each record's stored bytes for ``check_links``; records without a chain place are skipped."""
    return [
        ChainLink(record.chain_seq, record.setl_id, record.prev_hash, record.record_hash,
                  link_hash(bytes(record.ledger_body), record.prev_hash) if len(record.ledger_body) else "")
        for record in records
        if record.chain_seq
    ]


def check_links(links: Iterable[ChainLink], *, anchored: bool = True, contiguous: bool = True) -> list[ChainBreak]:
    """Return the first break of the chain (an empty list when it is intact).

    ``anchored`` means the links start at the beginning of the chain, so the first must be
    ``chain_seq`` 1 and link to ``GENESIS``; a window cut from the middle trusts its first
    ``prev_hash``. ``contiguous`` False (a selection by institution or region, with gaps)
    checks only each record's content against its own hash.
    """
    members = sorted(links, key=lambda link: link.seq)
    if not members:
        return []
    expected_prev = GENESIS if anchored else members[0].prev_hash
    expected_seq = 1 if anchored else members[0].seq
    for position, link in enumerate(members):
        if contiguous and link.seq != expected_seq:
            return [ChainBreak(position=position, seq=link.seq, setl_id=link.setl_id, reason="chain_seq",
                               stored=str(link.seq), recomputed=str(expected_seq))]
        if contiguous and link.prev_hash != expected_prev:
            return [ChainBreak(position=position, seq=link.seq, setl_id=link.setl_id, reason="prev_hash",
                               stored=link.prev_hash, recomputed=expected_prev)]
        if link.recomputed and link.recomputed != link.record_hash:
            return [ChainBreak(position=position, seq=link.seq, setl_id=link.setl_id, reason="record_hash",
                               stored=link.record_hash, recomputed=link.recomputed)]
        expected_prev = link.record_hash
        expected_seq = link.seq + 1
    return []
