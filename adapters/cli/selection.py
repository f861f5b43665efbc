"""The ledger selection shared by ``settlement replay`` and ``settlement export``."""

from __future__ import annotations

from typing import Any

from adapters.replay.ledger_reader import LedgerFilter
from settlement.errors import ErrorCode, SettlementError

__all__ = ["ledger_selection"]


def ledger_selection(args: Any) -> LedgerFilter:
    """Return the selection given by ``--from``, ``--to``, ``--institution`` and ``--region``; raise INVALID_FIELD for a period that ends before it starts."""
    if args.date_from and args.date_to and args.date_to < args.date_from:
        raise SettlementError(
            ErrorCode.INVALID_FIELD, field="--to", value=args.date_to,
            detail=f"早于 --from {args.date_from}", detail_en=f"it is before --from {args.date_from}",
        )
    return LedgerFilter(date_from=args.date_from, date_to=args.date_to, institution=args.institution, region=args.region)
