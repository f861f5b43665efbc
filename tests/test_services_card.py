"""Social security card lifecycle: the transition table, the HTTP operations and printing progress."""

import datetime

import pytest

from settlement.errors import ErrorCode, SettlementError
from settlement.services.card import (
    TRANSITIONS,
    Action,
    CardRecord,
    CardStatus,
    apply_action,
    check_card_for_settlement,
    progress_stages,
)
from tests.server_harness import ledger_dsn
from tests.services_support import ServicesHarness, card_fields, run

ALLOWED = sorted(TRANSITIONS.items(), key=lambda item: (item[0][0].value, item[0][1].value))
FORBIDDEN = sorted(
    ((status, action) for status in CardStatus for action in Action if (status, action) not in TRANSITIONS),
    key=lambda pair: (pair[0].value, pair[1].value),
)


@pytest.mark.parametrize(("start", "action", "after"), [(s, a, t) for (s, a), t in ALLOWED])
def test_allowed_transition(start, action, after):
    assert apply_action(start, action, "CARD000001") is after


@pytest.mark.parametrize(("start", "action"), FORBIDDEN)
def test_forbidden_transition_rejected(start, action):
    with pytest.raises(SettlementError) as caught:
        apply_action(start, action, "CARD000001")
    assert caught.value.code is ErrorCode.CARD_TRANSITION_FORBIDDEN
    assert caught.value.code.number == 8002
    # The card number is masked in the message.
    assert "CARD000001" not in caught.value.message_zh


def test_table_covers_lifecycle():
    # Every state can be reached from "applied" through the table.
    reached, frontier = {CardStatus.APPLIED}, [CardStatus.APPLIED]
    while frontier:
        state = frontier.pop()
        for (start, _), after in TRANSITIONS.items():
            if start is state and after not in reached:
                reached.add(after)
                frontier.append(after)
    assert reached == set(CardStatus)


def _card(status):
    return CardRecord(card_no="CARD000001", psn_no="P1", application_no="A1", generation=1, issuing_admdvs="110000", status=status)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (CardStatus.LOST_TEMPORARY, ErrorCode.CARD_LOST),
        (CardStatus.LOST_FORMAL, ErrorCode.CARD_LOST),
        (CardStatus.CANCELLED, ErrorCode.CARD_CANCELLED),
        (CardStatus.REPLACED, ErrorCode.CARD_CANCELLED),
        (CardStatus.APPLIED, ErrorCode.CARD_NOT_ACTIVE),
        (CardStatus.ISSUED, ErrorCode.CARD_NOT_ACTIVE),
    ],
)
def test_settlement_check_rejects_unusable_card(status, code):
    with pytest.raises(SettlementError) as caught:
        check_card_for_settlement(_card(status), "CARD000001", "input.data.mdtrt_cert_no")
    assert caught.value.code is code


def test_settlement_check_accepts_active_and_unknown_card():
    check_card_for_settlement(_card(CardStatus.ACTIVATED), "CARD000001", "f")
    check_card_for_settlement(None, "CARD000001", "f")


def test_progress_lists_stages_with_dates():
    day = datetime.date(2024, 3, 1)
    stages = progress_stages([(CardStatus.APPLIED, day), (CardStatus.IN_PRODUCTION, day + datetime.timedelta(days=2))])
    assert [s["stage"] for s in stages] == ["applied", "in_production", "produced", "issued", "activated"]
    assert [s["date"] for s in stages] == ["2024-03-01", "2024-03-03", None, None, None]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_card_lifecycle_over_http(kind, tmp_path):
    with ledger_dsn(kind, tmp_path) as dsn:
        run(_lifecycle(dsn, tmp_path))


async def _lifecycle(dsn, tmp_path):
    """Walk one card through production, loss, unfreeze, formal loss and replacement."""
    async with ServicesHarness(dsn, tmp_path) as harness:
        applied = await harness.ok("/api/card/apply", card_fields("K00000000001", "APP-1"))
        assert applied["status"] == "applied"
        assert applied["bank_account"] == "622*********3456"

        statuses = []
        for step, day in (("start-production", 3), ("finish-production", 10), ("issue", 12), ("activate", 15)):
            harness.now = datetime.datetime(2024, 6, day, 10, 0, 0)
            statuses.append((await harness.ok(f"/api/card/{step}", {"card_no": "K00000000001"}))["status"])
        assert statuses == ["in_production", "produced", "issued", "activated"]

        progress = await harness.ok("/api/card/progress", {"certno": "990000196005050011"})
        assert [(s["stage"], s["date"]) for s in progress[0]["stages"]] == [
            ("applied", "2024-06-01"), ("in_production", "2024-06-03"), ("produced", "2024-06-10"),
            ("issued", "2024-06-12"), ("activated", "2024-06-15"),
        ]
        by_application = await harness.ok("/api/card/progress", {"application_no": "APP-1"})
        assert by_application[0]["stages"] == progress[0]["stages"]

        assert (await harness.ok("/api/card/report-loss", {"card_no": "K00000000001"}))["status"] == "lost_temporary"
        status, answer = await harness.api("/api/card/activate", {"card_no": "K00000000001"})
        assert status == 400
        assert answer["code"] == 8002
        assert "临时挂失" in answer["message"]
        assert (await harness.ok("/api/card/unfreeze", {"card_no": "K00000000001"}))["status"] == "activated"

        await harness.ok("/api/card/report-loss", {"card_no": "K00000000001"})
        assert (await harness.ok("/api/card/formalize-loss", {"card_no": "K00000000001"}))["status"] == "lost_formal"
        status, answer = await harness.api("/api/card/unfreeze", {"card_no": "K00000000001"})
        assert answer["code"] == 8002

        new_card = card_fields("K00000000002", "APP-2")
        del new_card["psn_no"]
        replacement = await harness.ok("/api/card/replace", {"card_no": "K00000000001", "new_card": new_card})
        assert replacement["status"] == "applied"
        assert replacement["replaces_card_no"] == "K00*****0001"
        old = await harness.ok("/api/card/progress", {"application_no": "APP-1"})
        assert old[0]["status"] == "replaced"
        assert old[0]["replaced_by_card_no"] == "K00*****0002"
        status, answer = await harness.api("/api/card/report-loss", {"card_no": "K00000000001"})
        assert answer["code"] == 8002


def test_card_input_errors_write_nothing(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path) as harness:
            cases = [
                ({**card_fields("K00000000001", "APP-1"), "bank_account": None}, 2001, "bank_account"),
                ({**card_fields("K00000000001", "APP-1"), "generation": 3}, 1005, "generation"),
                ({**card_fields("K00000000001", "APP-1"), "psn_no": "NOBODY"}, 6007, "psn_no"),
                ({**card_fields("K00000000001", "APP-1"), "issuing_admdvs": "11"}, 2003, "issuing_admdvs"),
                ({**card_fields("K00000000001", "APP-1", generation=1), "bank_code": "102"}, 2003, "bank_account"),
                ({**card_fields("LEGACY0001", "APP-1")}, 2003, "card_no"),
            ]
            for data, code, field in cases:
                status, answer = await harness.api("/api/card/apply", data)
                assert status in (400, 404), answer
                assert (answer["code"], answer["field"]) == (code, field)
            status, answer = await harness.api("/api/card/activate", {"card_no": "K00000000009"})
            assert (status, answer["code"]) == (404, 8001)
            status, answer = await harness.api("/api/card/progress", {"application_no": "NONE"}, lang="en")
            assert answer["code"] == 8006
            assert "not found" in answer["message"]
            async with harness.services.db.transaction() as conn:
                assert await conn.fetchval("SELECT count(*) FROM svc_card") == 0
                assert await conn.fetchval("SELECT count(*) FROM svc_card_event") == 0

    run(scenario())


def test_unsigned_or_cardholder_write_rejected(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path) as harness:
            body = b'{"card_no": "K00000000001"}'
            status, _, answer = await harness.request("POST", "/api/card/report-loss", body, {"content-type": "application/json"})
            assert status == 401
            assert b"6001" in answer
            status, _, answer = await harness.request("POST", "/api/card/report-loss", body, {"cookie": "ss_session=abc"})
            assert status == 403
            assert b"8014" in answer
            status, _, answer = await harness.request("GET", "/api/self/summary", b"", {"cookie": "ss_session=abc"})
            assert status == 401

    run(scenario())


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_loss_reports_apply_once(kind, tmp_path):
    import asyncio

    async def scenario(dsn):
        async with ServicesHarness(dsn, tmp_path) as harness:
            await harness.activated_card("K00000000001", "APP-1")
            answers = await asyncio.gather(*(harness.api("/api/card/report-loss", {"card_no": "K00000000001"}) for _ in range(8)))
            codes = sorted(answer["code"] for _, answer in answers)
            assert codes == [0] + [8002] * 7
            progress = await harness.ok("/api/card/progress", {"application_no": "APP-1"})
            assert [event["action"] for event in progress[0]["events"]].count("report_loss") == 1

    with ledger_dsn(kind, tmp_path) as dsn:
        run(scenario(dsn))
