"""The stored form of a settlement record: canonical JSON in an LZ4 frame, older plain JSON still read."""

from __future__ import annotations

import asyncio

import lz4.frame
import msgspec
import pytest
from ledger_support import ledger, settle_request, toy_compute

from settlement.chain import canonical_record_bytes
from settlement.replay.record import ReplayRecord, body_raw, stored_body
from settlement.stored_record import LZ4_FRAME_MAGIC, StoredRecordError, decode_stored_record, record_json, stored_record_bytes


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """One settlement record as the SQLite store writes it."""

    async def settle():
        async with ledger("sqlite", tmp_path_factory.mktemp("ledger")) as store:
            return await store.settle(settle_request(1), toy_compute(12_345))

    return asyncio.run(settle())


def test_stored_record_is_lz4_json(record):
    stored = stored_record_bytes(record)

    assert stored.startswith(LZ4_FRAME_MAGIC)
    # Any LZ4 frame reader gets the canonical JSON back, not only this package.
    assert lz4.frame.decompress(stored) == canonical_record_bytes(record)
    assert len(stored) < len(canonical_record_bytes(record))
    assert decode_stored_record(stored) == record


def test_plain_json_still_read(record):
    plain = canonical_record_bytes(record)

    assert record_json(plain) == plain
    assert decode_stored_record(plain) == record


@pytest.mark.parametrize(
    "stored, reason",
    [
        (b"", "neither JSON nor an LZ4 frame"),
        (b"[1, 2]", "neither JSON nor an LZ4 frame"),
        (LZ4_FRAME_MAGIC + b"\x00\x01\x02", "damaged LZ4 frame"),
    ],
)
def test_other_bytes_rejected(stored, reason):
    with pytest.raises(StoredRecordError, match=reason):
        record_json(stored)


def test_truncated_frame_rejected(record):
    stored = stored_record_bytes(record)

    with pytest.raises(StoredRecordError, match="damaged LZ4 frame"):
        record_json(stored[: len(stored) // 2])


def test_replay_body_round_trips(record):
    framed = stored_record_bytes(record)
    plain = canonical_record_bytes(record)
    decoder = msgspec.json.Decoder(ReplayRecord)

    for stored in (framed, plain):
        replay = ReplayRecord(seq=1, setl_id=record.setl_id, psn_no=record.psn_no, setl_time=record.setl_time,
                              year=record.year, outputs=(), before=(), after=(), ledger_body=body_raw(stored))
        line = msgspec.json.encode(replay)
        assert stored_body(decoder.decode(line).ledger_body) == stored

    # Plain JSON stays embedded as an object, as exports before the frame wrote it.
    assert bytes(body_raw(plain)) == plain
    assert bytes(body_raw(framed)).startswith(b'"')
