"""Request-handler services: configuration, clock, databases, rules and caches."""

from __future__ import annotations

import datetime
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from adapters.server.sqldb import Database
from settlement.persons import Institution
from settlement.policy import RuleSet

__all__ = ["Clock", "ServerConfig", "Services"]


@dataclass(frozen=True)
class ServerConfig:
    """Server settings; sizes in bytes, windows in seconds."""

    ledger_dsn: str
    rules_dir: str
    persons_file: str | None = None
    institutions_file: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_lines: int = 1000
    line_tolerance_fen: int = 1
    timestamp_window: int = 300
    receiver_admdvs: str = "990000"
    clock_start: datetime.datetime | None = None
    test_clock: bool = False
    pg_schema: str | None = None


class Clock:
    """Wall-clock time, optionally started at a chosen moment (for demos on past rule years).

    With ``clock_start`` the clock reads that moment when the server starts and runs forward
    in real time from there.
    """

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._offset = datetime.timedelta(0) if start is None else start - datetime.datetime.now()

    def now(self) -> datetime.datetime:
        return (datetime.datetime.now() + self._offset).replace(microsecond=0)


@dataclass
class Services:
    config: ServerConfig
    db: Database
    ledger: Any
    rules: RuleSet
    clock: Clock
    institutions: dict[str, Institution] = field(default_factory=dict)
    # Worker slot (0-99) of ``settlement serve --workers``, the first two digits of the
    # 10-digit serial, so that workers sharing a port do not issue the same inf_refmsgid.
    serial_slot: int = 0
    _serial: Any = field(default_factory=lambda: itertools.count(1))
    # The PostgreSQL batcher of admitting 2207s (``settle_batch.SettleBatcher``), made on first use.
    settle_batcher: Any = None

    def next_serial(self) -> int:
        return self.serial_slot * 10**8 + next(self._serial) % 10**8

    def new_id(self, prefix: str, now: datetime.datetime) -> str:
        """Return a new platform id: prefix, time to the second and 8 random digits (at most 30 characters)."""
        return f"{prefix}{now:%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"
