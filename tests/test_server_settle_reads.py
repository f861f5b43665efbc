"""The one-statement read of a 2207 finds the same person as the general path, or defers to it."""

import datetime

import pytest

from adapters.server import settle_reads, state
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


async def _cards_and_retirement(conn) -> None:
    """Give SVC-0001 an activated and a lost services card, and a retirement from RETIRED on."""
    await _insert_card(conn, "SVCCARD01", "SVC-0001", CardStatus.ACTIVATED)
    await _insert_card(conn, "SVCCARD02", "SVC-0001", CardStatus.LOST_TEMPORARY)
    await conn.execute(
        "INSERT INTO svc_retirement (psn_no, effective_date, retired_psn_type, previous_psn_type) VALUES ($1, $2, $3, $4)",
        "SVC-0001", RETIRED.isoformat(), "1201", "1101",
    )


async def _scenario(dsn: str, tmp_path) -> dict[str, object]:
    """Return what the combined read gives for each case, next to the general path's person or error."""
    found: dict[str, object] = {}
    async with ServicesHarness(dsn, tmp_path) as harness:
        async with harness.services.db.transaction() as conn:
            await _cards_and_retirement(conn)
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


def _visit_values(visit) -> tuple | None:
    return None if visit is None else tuple(getattr(visit, name) for name in type(visit).__slots__)


def _line_values(lines) -> list[tuple]:
    return [tuple(getattr(line, name) for name in type(line).__slots__) for line in lines]


async def _add_visit(conn, mdtrt_id: str, fixmedins_code: str, batches: dict[str, list[str]]) -> None:
    await state.insert_visit(
        conn, mdtrt_id=mdtrt_id, fixmedins_code=fixmedins_code, psn_no="SVC-0001", insutype="310", med_type="11",
        begntime="2024-05-20 09:00:00", mdtrt_cert_type="03", ipt_otp_no=None, dise_codg=None, detail={}, registered_by=f"REG-{mdtrt_id}",
    )
    rows = []
    for chrg_bchno, serials in batches.items():
        for feedetl_sn in serials:
            seq = len(rows) + 1
            rows.append((
                feedetl_sn, chrg_bchno, None, None, "2024-05-20 09:10:00", "T-SVC-0002", "T-SVC-0002", 1000 * seq, 10_000_000 * seq,
                1_000_000, 1, 0, None, 0, 0, 0, 1000 * seq, seq,
            ))
    await state.insert_lines(conn, mdtrt_id, f"UP-{mdtrt_id}", rows)


async def _group_scenario(dsn: str, tmp_path) -> tuple[list, list]:
    """Read many claims as a settlement group does and one by one; return both."""
    async with ServicesHarness(dsn, tmp_path) as harness:
        async with harness.services.db.transaction() as conn:
            await _cards_and_retirement(conn)
            await _add_visit(conn, "V-OWN", "H99000000001", {"B1": ["L1", "L2", "L3"], "B2": ["L9"]})
            await _add_visit(conn, "V-OTHER", "H99000000002", {"B1": ["L1"]})
            await conn.execute("UPDATE srv_fee_line SET cancelled_by = 'CANCEL-1' WHERE mdtrt_id = 'V-OWN' AND feedetl_sn = 'L2'")

        cases = [
            ("V-OWN", "H99000000001", "B1", "SVC-0001", "03", "LEGACY0001", BEFORE_RETIREMENT),
            ("V-OWN", "H99000000001", "B2", "SVC-0001", "03", "SVCCARD01", RETIRED),
            ("V-OWN", "H99000000001", "B3", "SVC-0001", "03", "SVCCARD02", RETIRED),
            ("V-OTHER", "H99000000001", "B1", "SVC-0001", "03", "LEGACY0001", RETIRED),
            ("V-OWN", "H99000000001", "B1", "SVC-0002", "03", "LEGACY0001", RETIRED),
            ("NO-SUCH-VISIT", "H99000000001", "B1", "SVC-9999", "03", "NOCARD", RETIRED),
            ("V-OWN", "H99000000001", "B1", "SVC-0001", "02", "990000196005050011", RETIRED),
        ]
        keys = [settle_reads.ClaimKey(*case) for case in cases]
        async with harness.services.db.transaction() as conn:
            together = await settle_reads.many_visits_batches_and_persons(conn, keys)
            alone = [
                await settle_reads.visit_batch_and_person(
                    conn, mdtrt_id=key.mdtrt_id, fixmedins_code=key.fixmedins_code, chrg_bchno=key.chrg_bchno, psn_no=key.psn_no,
                    cert_type=key.cert_type, cert_no=key.cert_no, on_date=key.on_date,
                )
                for key in keys
            ]
    return together, alone


def test_group_read_matches_single_reads(tmp_path):
    with ledger_dsn("postgres", tmp_path) as dsn:
        together, alone = run(_group_scenario(dsn, tmp_path))

    assert len(together) == len(alone) == 7
    for index, ((visit, lines, person), (visit_1, lines_1, person_1)) in enumerate(zip(together, alone, strict=True)):
        assert _visit_values(visit) == _visit_values(visit_1), index
        assert _line_values(lines) == _line_values(lines_1), index
        assert person == person_1, index

    # The cases reach what they should: live lines in upload order, an empty batch, another institution's visit.
    assert [line.feedetl_sn for line in together[0][1]] == ["L1", "L3"]
    assert [line.feedetl_sn for line in together[1][1]] == ["L9"]
    assert together[2][0] is not None
    assert together[2][1] == []
    assert together[3][0] is None
    assert together[3][1] == []
    assert together[0][2].psn_type == "1101"
    assert together[1][2].psn_type == "1201"
    assert together[6][2] is None
