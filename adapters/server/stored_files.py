"""The ``srv_file`` table: detail files uploaded by 9101 and 3202 result files, each under a ``file_qury_no``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.server.sqldb import Connection

__all__ = ["StoredFile", "find_file", "insert_file"]

FileKind = Literal["upload", "result"]


@dataclass(frozen=True)
class StoredFile:
    file_qury_no: str
    fixmedins_code: str
    kind: FileKind
    filename: str
    content: bytes
    dld_endtime: str


async def insert_file(conn: Connection, stored: StoredFile, *, stored_at: str, stored_by: str) -> None:
    await conn.execute(
        "INSERT INTO srv_file (file_qury_no, fixmedins_code, kind, filename, content, stored_at, dld_endtime, stored_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        stored.file_qury_no, stored.fixmedins_code, stored.kind, stored.filename, stored.content, stored_at, stored.dld_endtime, stored_by,
    )


async def find_file(conn: Connection, file_qury_no: str) -> StoredFile | None:
    """Return the stored file, whatever its institution. The caller checks who may read it."""
    row = await conn.fetchrow(
        "SELECT file_qury_no, fixmedins_code, kind, filename, content, dld_endtime FROM srv_file WHERE file_qury_no = $1", file_qury_no
    )
    if row is None:
        return None
    return StoredFile(
        file_qury_no=row["file_qury_no"], fixmedins_code=row["fixmedins_code"], kind=row["kind"], filename=row["filename"],
        content=bytes(row["content"]), dld_endtime=row["dld_endtime"],
    )
