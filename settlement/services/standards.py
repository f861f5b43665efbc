"""Regional standards of the services: unemployment benefit and endowment personal account.

One JSON file per region under ``rules/services/`` (see ``bj-services.json``) holds dated
versions. Amounts are written as decimal strings in yuan and ratios as decimal strings
(``"0.0800"``), parsed exactly into fen and 1e-4 units. A file that cannot be read is
rejected whole with ``RULE_FILE_INVALID`` naming the file and the field.
"""

from __future__ import annotations

import datetime
import itertools
import json
from pathlib import Path
from typing import Any

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError

__all__ = ["BenefitBand", "PensionStandard", "RegionStandards", "ServiceStandards", "UnemploymentStandard", "load_standards"]


class BenefitBand(msgspec.Struct, frozen=True):
    """From ``min_years`` whole contribution years on, benefit lasts ``months`` months."""

    min_years: int
    months: int


class UnemploymentStandard(msgspec.Struct, frozen=True):
    """Benefit months by contribution years, the monthly benefit and the medical contribution, in fen."""

    min_contribution_years: int
    benefit_months: tuple[BenefitBand, ...]
    monthly_benefit: int
    medical_contribution_monthly: int


class PensionStandard(msgspec.Struct, frozen=True):
    """Contribution rate (1e-4), base limits (fen) and the crediting rate of each year (1e-4)."""

    contribution_rate: int
    base_min: int
    base_max: int
    interest_rates: dict[int, int]


class RegionStandards(msgspec.Struct, frozen=True):
    """One version of a region's standards, in force from ``effective_from`` to ``effective_to`` inclusive."""

    admdvs: str
    effective_from: datetime.date
    effective_to: datetime.date | None
    unemployment: UnemploymentStandard
    pension: PensionStandard
    source: str


class ServiceStandards:
    """Every version of every region, looked up by region and date."""

    def __init__(self, versions: list[RegionStandards]) -> None:
        self._by_region: dict[str, list[RegionStandards]] = {}
        for version in versions:
            self._by_region.setdefault(version.admdvs, []).append(version)

    def regions(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_region))

    def on(self, admdvs: str, on_date: datetime.date, what: str = "服务") -> RegionStandards:
        """Return the version in force on ``on_date``, or raise SERVICE_STANDARD_MISSING."""
        for version in self._by_region.get(admdvs, ()):
            if version.effective_from <= on_date and (version.effective_to is None or on_date <= version.effective_to):
                return version
        raise SettlementError(ErrorCode.SERVICE_STANDARD_MISSING, field=what, value=admdvs, detail=on_date.isoformat())


def _invalid(source: str, field: str, detail: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.RULE_FILE_INVALID, value=source, field=field, detail=detail, detail_en=detail_en)


def _int(node: dict[str, Any], name: str, source: str, where: str) -> int:
    value = node.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(source, f"{where}.{name}", "应为非负整数", "must be a non-negative integer")
    return value


def _date(value: Any, source: str, field: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _invalid(source, field, "日期格式应为 yyyy-MM-dd", "date must be yyyy-MM-dd") from None


def _amount(node: dict[str, Any], name: str, source: str, where: str) -> int:
    return money.parse_amount(node.get(name), f"{source}:{where}.{name}")


def _unemployment(node: Any, source: str, where: str) -> UnemploymentStandard:
    if not isinstance(node, dict):
        raise _invalid(source, where, "应为对象", "must be an object")
    bands_node = node.get("benefit_months")
    if not isinstance(bands_node, list) or not bands_node:
        raise _invalid(source, f"{where}.benefit_months", "应为非空列表", "must be a non-empty list")
    bands = []
    for index, band in enumerate(bands_node):
        band_where = f"{where}.benefit_months[{index}]"
        if not isinstance(band, dict):
            raise _invalid(source, band_where, "应为对象", "must be an object")
        bands.append(BenefitBand(_int(band, "min_years", source, band_where), _int(band, "months", source, band_where)))
    for earlier, later in itertools.pairwise(bands):
        if later.min_years <= earlier.min_years:
            raise _invalid(source, f"{where}.benefit_months", "min_years 须严格递增", "min_years must strictly increase")
    return UnemploymentStandard(
        min_contribution_years=_int(node, "min_contribution_years", source, where),
        benefit_months=tuple(bands),
        monthly_benefit=_amount(node, "monthly_benefit", source, where),
        medical_contribution_monthly=_amount(node, "medical_contribution_monthly", source, where),
    )


def _pension(node: Any, source: str, where: str) -> PensionStandard:
    if not isinstance(node, dict):
        raise _invalid(source, where, "应为对象", "must be an object")
    rates_node = node.get("interest_rates")
    if not isinstance(rates_node, dict):
        raise _invalid(source, f"{where}.interest_rates", "应为 年份: 利率 对象", "must be an object of year: rate")
    rates = {}
    for year, rate in rates_node.items():
        if not (isinstance(year, str) and year.isdigit() and len(year) == 4):
            raise _invalid(source, f"{where}.interest_rates", f"年份 {year} 应为 4 位数字", f"year {year} must be 4 digits")
        rates[int(year)] = money.parse_ratio(rate, f"{source}:{where}.interest_rates.{year}")
    standard = PensionStandard(
        contribution_rate=money.parse_ratio(node.get("contribution_rate"), f"{source}:{where}.contribution_rate"),
        base_min=_amount(node, "base_min", source, where),
        base_max=_amount(node, "base_max", source, where),
        interest_rates=rates,
    )
    if standard.base_min > standard.base_max:
        raise _invalid(source, f"{where}.base_min", "不能大于 base_max", "must not exceed base_max")
    return standard


def read_standards_file(path: Path) -> list[RegionStandards]:
    """Read one region's file into its versions; raise RULE_FILE_INVALID on any problem."""
    source = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(source, "$", f"无法读取：{error}", f"cannot be read: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
        raise _invalid(source, "versions", "应为版本列表", "must be a list of versions")
    admdvs = data.get("admdvs")
    if not (isinstance(admdvs, str) and len(admdvs) == 6 and admdvs.isdigit()):
        raise _invalid(source, "admdvs", "应为 6 位行政区划代码", "must be a 6-digit division code")

    versions = []
    for index, node in enumerate(data["versions"]):
        where = f"versions[{index}]"
        if not isinstance(node, dict):
            raise _invalid(source, where, "应为对象", "must be an object")
        effective_to = node.get("effective_to")
        versions.append(
            RegionStandards(
                admdvs=admdvs,
                effective_from=_date(node.get("effective_from"), source, f"{where}.effective_from"),
                effective_to=None if effective_to is None else _date(effective_to, source, f"{where}.effective_to"),
                unemployment=_unemployment(node.get("unemployment"), source, f"{where}.unemployment"),
                pension=_pension(node.get("pension"), source, f"{where}.pension"),
                source=source,
            )
        )
    return versions


def load_standards(directory: Path) -> ServiceStandards:
    """Load every ``*.json`` file of ``directory`` (normally ``rules/services``)."""
    versions: list[RegionStandards] = []
    for path in sorted(directory.glob("*.json")):
        versions.extend(read_standards_file(path))
    return ServiceStandards(versions)
