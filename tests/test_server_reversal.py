"""2601 reversal against a real server: after an original that took effect, after one that did not,
twice, from another institution, of a cancel, of an admission, and of a transaction it cannot undo."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, PHARMACY, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import PERSONS, example, fee_lines, register, settle_data

CLOCK = {"x-settlement-clock": "2024-05-20 09:30:00"}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        hospital = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
        pharmacy = Client("127.0.0.1", port, fixmedins_code=PHARMACY["fixmedins_code"], secret=PHARMACY["secret"], admdvs="110000")
        hospital.sign_in()
        pharmacy.sign_in()
        try:
            yield hospital, pharmacy, LedgerInspector(dsn)
        finally:
            hospital.close()
            pharmacy.close()


def call(client, infno, node, **kwargs):
    return client.call(infno, node, headers=CLOCK, **kwargs)


def reversal(psn_no, omsgid, oinfno):
    return {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}}


def balance(inspector, psn_no):
    rows = inspector.query("SELECT debits_posted, credits_posted FROM ledger_accounts WHERE account_key = $1", f"personal:{psn_no}")
    return Decimal(rows[0][1] - rows[0][0]) / 100


def live_settlements(inspector, mdtrt_id):
    return inspector.query(
        "SELECT s.setl_id FROM ledger_settlements s WHERE s.mdtrt_id = $1 AND s.kind = 'settle'"
        " AND NOT EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id)",
        mdtrt_id,
    )


def settled_visit(client):
    """Register person 5, upload ex05's lines and settle them; return the visit, the 2207 msgid and the response."""
    vector = example("ex05")
    mdtrt_id = register(client, 5)
    assert call(client, "2204", {"feedetail": fee_lines(vector, mdtrt_id, "PSN-TEST-0005", "B1")})["infcode"] == 0
    msgid = client.new_msgid()
    answer = call(client, "2207", settle_data(mdtrt_id, 5, vector["expected"]["outputs"]["medfee_sumamt"]), msgid=msgid)
    assert answer["infcode"] == 0, answer["err_msg"]
    return mdtrt_id, msgid, answer


def test_reversal_of_settlement(server):
    hospital, pharmacy, inspector = server
    start = balance(inspector, "PSN-TEST-0005")
    mdtrt_id, msgid, settled = settled_visit(hospital)
    assert balance(inspector, "PSN-TEST-0005") < start

    undone = call(hospital, "2601", reversal("PSN-TEST-0005", msgid, "2207"))
    assert undone["infcode"] == 0, undone["err_msg"]
    assert undone["output"]["result"]["took_effect"] == "1"
    assert balance(inspector, "PSN-TEST-0005") == start
    assert live_settlements(inspector, mdtrt_id) == []
    reversed_rows = inspector.query("SELECT original_setl_id, medfee_sumamt FROM ledger_settlements WHERE kind = 'cancel'")
    assert reversed_rows == [(settled["output"]["setlinfo"]["setl_id"], -int(Decimal(str(settled["output"]["setlinfo"]["medfee_sumamt"])) * 100))]

    before = inspector.snapshot()
    again = call(hospital, "2601", reversal("PSN-TEST-0005", msgid, "2207"))
    assert again["err_code"] == 6029
    assert "2024-05-20 09:30:00" in again["err_msg"]
    foreign = call(pharmacy, "2601", reversal("PSN-TEST-0005", msgid, "2207"))
    assert foreign["err_code"] == 6031
    not_reversible = call(hospital, "2601", reversal("PSN-TEST-0005", msgid, "2204"))
    assert not_reversible["err_code"] == 6028
    assert "2205" in not_reversible["err_msg"]
    assert inspector.snapshot() == before

    # A retry of the reversed original no longer replays its success.
    vector = example("ex05")
    retried = call(hospital, "2207", settle_data(mdtrt_id, 5, vector["expected"]["outputs"]["medfee_sumamt"]), msgid=msgid)
    assert retried["err_code"] == 6029
    assert live_settlements(inspector, mdtrt_id) == []

    # The batch is free again and settles anew.
    resettled = call(hospital, "2207", settle_data(mdtrt_id, 5, vector["expected"]["outputs"]["medfee_sumamt"]))
    assert resettled["infcode"] == 0, resettled["err_msg"]


def test_reversal_blocks_lost_message(server):
    hospital, _, inspector = server
    vector = example("ex05")
    mdtrt_id = register(hospital, 5)
    assert call(hospital, "2204", {"feedetail": fee_lines(vector, mdtrt_id, "PSN-TEST-0005", "B1")})["infcode"] == 0
    lost = hospital.new_msgid()

    blocked = hospital.call("2601", reversal("PSN-TEST-0005", lost, "2207"), headers={**CLOCK, "accept-language": "en"})
    assert blocked["infcode"] == 0, blocked["err_msg"]
    assert blocked["output"]["result"]["took_effect"] == "0"
    assert "had not taken effect" in blocked["output"]["result"]["memo"]

    # The original arriving late is rejected and settles nothing.
    late = call(hospital, "2207", settle_data(mdtrt_id, 5, vector["expected"]["outputs"]["medfee_sumamt"]), msgid=lost)
    assert late["err_code"] == 6029
    assert live_settlements(inspector, mdtrt_id) == []
    assert call(hospital, "2601", reversal("PSN-TEST-0005", lost, "2207"))["err_code"] == 6029


def test_reversal_of_cancel(server):
    hospital, _, inspector = server
    mdtrt_id, _, settled = settled_visit(hospital)
    after_settlement = balance(inspector, "PSN-TEST-0005")
    block = settled["output"]["setlinfo"]

    cancel_msgid = hospital.new_msgid()
    cancelled = call(hospital, "2208", {"data": {"setl_id": block["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0005"}}, msgid=cancel_msgid)
    assert cancelled["infcode"] == 0, cancelled["err_msg"]
    assert live_settlements(inspector, mdtrt_id) == []

    undone = call(hospital, "2601", reversal("PSN-TEST-0005", cancel_msgid, "2208"))
    assert undone["infcode"] == 0, undone["err_msg"]
    restored = undone["output"]["result"]["setl_id"]
    assert live_settlements(inspector, mdtrt_id) == [(restored,)]
    assert balance(inspector, "PSN-TEST-0005") == after_settlement
    amounts = inspector.query("SELECT medfee_sumamt, fund_pay_sumamt, acct_pay FROM ledger_settlements WHERE setl_id = $1", restored)
    assert amounts == [tuple(int(Decimal(str(block[name])) * 100) for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay"))]


def test_reversal_of_admission(server):
    hospital, _, inspector = server
    msgid = hospital.new_msgid()
    admitted = call(hospital, "2401", {"mdtrtinfo": {
        "psn_no": "PSN-TEST-0030", "insutype": "310", "begntime": "2024-05-19 08:00:00", "mdtrt_cert_type": "03",
        "mdtrt_cert_no": "TESTCARD0030", "med_type": "21", "ipt_no": "IPT30", "atddr_no": "D01", "chfpdr_name": "测试医生",
        "adm_diag_dscr": "测试", "adm_dept_codg": "A03", "adm_dept_name": "内科", "adm_bed": "3", "dscg_maindiag_code": "J18.900",
        "dscg_maindiag_name": "肺炎",
    }}, msgid=msgid)
    assert admitted["infcode"] == 0, admitted["err_msg"]
    mdtrt_id = admitted["output"]["result"]["mdtrt_id"]

    wrong_person = call(hospital, "2601", reversal("PSN-TEST-0005", msgid, "2401"))
    assert wrong_person["err_code"] == 6030
    undone = call(hospital, "2601", reversal("PSN-TEST-0030", msgid, "2401"))
    assert undone["infcode"] == 0, undone["err_msg"]
    assert inspector.query("SELECT cancelled_by IS NOT NULL FROM srv_visit WHERE mdtrt_id = $1", mdtrt_id) == [(True,)]
