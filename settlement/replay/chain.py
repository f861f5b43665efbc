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

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from settlement.chain import GENESIS, link_hash
from settlement.replay.columns import BIT_CONTEXT_ONLY, HASH_WIDTH, RecordColumns
from settlement.replay.record import ReplayRecord, stored_body

__all__ = ["ChainBreak", "ChainLink", "LinkColumns", "chain_links", "check_link_columns", "check_links", "column_links"]


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
                  link_hash(stored_body(record.ledger_body), record.prev_hash) if len(record.ledger_body) else "")
        for record in records
        if record.chain_seq
    ]


class LinkColumns(msgspec.Struct, kw_only=True):
    """Links as arrays, for many records at once: ``seq`` int64, hashes as 64-byte ASCII, ``setl_id`` strings.

    ``recomputed`` is empty where a record's bytes were not available, and, in links from
    ``column_links``, also where the recomputed hash equals ``record_hash``.
    """

    seq: np.ndarray
    setl_id: list[str]
    prev_hash: np.ndarray
    record_hash: np.ndarray
    recomputed: np.ndarray

    @classmethod
    def from_links(cls, links: Sequence[ChainLink]) -> LinkColumns:
        return cls(
            seq=np.array([link.seq for link in links], dtype=np.int64),
            setl_id=[link.setl_id for link in links],
            # The width follows the longest string, so an overlong stored hash is compared whole.
            prev_hash=np.array([link.prev_hash.encode("utf-8") for link in links], dtype=np.bytes_),
            record_hash=np.array([link.record_hash.encode("utf-8") for link in links], dtype=np.bytes_),
            recomputed=np.array([link.recomputed.encode("ascii") for link in links], dtype=np.bytes_),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[LinkColumns]) -> LinkColumns:
        return cls(
            seq=np.concatenate([part.seq for part in parts]) if parts else np.zeros(0, dtype=np.int64),
            setl_id=[setl_id for part in parts for setl_id in part.setl_id],
            **{name: np.concatenate([getattr(part, name) for part in parts]) if parts else np.zeros(0, dtype=f"S{HASH_WIDTH}")
               for name in ("prev_hash", "record_hash", "recomputed")},
        )

    def __len__(self) -> int:
        return len(self.seq)


def column_links(columns: RecordColumns, start: int, end: int) -> LinkColumns:
    """Hash the stored bytes of rows ``start`` to ``end`` of a columnar file; context-only rows and rows without a chain place are skipped."""
    a = columns.arrays
    rows = np.nonzero((a["chain_seq"][start:end] != 0) & ((a["bits"][start:end] & BIT_CONTEXT_ONLY) == 0))[0] + start
    bounds = a["body_offsets"]
    # A memoryview slice is cheaper than an array slice, which made this loop about 3% faster
    # in the benchmark. The rest of its time is SHA-256 of each record's bytes.
    body = memoryview(a["body"])
    prev_hash = a["prev_hash"][rows]
    record_hash = a["record_hash"][rows]
    # Only hashes that differ travel back to the parent: an intact chain then sends one
    # byte a link instead of 64, which a Dask worker pickles and the parent concatenates.
    differing = []
    for first, last, prev, stored in zip(bounds[rows].tolist(), bounds[rows + 1].tolist(), prev_hash.tolist(),
                                         record_hash.tolist(), strict=True):
        hashed = link_hash(body[first:last].tobytes(), prev.decode("ascii")).encode("ascii") if last > first else b""
        differing.append(b"" if hashed == stored else hashed)
    setl_ids = columns.tables["setl_id"]
    return LinkColumns(
        seq=a["chain_seq"][rows], setl_id=setl_ids.decode(a["setl_id"][rows].tolist()),
        prev_hash=prev_hash, record_hash=record_hash, recomputed=np.array(differing, dtype=np.bytes_),
    )


def check_links(links: Iterable[ChainLink], *, anchored: bool = True, contiguous: bool = True) -> list[ChainBreak]:
    """Return the first break of the chain (an empty list when it is intact); see ``check_link_columns``."""
    return check_link_columns(LinkColumns.from_links(list(links)), anchored=anchored, contiguous=contiguous)


def check_link_columns(links: LinkColumns, *, anchored: bool = True, contiguous: bool = True) -> list[ChainBreak]:
    """Return the first break of the chain (an empty list when it is intact).

    ``anchored`` means the links start at the beginning of the chain, so the first must be
    ``chain_seq`` 1 and link to ``GENESIS``; a window cut from the middle trusts its first
    ``prev_hash``. ``contiguous`` False (a selection by institution or region, with gaps)
    checks only each record's content against its own hash. At one link the place in
    the chain is checked first, then ``prev_hash``, then the content.
    """
    count = len(links)
    if not count:
        return []
    # The hashes stay where they are and only the predecessor's record_hash is gathered,
    # because gathering 64-byte strings in chain order was most of this check's time on a
    # million links (one gather instead of three). The flags are then put in chain order.
    order = np.argsort(links.seq, kind="stable")
    seq = links.seq[order]
    first = int(order[0])
    predecessor = np.empty(count, dtype=np.int64)
    predecessor[order[1:]] = order[:-1]
    predecessor[first] = first
    width = max(links.prev_hash.dtype.itemsize, links.record_hash.dtype.itemsize, len(GENESIS))
    expected_prev = links.record_hash[predecessor].astype(f"S{width}")
    expected_prev[first] = GENESIS.encode("ascii") if anchored else links.prev_hash[first]

    expected_seq = np.empty(count, dtype=np.int64)
    expected_seq[0] = 1 if anchored else seq[0]
    expected_seq[1:] = seq[:-1] + 1
    bad_seq = (seq != expected_seq) & contiguous
    bad_prev = ((links.prev_hash != expected_prev) & contiguous)[order]
    bad_hash = ((links.recomputed != b"") & (links.recomputed != links.record_hash))[order]
    failing = np.nonzero(bad_seq | bad_prev | bad_hash)[0]
    if not len(failing):
        return []

    position = int(failing[0])
    link = int(order[position])
    found = {"position": position, "seq": int(seq[position]), "setl_id": links.setl_id[link]}
    if bad_seq[position]:
        return [ChainBreak(**found, reason="chain_seq", stored=str(int(seq[position])), recomputed=str(int(expected_seq[position])))]
    if bad_prev[position]:
        return [ChainBreak(**found, reason="prev_hash", stored=links.prev_hash[link].decode("utf-8"),
                           recomputed=expected_prev[link].decode("utf-8"))]
    return [ChainBreak(**found, reason="record_hash", stored=links.record_hash[link].decode("utf-8"),
                       recomputed=links.recomputed[link].decode("ascii"))]
