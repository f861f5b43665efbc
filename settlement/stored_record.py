"""The bytes a ledger stores for one settlement record, and how to read them back.

A record is stored as its canonical JSON (``settlement.chain.canonical_record_bytes``) in
an LZ4 frame (the standard frame format, with the content size in its header, so the
``lz4`` command-line tool opens it too). A 20-line settlement takes about 3.5 KB instead
of 11 KB. The hash chain covers the stored bytes, so compressing them cuts the hashing a
replay must do by the same factor, and the database no longer compresses the row itself.

Ledgers written before this format store the plain JSON. Both forms are read: the first
byte of JSON is ``{`` and an LZ4 frame starts with its magic number, so the first bytes
tell the two apart. Their hashes stay as they were, because the chain hashes whatever
bytes were stored.
"""

from __future__ import annotations

import lz4.frame
import msgspec

from settlement.chain import canonical_record_bytes
from settlement.store import SettlementRecord

__all__ = ["LZ4_FRAME_MAGIC", "StoredRecordError", "decode_stored_record", "record_json", "stored_record_bytes"]

# The LZ4 frame format's magic number, little-endian 0x184D2204.
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"

_record_decoder = msgspec.json.Decoder(SettlementRecord)


class StoredRecordError(ValueError):
    """Stored record bytes that are neither canonical JSON nor an LZ4 frame."""


def stored_record_bytes(record: SettlementRecord) -> bytes:
    """Encode a record as the ledger stores it: canonical JSON in an LZ4 frame."""
    return lz4.frame.compress(canonical_record_bytes(record), store_size=True)


def record_json(stored: bytes) -> bytes:
    """Return the canonical JSON inside stored record bytes of either form."""
    head = bytes(stored[:4])
    if head[:1] == b"{":
        return bytes(stored)
    if head == LZ4_FRAME_MAGIC:
        try:
            return lz4.frame.decompress(stored)
        except RuntimeError as error:
            # python-lz4 reports a damaged frame as RuntimeError.
            raise StoredRecordError(f"stored record bytes hold a damaged LZ4 frame ({error})") from error
    raise StoredRecordError(f"stored record bytes start with {head!r}, neither JSON nor an LZ4 frame")


def decode_stored_record(stored: bytes) -> SettlementRecord:
    """Decode stored record bytes of either form."""
    return _record_decoder.decode(record_json(stored))
