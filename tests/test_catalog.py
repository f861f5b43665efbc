"""Catalogue files and dated lookups."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from settlement.catalog import CATALOG_COLUMNS, Catalog, CatalogEntry, read_catalog_csv
from settlement.errors import ErrorCode, SettlementError
from settlement.paths import bundled_rules_dir
from settlement.policy import load_rules
from settlement.types import ChargeClass

HEADER = ",".join(CATALOG_COLUMNS) + "\n"


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def sample_catalog() -> Catalog:
    return load_rules(bundled_rules_dir()).catalog


def test_sample_catalog_has_vector_codes():
    catalog = sample_catalog()

    day = datetime.date(2024, 5, 28)
    syringe = catalog.lookup("T-MAT-0001", day)
    assert syringe.charge_class is ChargeClass.A
    assert syringe.price_cap_micro == 2_800_000
    injection = catalog.lookup("T-DRG-0005", day)
    assert (injection.charge_class, injection.selfpay_prop, injection.price_cap_micro) == (ChargeClass.B, 2000, 100_000_000)
    assert catalog.lookup("T-DRG-0004", day).charge_class is ChargeClass.C


def test_price_cap_changes_by_date():
    catalog = sample_catalog()

    assert catalog.lookup("T-MAT-0001", datetime.date(2023, 12, 31)).price_cap_micro == 3_200_000
    assert catalog.lookup("T-MAT-0001", datetime.date(2024, 1, 1)).price_cap_micro == 2_800_000
    assert catalog.lookup("T-MAT-9002", datetime.date(2024, 2, 29)).price_cap_micro == 4_000_000
    assert catalog.lookup("T-MAT-9002", datetime.date(2024, 3, 1)).price_cap_micro == 3_500_000


def test_class_b_ratio_changes_mid_year():
    catalog = sample_catalog()

    assert catalog.lookup("T-DRG-9001", datetime.date(2024, 6, 30)).selfpay_prop == 1000
    assert catalog.lookup("T-DRG-9001", datetime.date(2024, 7, 1)).selfpay_prop == 500
    assert len(catalog.versions("T-DRG-9001")) == 2


def test_unknown_code_names_field_value_and_date():
    catalog = sample_catalog()

    with pytest.raises(SettlementError) as raised:
        catalog.lookup("T-NOPE-0001", datetime.date(2024, 5, 1), field="feedetail[3].med_list_codg")

    error = raised.value
    assert error.code is ErrorCode.UNKNOWN_CATALOG_CODE
    assert error.field == "feedetail[3].med_list_codg"
    assert error.value == "T-NOPE-0001"
    assert error.detail == "2024-05-01"


def test_code_not_yet_in_force():
    catalog = sample_catalog()

    with pytest.raises(SettlementError) as raised:
        catalog.lookup("T-DRG-0001", datetime.date(2023, 6, 1))

    assert raised.value.code is ErrorCode.UNKNOWN_CATALOG_CODE


def test_gap_between_versions_not_in_force(tmp_path):
    path = write_csv(
        tmp_path / "gap.csv",
        ["X1,甲,02,0.1000,,2024-01-01,2024-03-31", "X1,甲,02,0.2000,,2024-05-01,"],
    )
    catalog = Catalog(read_catalog_csv(path))

    assert catalog.lookup("X1", datetime.date(2024, 3, 31)).selfpay_prop == 1000
    assert catalog.lookup("X1", datetime.date(2024, 5, 1)).selfpay_prop == 2000
    with pytest.raises(SettlementError) as raised:
        catalog.lookup("X1", datetime.date(2024, 4, 15))
    assert raised.value.code is ErrorCode.UNKNOWN_CATALOG_CODE


def test_versions_given_out_of_order_are_sorted(tmp_path):
    path = write_csv(
        tmp_path / "order.csv",
        ["X2,乙,01,0,5.00,2025-01-01,", "X2,乙,01,0,6.00,2024-01-01,2024-12-31"],
    )
    catalog = Catalog(read_catalog_csv(path))

    assert [entry.begndate.year for entry in catalog.versions("X2")] == [2024, 2025]
    assert catalog.lookup("X2", datetime.date(2025, 2, 1)).price_cap_micro == 5_000_000


def test_overlapping_versions_rejected(tmp_path):
    path = write_csv(
        tmp_path / "overlap.csv",
        ["X3,丙,02,0.1000,,2024-01-01,2024-06-30", "X3,丙,02,0.2000,,2024-06-30,"],
    )

    with pytest.raises(SettlementError) as raised:
        Catalog(read_catalog_csv(path, "overlap.csv"))

    assert raised.value.code is ErrorCode.RULE_FILE_INVALID
    assert raised.value.field == "X3.begndate"
    assert raised.value.value == "overlap.csv:3"
    assert "overlap.csv:2" in raised.value.detail


def test_open_ended_version_overlaps_later_one():
    first = CatalogEntry("X4", "丁", ChargeClass.A, 0, None, datetime.date(2024, 1, 1), None, "a:2")
    second = CatalogEntry("X4", "丁", ChargeClass.A, 0, None, datetime.date(2025, 1, 1), None, "a:3")

    with pytest.raises(SettlementError) as raised:
        Catalog([first, second])

    assert raised.value.code is ErrorCode.RULE_FILE_INVALID


BAD_ROWS = [
    pytest.param("Y1,戊,04,0,,2024-01-01,", "line 2: chrgitm_lv", id="unknown-class"),
    pytest.param("Y1,戊,02,1.5,,2024-01-01,", "line 2: selfpay_prop", id="ratio-above-one"),
    pytest.param("Y1,戊,01,0.1000,,2024-01-01,", "line 2: selfpay_prop", id="class-a-with-selfpay"),
    pytest.param("Y1,戊,01,0,2.1234567,2024-01-01,", "line 2: pric_uplmt_amt", id="cap-seven-decimals"),
    pytest.param("Y1,戊,01,0,-2.00,2024-01-01,", "line 2: pric_uplmt_amt", id="negative-cap"),
    pytest.param("Y1,戊,01,0,,2024-13-01,", "line 2: begndate", id="bad-date"),
    pytest.param("Y1,戊,01,0,,20240101,", "line 2: begndate", id="compact-date"),
    pytest.param("Y1,戊,01,0,,2024-06-01,2024-05-31", "line 2: enddate", id="end-before-begin"),
    pytest.param(",戊,01,0,,2024-01-01,", "line 2: med_list_codg", id="empty-code"),
    pytest.param("Y1,戊,01,0,,2024-01-01", "line 2", id="missing-column"),
]


@pytest.mark.parametrize(("row", "field"), BAD_ROWS)
def test_bad_catalog_row_rejected(tmp_path, row, field):
    path = write_csv(tmp_path / "bad.csv", [row])

    with pytest.raises(SettlementError) as raised:
        read_catalog_csv(path, "bad.csv")

    assert raised.value.code is ErrorCode.RULE_FILE_INVALID
    assert raised.value.value == "bad.csv"
    assert raised.value.field == field


def test_bad_header_rejected(tmp_path):
    path = write_csv(tmp_path / "header.csv", ["Y1,戊,01,0,,2024-01-01,"], header="code,name,class\n")

    with pytest.raises(SettlementError) as raised:
        read_catalog_csv(path)

    assert raised.value.field == "line 1"


def test_bom_columns_in_any_order_and_blank_lines(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffbegndate,enddate,med_list_codg,name,chrgitm_lv,selfpay_prop,pric_uplmt_amt\n"
        "2024-01-01,,Z1,\"含,逗号的名称\",02,0.05,12.5\n"
        "\n".encode("utf-8")
    )

    (entry,) = read_catalog_csv(path)

    assert entry.med_list_codg == "Z1"
    assert entry.name == "含,逗号的名称"
    assert (entry.selfpay_prop, entry.price_cap_micro) == (500, 12_500_000)


def test_not_utf8_rejected(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "Y1,测试,01,0,,2024-01-01,\n").encode("gbk"))

    with pytest.raises(SettlementError) as raised:
        read_catalog_csv(path)

    assert raised.value.code is ErrorCode.RULE_FILE_INVALID
    assert "UTF-8" in raised.value.message_en


def test_hundred_thousand_items_load_and_look_up(tmp_path):
    rules = tmp_path / "rules"
    (rules / "catalogs").mkdir(parents=True)
    (rules / "policies").mkdir()
    count = 100_000
    with (rules / "catalogs" / "big.csv").open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for number in range(count):
            code = f"BIG{number:06d}"
            if number % 10 == 0:
                # Every tenth item changes its cap in July.
                handle.write(f"{code},项目{number},02,0.1000,{number % 500 + 1}.50,2024-01-01,2024-06-30\n")
                handle.write(f"{code},项目{number},02,0.1000,{number % 500 + 1}.25,2024-07-01,\n")
            else:
                handle.write(f"{code},项目{number},0{number % 3 + 1},{'0' if number % 3 == 0 else '0.2000'},,2024-01-01,\n")

    catalog = load_rules(rules).catalog

    assert len(catalog) == count
    assert catalog.lookup("BIG000000", datetime.date(2024, 6, 30)).price_cap_micro == 1_500_000
    assert catalog.lookup("BIG000000", datetime.date(2024, 7, 1)).price_cap_micro == 1_250_000
    assert catalog.lookup("BIG099999", datetime.date(2024, 12, 31)).charge_class is ChargeClass.A
    assert catalog.lookup("BIG054321", datetime.date(2024, 3, 1)).selfpay_prop == 0
    assert catalog.lookup("BIG054322", datetime.date(2024, 3, 1)).charge_class is ChargeClass.B
    with pytest.raises(SettlementError):
        catalog.lookup("BIG100000", datetime.date(2024, 3, 1))
