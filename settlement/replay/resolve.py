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
        policy_key = (self.policy_id(record), record.setl_date)
        policy = self._policies.get(policy_key)
        if policy is None:
            policy = self._policies[policy_key] = self.rules.policy(policy_key[0], datetime.date.fromisoformat(record.setl_date))
        # Keyed by the version rather than the date, so a year of dates shares one resolution.
        key = (policy.policy_id, policy.effective_from, record.resolution)
        found = self._params.get(key)
        if found is None:
            res = record.resolution
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

        expected = self._catalog_columns(records, counts, total)
        known = expected[:, 0] == 1
        charge_class = np.where(known, expected[:, 1], values[:, 0])
        ratio = np.where(known & (expected[:, 2] >= 0), expected[:, 2], values[:, 3])
        cap = np.where(known, expected[:, 3], caps)

        differences: list[LineDifference] = []
        for column, recorded, in_force in (("charge_class", values[:, 0], charge_class), ("selfpay_prop", values[:, 3], ratio),
                                           ("price_cap_micro", caps, cap)):
            for line in np.nonzero(recorded != in_force)[0].tolist():
                owner = int(np.searchsorted(offsets, line, side="right")) - 1
                differences.append(LineDifference(owner, line - int(offsets[owner]), column,
                                                  _optional(column, int(recorded[line])), _optional(column, int(in_force[line]))))

        rows = np.empty((total, _core.L_WIDTH), dtype=np.int64)
        rows[:, _core.L_CLASS] = charge_class
        rows[:, _core.L_PRICE] = values[:, 1]
        rows[:, _core.L_QUANTITY] = values[:, 2]
        rows[:, _core.L_SELFPAY_PROP] = ratio
        rows[:, _core.L_PRICE_CAP] = np.where(cap < 0, _core.NO_PRICE_CAP, cap)
        rows[:, _core.L_AMOUNT] = _core.AMOUNT_NOT_GIVEN
        for position, record in enumerate(records):
            for index, amount in record.lines.amounts:
                rows[offsets[position] + index, _core.L_AMOUNT] = amount
        return rows, offsets, differences

    def _catalog_columns(self, records: Sequence[ReplayRecord], counts: np.ndarray, total: int) -> np.ndarray:
        """Return per line (known, class, ratio or -1 to keep the recorded one, cap or -1 for none)."""
        codes = list(itertools.chain.from_iterable(record.lines.codes for record in records))
        code_ids = {code: number for number, code in enumerate(dict.fromkeys(codes))}
        unique_codes = list(code_ids)
        dates = [record.setl_date for record in records]
        date_ids = {date: number for number, date in enumerate(dict.fromkeys(dates))}
        unique_dates = list(date_ids)

        line_codes = np.fromiter(map(code_ids.__getitem__, codes), dtype=np.int64, count=total)
        line_dates = np.repeat(np.fromiter(map(date_ids.__getitem__, dates), dtype=np.int64, count=len(records)), counts)
        keys, inverse = np.unique(line_codes * len(unique_dates) + line_dates, return_inverse=True)
        table = np.zeros((len(keys), 4), dtype=np.int64)
        for row, key in enumerate(keys.tolist()):
            entry = self._entry(unique_codes[key // len(unique_dates)], unique_dates[key % len(unique_dates)])
            if entry is not None:
                charge_class, ratio, cap = entry
                table[row] = (1, charge_class, -1 if ratio is None else ratio, -1 if cap is None else cap)
        return table[inverse.reshape(-1)]


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
