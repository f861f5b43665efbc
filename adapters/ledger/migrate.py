"""Numbered SQL migrations: discovery, ordering and the record of what was applied.

Migration files are named ``NNNN_name.pg.sql`` (PostgreSQL only), ``NNNN_name.sqlite.sql``
(SQLite only) or ``NNNN_name.sql`` (both). They live in ``migrations/`` folders of the
``adapters`` packages: the ledger uses 0001-0099 in ``adapters/ledger/migrations`` and the
server uses 0100 and up in its own folder. Each one is applied once, in number order and
in its own database transaction, and recorded in ``schema_migrations`` with a checksum, so
that an edited migration is detected instead of silently skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

from settlement.errors import ErrorCode, SettlementError

__all__ = [
    "LEDGER_VERSIONS",
    "Migration",
    "check_applied",
    "discover",
    "migration_dirs",
]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(pg|sqlite))?\.sql$")
_ADAPTERS_DIR = Path(__file__).resolve().parent.parent

# The ledger's own numbers; a store refuses to open a ledger that lacks any of them.
LEDGER_VERSIONS = range(1, 100)

CREATE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migration_dirs() -> list[Path]:
    """Return every ``migrations`` folder of an ``adapters`` package, ledger first."""
    return sorted(_ADAPTERS_DIR.glob("*/migrations"), key=lambda path: (path.parent.name != "ledger", str(path)))


def discover(dialect: str, directories: list[Path] | None = None) -> list[Migration]:
    """Return the migrations for ``dialect`` (``pg`` or ``sqlite``) in version order.

    Raises MIGRATION_FAILED when two files claim the same version for the dialect.
    """
    found: dict[int, Migration] = {}
    for directory in directories if directories is not None else migration_dirs():
        for path in sorted(directory.glob("*.sql")):
            match = _NAME.match(path.name)
            if match is None or match.group(3) not in (None, dialect):
                continue
            version = int(match.group(1))
            if version in found:
                raise SettlementError(
                    ErrorCode.MIGRATION_FAILED,
                    value=path.name,
                    detail=f"版本号 {version} 与 {found[version].path} 重复",
                    detail_en=f"version {version} is also used by {found[version].path}",
                )
            found[version] = Migration(version, match.group(2), path, path.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


def pending(available: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """Return the migrations not yet applied; raise MIGRATION_FAILED if an applied one changed."""
    for migration in available:
        checksum = applied.get(migration.version)
        if checksum is not None and checksum != migration.checksum:
            raise SettlementError(
                ErrorCode.MIGRATION_FAILED,
                value=migration.path.name,
                detail="文件在执行后被修改（校验和不同）",
                detail_en="the file was changed after it was applied (checksum differs)",
            )
    return [migration for migration in available if migration.version not in applied]


def check_applied(location: str, dialect: str, applied: dict[int, str]) -> None:
    """Raise LEDGER_SCHEMA_OUTDATED unless every ledger migration of the dialect is applied."""
    missing = [m.path.name for m in discover(dialect) if m.version in LEDGER_VERSIONS and m.version not in applied]
    if missing:
        raise SettlementError(
            ErrorCode.LEDGER_SCHEMA_OUTDATED,
            value=location,
            detail="未执行 " + "、".join(missing),
            detail_en="not applied: " + ", ".join(missing),
        )
