"""Collect replay input: record files, claim vectors and ledgers, as work units.

A grouped record file (as ``settlement export`` writes it) is cut into byte ranges, and a
columnar record folder into row ranges, that workers read themselves. Everything else
(claim vectors, files without the grouped header, records read from a ledger) is loaded
here and partitioned by person in memory.
"""

from __future__ import annotations

from pathlib import Path

from adapters.replay.columnar import is_columnar
from adapters.replay.jsonl import read_header, read_records
from adapters.replay.runner import units_from_columns, units_from_file, units_from_records
from adapters.replay.worker import WorkUnit
from settlement.claimfile import read_claim_file
from settlement.policy.loader import RuleSet
from settlement.replay.record import ReplayRecord
from settlement.replay.vectors import vector_records

__all__ = ["InputPlan", "plan_inputs"]


class InputPlan:
    """The units to run, the record count when known, and the chain layout of the input."""

    def __init__(self) -> None:
        self.units: list[WorkUnit] = []
        self.loaded: list[ReplayRecord] = []
        self.total: int | None = 0
        self.chain_layout = "whole"

    def add_file_units(self, units: list[WorkUnit], count: int | None, layout: str) -> None:
        self.units.extend(units)
        self.total = None if count is None or self.total is None else self.total + count
        self._layout(layout)

    def _layout(self, layout: str) -> None:
        # Several inputs together can only be checked as strictly as the loosest of them.
        order = ("whole", "window", "gaps")
        if order.index(layout) > order.index(self.chain_layout):
            self.chain_layout = layout

    def finish(self, workers: int) -> None:
        """Partition the records loaded in memory into units."""
        if self.loaded:
            self.units.extend(units_from_records(self.loaded, workers))
            if self.total is not None:
                self.total += len(self.loaded)
            self.loaded = []


def _input_files(path: Path) -> list[Path]:
    if is_columnar(path):
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.jsonl")) + sorted(p for p in path.glob("*.json") if not p.name.startswith("policy-"))
        files += sorted(p for p in path.iterdir() if is_columnar(p))
        return files
    return [path]


def plan_inputs(paths: list[Path], rules: RuleSet, workers: int) -> InputPlan:
    """Return the units for record files and claim vectors; raise OSError or SettlementError for a bad input."""
    plan = InputPlan()
    for given in paths:
        for path in _input_files(given):
            if is_columnar(path):
                plan.add_file_units(*units_from_columns(str(path), workers))
                continue
            if path.suffix == ".json":
                plan.loaded.extend(vector_records(read_claim_file(path, rules)))
                continue
            header, _ = read_header(path)
            if header is not None and header.grouped == "psn_no":
                units, count, layout = units_from_file(str(path), workers)
                plan.add_file_units(units, count, layout)
            else:
                plan.loaded.extend(read_records(path))
                plan._layout(header.chain if header is not None and header.chain else "whole")
    plan.finish(workers)
    return plan
