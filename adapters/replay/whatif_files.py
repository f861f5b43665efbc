"""Write what-if results (proposed journal transactions and their sums) and post them to a ledger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from adapters.ledger import open_store
from settlement.replay.whatif import ProposedAdjustment, WhatIfResult

__all__ = ["post_adjustments", "read_adjustments", "write_what_if"]

_ENCODER = msgspec.json.Encoder()


def write_what_if(folder: Path, result: WhatIfResult, rules: str) -> None:
    """Write ``adjustments.jsonl`` (one proposed transaction a line) and ``whatif-summary.json``."""
    with open(folder / "adjustments.jsonl", "wb") as file:
        for adjustment in result.adjustments:
            file.write(_ENCODER.encode(adjustment) + b"\n")
    data = {
        "rules": rules,
        "records": result.records,
        "adjustments": len(result.adjustments),
        "per_fund": dict(sorted(result.per_fund.items())),
        "per_person": dict(sorted(result.per_person.items())),
        "failures": result.failures,
    }
    (folder / "whatif-summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")


def read_adjustments(path: Path) -> list[ProposedAdjustment]:
    return msgspec.json.Decoder(ProposedAdjustment).decode_lines(path.read_bytes())


def _offsetting_pairs(adjustments: Sequence[ProposedAdjustment]) -> set[str]:
    """Return the settlement ids of cancels and their originals whose adjustments undo each other.

    A settlement that was cancelled has no effect left, so its adjustment and its cancel's
    add up to nothing. Posting them one after the other could still push a counter below
    zero in between, which the ledger refuses, so such pairs are not posted.
    """
    by_id = {adjustment.setl_id: adjustment for adjustment in adjustments}
    skipped: set[str] = set()
    for adjustment in adjustments:
        original = by_id.get(adjustment.original_setl_id or "")
        if adjustment.kind != "cancel" or original is None:
            continue
        net: dict[tuple[str, ...], int] = {}
        for item in (adjustment, original):
            for posting in item.request.postings:
                key = ("posting", posting.account)
                net[key] = net.get(key, 0) + posting.debit - posting.credit
            for delta in item.request.accumulator_deltas:
                key = ("counter", delta.psn_no, str(delta.year), delta.key)
                net[key] = net.get(key, 0) + delta.delta
        if not any(net.values()):
            skipped.update((adjustment.setl_id, original.setl_id))
    return skipped


def _lowers_something(adjustment: ProposedAdjustment) -> bool:
    """Tell whether an adjustment lowers a counter or a personal account balance."""
    request = adjustment.request
    if any(delta.delta < 0 for delta in request.accumulator_deltas):
        return True
    return any(posting.account.startswith("personal:") and posting.debit for posting in request.postings)


async def post_adjustments(dsn: str, adjustments: Sequence[ProposedAdjustment]) -> tuple[int, int]:
    """Post the proposed adjustments as adjustment transactions; never edits a record.

    Returns (posted, skipped): pairs of a cancelled settlement and its cancel whose
    adjustments undo each other are skipped. Adjustments that only raise counters and
    balances go first, because the ledger refuses a counter or a personal account below
    zero even for a moment. The adjustment's msgid is the settlement id under the what-if
    origin, so posting the same file twice writes each transaction once.
    """
    skipped = _offsetting_pairs(adjustments)
    ordered = sorted((item for item in adjustments if item.setl_id not in skipped), key=_lowers_something)
    store = await open_store(dsn)
    try:
        for adjustment in ordered:
            await store.adjust(adjustment.request)
    finally:
        await store.close()
    return len(ordered), len(skipped)
