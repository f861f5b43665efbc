"""Stored state of inpatient stays beyond what outpatient visits keep: discharge and single-line cancels.

A stay is a row of ``srv_visit`` (medical type 2x). Its discharge (2402) is kept in the
row's ``detail`` JSON under ``dscginfo``, so a discharge cancel (2405) removes one key and
no table changes shape.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.server.sqldb import Connection

__all__ = ["cancel_line", "discharge_of", "set_discharge"]


async def _detail(conn: Connection, mdtrt_id: str) -> dict[str, Any]:
    return json.loads(await conn.fetchval("SELECT detail FROM srv_visit WHERE mdtrt_id = $1", mdtrt_id) or "{}")


async def discharge_of(conn: Connection, mdtrt_id: str) -> dict[str, Any] | None:
    """Return the stay's recorded discharge (``endtime`` and the 2402 fields), or None while in hospital."""
    return (await _detail(conn, mdtrt_id)).get("dscginfo")


async def set_discharge(conn: Connection, mdtrt_id: str, discharge: dict[str, Any] | None) -> None:
    """Record a discharge, or clear it with ``None`` (2405)."""
    detail = await _detail(conn, mdtrt_id)
    if discharge is None:
        detail.pop("dscginfo", None)
    else:
        detail["dscginfo"] = discharge
    await conn.execute("UPDATE srv_visit SET detail = $1 WHERE mdtrt_id = $2", json.dumps(detail, ensure_ascii=False), mdtrt_id)


async def cancel_line(conn: Connection, mdtrt_id: str, feedetl_sn: str, msgid: str) -> int:
    """Withdraw one live line of a stay, with the refund lines that point at it; return how many rows."""
    count = await conn.fetchval(
        "SELECT count(*) FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL AND (feedetl_sn = $2 OR init_feedetl_sn = $2)",
        mdtrt_id, feedetl_sn,
    )
    await conn.execute(
        "UPDATE srv_fee_line SET cancelled_by = $1 WHERE mdtrt_id = $2 AND cancelled_by IS NULL AND (feedetl_sn = $3 OR init_feedetl_sn = $3)",
        msgid, mdtrt_id, feedetl_sn,
    )
    return int(count)
