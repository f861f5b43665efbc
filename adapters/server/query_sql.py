"""Read-only SQL of the query transactions, over the server's tables and the ledger's settlement table.

Both live in the same database, so these run on the server's ``Connection``. Times are
``yyyy-MM-dd HH:mm:ss`` text in every table, so text comparison is time order.
"""

from __future__ import annotations

from typing import Any

from adapters.server.sqldb import Connection

__all__ = ["fee_lines_of_batch", "settlements_of_person", "visit_of_institution", "visits_of_person"]

_VISIT_COLUMNS = (
    "mdtrt_id, fixmedins_code, psn_no, insutype, med_type, begntime, mdtrt_cert_type, ipt_otp_no, dise_codg, dise_name,"
    " detail, cancelled_by"
)


async def visits_of_person(
    conn: Connection, fixmedins_code: str, psn_no: str, begin: str, end: str, med_type: str | None, mdtrt_id: str | None
) -> list[Any]:
    """List the institution's visits of the person that began in [begin, end], cancelled ones included."""
    sql = f"SELECT {_VISIT_COLUMNS} FROM srv_visit WHERE fixmedins_code = $1 AND psn_no = $2 AND begntime >= $3 AND begntime <= $4"
    args: list[Any] = [fixmedins_code, psn_no, begin, end]
    # The optional filters are added as SQL only when sent: a "$5 IS NULL OR ..." test leaves
    # PostgreSQL unable to infer the parameter's type.
    if med_type is not None:
        args.append(med_type)
        sql += f" AND med_type = ${len(args)}"
    if mdtrt_id is not None:
        args.append(mdtrt_id)
        sql += f" AND mdtrt_id = ${len(args)}"
    return await conn.fetch(sql + " ORDER BY begntime, mdtrt_id", *args)


async def visit_of_institution(conn: Connection, mdtrt_id: str, fixmedins_code: str) -> Any | None:
    """Return the institution's visit row, with its diagnosis name, or None."""
    return await conn.fetchrow(f"SELECT {_VISIT_COLUMNS} FROM srv_visit WHERE mdtrt_id = $1 AND fixmedins_code = $2", mdtrt_id, fixmedins_code)


async def fee_lines_of_batch(conn: Connection, mdtrt_id: str, chrg_bchno: str) -> list[Any]:
    """List every line ever uploaded to a charge batch, withdrawn ones included, in upload order."""
    return await conn.fetch(
        "SELECT feedetl_sn, init_feedetl_sn, rxno, fee_ocur_time, med_list_codg, medins_list_codg, amount, price_micro, quantity,"
        " charge_class, selfpay_prop, price_cap_micro, fulamt_ownpay_amt, overlmt_amt, preselfpay_amt, inscp_scp_amt, seq, cancelled_by"
        " FROM srv_fee_line WHERE mdtrt_id = $1 AND chrg_bchno = $2 ORDER BY seq",
        mdtrt_id, chrg_bchno,
    )


async def settlements_of_person(conn: Connection, fixmedins_code: str, psn_no: str, begin: str, end: str) -> list[Any]:
    """List the institution's settlement and cancel records of the person with ``setl_time`` in [begin, end]."""
    return await conn.fetch(
        "SELECT setl_id, kind, original_setl_id, msgid, mdtrt_id, psn_no, fixmedins_code, insutype, med_type, clr_type, clr_optins,"
        " setl_time, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay FROM ledger_settlements"
        " WHERE fixmedins_code = $1 AND psn_no = $2 AND setl_time >= $3 AND setl_time <= $4 ORDER BY setl_time, txn_id",
        fixmedins_code, psn_no, begin, end,
    )
