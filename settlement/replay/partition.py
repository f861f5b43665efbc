"""Split records into partitions of whole persons.

Persons are independent: a settlement reads only its own person's accumulators, and a
cancel's original belongs to the same person. So a partition that holds all of a
person's records can be replayed anywhere, in any order with other partitions.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from settlement.replay.record import ReplayRecord

__all__ = ["partition_of", "partition_records"]


def partition_of(psn_no: str, partitions: int) -> int:
    """Return the partition of a person; crc32 is used because it is the same in every process."""
    return zlib.crc32(psn_no.encode("utf-8")) % partitions


def partition_records(records: Iterable[ReplayRecord], partitions: int) -> list[list[ReplayRecord]]:
    """Return ``partitions`` lists, each holding every record of its persons."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    buckets: list[list[ReplayRecord]] = [[] for _ in range(partitions)]
    for record in records:
        buckets[partition_of(record.psn_no, partitions)].append(record)
    return buckets
