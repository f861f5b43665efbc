"""Card checks and retirement in national-interface settlements, through the server and the ledger."""

import datetime
from decimal import Decimal

from tests.server_harness import LedgerInspector
from tests.services_support import (
    PERSONS,
    ServicesHarness,
    register_node,
    run,
    settle_node,
    upload_node,
)

BEFORE = datetime.datetime(2024, 5, 31, 9, 0, 0)
AFTER = datetime.datetime(2024, 6, 1, 9, 0, 0)


def test_lost_card_settlement_rejected_then_unfrozen(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"

    async def scenario():
        async with ServicesHarness(dsn, tmp_path, now=BEFORE) as harness:
            await harness.activated_card("K00000000001", "APP-1", psn_no="SVC-0002")
            await harness.sign_in(BEFORE)
            moment = f"{BEFORE:%Y-%m-%d %H:%M:%S}"
            answer = await harness.national("2201", register_node("SVC-0002", "03", "K00000000001", moment, "1"), BEFORE)
            assert answer["infcode"] == 0, answer
            mdtrt_id = answer["output"]["data"]["mdtrt_id"]
            assert (await harness.national("2204", upload_node("SVC-0002", mdtrt_id, "B1", moment), BEFORE))["infcode"] == 0

            await harness.ok("/api/card/report-loss", {"card_no": "K00000000001"})
            before = LedgerInspector(dsn).snapshot()
            answer = await harness.national("2207", settle_node("SVC-0002", "03", "K00000000001", mdtrt_id, "B1"), BEFORE)
            assert answer["infcode"] == -1
            assert answer["err_code"] == 8003
            assert "K00000000001" not in answer["err_msg"]
            assert LedgerInspector(dsn).snapshot() == before

            # A new visit with the lost card is rejected at registration too.
            answer = await harness.national("2201", register_node("SVC-0002", "03", "K00000000001", moment, "2"), BEFORE)
            assert answer["err_code"] == 8003

            await harness.ok("/api/card/unfreeze", {"card_no": "K00000000001"})
            answer = await harness.national("2207", settle_node("SVC-0002", "03", "K00000000001", mdtrt_id, "B1"), BEFORE)
            assert answer["infcode"] == 0, answer
            assert answer["output"]["setlinfo"]["medfee_sumamt"] == Decimal("30.00")
            assert (await harness.services.ledger.verify()).ok

    run(scenario())


def test_card_not_yet_activated_rejected(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path, now=BEFORE) as harness:
            await harness.ok("/api/card/apply", {"card_no": "K00000000003", "application_no": "APP-3", "psn_no": "SVC-0002", "generation": 1, "issuing_admdvs": "110000"})
            await harness.sign_in(BEFORE)
            _, answer = await harness.visit("SVC-0002", "03", "K00000000003", BEFORE)
            assert answer["err_code"] == 8005

    run(scenario())


def test_electronic_token_maps_to_person(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path, now=BEFORE) as harness:
            # Tokens expire by the wall clock, so this one is issued now, not at the engine clock.
            harness.now = datetime.datetime.now()
            token = (await harness.ok("/api/card/token", {"psn_no": "SVC-0002"}))["token"]
            await harness.sign_in(BEFORE)
            _, answer = await harness.visit("SVC-0002", "01", token, BEFORE)
            assert answer["infcode"] == 0, answer
            assert answer["output"]["setlinfo"]["psn_no"] == "SVC-0002"
            _, answer = await harness.visit("SVC-0001", "01", token, BEFORE)
            assert answer["infcode"] == -1

    run(scenario())


def test_retirement_changes_settlement_from_its_date(tmp_path):
    async def scenario():
        async with ServicesHarness(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", tmp_path, now=BEFORE) as harness:
            await harness.ok("/api/employment/retire", {"psn_no": "SVC-0001", "effective_date": "2024-06-01"})
            await harness.sign_in(BEFORE)
            certno = PERSONS[0]["certno"]
            line = ("T-SVC-0002", "3000.00", "1")

            _, before = await harness.visit("SVC-0001", "02", certno, BEFORE, line)
            assert before["infcode"] == 0, before
            block = before["output"]["setlinfo"]
            # In service: deductible 1800.00, then 70% of 1200.00.
            assert block["act_pay_dedc"] == Decimal("1800.00")
            assert block["hifp_pay"] == Decimal("840.00")
            assert block["psn_cash_pay"] == Decimal("2160.00")

            _, after = await harness.visit("SVC-0001", "02", certno, AFTER, line)
            assert after["infcode"] == 0, after
            block = after["output"]["setlinfo"]
            # Retired: the 1300.00 deductible is already met by the 1800.00 used, so 85% of 3000.00.
            assert block["act_pay_dedc"] == Decimal("0.00")
            assert block["hifp_pay"] == Decimal("2550.00")
            assert block["psn_cash_pay"] == Decimal("450.00")

            # 1101 reports the person type in force on each day.
            for clock, psn_type in ((BEFORE, "1101"), (AFTER, "1201")):
                info = await harness.national("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}}, clock)
                assert info["infcode"] == 0, info
                assert info["output"]["insuinfo"][0]["psn_type"] == psn_type

    run(scenario())
