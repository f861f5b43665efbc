"""Load a rules directory (policies and catalogue) into a ``RuleSet``, all or nothing.

Layout of a rules directory::

    policies/**/*.json   one policy version per file (format in schema.py and rules/README.md)
    catalogs/**/*.csv    catalogue versions (format in settlement/catalog.py), *.md skipped

Any problem rejects the whole load with a ``SettlementError`` naming the file (relative
to the rules directory), the field path and the reason, so a half-valid rule set is
never served.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from settlement.catalog import Catalog, CatalogEntry, read_catalog_csv
from settlement.errors import ErrorCode, SettlementError
from settlement.policy.compile import compile_policy
from settlement.policy.model import Policy
from settlement.policy.schema import PolicyFile, split_validation_error

__all__ = ["RuleSet", "load_rules", "read_policy_file"]

_DECODER = msgspec.json.Decoder(PolicyFile)


class RuleSet:
    """Every policy version and the catalogue of one rules directory."""

    __slots__ = ("_by_region", "_versions", "catalog", "root")

    def __init__(self, policies: list[Policy], catalog: Catalog, root: Path | None = None) -> None:
        """Index ``policies``. Raises ``RULE_DATES_OVERLAP`` when two versions could be in force on one day.

        Two versions overlap when they share a ``policy_id``, or when they serve the same
        ``admdvs`` and ``insutype``, because ``policy_for`` must find at most one.
        """
        self.root = root
        self.catalog = catalog
        versions: dict[str, list[Policy]] = {}
        for policy in policies:
            versions.setdefault(policy.policy_id, []).append(policy)
        for group in versions.values():
            group.sort(key=lambda policy: policy.effective_from)
        self._versions = {policy_id: tuple(group) for policy_id, group in versions.items()}
        self._by_region: dict[tuple[str, str], list[Policy]] = {}
        for group in self._versions.values():
            for policy in group:
                self._by_region.setdefault((policy.admdvs, policy.insutype), []).append(policy)
        _check_overlaps(policies)

    def policy_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._versions))

    def versions(self, policy_id: str) -> tuple[Policy, ...]:
        """Return the versions of ``policy_id`` sorted by ``effective_from`` (empty when unknown)."""
        return self._versions.get(policy_id, ())

    def policy(self, policy_id: str, on_date: datetime.date) -> Policy:
        """Return the version of ``policy_id`` in force on ``on_date``, or raise ``NO_POLICY_IN_FORCE``."""
        for policy in self._versions.get(policy_id, ()):
            if policy.in_force(on_date):
                return policy
        raise SettlementError(ErrorCode.NO_POLICY_IN_FORCE, field="policy_id", value=policy_id, detail=on_date.isoformat())

    def policy_for(self, admdvs: str, insutype: str, on_date: datetime.date) -> Policy:
        """Return the policy of a pooling region and insurance type in force on ``on_date``.

        Raises ``NO_POLICY_IN_FORCE`` when none is.
        """
        for policy in self._by_region.get((admdvs, insutype), ()):
            if policy.in_force(on_date):
                return policy
        raise SettlementError(
            ErrorCode.NO_POLICY_IN_FORCE, field="admdvs/insutype", value=f"{admdvs}/{insutype}", detail=on_date.isoformat()
        )


def load_rules(directory: str | Path) -> RuleSet:
    """Load ``policies/**/*.json`` and ``catalogs/**`` under ``directory`` into a ``RuleSet``.

    Raises ``RULE_FILE_INVALID`` when the directory or a file cannot be read or fails a
    check, ``RULE_BANDS_ORDER`` for a band scale out of order and ``RULE_DATES_OVERLAP``
    for versions in force on the same day.
    """
    root = Path(directory)
    if not root.is_dir():
        raise SettlementError(
            ErrorCode.RULE_FILE_INVALID, field="", value=str(root), detail="规则目录不存在", detail_en="the rules directory does not exist"
        )

    policies = [read_policy_file(path, _relative(path, root)) for path in _files(root / "policies", "*.json")]
    entries: list[CatalogEntry] = []
    for path in _files(root / "catalogs", "*"):
        if path.suffix == ".md":
            continue
        if path.suffix != ".csv":
            raise SettlementError(
                ErrorCode.RULE_FILE_INVALID,
                field="",
                value=_relative(path, root),
                detail="目录文件必须是 .csv",
                detail_en="catalogue files must be .csv",
            )
        entries.extend(read_catalog_csv(path, _relative(path, root)))

    return RuleSet(policies, Catalog(entries), root)


def read_policy_file(path: Path, source: str | None = None) -> Policy:
    """Read, decode and check one policy file, naming it ``source`` in messages."""
    source = str(path) if source is None else source
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SettlementError(ErrorCode.RULE_FILE_INVALID, field="", value=source, detail=str(error)) from error

    try:
        spec = _DECODER.decode(data)
    except msgspec.ValidationError as error:
        field, reason = split_validation_error(str(error))
        if "[...]" in field:
            field = _name_map_key(data, field)
        raise SettlementError(ErrorCode.RULE_FILE_INVALID, field=field, value=source, detail=reason) from error
    except msgspec.DecodeError as error:
        raise SettlementError(
            ErrorCode.RULE_FILE_INVALID, field="(JSON)", value=source, detail=f"不是合法的 JSON：{error}", detail_en=f"not valid JSON: {error}"
        ) from error

    return compile_policy(spec, source)


def _name_map_key(data: bytes, field: str) -> str:
    """Replace msgspec's ``[...]`` in the path of an error inside a string map with the offending key.

    Maps of objects are decoded per key in compile.py. The maps left here contain strings,
    so the offending entry is the first whose value is not a string.
    """
    prefix, _, rest = field.partition("[...]")
    target: Any = msgspec.json.decode(data)
    for key in prefix.split("."):
        if not isinstance(target, dict) or key not in target:
            return field
        target = target[key]
    if not isinstance(target, dict):
        return field
    for key, value in target.items():
        if not isinstance(value, str):
            return f"{prefix}.{key}{rest}"
    return field


def _files(directory: Path, pattern: str) -> Iterator[Path]:
    if not directory.is_dir():
        return iter(())
    # Sorted so that the first error reported does not depend on the file system's order.
    return iter(sorted(path for path in directory.rglob(pattern) if path.is_file()))


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _check_overlaps(policies: list[Policy]) -> None:
    ordered = sorted(policies, key=lambda policy: (policy.effective_from, policy.source))
    for index, later in enumerate(ordered):
        for earlier in ordered[:index]:
            same_id = earlier.policy_id == later.policy_id
            same_region = earlier.admdvs == later.admdvs and earlier.insutype == later.insutype
            if (same_id or same_region) and _dates_overlap(earlier, later):
                raise SettlementError(
                    ErrorCode.RULE_DATES_OVERLAP,
                    field="effective_from",
                    value=later.source,
                    detail=f"{earlier.source}（{earlier.policy_id}，{_date_range(earlier)}）",
                    detail_en=f"{earlier.source} ({earlier.policy_id}, {_date_range(earlier)})",
                )


def _dates_overlap(first: Policy, second: Policy) -> bool:
    first_ends_after = first.effective_to is None or first.effective_to >= second.effective_from
    second_ends_after = second.effective_to is None or second.effective_to >= first.effective_from
    return first_ends_after and second_ends_after


def _date_range(policy: Policy) -> str:
    end = policy.effective_to.isoformat() if policy.effective_to is not None else "…"
    return f"{policy.effective_from.isoformat()}..{end}"
