"""Query transactions 5201, 5203, 5204, 5205 and 5206 against a real server on both ledgers.

Claims are settled, cancelled and sold through the interface first. The queries must then
return the same amounts to the fen as the 2204/2207/2208 outputs and the ledger's tables.
They list only the querying institution's rows and reject bad input without writing.
"""

from decimal import Decimal

import pytest

from adapters.server.client import Client
from settlement.ledger_posting import STORED_ACCUMULATOR_KEYS
from tests.server_harness import HOSPITAL, PHARMACY, LedgerInspector, ledger_dsn, running_server

DAY1 = "2024-05-20"
DAY2 = "2024-05-21"


def person(number, name, acct_balc):
    return {
        "psn_no": f"PSN-TEST-{number:04d}", "certno": f"99000019800101{number:04d}", "psn_name": name, "gend": "2",
        "brdy": "1980-01-01", "insutype": "310", "psn_type": "1101", "insuplc_admdvs": "110000", "acct_balc": acct_balc,
        "emp_name": "测试单位", "cards": [{"card_no": f"TESTCARD{number:04d}"}],
    }


PERSONS = [person(41, "测试丙", "50.00"), person(42, "测试丁", "0.00")]

# One line of each kind: class A, class B with a first self-pay, class C, class B above its price cap.
LINES = [("T-SVC-0002", "30.00", "1"), ("T-DRG-0002", "12.34", "3"), ("T-DRG-0004", "8.80", "1"), ("T-DRG-0005", "120.00", "1")]
LINES_TOTAL = "195.82"

SETL_AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay",
                "pool_prop_selfpay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt",
                "acct_pay", "hosp_part_amt", "balc", "acct_mulaid_pay")
SPLIT_COLUMNS = ("det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt", "cnt", "pric",
                 "pric_uplmt_amt", "selfpay_prop", "chrgitm_lv")


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        yield port, LedgerInspector(dsn)


@pytest.fixture
def client(server):
    """Return a factory of signed-in clients of the running server, closed after the test."""
    port = server[0]
    opened = []

    def connect(institution=HOSPITAL):
        connection = Client(
            "127.0.0.1", port, fixmedins_code=institution["fixmedins_code"], secret=institution["secret"], admdvs="110000"
        )
        opened.append(connection)
        connection.sign_in()
        return connection

    yield connect
    for connection in opened:
        connection.close()


def call(c, infno, node, day=DAY1, **kwargs):
    return c.call(infno, node, headers={"x-settlement-clock": f"{day} 09:30:00"}, **kwargs)


def ok(answer):
    assert answer["infcode"] == 0, answer["err_msg"]
    return answer["output"]


def psn_no(number):
    return f"PSN-TEST-{number:04d}"


def register(c, number, day):
    return ok(call(c, "2201", {"data": {
        "psn_no": psn_no(number), "insutype": "310", "begntime": f"{day} 09:00:00", "mdtrt_cert_type": "03",
        "mdtrt_cert_no": f"TESTCARD{number:04d}", "ipt_otp_no": f"OTP{number}{day}", "atddr_no": "D01", "dr_name": "测试医生",
        "dept_code": "A03", "dept_name": "内科", "caty": "A03",
    }}, day))["data"]["mdtrt_id"]


def upload(c, number, day, mdtrt_id, lines, batch):
    rows = [
        {"feedetl_sn": f"FD{index}", "mdtrt_id": mdtrt_id, "psn_no": psn_no(number), "chrg_bchno": batch, "fee_ocur_time": f"{day} 09:10:00",
         "med_list_codg": code, "medins_list_codg": code, "pric": price, "cnt": count,
         "det_item_fee_sumamt": str(Decimal(price) * Decimal(count))}
        for index, (code, price, count) in enumerate(lines, start=1)
    ]
    return ok(call(c, "2204", {"feedetail": rows}, day))["result"]


def settle(c, number, day, mdtrt_id, medfee_sumamt, batch):
    return ok(call(c, "2207", {"data": {
        "psn_no": psn_no(number), "mdtrt_cert_type": "03", "mdtrt_cert_no": f"TESTCARD{number:04d}", "med_type": "11",
        "medfee_sumamt": medfee_sumamt, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "acct_used_flag": "1", "insutype": "310",
    }}, day))


def settle_visit(c, number, day, batch="B1"):
    """Register, upload LINES and settle them on ``day``. Return the visit id, the 2204 result and the 2207 output."""
    mdtrt_id = register(c, number, day)
    uploaded = upload(c, number, day, mdtrt_id, LINES, batch)
    return mdtrt_id, uploaded, settle(c, number, day, mdtrt_id, LINES_TOTAL, batch)


def pharmacy_sale(c, number):
    drugs = [{"feedetl_sn": "RX1", "fee_ocur_time": f"{DAY1} 10:00:00", "med_list_codg": "T-DRG-0001", "medins_list_codg": "T-DRG-0001",
              "pric": "6.50", "cnt": "2", "det_item_fee_sumamt": "13.00"}]
    info = {"psn_no": psn_no(number), "mdtrt_cert_type": "03", "mdtrt_cert_no": f"TESTCARD{number:04d}", "begntime": f"{DAY1} 10:00:00",
            "medfee_sumamt": "13.00", "insutype": "310", "acct_used_flag": "0", "med_type": "41"}
    return ok(call(c, "2102", {"druginfo": info, "drugdetail": drugs}))["setlinfo"]


def by_setl_id(setl_id, mdtrt_id, number=41):
    return {"data": {"psn_no": psn_no(number), "setl_id": setl_id, "mdtrt_id": mdtrt_id}}


def period(begin, end, number=41, **extra):
    return {"data": {"psn_no": psn_no(number), "begntime": begin, "endtime": end, **extra}}


def test_settlement_info_matches_2207(client):
    c = client()
    mdtrt_id, _, settled = settle_visit(c, 41, DAY1)
    block = settled["setlinfo"]

    info = ok(call(c, "5203", by_setl_id(block["setl_id"], mdtrt_id)))
    row = info["setlinfo"]
    for name in SETL_AMOUNTS:
        assert row[name] == block[name], name
    assert row["psn_pay"] == block["psn_part_amt"]
    assert row["cash_payamt"] == block["psn_cash_pay"]
    assert "psn_part_amt" not in row
    assert info["setldetail"] == settled["setldetail"]
    assert row["refd_setl_flag"] == "0"
    assert (row["setl_id"], row["mdtrt_id"], row["medins_setl_id"]) == (block["setl_id"], mdtrt_id, block["medins_setl_id"])
    assert (row["fixmedins_code"], row["begndate"], row["enddate"], row["year"]) == (HOSPITAL["fixmedins_code"], DAY1, DAY1, "2024")
    assert (row["psn_name"], row["emp_name"], row["insu_optins"]) == ("测试丙", "测试单位", "110000")


def test_fee_lines_match_2204_and_2207(client):
    c = client()
    mdtrt_id, uploaded, settled = settle_visit(c, 41, DAY1)
    block = settled["setlinfo"]

    lines = ok(call(c, "5204", by_setl_id(block["setl_id"], mdtrt_id)))
    assert [line["feedetl_sn"] for line in lines] == [row["feedetl_sn"] for row in uploaded]
    for line, result in zip(lines, uploaded):
        assert {name: line[name] for name in SPLIT_COLUMNS} == {name: result[name] for name in SPLIT_COLUMNS}
        assert line["setl_id"] == block["setl_id"]

    assert sum(line["det_item_fee_sumamt"] for line in lines) == block["medfee_sumamt"]
    assert sum(line["fulamt_ownpay_amt"] for line in lines) == block["fulamt_ownpay_amt"]
    assert sum(line["overlmt_amt"] for line in lines) == block["overlmt_selfpay"]
    assert sum(line["preselfpay_amt"] for line in lines) == block["preselfpay_amt"]
    assert sum(line["inscp_scp_amt"] for line in lines) == block["inscp_scp_amt"]
    # Every split column is exercised by LINES, so a column read from the wrong place shows.
    assert all(block[name] > 0 for name in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"))


def test_cancel_record_queries(client):
    c = client()
    mdtrt_id, _, settled = settle_visit(c, 41, DAY1)
    original = settled["setlinfo"]
    cancelled = ok(call(c, "2208", {"data": {"setl_id": original["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no(41)}}, DAY2))
    cancel_id = cancelled["setlinfo"]["setl_id"]
    assert cancel_id != original["setl_id"]

    info = ok(call(c, "5203", by_setl_id(cancel_id, mdtrt_id)))["setlinfo"]
    assert info["refd_setl_flag"] == "1"
    assert info["medfee_sumamt"] == -original["medfee_sumamt"]
    assert info["cash_payamt"] == cancelled["setlinfo"]["psn_cash_pay"]
    assert info["balc"] == cancelled["setlinfo"]["balc"]
    assert info["enddate"] == DAY2

    still = ok(call(c, "5203", by_setl_id(original["setl_id"], mdtrt_id)))["setlinfo"]
    assert still["refd_setl_flag"] == "0"
    assert still["medfee_sumamt"] == original["medfee_sumamt"]

    lines = ok(call(c, "5204", by_setl_id(cancel_id, mdtrt_id)))
    assert sum(line["det_item_fee_sumamt"] for line in lines) == -original["medfee_sumamt"]
    assert all(line["cnt"] < 0 for line in lines)


def test_fee_lines_after_withdrawal_and_reupload(client):
    c = client()
    mdtrt_id, _, first = settle_visit(c, 41, DAY1)
    ok(call(c, "2208", {"data": {"setl_id": first["setlinfo"]["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no(41)}}))
    ok(call(c, "2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "psn_no": psn_no(41)}}))
    upload(c, 41, DAY1, mdtrt_id, [("T-SVC-0002", "25.00", "1")], "B1")
    second = settle(c, 41, DAY1, mdtrt_id, "25.00", "B1")

    old_lines = ok(call(c, "5204", by_setl_id(first["setlinfo"]["setl_id"], mdtrt_id)))
    assert [(line["feedetl_sn"], line["det_item_fee_sumamt"]) for line in old_lines][0] == ("FD1", Decimal("30.00"))
    assert sum(line["det_item_fee_sumamt"] for line in old_lines) == first["setlinfo"]["medfee_sumamt"]
    new_lines = ok(call(c, "5204", by_setl_id(second["setlinfo"]["setl_id"], mdtrt_id)))
    assert [(line["feedetl_sn"], line["det_item_fee_sumamt"]) for line in new_lines] == [("FD1", Decimal("25.00"))]


def test_period_lists_own_rows_only(client):
    hospital = client()
    first_visit, _, first = settle_visit(hospital, 41, DAY1)
    second_visit, _, second = settle_visit(hospital, 41, DAY2)
    cancel = ok(call(hospital, "2208", {"data": {"setl_id": second["setlinfo"]["setl_id"], "mdtrt_id": second_visit, "psn_no": psn_no(41)}}, DAY2))
    settle_visit(hospital, 42, DAY1)
    pharmacy = client(PHARMACY)
    sale = pharmacy_sale(pharmacy, 41)

    visits = ok(call(hospital, "5201", period(f"{DAY1} 00:00:00", f"{DAY1} 23:59:59")))["mdtrtinfo"]
    assert [row["mdtrt_id"] for row in visits] == [first_visit]
    assert visits[0]["vali_flag"] == "1"
    assert visits[0]["dept_name"] == "内科"
    both_days = ok(call(hospital, "5201", period(DAY1, DAY2)))["mdtrtinfo"]
    assert [row["mdtrt_id"] for row in both_days] == [first_visit, second_visit]
    assert ok(call(hospital, "5201", period(DAY1, DAY2, mdtrt_id=second_visit)))["mdtrtinfo"][0]["mdtrt_id"] == second_visit
    assert ok(call(hospital, "5201", period(DAY1, DAY2, med_type="14")))["mdtrtinfo"] == []
    assert ok(call(hospital, "5201", period(DAY1, DAY2, mdtrt_id=sale["mdtrt_id"])))["mdtrtinfo"] == []

    records = ok(call(hospital, "5205", period(DAY1, DAY2)))["setlinfo"]
    expected = [first["setlinfo"]["setl_id"], second["setlinfo"]["setl_id"], cancel["setlinfo"]["setl_id"]]
    assert [row["setl_id"] for row in records] == expected
    assert [row["refd_setl_flag"] for row in records] == ["0", "0", "1"]
    assert records[2]["init_setl_id"] == second["setlinfo"]["setl_id"]
    assert records[0]["medfee_sumamt"] == first["setlinfo"]["medfee_sumamt"]
    assert records[0]["psn_pay"] == first["setlinfo"]["psn_part_amt"]
    assert records[2]["cash_payamt"] == cancel["setlinfo"]["psn_cash_pay"]
    first_day = ok(call(hospital, "5205", period(DAY1, DAY1)))["setlinfo"]
    assert [row["setl_id"] for row in first_day] == [first["setlinfo"]["setl_id"]]

    assert [row["setl_id"] for row in ok(call(pharmacy, "5205", period(DAY1, DAY2)))["setlinfo"]] == [sale["setl_id"]]
    assert [row["mdtrt_id"] for row in ok(call(pharmacy, "5201", period(DAY1, DAY2)))["mdtrtinfo"]] == [sale["mdtrt_id"]]
    assert ok(call(pharmacy, "5203", by_setl_id(sale["setl_id"], sale["mdtrt_id"])))["setlinfo"]["medfee_sumamt"] == sale["medfee_sumamt"]
    sold = ok(call(pharmacy, "5204", by_setl_id(sale["setl_id"], sale["mdtrt_id"])))
    assert [(line["feedetl_sn"], line["det_item_fee_sumamt"]) for line in sold] == [("RX1", sale["medfee_sumamt"])]


def ledger_accumulators(inspector, number, year):
    rows = dict(inspector.query("SELECT acc_key, value FROM ledger_accumulators WHERE psn_no = $1 AND year = $2", psn_no(number), year))
    return {key: int(rows.get(key, 0)) for key in STORED_ACCUMULATOR_KEYS}


def as_fen(cuminfo):
    return {row["cum_type_code"]: int(row["cum"] * 100) if row["cum_type_code"] != "ip_admission_count" else int(row["cum"]) for row in cuminfo}


def test_cumulative_follows_ledger(client, server):
    inspector = server[1]
    c = client()
    query = {"data": {"psn_no": psn_no(41), "cum_ym": "202405"}}

    before = ok(call(c, "5206", query))
    assert [row["cum_type_code"] for row in before["cuminfo"]] == list(STORED_ACCUMULATOR_KEYS)
    assert as_fen(before["cuminfo"]) == ledger_accumulators(inspector, 41, 2024)
    assert before["balc"] == Decimal("50.00")
    assert (before["year"], before["cum_ym"]) == ("2024", "202405")

    _, _, settled = settle_visit(c, 41, DAY1)
    after = ok(call(c, "5206", query))
    assert as_fen(after["cuminfo"]) == ledger_accumulators(inspector, 41, 2024)
    assert as_fen(after["cuminfo"]) != as_fen(before["cuminfo"])
    assert after["balc"] == settled["setlinfo"]["balc"]
    assert after["balc"] < before["balc"]

    by_year = ok(call(c, "5206", {"data": {"psn_no": psn_no(41), "year": 2024}}))
    assert by_year["cuminfo"] == after["cuminfo"]
    other_year = ok(call(c, "5206", {"data": {"psn_no": psn_no(41), "year": "2023"}}))
    assert all(row["cum"] == 0 for row in other_year["cuminfo"])


def test_bad_queries_rejected_unwritten(client, server):
    inspector = server[1]
    hospital = client()
    mdtrt_id, _, settled = settle_visit(hospital, 41, DAY1)
    setl_id = settled["setlinfo"]["setl_id"]
    sale = pharmacy_sale(client(PHARMACY), 41)
    before = inspector.snapshot()

    cases = [
        ("5203", by_setl_id("NO-SUCH-SETTLEMENT", mdtrt_id), 6016),
        ("5204", by_setl_id("NO-SUCH-SETTLEMENT", mdtrt_id), 6016),
        ("5203", by_setl_id(sale["setl_id"], sale["mdtrt_id"]), 6016),
        ("5204", by_setl_id(sale["setl_id"], sale["mdtrt_id"]), 6016),
        ("5203", by_setl_id(setl_id, "OTHER-VISIT"), 6008),
        ("5203", by_setl_id(setl_id, mdtrt_id, number=42), 6008),
        ("5203", by_setl_id(setl_id, mdtrt_id, number=99), 6007),
        ("5203", {"data": {"psn_no": psn_no(41), "mdtrt_id": mdtrt_id}}, 2001),
        ("5201", period("2024-02-30", DAY2), 2003),
        ("5201", period(DAY1, "2024/05/21"), 2003),
        ("5201", period(DAY2, DAY1), 6040),
        ("5201", period(DAY1, DAY2, med_type="77"), 2002),
        ("5201", period(DAY1, DAY2, number=99), 6007),
        ("5205", period(f"{DAY1} 25:00:00", DAY2), 2003),
        ("5205", period(f"{DAY2} 10:00:00", f"{DAY2} 09:00:00"), 6040),
        ("5205", {"data": {"psn_no": psn_no(41), "begntime": DAY1}}, 2001),
        ("5206", {"data": {"psn_no": psn_no(41), "cum_ym": "202413"}}, 2003),
        ("5206", {"data": {"psn_no": psn_no(41), "cum_ym": "202405", "year": "2023"}}, 2003),
        ("5206", {"data": {"psn_no": psn_no(41)}}, 2001),
        ("5206", {"data": {"psn_no": psn_no(99), "year": "2024"}}, 6007),
    ]
    for infno, node, code in cases:
        answer = call(hospital, infno, node)
        assert (infno, answer["infcode"], answer.get("err_code")) == (infno, -1, code), answer["err_msg"]
        assert answer["err_msg"].startswith(f"[{code}]")

    assert inspector.snapshot() == before


def test_query_retry_replays(client):
    c = client()
    settle_visit(c, 41, DAY1)
    msgid = c.new_msgid()
    query = {"data": {"psn_no": psn_no(41), "year": "2024"}}
    first = ok(call(c, "5206", query, msgid=msgid))
    settle_visit(c, 41, DAY2, batch="B2")
    assert ok(call(c, "5206", query, msgid=msgid)) == first
    assert ok(call(c, "5206", query))["cuminfo"] != first["cuminfo"]
