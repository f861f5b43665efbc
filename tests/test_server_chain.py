"""End to end against a real server: outpatient and pharmacy chains checked to the fen, retries and rejections.

The amounts are those of claim vectors ex05 (outpatient, level-1 hospital, deductible not
reached) and ex18 (pharmacy, account too small), replayed as national-interface requests.
"""

import base64
import json
import pathlib

import pytest

from adapters.server.client import Client
from tests.server_harness import HOSPITAL, PHARMACY, ledger_dsn, running_server

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "examples"
CLOCK = {"x-settlement-clock": "2024-05-20 09:30:00"}


def example(name):
    return json.loads(next(EXAMPLES.glob(f"{name}-*.json")).read_text(encoding="utf-8"))


def person(number, name, acct_balc, brdy="1996-01-01"):
    return {
        "psn_no": f"PSN-TEST-{number:04d}", "certno": f"99000019960101{number:04d}", "psn_name": name, "gend": "1",
        "brdy": brdy, "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000", "acct_balc": acct_balc,
        "cards": [{"card_no": f"TESTCARD{number:04d}"}],
    }


PERSONS = [person(5, "测试甲", "50.00"), person(18, "测试未", "35.47", brdy="1988-01-01"), person(30, "测试乙", "0.00")]


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        yield port


@pytest.fixture
def client(server):
    """Return a factory of signed clients of the running server; they are closed after the test."""
    opened = []

    def connect(who=HOSPITAL):
        connection = Client("127.0.0.1", server, fixmedins_code=who["fixmedins_code"], secret=who["secret"], admdvs="110000")
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()


def call(c, infno, node, **kwargs):
    headers = {**CLOCK, **kwargs.pop("headers", {})}
    return c.call(infno, node, headers=headers, **kwargs)


def amounts(block, names):
    return {name: f"{block[name]:.2f}" for name in names}


def register(c, number):
    answer = call(c, "2201", {"data": {
        "psn_no": f"PSN-TEST-{number:04d}", "insutype": "310", "begntime": "2024-05-20 09:00:00", "mdtrt_cert_type": "03",
        "mdtrt_cert_no": f"TESTCARD{number:04d}", "ipt_otp_no": f"OTP{number}", "atddr_no": "D01", "dr_name": "测试医生",
        "dept_code": "A03", "dept_name": "内科", "caty": "A03",
    }})
    assert answer["infcode"] == 0, answer["err_msg"]
    return answer["output"]["data"]["mdtrt_id"]


def fee_lines(vector, mdtrt_id, psn_no, batch):
    return [
        {
            "feedetl_sn": f"FD{line['seq']:03d}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": batch, "rx_circ_flag": "0",
            "fee_ocur_time": "2024-05-20 09:10:00", "med_list_codg": line["code"], "medins_list_codg": line["code"],
            "pric": line["pric"], "cnt": line["cnt"], "det_item_fee_sumamt": _line_total(line),
            "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D01", "bilg_dr_name": "测试医生",
        }
        for line in vector["lines"]
    ]


def _line_total(line):
    from decimal import ROUND_HALF_UP, Decimal

    return str((Decimal(line["pric"]) * Decimal(line["cnt"])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def settle_data(mdtrt_id, number, medfee, batch="B1", acct="1"):
    return {"data": {
        "psn_no": f"PSN-TEST-{number:04d}", "mdtrt_cert_type": "03", "mdtrt_cert_no": f"TESTCARD{number:04d}", "med_type": "11",
        "medfee_sumamt": medfee, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "acct_used_flag": acct, "insutype": "310",
    }}


OUTPUT_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc",
                 "hifp_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc")


def test_outpatient_chain_matches_claim_vector(client):
    vector = example("ex05")
    expected = {name: vector["expected"]["outputs"][name] for name in OUTPUT_FIELDS}
    c = client()
    c.sign_in()
    mdtrt_id = register(c, 5)

    upload = call(c, "2204", {"feedetail": fee_lines(vector, mdtrt_id, "PSN-TEST-0005", "B1")})
    assert upload["infcode"] == 0, upload["err_msg"]
    assert len(upload["output"]["result"]) == len(vector["lines"])

    pre = call(c, "2206", settle_data(mdtrt_id, 5, expected["medfee_sumamt"]))
    assert pre["infcode"] == 0, pre["err_msg"]
    assert amounts(pre["output"]["setlinfo"], OUTPUT_FIELDS) == expected
    assert "setl_id" not in pre["output"]["setlinfo"]

    msgid = c.new_msgid()
    settled = call(c, "2207", settle_data(mdtrt_id, 5, expected["medfee_sumamt"]), msgid=msgid)
    assert settled["infcode"] == 0, settled["err_msg"]
    assert amounts(settled["output"]["setlinfo"], OUTPUT_FIELDS) == expected

    retried = call(c, "2207", settle_data(mdtrt_id, 5, expected["medfee_sumamt"]), msgid=msgid)
    assert retried["output"]["setlinfo"]["setl_id"] == settled["output"]["setlinfo"]["setl_id"]

    again = call(c, "2207", settle_data(mdtrt_id, 5, expected["medfee_sumamt"]))
    assert again["infcode"] == -1
    assert again["err_code"] == 6014

    withdrawn = call(c, "2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "psn_no": "PSN-TEST-0005"}})
    assert withdrawn["err_code"] == 6017

    setl_id = settled["output"]["setlinfo"]["setl_id"]
    cancelled = call(c, "2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0005"}})
    assert cancelled["infcode"] == 0, cancelled["err_msg"]
    block = cancelled["output"]["setlinfo"]
    assert f"{block['medfee_sumamt']:.2f}" == "-" + expected["medfee_sumamt"]
    assert f"{block['balc']:.2f}" == vector["accumulators_before"]["acct_balc"]

    person_info = call(c, "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "TESTCARD0005"}})
    assert f"{person_info['output']['insuinfo'][0]['balc']:.2f}" == vector["accumulators_before"]["acct_balc"]


def test_pharmacy_chain_matches_claim_vector(client):
    vector = example("ex18")
    expected = {name: vector["expected"]["outputs"][name] for name in OUTPUT_FIELDS}
    c = client(PHARMACY)
    c.sign_in()
    drugs = [
        {"feedetl_sn": f"RX{line['seq']:03d}", "rx_circ_flag": "0", "fee_ocur_time": "2024-05-20 09:10:00",
         "med_list_codg": line["code"], "medins_list_codg": line["code"], "pric": line["pric"], "cnt": line["cnt"],
         "det_item_fee_sumamt": _line_total(line)}
        for line in vector["lines"]
    ]
    info = {"psn_no": "PSN-TEST-0018", "mdtrt_cert_type": "02", "mdtrt_cert_no": "990000199601010018", "begntime": "2024-05-20 09:10:00",
            "medfee_sumamt": expected["medfee_sumamt"], "insutype": "310", "acct_used_flag": "1", "med_type": "41"}

    pre = call(c, "2101", {"druginfo": info, "drugdetail": drugs})
    assert pre["infcode"] == 0, pre["err_msg"]
    assert amounts(pre["output"]["setlinfo"], OUTPUT_FIELDS) == expected

    sale = call(c, "2102", {"druginfo": info, "drugdetail": drugs})
    assert sale["infcode"] == 0, sale["err_msg"]
    assert amounts(sale["output"]["setlinfo"], OUTPUT_FIELDS) == expected
    assert len(sale["output"]["detlcutinfo"]) == len(drugs)

    block = sale["output"]["setlinfo"]
    cancel = call(c, "2103", {"data": {"setl_id": block["setl_id"], "mdtrt_id": block["mdtrt_id"], "psn_no": "PSN-TEST-0018"}})
    assert cancel["infcode"] == 0, cancel["err_msg"]
    assert f"{cancel['output']['setlinfo']['cash_payamt']:.2f}" == "-" + expected["psn_cash_pay"]
    assert f"{cancel['output']['setlinfo']['balc']:.2f}" == vector["accumulators_before"]["acct_balc"]


def test_rejections_write_nothing(client):
    c = client()
    c.sign_in()
    mdtrt_id = register(c, 30)
    line = {"feedetl_sn": "L1", "mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0030", "chrg_bchno": "B1", "fee_ocur_time": "2024-05-20 09:10:00",
            "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": "30.00", "cnt": 1, "det_item_fee_sumamt": "30.00"}

    assert call(c, "2204", {"feedetail": [dict(line, det_item_fee_sumamt="31.00")]})["err_code"] == 6012
    assert call(c, "2204", {"feedetail": [line]})["infcode"] == 0
    assert call(c, "2204", {"feedetail": [line]})["err_code"] == 6011
    assert call(c, "2207", settle_data(mdtrt_id, 30, "30.01", acct="0"))["err_code"] == 6013
    assert call(c, "2207", settle_data(mdtrt_id, 30, "30.001", acct="0"))["err_code"] == 1001
    assert call(c, "9999", {})["err_code"] == 2008
    assert call(c, "2202", {"data": {"psn_no": "PSN-TEST-0030", "mdtrt_id": "NOPE", "ipt_otp_no": "OTP30"}})["err_code"] == 6009
    assert call(c, "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "NOCARD"}})["err_code"] == 6007
    assert call(c, "2204", {"feedetail": [dict(line, feedetl_sn="L2")]}, sign_no="")["err_code"] == 6006

    reused = c.new_msgid()
    assert call(c, "2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": "PSN-TEST-0030", "med_type": "11", "begntime": "2024-05-20 09:00:00"}}, msgid=reused)["infcode"] == 0
    assert call(c, "2206", settle_data(mdtrt_id, 30, "30.00", acct="0"), msgid=reused)["err_code"] == 6019

    english = call(c, "9999", {}, headers={"accept-language": "en"})
    assert "unsupported transaction" in english["err_msg"]

    # The visit still settles with exactly the one accepted line.
    settled = call(c, "2207", settle_data(mdtrt_id, 30, "30.00", acct="0"))
    assert settled["infcode"] == 0, settled["err_msg"]


def test_transport_rejections(client):
    c = client()
    good = json.dumps({"infno": "9001", "msgid": "H990000000012024052009300001", "input": {"signIn": {"opter_no": "1", "ip": "127.0.0.1"}}}).encode()

    status, answer = c.post_raw(good, sign=False)
    assert (status, answer["err_code"]) == (401, 6001)

    status, answer = c.post_raw(good, headers={"x-tif-signature": "0" * 64})
    assert (status, answer["err_code"]) == (401, 6001)

    status, answer = c.post_raw(good, headers={"x-tif-timestamp": "1000000000"})
    assert (status, answer["err_code"]) == (401, 6002)

    status, answer = c.post_raw(b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}")
    assert (status, answer["err_code"]) == (413, 2007)

    status, answer = c.post_raw(b'{"infno": "9001", ')
    assert answer["err_code"] == 2005

    gbk = base64.b64decode(
        "eyJpbmZubyI6IjExMDEiLCJtc2dpZCI6Ikg5OTAwMDAwMDAwMTIwMjQwNjAxMDkwMDAwMDAwMSIsImlucHV0Ijp7ImRhdGEiOnsibWR0cnRfY2VydF90eXBlIjoiMDMiLCJtZHRydF9jZXJ0X25vIjoiVEVTVENBUkQwMDIxIiwicHNuX25hbWUiOiKy4srUvNcifX19"
    )
    status, answer = c.post_raw(gbk)
    assert answer["err_code"] == 2006
    assert "0xB2" in answer["err_msg"]

    status, answer = c.post_raw(good, headers={"content-type": "application/json;charset=GBK"})
    assert answer["err_code"] == 2006


def test_nonce_reuse_rejected(client):
    from settlement import signing

    c = client()
    body = json.dumps({"infno": "9001", "msgid": "H990000000012024052009300002", "input": {"signIn": {"opter_no": "1", "ip": "127.0.0.1"}}}).encode()
    import time

    headers = signing.signed_headers(HOSPITAL["fixmedins_code"], HOSPITAL["secret"].encode(), body, int(time.time()), "fixed-nonce-0001")
    first_status, first = c.post_raw(body, headers=headers, sign=False)
    assert first["infcode"] == 0
    second_status, second = c.post_raw(body, headers=headers, sign=False)
    assert (second_status, second["err_code"]) == (401, 6003)
