"""Find the scheme and catalogue values in force for a replayed record.

Replay resolves each settlement again from the rules instead of trusting the parameters
the ledger stored. It takes the policy version in force on the settlement date and the
scheme the record's ``Resolution`` selects in it. Each line takes its class, first
self-pay ratio and price cap from the catalogue version in force on that date.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from settlement import _core
from settlement.catalog import CatalogEntry
from settlement.errors import SettlementError
from settlement.policy.loader import RuleSet
from settlement.policy.model import Policy
from settlement.replay.record import ReplayRecord, Resolution
from settlement.types import HOSPITAL_LEVELS, MEDICAL_ASSISTANCE_TYPES, PERSON_GROUPS, ChargeClass, SchemeParams

__all__ = ["LineDifference", "Resolver", "infer_resolution", "rule_version_of"]


def rule_version_of(policy: Policy) -> str:
    """Return the version label the ledger stores for a policy (``id@effective_from``)."""
    return f"{policy.policy_id}@{policy.effective_from.isoformat()}"


def infer_resolution(policy: Policy, params: SchemeParams) -> Resolution | None:
    """Return the first (group, level, flags) that resolves ``policy`` to exactly ``params``, or None.

    The ledger stores resolved parameters, not the person group or hospital level behind
    them, so export searches the small space of combinations (120 of them). Callers
    cache the result by policy version and parameters.
    """
    # NOTE: when two combinations give identical parameters under the recorded rules,
    # the first is taken; other rules that tell them apart may then resolve differently.
    flags = itertools.product(PERSON_GROUPS, HOSPITAL_LEVELS, (False, True), (None, *MEDICAL_ASSISTANCE_TYPES))
    for group, level, cvlserv, maf_type in flags:
        try:
            candidate = policy.resolve(params.med_type, group, level, cvlserv, maf_type)
        except SettlementError:
            continue
        if candidate == params:
            return Resolution(params.med_type, group, level, cvlserv, maf_type)
    return None


class Resolver:
    """Resolve records against one RuleSet, caching by policy, date and resolution."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._seen: dict[tuple[str, str, Resolution], tuple[SchemeParams, str]] = {}
        self._policies: dict[tuple[str, str], Policy] = {}
        self._params: dict[tuple[str, datetime.date, Resolution], tuple[SchemeParams, str]] = {}
        self._entries: dict[tuple[str, str], tuple[int, int | None, int | None] | None] = {}
        self._version_arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def policy_id(self, record: ReplayRecord) -> str:
        """Return the policy id of a record: from its rule version, else from its stored parameters."""
        if record.rule_version:
            return record.rule_version.split("@", 1)[0]
        if record.params is not None:
            return record.params.policy_id
        return ""

    def params(self, record: ReplayRecord) -> tuple[SchemeParams, str]:
        """Return the scheme in force for the record and the version label of its policy.

        A record without a resolution keeps its stored parameters (and its own version
        label). Raises ``SettlementError`` when no policy is in force or no rule matches.
        """
        if record.resolution is None:
            if record.params is None:
                raise ValueError(f"record {record.setl_id} has neither a resolution nor parameters")
            return record.params, record.rule_version
        # Most records repeat a (version, date, selection) seen before, so one lookup finds them.
        seen_key = (record.rule_version, record.setl_time[:10], record.resolution)
        seen = self._seen.get(seen_key)
        if seen is not None:
            return seen
        found = self._resolve(record)
        self._seen[seen_key] = found
        return found

    def _resolve(self, record: ReplayRecord) -> tuple[SchemeParams, str]:
        assert record.resolution is not None
        return self.resolve_in(self.policy_in_force(self.policy_id(record), record.setl_date), record.resolution)

    def policy_in_force(self, policy_id: str, setl_date: str) -> Policy:
        """Return the version of a policy in force on a date; raise ``SettlementError`` when there is none."""
        policy_key = (policy_id, setl_date)
        policy = self._policies.get(policy_key)
        if policy is None:
            policy = self._policies[policy_key] = self.rules.policy(policy_id, datetime.date.fromisoformat(setl_date))
        return policy

    def resolve_in(self, policy: Policy, resolution: Resolution) -> tuple[SchemeParams, str]:
        """Return the scheme a resolution selects in a policy version, and that version's label."""
        # Keyed by the version rather than the date, so a year of dates shares one resolution.
        key = (policy.policy_id, policy.effective_from, resolution)
        found = self._params.get(key)
        if found is None:
            res = resolution
            params = policy.resolve(res.med_type, res.group, res.hosp_lv, res.cvlserv, res.maf_type)
            found = self._params[key] = (params, rule_version_of(policy))
        return found

    def _entry(self, code: str, date: str) -> tuple[int, int | None, int | None] | None:
        """Return (class, ratio, cap) in force, or None for a code outside the catalogue.

        The ratio is None for class C, whose ratio is ignored, so that any ratio written on
        a class C line matches.
        """
        key = (code, date)
        if key in self._entries:
            return self._entries[key]
        try:
            entry = self.rules.catalog.lookup(code, datetime.date.fromisoformat(date))
            ratio = None if entry.charge_class == ChargeClass.C else entry.selfpay_prop
            value = (int(entry.charge_class), ratio, entry.price_cap_micro)
        except SettlementError:
            # A code outside the catalogue is settled as recorded (class C lines need no entry).
            value = None
        self._entries[key] = value
        return value

    def line_arrays(self, records: Sequence[ReplayRecord]) -> tuple[np.ndarray, np.ndarray, list[LineDifference]]:
        """Return the records' lines as kernel rows with the catalogue values in force, their offsets, and the differences.

        Each line takes the class, first self-pay ratio and price cap of the catalogue
        version in force on its record's date (a code outside the catalogue keeps its
        recorded values). The work is done on arrays: only distinct (code, date) pairs
        are looked up, so the cost per line stays a few array operations.
        """
        counts = np.fromiter((len(record.lines.codes) for record in records), dtype=np.int64, count=len(records))
        offsets = np.zeros(len(records) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        chain = itertools.chain.from_iterable
        values = np.fromiter(chain(record.lines.values for record in records), dtype=np.int64, count=4 * total).reshape(total, 4)
        caps = np.fromiter(chain(record.lines.caps for record in records), dtype=np.int64, count=total)
        amounts = np.full(total, _core.AMOUNT_NOT_GIVEN, dtype=np.int64)
        for position, record in enumerate(records):
            for index, amount in record.lines.amounts:
                amounts[offsets[position] + index] = amount

        codes = list(chain(record.lines.codes for record in records))
        code_ids = {code: number for number, code in enumerate(dict.fromkeys(codes))}
        unique_codes = list(code_ids)
        dates = [record.setl_date for record in records]
        date_ids = {date: number for number, date in enumerate(dict.fromkeys(dates))}
        unique_dates = list(date_ids)
        line_codes = np.fromiter(map(code_ids.__getitem__, codes), dtype=np.int64, count=total)
        line_dates = np.repeat(np.fromiter(map(date_ids.__getitem__, dates), dtype=np.int64, count=len(records)), counts)
        date_count = max(len(unique_dates), 1)
        keys, inverse = np.unique(line_codes * date_count + line_dates, return_inverse=True)
        table = np.array([self.catalog_row(unique_codes[key // date_count], unique_dates[key % date_count]) for key in keys.tolist()],
                         dtype=np.int64).reshape(len(keys), 4)
        rows = np.empty((total, _core.L_WIDTH), dtype=np.int64)
        rows[:, _core.L_CLASS] = values[:, 0]
        rows[:, _core.L_PRICE] = values[:, 1]
        rows[:, _core.L_QUANTITY] = values[:, 2]
        rows[:, _core.L_SELFPAY_PROP] = values[:, 3]
        rows[:, _core.L_PRICE_CAP] = caps
        rows[:, _core.L_AMOUNT] = amounts
        rows, differences = self.apply_catalog(rows, offsets, table, inverse.reshape(-1))
        return rows, offsets, differences

    def apply_catalog(self, rows: np.ndarray, offsets: np.ndarray, table: np.ndarray, pair_of_line: np.ndarray,
                      in_scope: np.ndarray | None = None) -> tuple[np.ndarray, list[LineDifference]]:
        """Return kernel line rows with the catalogue values in force, and the lines whose recorded values differ.

        ``rows`` are the recorded lines in the kernel's layout (a price cap of -1 for
        none), cut into records by ``offsets``. Line ``i`` has the ``catalog_row`` in
        ``table[pair_of_line[i]]``. Only ``in_scope`` lines (all when None) are reported.
        A matching line already has the values in force, so ``rows`` are returned as they
        are (they may be read-only) unless a line must change, in which case a copy is.
        """
        columns = [np.ascontiguousarray(table[:, column]) for column in range(4)]
        checked = ((_core.L_CLASS, 1), (_core.L_SELFPAY_PROP, 2), (_core.L_PRICE_CAP, 3))
        found: list[list[np.ndarray]] = [[], [], []]
        odd_caps = False
        # Blocks of lines small enough for the CPU cache: each block is read from memory
        # once, though three of its columns are compared.
        for first in range(0, len(rows), _BLOCK_LINES):
            block = rows[first:first + _BLOCK_LINES]
            pairs = pair_of_line[first:first + _BLOCK_LINES]
            known = np.take(columns[0], pairs) == 1
            if in_scope is not None:
                known &= in_scope[first:first + _BLOCK_LINES]
            for position, (column, value) in enumerate(checked):
                in_force = np.take(columns[value], pairs)
                differs = known & (block[:, column] != in_force)
                if value == 2:
                    # A ratio of -1 in force keeps the recorded one (class C lines).
                    differs &= in_force >= 0
                found[position].append(np.nonzero(differs)[0] + first)
            caps = block[:, _core.L_PRICE_CAP]
            odd_caps = odd_caps or bool(np.any((caps < 0) & (caps != _core.NO_PRICE_CAP)))
        lines_of = [np.concatenate(items) if items else np.zeros(0, dtype=np.int64) for items in found]
        checks = [
            (name, column, lines, np.take(columns[value], pair_of_line[lines]))
            for name, (column, value), lines in zip(("charge_class", "selfpay_prop", "price_cap_micro"), checked, lines_of, strict=True)
        ]

        differences: list[LineDifference] = []
        for column_name, column, lines, in_force in checks:
            for line, value in zip(lines.tolist(), in_force.tolist(), strict=True):
                owner = int(np.searchsorted(offsets, line, side="right")) - 1
                differences.append(LineDifference(owner, line - int(offsets[owner]), column_name,
                                                  _optional(column_name, int(rows[line, column])), _optional(column_name, value)))
        # A negative cap means none, whatever its value.
        if differences or odd_caps:
            rows = np.array(rows)
            for _, column, lines, in_force in checks:
                rows[lines, column] = in_force
            caps = rows[:, _core.L_PRICE_CAP]
            caps[caps < 0] = _core.NO_PRICE_CAP
        return rows, differences

    def catalog_row(self, code: str, date: str) -> tuple[int, int, int, int]:
        """Return (known, class, ratio or -1 to keep the recorded one, cap or -1 for none) of a code on a date."""
        entry = self._entry(code, date)
        if entry is None:
            return (0, 0, 0, 0)
        charge_class, ratio, cap = entry
        return (1, charge_class, -1 if ratio is None else ratio, -1 if cap is None else cap)

    def catalog_rows(self, code: str, days: np.ndarray) -> np.ndarray:
        """Return ``catalog_row`` of one code on many dates at once, shape (len(days), 4).

        ``days`` are proleptic Gregorian ordinals (``date.toordinal()``). The version in
        force is found as ``Catalog.lookup`` finds it: the last one starting on or before
        the date, if it has not ended by then.
        """
        rows = np.zeros((len(days), 4), dtype=np.int64)
        arrays = self._version_arrays.get(code)
        if arrays is None:
            arrays = self._version_arrays[code] = _version_arrays(self.rules.catalog.versions(code))
        starts, ends, values = arrays
        if not len(starts):
            return rows
        index = np.searchsorted(starts, days, side="right") - 1
        version = np.maximum(index, 0)
        in_force = (index >= 0) & (days <= ends[version])
        rows[in_force] = values[version[in_force]]
        return rows


def _version_arrays(versions: Sequence[CatalogEntry]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the start and end ordinals of a code's versions (sorted by start) and their ``catalog_row`` values."""
    starts = np.array([entry.begndate.toordinal() for entry in versions], dtype=np.int64)
    ends = np.array([entry.enddate.toordinal() if entry.enddate is not None else _OPEN_END for entry in versions], dtype=np.int64)
    values = np.array([
        (1, int(entry.charge_class), -1 if entry.charge_class == ChargeClass.C else entry.selfpay_prop,
         -1 if entry.price_cap_micro is None else entry.price_cap_micro)
        for entry in versions
    ], dtype=np.int64).reshape(len(versions), 4)
    return starts, ends, values


# The end ordinal of a version without an end date: later than any date.
_OPEN_END = datetime.date.max.toordinal()

# Lines compared at a time by ``apply_catalog`` (3 MB of kernel line rows).
_BLOCK_LINES = 1 << 16


class LineDifference(NamedTuple):
    """A line whose recorded catalogue value differs from the version in force: record position, line index, column, values."""

    record: int
    line: int
    column: str
    recorded: int | None
    in_force: int | None


def _optional(column: str, value: int) -> int | None:
    # A price cap of -1 means the line has none.
    return None if column == "price_cap_micro" and value < 0 else value
