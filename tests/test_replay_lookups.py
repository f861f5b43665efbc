"""Columnar replay's lookups return the same values as the per-item code they replace.

``StringTable.find`` searches a table's sorted key index and must return what a dict of
the table's strings returns, for names in the table and names that only resemble them.
``Resolver.catalog_rows`` finds the catalogue version in force on many dates at once and
must return ``Resolver.catalog_row`` of each date.
"""

from __future__ import annotations

import datetime

import numpy as np

from bench.replay_workload import load_history_rules
from settlement.catalog import Catalog, CatalogEntry, read_catalog_csv
from settlement.paths import bundled_rules_dir
from settlement.policy.loader import RuleSet
from settlement.replay.columns import StringTable
from settlement.replay.resolve import Resolver
from settlement.types import ChargeClass

ACCOUNTS = [
    "fund:110100:310:310100", "personal:P0000001", "personal:P0000002", "personal:None", "psn_cash:110100:310",
    "medins_payable:H11010100001", "medins_cash:H11010100001", "personal:患者甲", "", "personal:P00000010",
]
PROBES = [
    *ACCOUNTS,
    "personal:P000000", "personal:P0000003", "personal:P00000010x", "personal:P00000010" + "0" * 40, "personal:患者",
    "personal:P0000001\x00", "\x00", "fund:110100:310:310100 ", "zzz", "Personal:P0000001",
    # Longer than the widest key, which it would match if cut to that width.
    "medins_payable:H11010100001X",
]


def _table(strings: list[str]) -> StringTable:
    return StringTable.from_strings(strings)


def _by_dict(strings: list[str], probes: list[str]) -> list[int]:
    ids = {value: number for number, value in enumerate(strings)}
    return [ids.get(probe, -1) for probe in probes]


def test_find_by_index_matches_dict():
    table = _table(ACCOUNTS).with_index()

    assert table.keys is not None
    assert table.find(PROBES).tolist() == _by_dict(ACCOUNTS, PROBES)


def test_find_without_index_matches_dict():
    table = _table(ACCOUNTS)

    assert table.keys is None
    assert table.find(PROBES).tolist() == _by_dict(ACCOUNTS, PROBES)


def test_find_in_empty_table():
    table = _table([]).with_index()

    assert table.find(["personal:P0000001", ""]).tolist() == [-1, -1]
    assert table.find([]).tolist() == []


def test_no_index_for_trailing_nul():
    strings = ["personal:P1", "personal:P1\x00"]
    table = _table(strings).with_index()

    assert table.keys is None
    assert table.find(strings).tolist() == [0, 1]


def _dates(first: str, last: str) -> list[datetime.date]:
    start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    return [start + datetime.timedelta(days=offset) for offset in range((end - start).days + 1)]


def _check_catalog_rows(resolver: Resolver, codes: list[str], dates: list[datetime.date]) -> None:
    days = np.array([date.toordinal() for date in dates], dtype=np.int64)
    for code in codes:
        expected = [list(resolver.catalog_row(code, date.isoformat())) for date in dates]
        assert resolver.catalog_rows(code, days).tolist() == expected, code


def test_catalog_rows_bundled_catalog():
    rules = load_history_rules()
    entries = [entry for path in sorted((bundled_rules_dir() / "catalogs").glob("*.csv")) for entry in read_catalog_csv(path)]
    codes = [*dict.fromkeys(entry.med_list_codg for entry in entries), "NOT-IN-CATALOG"]

    assert any(len(rules.catalog.versions(code)) > 1 for code in codes)

    _check_catalog_rows(Resolver(rules), codes, _dates("2022-12-30", "2025-01-02"))


def test_catalog_rows_gap_between_versions():
    def entry(code: str, charge_class: ChargeClass, ratio: int, cap: int | None, first: str, last: str | None) -> CatalogEntry:
        return CatalogEntry(code, "test item", charge_class, ratio, cap, datetime.date.fromisoformat(first),
                            datetime.date.fromisoformat(last) if last else None)

    catalog = Catalog([
        entry("GAP", ChargeClass.B, 1000, 5_000_000, "2024-01-01", "2024-03-31"),
        entry("GAP", ChargeClass.A, 0, None, "2024-05-01", "2024-05-31"),
        entry("GAP", ChargeClass.C, 2500, 7_000_000, "2024-08-01", None),
        entry("ONE", ChargeClass.B, 2000, None, "2024-02-29", "2024-02-29"),
    ])
    resolver = Resolver(RuleSet([], catalog))

    _check_catalog_rows(resolver, ["GAP", "ONE", "NONE"], _dates("2023-12-30", "2024-09-02"))
