"""The hash chain over settlement and cancel records: how it is linked, and that verify names each kind of tampering.

Tampering is done the way a person with database access would do it: the append-only
triggers are switched off (PostgreSQL) or dropped (SQLite) and the rows are edited in SQL.
"""

from __future__ import annotations

import asyncio
import decimal
import io
import itertools
import uuid

import msgspec
import pytest
from ledger_support import (
    ledger,
    settle_request,
    sql_in_transaction,
    sql_rows,
    toy_compute,
)

from adapters.cli.ledger import run_verify
from adapters.ledger.batch import decode_record
from settlement.chain import GENESIS, canonical_record_bytes, link_hash
from settlement.stored_record import LZ4_FRAME_MAGIC, record_json
from settlement.store import CancelRequest

STORES = ("sqlite", pytest.param("pg", marks=pytest.mark.postgres))
RECORDS = 6


async def _fill(store) -> list:
    """Settle five claims of three persons concurrently (so group commit batches them), then cancel the first."""
    requests = [settle_request(n, psn_no=f"P{n % 3:04d}") for n in range(1, RECORDS)]
    # A request body as the server decodes it: unsorted nested keys and Decimal amounts.
    body = {"setlinfo": {"medfee_sumamt": decimal.Decimal("100.50"), "acct_used_flag": "1"}, "fee_lines": [{"sn": "1", "amt": decimal.Decimal("1.20")}]}
    requests[1] = msgspec.structs.replace(requests[1], input=body)
    records = list(await asyncio.gather(*(store.settle(r, toy_compute(10_000 + n)) for n, r in enumerate(requests))))
    first = records[0]
    cancel = await store.cancel(
        CancelRequest(
            fixmedins_code=first.fixmedins_code, msgid="cancel-1", setl_id=first.setl_id, mdtrt_id=first.mdtrt_id,
            psn_no=first.psn_no, setl_time="2024-06-02 09:00:00",
        )
    )
    return records + [cancel]


async def _links(store) -> list[tuple]:
    return await sql_rows(store, "SELECT chain_seq, setl_id, prev_hash, record_hash, record FROM ledger_settlements ORDER BY chain_seq")


async def _unguarded(store, statements: list[tuple[str, tuple]]) -> None:
    """Run edits with the append-only triggers of ledger_settlements out of the way."""
    if store.dialect == "pg":
        statements = [("ALTER TABLE ledger_settlements DISABLE TRIGGER USER", ()), *statements,
                      ("ALTER TABLE ledger_settlements ENABLE TRIGGER USER", ())]
    else:
        statements = [("DROP TRIGGER ledger_settlements_no_update", ()), ("DROP TRIGGER ledger_settlements_no_delete", ()), *statements]
    await sql_in_transaction(store, statements)


@pytest.mark.parametrize("kind", STORES)
def test_chain_links_every_record(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            written = await _fill(store)
            links = await _links(store)

            assert [seq for seq, *_ in links] == list(range(1, RECORDS + 1))
            assert {setl_id for _, setl_id, *_ in links} == {r.setl_id for r in written}
            assert links[0][2] == GENESIS
            for (_, _, _, earlier_hash, _), (_, _, prev_hash, _, _) in itertools.pairwise(links):
                assert prev_hash == earlier_hash
            for _, _, prev_hash, stored_hash, body in links:
                body = bytes(body)
                assert link_hash(body, prev_hash) == stored_hash
                # New records are stored as canonical JSON in an LZ4 frame.
                assert body.startswith(LZ4_FRAME_MAGIC)
                assert canonical_record_bytes(decode_record(body)) == record_json(body)
            head = await sql_rows(store, "SELECT last_seq, last_hash FROM ledger_chain_head")
            assert head == [(RECORDS, links[-1][3])]

            report = await store.verify()
            assert report.ok, report.differences
            assert report.chain_break == ""
            assert report.counts["chain_links"] == RECORDS

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_plain_json_ledger_grows(kind, tmp_path):
    """Rows stored as plain JSON (the format before the LZ4 frame) stay valid beside framed rows."""

    async def scenario():
        async with ledger(kind, tmp_path) as store:
            written = await _fill(store)
            framed = [await store.get_settlement(record.setl_id) for record in written]

            # Rewrite every row as an older ledger stored it: the plain canonical JSON,
            # with each link hashed over those bytes, and the head moved to the new last hash.
            statements, prev_hash = [], GENESIS
            for seq, setl_id, _, _, body in await _links(store):
                plain = record_json(bytes(body))
                assert plain.startswith(b"{")
                new_hash = link_hash(plain, prev_hash)
                statements.append(("UPDATE ledger_settlements SET record = ?, prev_hash = ?, record_hash = ? WHERE setl_id = ?",
                                   (plain, prev_hash, new_hash, setl_id)))
                prev_hash = new_hash
            statements.append(("UPDATE ledger_chain_head SET last_hash = ?", (prev_hash,)))
            await _unguarded(store, statements)

            # Records read back the same, and a new settlement links onto the plain rows.
            assert [await store.get_settlement(record.setl_id) for record in written] == framed
            more = await store.settle(settle_request(RECORDS + 1, psn_no="P0001"), toy_compute(20_000))
            links = await _links(store)
            assert bytes(links[-1][4]).startswith(LZ4_FRAME_MAGIC)
            assert links[-1][1] == more.setl_id
            assert links[-1][2] == prev_hash

            report = await store.verify()
            assert report.ok, report.differences
            assert report.counts["chain_links"] == RECORDS + 1

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_chain_rejects_insert_that_skips_link(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            _, setl_id, _, _, body = (await _links(store))[-1]
            columns = "txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt, psn_no, insuplc_admdvs, " \
                "insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id, request_digest, rule_version, " \
                "catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, record"
            # A copy of the last record under a new id, linked to GENESIS instead of the last link.
            copy = (f"INSERT INTO ledger_settlements ({columns}, chain_seq, prev_hash, record_hash) "
                    f"SELECT txn_id + 1000, setl_id || 'X', kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno || 'X', batch_attempt, "
                    f"psn_no, insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id, "
                    f"request_digest, rule_version, catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay, "
                    f"psn_cash_pay, record, ?, ?, ? FROM ledger_settlements WHERE setl_id = ?")
            with pytest.raises(Exception, match="chain link"):
                await sql_in_transaction(store, [(copy, (RECORDS + 1, GENESIS, link_hash(bytes(body), GENESIS), setl_id))])
            assert len(await _links(store)) == RECORDS

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_verify_names_changed_amount(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            seq, setl_id, _, _, body = (await _links(store))[2]
            record = decode_record(bytes(body))
            amount = f'"medfee_sumamt":{record.outputs.medfee_sumamt}'.encode()
            assert amount in record_json(bytes(body))
            # An edit made in SQL writes plain JSON, which the stores still read.
            edited = record_json(bytes(body)).replace(amount, f'"medfee_sumamt":{record.outputs.medfee_sumamt + 100}'.encode())
            await _unguarded(store, [("UPDATE ledger_settlements SET record = ? WHERE setl_id = ?", (edited, setl_id))])

            report = await store.verify(lang="en")
            assert not report.ok
            assert report.chain_break.startswith(f"chain link {seq} (record {setl_id},")
            assert "the record was changed" in report.chain_break

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_verify_names_changed_amount_column(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            seq, setl_id, *_ = (await _links(store))[3]
            await _unguarded(store, [("UPDATE ledger_settlements SET psn_cash_pay = psn_cash_pay + 1 WHERE setl_id = ?", (setl_id,))])

            report = await store.verify(lang="en")
            assert report.chain_break.startswith(f"chain link {seq} (record {setl_id},")
            assert "column psn_cash_pay" in report.chain_break

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_verify_names_deleted_record(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            links = await _links(store)
            deleted_setl_id = links[2][1]
            next_seq, next_setl_id = links[3][0], links[3][1]
            await _unguarded(store, [("DELETE FROM ledger_settlements WHERE setl_id = ?", (deleted_setl_id,))])

            report = await store.verify(lang="en")
            assert report.chain_break.startswith(f"chain link {next_seq} (record {next_setl_id},")
            assert f"links {next_seq - 1} to {next_seq - 1} are missing" in report.chain_break

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_verify_names_deleted_last_record(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            last_setl_id = (await _links(store))[-1][1]
            await _unguarded(store, [("DELETE FROM ledger_settlements WHERE setl_id = ?", (last_setl_id,))])

            report = await store.verify(lang="en")
            assert report.chain_break.startswith(f"chain head names link {RECORDS}")
            assert f"the last link is link {RECORDS - 1}" in report.chain_break

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", STORES)
def test_verify_names_reordered_record(kind, tmp_path):
    async def scenario():
        async with ledger(kind, tmp_path) as store:
            await _fill(store)
            links = await _links(store)
            (seq_a, setl_a, *_), (seq_b, setl_b, *_) = links[1], links[2]
            swap = "UPDATE ledger_settlements SET chain_seq = ? WHERE setl_id = ?"
            await _unguarded(store, [(swap, (-1, setl_a)), (swap, (seq_a, setl_b)), (swap, (seq_b, setl_a))])

            report = await store.verify(lang="en")
            # The record moved forward now sits at seq_a and links to a hash that is not the link before it.
            assert report.chain_break.startswith(f"chain link {seq_a} (record {setl_b},")
            assert "a record was moved, removed or inserted here" in report.chain_break

            stdout, stderr = io.StringIO(), io.StringIO()
            status = await asyncio.to_thread(run_verify, store.test_dsn, 20, "en", stdout, stderr)
            assert status == 1
            assert f"first broken chain link: chain link {seq_a} (record {setl_b}," in stdout.getvalue()

    asyncio.run(scenario())


_OLD_HEADER = "INSERT INTO journal_transactions (txn_id, kind, origin, msgid, request_digest) VALUES ({0}, 'settle', 'H1', 'm{0}', 'd')"
_OLD_RECORD = (
    "INSERT INTO ledger_settlements (txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt, psn_no, "
    "insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, request_digest, rule_version, catalog_version, "
    "feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, record) VALUES ({0}, 'S{0}', 'settle', 'H1', 'm{0}', "
    "'M', 'B{0}', 0, 'P', '110100', '310', '11', '11', '', '2024-01-01 00:00:00', 2024, 'd', 'r', '', '[]', 0, 0, 0, 0, {1})"
)


def _assert_linked_in_txn_order(rows: list[tuple], head: tuple) -> None:
    previous = GENESIS
    for position, (txn_id, seq, prev_hash, stored_hash, body) in enumerate(rows, start=1):
        assert seq == position, txn_id
        assert prev_hash == previous, txn_id
        assert stored_hash == link_hash(bytes(body), prev_hash), txn_id
        previous = stored_hash
    assert tuple(head) == (len(rows), previous)


@pytest.mark.postgres
def test_migration_links_existing_records_pg():
    import asyncpg
    from ledger_support import PG_DSN, pg_dsn_with_schema

    from adapters.ledger import migrate, migrate_ledger

    async def scenario():
        schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            dsn = pg_dsn_with_schema(schema)
            conn = await asyncpg.connect(dsn)
            first = migrate.discover("pg")[0]
            await conn.execute(migrate.CREATE_TABLE_SQL)
            await conn.execute(first.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (1, $1, $2)", first.name, first.checksum)
            for txn_id in (3, 1, 2):
                async with conn.transaction():
                    await conn.execute(_OLD_HEADER.format(txn_id))
                    await conn.execute(_OLD_RECORD.format(txn_id, f"'\\x7b2274223a{txn_id:02x}7d'::bytea"))

            await migrate_ledger(dsn)
            rows = await conn.fetch("SELECT txn_id, chain_seq, prev_hash, record_hash, record FROM ledger_settlements ORDER BY txn_id")
            head = await conn.fetchrow("SELECT last_seq, last_hash FROM ledger_chain_head")
            await conn.close()
            _assert_linked_in_txn_order([tuple(row) for row in rows], tuple(head))
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()

    asyncio.run(scenario())


def test_migration_links_existing_records_sqlite(tmp_path):
    from adapters.ledger import migrate, migrate_ledger
    from adapters.ledger.sqlite import connect

    path = tmp_path / "old.sqlite3"
    conn = connect(path)
    first = migrate.discover("sqlite")[0]
    conn.execute(migrate.CREATE_TABLE_SQL)
    conn.executescript(first.sql)
    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (1, ?, ?)", (first.name, first.checksum))
    for txn_id in (3, 1, 2):
        conn.execute("BEGIN")
        conn.execute(_OLD_HEADER.format(txn_id))
        conn.execute(_OLD_RECORD.format(txn_id, f"X'7b2274223a{txn_id:02x}7d'"))
        conn.execute("DELETE FROM journal_open_transactions")
        conn.execute("COMMIT")
    conn.close()

    asyncio.run(migrate_ledger(f"sqlite://{path}"))
    conn = connect(path)
    rows = conn.execute("SELECT txn_id, chain_seq, prev_hash, record_hash, record FROM ledger_settlements ORDER BY txn_id").fetchall()
    head = conn.execute("SELECT last_seq, last_hash FROM ledger_chain_head").fetchone()
    conn.close()
    _assert_linked_in_txn_order(rows, head)
