"""The chain check on links given in any order: each kind of break, found at its first place in the chain."""

from __future__ import annotations

import random

import pytest

from settlement.chain import GENESIS, link_hash
from settlement.replay.chain import ChainLink, check_links

BODIES = [f'{{"setl_id":"S{n:03d}","amount":{n * 100}}}'.encode() for n in range(1, 9)]


def _chain() -> list[ChainLink]:
    links, prev = [], GENESIS
    for seq, body in enumerate(BODIES, start=1):
        record_hash = link_hash(body, prev)
        links.append(ChainLink(seq, f"S{seq:03d}", prev, record_hash, link_hash(body, prev)))
        prev = record_hash
    return links


def _shuffled(links: list[ChainLink]) -> list[ChainLink]:
    # Replay hands links over in person order, not chain order.
    shuffled = list(links)
    random.Random(7).shuffle(shuffled)
    return shuffled


def _replace(links: list[ChainLink], seq: int, **changes) -> list[ChainLink]:
    return [ChainLink(**{**{f: getattr(link, f) for f in ChainLink.__struct_fields__}, **changes}) if link.seq == seq else link
            for link in links]


def test_intact_chain_no_break():
    assert check_links(_shuffled(_chain())) == []


@pytest.mark.parametrize(
    "edit, reason, seq",
    [
        # A record edited: its bytes no longer give its hash.
        (lambda links: _replace(links, 5, recomputed=link_hash(b"{}", links[3].record_hash)), "record_hash", 5),
        # A record deleted: the next one links to a hash that is not the one before it.
        (lambda links: [link for link in links if link.seq != 4], "chain_seq", 5),
        # A link rewritten to point elsewhere.
        (lambda links: _replace(links, 6, prev_hash=links[0].record_hash), "prev_hash", 6),
        # The first link must start from GENESIS when the whole chain is checked.
        (lambda links: _replace(links, 1, prev_hash="f" * 64), "prev_hash", 1),
    ],
)
def test_break_named_at_first_place(edit, reason, seq):
    breaks = check_links(_shuffled(edit(_chain())))

    assert [(b.reason, b.seq, b.setl_id) for b in breaks] == [(reason, seq, f"S{seq:03d}")]


def test_earlier_break_reported():
    links = _replace(_replace(_chain(), 7, recomputed="0" * 64), 3, prev_hash="1" * 64)

    breaks = check_links(_shuffled(links))

    assert [(b.reason, b.seq) for b in breaks] == [("prev_hash", 3)]
    assert breaks[0].stored == "1" * 64
    assert breaks[0].recomputed == links[1].record_hash


def test_window_and_gaps_checks():
    links = _chain()[3:]

    assert check_links(_shuffled(links), anchored=False) == []
    assert [b.reason for b in check_links(_shuffled(links))] == ["chain_seq"]
    gappy = [link for link in links if link.seq % 2]
    assert check_links(_shuffled(gappy), anchored=False, contiguous=False) == []
    edited = _replace(gappy, 5, recomputed="2" * 64)
    assert [(b.reason, b.seq) for b in check_links(edited, anchored=False, contiguous=False)] == [("record_hash", 5)]
