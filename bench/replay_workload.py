"""Deterministic settlement histories for the replay tests and benchmark.

A history is a list of persons, each with a few settlements through 2024 under the
bundled Beijing employee policy, some of them cancelled a few days later. Lines use the
codes of the bundled sample catalogue with the class, first self-pay ratio and price cap
in force on the settlement date, so replay's catalogue check meets real dated entries.
The same arguments always give the same history, because only ``random.Random`` draws
are used, in a fixed order.

``history_records`` settles a history with the engine and builds each record exactly as
the ledger does (``build_settlement_record`` / ``build_cancel_record``), without a
database; ``apply_history`` settles it through a real ledger store.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from collections.abc import Sequence
from dataclasses import dataclass, field


from settlement import engine
from settlement.ledger_posting import build_cancel_record, build_settlement_record, reverse_result
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import RuleSet, load_rules
from settlement.replay.record import ReplayRecord, Resolution, from_settlement_record
from settlement.store import CancelRequest, DepositRequest, SettlementPlan, SettlementRecord, SettlementRequest
from settlement.types import ACCUMULATOR_KEYS, ChargeClass, ClaimInput, FeeLine

__all__ = ["Event", "History", "apply_history", "generate_history", "history_records", "load_history_rules"]

POLICY_ID = "bj-employee-2024"
REGION = "110100"
INSUTYPE = "310"
INSTITUTIONS = ("H11010100001", "H11010100002", "H11010100003")
MED_TYPES = {"outpatient_general": ("11", 0.6), "pharmacy": ("41", 0.15), "inpatient": ("21", 0.15), "outpatient_chronic": ("14", 0.1)}
LEVELS = {"outpatient_general": ("community", "level1", "level2", "level3"), "outpatient_chronic": ("level2", "level3"),
          "inpatient": ("level1", "level2", "level3"), "pharmacy": ("pharmacy",)}
_CLR_TYPES = {"11": "11", "14": "11", "21": "21", "41": "41"}


@dataclass
class Event:
    """One settlement, or the cancel of the settlement at ``cancels`` (an index into the events)."""

    kind: str
    psn_no: str
    setl_time: str
    fixmedins_code: str
    resolution: Resolution | None = None
    med_type_code: str = ""
    lines: tuple[FeeLine, ...] = ()
    acct_used: bool = True
    cancels: int | None = None


@dataclass
class History:
    """Persons' opening account balances and the events in the order they are settled."""

    balances: dict[str, int]
    events: list[Event] = field(default_factory=list)


def load_history_rules() -> RuleSet:
    return load_rules(bundled_rules_dir())


def _pick(rng: random.Random, weights: dict[str, tuple[str, float]]) -> str:
    draw = rng.random()
    for name, (_, weight) in weights.items():
        draw -= weight
        if draw < 0:
            return name
    return next(reversed(weights))


def _lines(rng: random.Random, rules: RuleSet, codes: Sequence[str], date: datetime.date, count: int) -> tuple[FeeLine, ...]:
    lines = []
    for seq in range(1, count + 1):
        entry = None
        while entry is None:
            code = rng.choice(codes)
            versions = [version for version in rules.catalog.versions(code) if version.in_force(date)]
            entry = versions[0] if versions else None
        price = rng.randrange(100, 50_000) * 10_000  # 1e-6 yuan: whole fen from 1 to 500 yuan a unit
        quantity = rng.choice((10_000, 20_000, 5_000, 30_000, 12_500))
        lines.append(FeeLine(
            feedetl_sn=str(seq), med_list_codg=code, charge_class=ChargeClass(entry.charge_class), price_micro=price,
            quantity=quantity, selfpay_prop=entry.selfpay_prop if entry.charge_class == ChargeClass.B else 0,
            price_cap_micro=entry.price_cap_micro,
        ))
    return tuple(lines)


def generate_history(claims: int, *, line_count: int = 20, seed: int = 2024, per_person: int = 4,
                     cancel_share: float = 0.05, rules: RuleSet | None = None, first_person: int = 1) -> History:
    """Return a history of ``claims`` settlements (cancels come on top), about ``per_person`` per person.

    Persons are numbered from ``first_person``, so histories generated in pieces do not share persons.
    """
    rng = random.Random(seed)
    rules = rules or load_history_rules()
    codes = sorted({code for code in _catalog_codes(rules)})
    history = History(balances={})
    start = datetime.date(2024, 1, 2)
    made = 0
    person = first_person - 1
    while made < claims:
        person += 1
        psn_no = f"P{person:09d}"
        history.balances[psn_no] = rng.randrange(0, 300_000)
        group = rng.choice(("active", "active", "active", "retired", "retired_70plus"))
        cvlserv = rng.random() < 0.08
        count = min(claims - made, rng.randint(1, 2 * per_person - 1))
        days = sorted(rng.sample(range(0, 355), count))
        for position, day in enumerate(days):
            med_type = _pick(rng, MED_TYPES)
            date = start + datetime.timedelta(days=day)
            event = Event(
                kind="settle", psn_no=psn_no, setl_time=f"{date.isoformat()} {rng.randrange(8, 18):02d}:{rng.randrange(60):02d}:00",
                fixmedins_code=rng.choice(INSTITUTIONS),
                resolution=Resolution(med_type, group, rng.choice(LEVELS[med_type]), cvlserv, None),
                med_type_code=MED_TYPES[med_type][0], lines=_lines(rng, rules, codes, date, line_count),
                acct_used=rng.random() < 0.85,
            )
            history.events.append(event)
            made += 1
            if rng.random() < cancel_share:
                # The cancel comes the next day at midnight, or the same evening when that is
                # the year's last day, and always before the person's next settlement.
                cancel_day = min(day + 1, 364)
                if position + 1 < len(days) and days[position + 1] <= cancel_day:
                    cancel_day = day
                cancel_date = start + datetime.timedelta(days=cancel_day)
                cancel_time = f"{cancel_date.isoformat()} 00:00:00" if cancel_day > day else f"{date.isoformat()} 23:59:00"
                history.events.append(Event(kind="cancel", psn_no=psn_no, setl_time=cancel_time,
                                            fixmedins_code=event.fixmedins_code, cancels=len(history.events) - 1))
    return history


def _catalog_codes(rules: RuleSet) -> list[str]:
    # The catalogue looks versions up by code only. The bundled sample is small, so probing
    # its code pattern is cheap and keeps this generator independent of the CSV layout.
    found = []
    for prefix in ("T-DRG-", "T-MAT-", "T-SVC-"):
        for number in range(10_000):
            code = f"{prefix}{number:04d}"
            if code in rules.catalog:
                found.append(code)
    return found


def _request(event: Event, index: int) -> SettlementRequest:
    return SettlementRequest(
        fixmedins_code=event.fixmedins_code, msgid=f"M{index:010d}", mdtrt_id=f"V{index:010d}", chrg_bchno=f"B{index:010d}",
        psn_no=event.psn_no, insuplc_admdvs=REGION, insutype=INSUTYPE, med_type=event.med_type_code,
        clr_type=_CLR_TYPES[event.med_type_code], setl_time=event.setl_time, acct_used=event.acct_used,
        feedetl_sns=tuple(line.feedetl_sn for line in event.lines), clr_optins=REGION,
    )


def _compute(event: Event, rules: RuleSet):
    policy = rules.policy(POLICY_ID, datetime.date.fromisoformat(event.setl_time[:10]))
    res = event.resolution
    assert res is not None
    params = policy.resolve(res.med_type, res.group, res.hosp_lv, res.cvlserv, res.maf_type)
    version = f"{policy.policy_id}@{policy.effective_from.isoformat()}"

    def compute(before: dict[str, int]) -> SettlementPlan:
        claim = ClaimInput(params=params, lines=event.lines, accumulators=dict(before), acct_used=event.acct_used)
        return SettlementPlan(result=engine.settle(claim), rule_version=version, claim=claim)

    return compute


def history_records(history: History, rules: RuleSet | None = None, *, first_txn: int = 1) -> list[ReplayRecord]:
    """Settle a history without a database; return its records, each person's together, in ledger order.

    Transaction ids (and so settlement ids and message ids) start at ``first_txn``.
    """
    rules = rules or load_history_rules()
    state: dict[str, dict[str, int]] = {}
    stored: dict[int, SettlementRecord] = {}
    records: list[ReplayRecord] = []
    for index, event in enumerate(history.events, start=first_txn - 1):
        event_index = index - first_txn + 1
        before = state.setdefault(event.psn_no, {key: 0 for key in ACCUMULATOR_KEYS} | {"acct_balc": history.balances[event.psn_no]})
        txn_id = index + 1
        if event.kind == "settle":
            request = _request(event, index)
            plan = _compute(event, rules)(dict(before))
            record = build_settlement_record(request, plan, before, txn_id=txn_id, batch_attempt=0, digest="")
        else:
            original = stored[event.cancels]  # type: ignore[index]
            request = CancelRequest(fixmedins_code=event.fixmedins_code, msgid=f"M{index:010d}", setl_id=original.setl_id,
                                    mdtrt_id=original.mdtrt_id, psn_no=event.psn_no, setl_time=event.setl_time)
            result = reverse_result(original, before)
            record = build_cancel_record(request, original, result, before, txn_id=txn_id, digest="")
        stored[event_index] = record
        state[event.psn_no] = dict(record.accumulators_after)
        resolution = event.resolution if event.kind == "settle" else history.events[event.cancels].resolution  # type: ignore[index]
        records.append(from_settlement_record(record, resolution))
    records.sort(key=lambda record: (record.psn_no, record.seq))
    return records


async def apply_history(store, history: History, rules: RuleSet | None = None, *, concurrency: int = 32) -> None:
    """Settle a history through a ledger store: deposits first, then each person's events in order.

    Persons run concurrently (at most ``concurrency`` at a time) so that the store can
    commit their writes in groups.
    """
    rules = rules or load_history_rules()
    for psn_no, balance in history.balances.items():
        if balance:
            await store.deposit(DepositRequest(msgid=f"open:{psn_no}", psn_no=psn_no, insuplc_admdvs=REGION,
                                               insutype=INSUTYPE, amount=balance, period="2024"))
    by_person: dict[str, list[int]] = {}
    for index, event in enumerate(history.events):
        by_person.setdefault(event.psn_no, []).append(index)
    limit = asyncio.Semaphore(concurrency)
    settled: dict[int, SettlementRecord] = {}

    async def run(indices: list[int]) -> None:
        async with limit:
            for index in indices:
                event = history.events[index]
                if event.kind == "settle":
                    settled[index] = await store.settle(_request(event, index), _compute(event, rules))
                else:
                    original = settled[event.cancels]  # type: ignore[index]
                    await store.cancel(CancelRequest(
                        fixmedins_code=event.fixmedins_code, msgid=f"M{index:010d}", setl_id=original.setl_id,
                        mdtrt_id=original.mdtrt_id, psn_no=event.psn_no, setl_time=event.setl_time,
                    ))

    await asyncio.gather(*(run(indices) for indices in by_person.values()))


