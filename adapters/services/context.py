"""What the service operations need: the server's database, the ledger, the standards and a clock."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.server.sqldb import Database
from settlement.catalog import Catalog
from settlement.policy.model import Policy
from settlement.services.standards import ServiceStandards

__all__ = ["ServiceContext"]


@dataclass
class ServiceContext:
    """``now`` returns the engine clock (the server's ``Clock.now``, or a fixed time in tests).

    ``catalog`` and ``injury_policies`` are needed only to settle work-injury treatment.
    """

    db: Database
    ledger: Any
    standards: ServiceStandards
    now: Callable[[], datetime.datetime]
    catalog: Catalog | None = None
    injury_policies: list[Policy] = field(default_factory=list)

    def today(self) -> datetime.date:
        return self.now().date()
