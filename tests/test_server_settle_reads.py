"""The one-statement read of a 2207 finds the same person as the general path, or defers to it."""

import datetime

import pytest

from adapters.server import settle_reads
from adapters.server.handlers_settle import named_person_with_credential
from adapters.services import hooks, store
from settlement.errors import ErrorCode, SettlementError
from settlement.services.card import CardRecord, CardStatus
from tests.server_harness import ledger_dsn
from tests.services_support import ServicesHarness, run

BEFORE_RETIREMENT = datetime.date(2024, 5, 31)
RETIRED = datetime.date(2024, 6, 1)


async def _read(conn, psn_no: str, cert_type: str, cert_no: str, on_date: datetime.date):
    return await settle_reads.visit_batch_and_person(
        conn, mdtrt_id="NO-SUCH-VISIT", fixmedins_code="H99000000001", chrg_bchno="B1", psn_no=psn_no,
        cert_type=cert_type, cert_no=cert_no, on_date=on_date,
    )


async def _general(conn, psn_no: str, cert_type: str, cert_no: str, on_date: datetime.date):
    person = await named_person_with_credential(conn, psn_no, cert_type, cert_no, "input.data")
    return await hooks.person_on(conn, person, on_date)


async def _insert_card(conn, card_no: str, psn_no: str, status: CardStatus) -> None:
    await store.insert_card(conn, CardRecord(
        card_no=card_no, psn_no=psn_no, application_no=f"APP-{card_no}", generation=1, issuing_admdvs="110000", status=status,
    ))


async def _scenario(dsn: str, tmp_path) -> dict[str, object]:
    """Return what the combined read gives for each case, next to the general path's person or error."""
    found: dict[str, object] = {}
    async with ServicesHarness(dsn, tmp_path) as harness:
        async with harness.services.db.transaction() as conn:
            await _insert_card(conn, "SVCCARD01", "SVC-0001", CardStatus.ACTIVATED)
            await _insert_card(conn, "SVCCARD02", "SVC-0001", CardStatus.LOST_TEMPORARY)
            await conn.execute(
                "INSERT INTO svc_retirement (psn_no, effective_date, retired_psn_type, previous_psn_type) VALUES ($1, $2, $3, $4)",
                "SVC-0001", RETIRED.isoformat(), "1201", "1101",
            )
        async with harness.services.db.transaction() as conn:
            for name, psn_no, cert_type, cert_no, on_date in (
                ("server card", "SVC-0001", "03", "LEGACY0001", BEFORE_RETIREMENT),
                ("server card, lower case", "SVC-0001", "03", "legacy0001", BEFORE_RETIREMENT),
                ("services card, retired", "SVC-0001", "03", "SVCCARD01", RETIRED),
                ("services card, lower case", "SVC-0001", "03", "svccard01", RETIRED),
                ("lost card", "SVC-0001", "03", "SVCCARD02", RETIRED),
                ("another person's card", "SVC-0002", "03", "LEGACY0001", RETIRED),
                ("unknown person", "SVC-9999", "03", "LEGACY0001", RETIRED),
                ("unknown card", "SVC-0001", "03", "NOCARD", RETIRED),
                ("ID number", "SVC-0001", "02", "990000196005050011", RETIRED),
            ):
                visit, lines, person = await _read(conn, psn_no, cert_type, cert_no, on_date)
                try:
                    general = await _general(conn, psn_no, cert_type, cert_no, on_date)
                except SettlementError as error:
                    general = error.code
                found[name] = (visit, lines, person, general)
    return found


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_combined_read_matches_general_path(kind, tmp_path):
    with ledger_dsn(kind, tmp_path) as dsn:
        found = run(_scenario(dsn, tmp_path))

    for name, (visit, lines, person, general) in found.items():
        assert visit is None, name
        assert lines == [], name
        if person is not None:
            assert person == general, name

    # The combined read resolves the common cases itself.
    assert found["server card"][2].psn_type == "1101"
    assert found["services card, retired"][2].psn_type == "1201"
    assert found["services card, lower case"][2].psn_type == "1201"
    assert [card.card_no for card in found["server card"][2].cards] == ["LEGACY0001"]
    # It defers every other case, where the general path raises or resolves otherwise.
    for name in ("server card, lower case", "lost card", "another person's card", "unknown person", "unknown card", "ID number"):
        assert found[name][2] is None, name
    assert found["lost card"][3] == ErrorCode.CARD_LOST
    assert found["another person's card"][3] == ErrorCode.PERSON_MISMATCH
    assert found["unknown person"][3] == ErrorCode.UNKNOWN_PERSON
    assert found["ID number"][3].psn_type == "1201"
