"""Each kind of bad request is rejected with its code and leaves the ledger and server state unchanged, on both ledgers."""

import json

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, LedgerInspector, ledger_dsn, running_server
from tests.test_server_chain import CLOCK, PERSONS, register, settle_data

MAX_LINES = 5


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS, extra=["--max-lines", str(MAX_LINES)]) as port:
        c = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs="110000")
        c.sign_in()
        mdtrt_id = register(c, 30)
        assert c.call("2204", {"feedetail": [_line(mdtrt_id, "L1")]}, headers=CLOCK)["infcode"] == 0
        settled = c.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK)
        assert settled["infcode"] == 0, settled["err_msg"]
        second = register(c, 30)
        assert c.call("2204", {"feedetail": [_line(second, "L1")]}, headers=CLOCK)["infcode"] == 0
        yield c, LedgerInspector(dsn), second
        c.close()


def _line(mdtrt_id, sn, **changes):
    line = {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0030", "chrg_bchno": "B1", "fee_ocur_time": "2024-05-20 09:10:00",
            "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": "30.00", "cnt": 1, "det_item_fee_sumamt": "30.00"}
    line.update(changes)
    return line


def _envelope(c, infno, node, msgid=None):
    return json.dumps({
        "infno": infno, "msgid": msgid or c.new_msgid(), "mdtrtarea_admvs": "110000", "insuplc_admdvs": "110000",
        "recer_sys_code": "YBXT", "infver": "V1.0", "opter_type": "1", "opter": "T1", "opter_name": "测试",
        "inf_time": "2024-05-20 09:30:00", "fixmedins_code": c.fixmedins_code, "fixmedins_name": "测试医院", "sign_no": c.sign_no,
        "input": node,
    }, ensure_ascii=False).encode("utf-8")


def _post(c, body, **kwargs):
    headers = {**CLOCK, **kwargs.pop("headers", {})}
    return c.post_raw(body, headers=headers, **kwargs)


def _bad_requests(c, mdtrt_id):
    """Yield (name, send, expected HTTP status, expected err_code, text the message must contain)."""
    settle = settle_data(mdtrt_id, 30, "30.00", acct="0")
    reused = c.new_msgid()
    assert c.call("2206", settle, msgid=reused, headers=CLOCK)["infcode"] == 0

    yield "malformed JSON", lambda: _post(c, b'{"infno": "2207", "input": {'), 200, 2005, ""
    yield "not UTF-8", lambda: _post(c, _envelope(c, "1101", {"data": {"psn_name": "测试"}}).replace("测试".encode(), "测试".encode("gbk"))), 200, 2006, "0x"
    yield "unknown infno", lambda: _post(c, _envelope(c, "9999", {})), 200, 2008, "9999"
    missing = json.loads(json.dumps(settle))
    del missing["data"]["mdtrt_id"]
    yield "missing field", lambda: _post(c, _envelope(c, "2207", missing)), 200, 2001, "input.data.mdtrt_id"
    invalid = json.loads(json.dumps(settle))
    invalid["data"]["med_type"] = "-"
    yield "invalid code", lambda: _post(c, _envelope(c, "2207", invalid)), 200, 2002, "input.data.med_type"
    precise = json.loads(json.dumps(settle))
    precise["data"]["medfee_sumamt"] = "30.001"
    yield "over-precise number", lambda: _post(c, _envelope(c, "2207", precise)), 200, 1001, "input.data.medfee_sumamt"
    yield "totals disagree", lambda: _post(c, _envelope(c, "2207", settle_data(mdtrt_id, 30, "31.00", acct="0"))), 200, 6013, "30.00"
    stranger = {"data": {
        "psn_no": "PSN-TEST-9999", "insutype": "310", "begntime": "2024-05-20 09:00:00", "mdtrt_cert_type": "03",
        "mdtrt_cert_no": "TESTCARD0030", "ipt_otp_no": "OTP9", "atddr_no": "D01", "dr_name": "测试医生", "dept_code": "A03",
        "dept_name": "内科", "caty": "A03",
    }}
    yield "unknown person", lambda: _post(c, _envelope(c, "2201", stranger)), 200, 6007, "PSN-TEST-9999"
    yield "unknown card", lambda: _post(c, _envelope(c, "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "NOCARD0000"}})), 200, 6007, ""
    yield "bad signature", lambda: _post(c, _envelope(c, "2207", settle), headers={"x-tif-signature": "0" * 64}), 401, 6001, ""
    yield "msgid reused", lambda: _post(c, _envelope(c, "2207", settle, msgid=reused)), 200, 6019, reused
    yield "body too large", lambda: _post(c, b"{" + b" " * (4 * 1024 * 1024) + b"}"), 413, 2007, ""
    lines = [_line(mdtrt_id, f"X{number}") for number in range(MAX_LINES + 1)]
    yield "too many lines", lambda: _post(c, _envelope(c, "2204", {"feedetail": lines})), 200, 2004, str(MAX_LINES)


def test_bad_requests_leave_ledger_unchanged(served):
    c, inspector, mdtrt_id = served
    for name, send, status, code, mention in _bad_requests(c, mdtrt_id):
        before = inspector.snapshot()
        got_status, answer = send()
        assert (got_status, answer["infcode"], answer.get("err_code")) == (status, -1, code), f"{name}: {answer}"
        assert mention in answer["err_msg"], f"{name}: {answer['err_msg']!r} does not name {mention!r}"
        assert inspector.snapshot() == before, f"{name}: the rejected request changed stored state"


def test_good_request_after_rejections_settles(served):
    c, inspector, mdtrt_id = served
    answer = c.call("2207", settle_data(mdtrt_id, 30, "30.00", acct="0"), headers=CLOCK)
    assert answer["infcode"] == 0, answer["err_msg"]
