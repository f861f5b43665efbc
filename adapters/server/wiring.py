"""Build the server's services at startup and release them at shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
from typing import Any

from adapters.server import state
from adapters.server.services import Clock, ServerConfig, Services
from adapters.server.sqldb import Database, open_database
from settlement.errors import ErrorCode, SettlementError
from settlement.persons import Institution, Person, read_institutions, read_persons
from settlement.policy import load_rules
from settlement.store import DepositRequest

__all__ = ["build_services", "close_services", "load_persons", "prepare_ledger", "read_person_file", "read_institution_file"]

logger = logging.getLogger("settlement.server")


def read_person_file(path: str | pathlib.Path) -> list[Person]:
    """Read persons from a ``.json`` file (a list, or ``{"persons": [...]}``) or a ``.csv`` file."""
    path = pathlib.Path(path)
    if path.suffix.lower() == ".csv":
        import csv

        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [dict(row) for row in csv.DictReader(handle)]
        return read_persons(rows, path.name)
    return read_persons(json.loads(path.read_text(encoding="utf-8")), path.name)


def read_institution_file(path: str | pathlib.Path) -> list[Institution]:
    path = pathlib.Path(path)
    return read_institutions(json.loads(path.read_text(encoding="utf-8")), path.name)


async def load_persons(db: Database, ledger: Any, persons: list[Person], *, year: int, batch: str) -> int:
    """Store persons and cards, and fund each personal account once to its opening ``acct_balc``.

    ``acct_balc`` in a persons file is the opening balance. The first load of a file
    deposits the difference between it and the current balance, under one key per file
    (``batch``) and person. A later load of the same file, such as every restart of
    ``settlement serve``, deposits nothing, so money spent since is not put back.
    """
    async with db.transaction() as conn:
        for person in persons:
            await state.upsert_person(conn, person)

    deposits = []
    for person in persons:
        current = (await ledger.accumulators(person.psn_no, year)).get("acct_balc", 0)
        if person.acct_balc != current:
            deposits.append(
                DepositRequest(
                    msgid=f"{batch}/{person.psn_no}/opening", psn_no=person.psn_no,
                    insuplc_admdvs=person.insuplc_admdvs, insutype=person.insutype, amount=person.acct_balc - current,
                    period=str(year), origin="persons-load", memo="opening balance of the personal account from a persons file",
                )
            )
    # One deposit per person; the ledger's queue commits concurrent ones in one batch.
    outcomes = await asyncio.gather(*(ledger.deposit(deposit) for deposit in deposits), return_exceptions=True)
    for deposit, outcome in zip(deposits, outcomes, strict=True):
        # The key was used with another amount: this file funded the account before, and the
        # balance has moved since. The opening balance is not funded twice.
        if isinstance(outcome, SettlementError) and outcome.code is ErrorCode.MSGID_REUSED:
            logger.info("server: opening balance already funded psn_no=%s file=%s", deposit.psn_no, batch)
        elif isinstance(outcome, BaseException):
            raise outcome
    return len(persons)


async def load_institutions(db: Database, institutions: list[Institution]) -> None:
    async with db.transaction() as conn:
        for institution in institutions:
            await state.upsert_institution(conn, institution)


async def prepare_ledger(config: ServerConfig) -> None:
    """Apply the pending migrations and load the seed files, then close the connections.

    ``settlement serve --workers N`` runs this once in the parent process, so that N workers
    starting together do not each migrate and load the same files.
    """
    from adapters.ledger import open_store

    await _migrate(config)
    db = await open_database(config.ledger_dsn, schema=config.pg_schema)
    try:
        ledger = await open_store(config.ledger_dsn)
        try:
            await _load_seed_files(config, db, ledger, Clock(config.clock_start))
        finally:
            await ledger.close()
    finally:
        await db.close()


async def _migrate(config: ServerConfig) -> None:
    from adapters.ledger import migrate_ledger

    # The ledger's migration run applies the server's tables too (adapters/server/migrations).
    applied = await migrate_ledger(config.ledger_dsn)
    if applied:
        logger.info("server: migrations applied %s", ", ".join(applied))


async def _load_seed_files(config: ServerConfig, db: Database, ledger: Any, clock: Clock) -> None:
    if config.institutions_file:
        await load_institutions(db, read_institution_file(config.institutions_file))
    if config.persons_file:
        persons = read_person_file(config.persons_file)
        count = await load_persons(db, ledger, persons, year=clock.now().year, batch=pathlib.Path(config.persons_file).name)
        logger.info("server: persons loaded count=%d file=%s", count, config.persons_file)


async def build_services(config: ServerConfig, *, prepared: bool = False) -> Services:
    """Open the databases, apply the server's migrations, load rules and the optional seed files.

    With ``prepared`` (a worker process after ``prepare_ledger``), skip the migrations and the
    seed files and only open the databases and read the institutions.
    """
    from adapters.ledger import open_store

    rules = load_rules(config.rules_dir)
    if not prepared:
        await _migrate(config)
    db = await open_database(config.ledger_dsn, schema=config.pg_schema)
    ledger = await open_store(config.ledger_dsn)
    clock = Clock(config.clock_start)
    services = Services(config=config, db=db, ledger=ledger, rules=rules, clock=clock)
    if not prepared:
        await _load_seed_files(config, db, ledger, clock)

    async with db.transaction() as conn:
        services.institutions = await state.load_institutions(conn)
    logger.info("server: ready institutions=%d rules=%s", len(services.institutions), config.rules_dir)
    return services


async def close_services(services: Services) -> None:
    await services.ledger.close()
    await services.db.close()
    logger.info("server: stopped")
