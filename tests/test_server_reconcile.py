"""Reconciliation against a real server: 3201 totals, and 3202 details with the 9101 upload and 9102 download.

Settlements are made through the ordinary chain (2201, 2204, 2207) at chosen engine times,
so the figures compared are the ledger's own.
"""

import argparse
import base64
import io
import zipfile
from decimal import Decimal

import pytest

from adapters.cli.reconcile import run_export
from adapters.server.client import Client
from tests.server_harness import HOSPITAL, PHARMACY, LedgerInspector, ledger_dsn, running_server

DAY1 = "2024-05-20"
DAY2 = "2024-05-21"
AGENCY = "110000"


def person(number, acct_balc):
    return {
        "psn_no": f"PSN-TEST-{number:04d}", "certno": f"99000019960101{number:04d}", "psn_name": "测试甲", "gend": "1",
        "brdy": "1996-01-01", "insutype": "310", "psn_type": "1101", "insuplc_admdvs": AGENCY, "acct_balc": acct_balc,
        "cards": [{"card_no": f"TESTCARD{number:04d}"}],
    }


PERSONS = [person(41, "30.00"), person(42, "0.00"), person(43, "500.00")]


@pytest.fixture(params=["sqlite", "postgres"])
def served(request, tmp_path):
    """Yield (port, ledger dsn) of a running server on a fresh ledger."""
    with ledger_dsn(request.param, tmp_path) as dsn, running_server(tmp_path, dsn, PERSONS) as port:
        yield port, dsn


@pytest.fixture
def hospital(served):
    port, _ = served
    connection = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"], admdvs=AGENCY)
    connection.sign_in()
    yield connection
    connection.close()


def call(c, infno, node, at=f"{DAY1} 18:00:00", **headers):
    return c.call(infno, node, headers={"x-settlement-clock": at, **headers})


def settle(c, number, count, at):
    """Settle one visit of ``count`` consultations (20.00 each) at ``at``; return the 2207 setlinfo."""
    psn_no, card = f"PSN-TEST-{number:04d}", f"TESTCARD{number:04d}"
    registered = call(c, "2201", {"data": {
        "psn_no": psn_no, "insutype": "310", "begntime": at, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "ipt_otp_no": f"OTP{number}",
        "atddr_no": "D01", "dr_name": "测试医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03",
    }}, at)
    assert registered["infcode"] == 0, registered["err_msg"]
    mdtrt_id = registered["output"]["data"]["mdtrt_id"]
    total = f"{20 * count}.00"
    line = {"feedetl_sn": "L1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rx_circ_flag": "0", "fee_ocur_time": at,
            "med_list_codg": "T-SVC-0002", "medins_list_codg": "T-SVC-0002", "pric": "20.00", "cnt": count, "det_item_fee_sumamt": total}
    assert call(c, "2204", {"feedetail": [line]}, at)["infcode"] == 0
    settled = call(c, "2207", {"data": {
        "psn_no": psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "med_type": "11", "medfee_sumamt": total, "psn_setlway": "01",
        "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "1", "insutype": "310",
    }}, at)
    assert settled["infcode"] == 0, settled["err_msg"]
    return settled["output"]["setlinfo"]


def totals_of(blocks):
    return {
        "medfee_sumamt": sum(Decimal(block["medfee_sumamt"]) for block in blocks),
        "fund_pay_sumamt": sum(Decimal(block["fund_pay_sumamt"]) for block in blocks),
        "acct_pay": sum(Decimal(block["acct_pay"]) for block in blocks),
        "fixmedins_setl_cnt": len(blocks),
    }


def totals_request(figures, begin=DAY1, end=DAY1, **extra):
    return {"data": {"insutype": "310", "clr_type": "11", "setl_optins": AGENCY, "stmt_begndate": begin, "stmt_enddate": end,
                     **{name: str(value) if name != "fixmedins_setl_cnt" else value for name, value in figures.items()}, **extra}}


def stmt(answer):
    assert answer["infcode"] == 0, answer["err_msg"]
    return answer["output"]["stmtinfo"]


def test_totals_balanced_missing_and_differing(served, hospital, tmp_path):
    # Both visits pass the 1800.00 yearly deductible, so every figure is non-zero.
    first = settle(hospital, 41, 100, f"{DAY1} 09:30:00")
    second = settle(hospital, 43, 120, f"{DAY1} 10:30:00")
    for name in ("fund_pay_sumamt", "acct_pay"):
        assert Decimal(first[name]) != 0
        assert Decimal(second[name]) != 0
    both = totals_of([first, second])

    balanced = stmt(call(hospital, "3201", totals_request(both)))
    assert (balanced["setl_optins"], balanced["stmt_rslt"]) == (AGENCY, "0")

    only_first = totals_of([first])
    missing = stmt(call(hospital, "3201", totals_request(only_first)))
    assert missing["stmt_rslt"] == "1"
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay"):
        assert f"{name} 本系统 {both[name]:.2f}，机构 {only_first[name]:.2f}" in missing["stmt_rslt_dscr"]
    assert "fixmedins_setl_cnt 本系统 2，机构 1" in missing["stmt_rslt_dscr"]

    altered = dict(both, fund_pay_sumamt=both["fund_pay_sumamt"] - Decimal("0.01"))
    differing = stmt(call(hospital, "3201", totals_request(altered)))
    assert differing["stmt_rslt"] == "1"
    assert f"fund_pay_sumamt 本系统 {both['fund_pay_sumamt']:.2f}，机构 {altered['fund_pay_sumamt']:.2f}" in differing["stmt_rslt_dscr"]
    assert "medfee_sumamt" not in differing["stmt_rslt_dscr"]

    english = stmt(call(hospital, "3201", totals_request(altered), **{"accept-language": "en"}))
    assert f"fund_pay_sumamt engine {both['fund_pay_sumamt']:.2f}, institution {altered['fund_pay_sumamt']:.2f}" in english["stmt_rslt_dscr"]

    # Another key of the same day has no records, so only zeros balance it.
    zeros = {"medfee_sumamt": 0, "fund_pay_sumamt": 0, "acct_pay": 0, "fixmedins_setl_cnt": 0}
    assert stmt(call(hospital, "3201", totals_request(zeros, insutype="390")))["stmt_rslt"] == "0"
    assert stmt(call(hospital, "3201", totals_request(zeros, setl_optins="120000")))["stmt_rslt"] == "0"

    # The command line's export gives the same figures from the same ledger.
    _, dsn = served
    args = argparse.Namespace(ledger=dsn, institution=HOSPITAL["fixmedins_code"], date_from=DAY1, date_to=None, sep="tab", lang="zh",
                              totals=tmp_path / "3201.txt", details=tmp_path / "3202.txt", exclude_cancels=False)
    assert run_export(args, io.StringIO(), io.StringIO()) == 0
    exported = (tmp_path / "3201.txt").read_text(encoding="utf-8").split("\n")[0].split("\t")
    assert exported[3:9] == ["310", "11", f"{both['medfee_sumamt']:.2f}", f"{both['fund_pay_sumamt']:.2f}", f"{both['acct_pay']:.2f}", "2"]


def test_cancel_on_later_day_leaves_earlier_day(hospital):
    block = settle(hospital, 43, 100, f"{DAY1} 09:30:00")
    day1 = totals_of([block])
    assert stmt(call(hospital, "3201", totals_request(day1)))["stmt_rslt"] == "0"

    cancelled = call(hospital, "2208", {"data": {"setl_id": block["setl_id"], "mdtrt_id": block["mdtrt_id"], "psn_no": "PSN-TEST-0043"}},
                     f"{DAY2} 10:00:00")
    assert cancelled["infcode"] == 0, cancelled["err_msg"]

    after = stmt(call(hospital, "3201", totals_request(day1), f"{DAY2} 18:00:00"))
    assert after["stmt_rslt"] == "0", after["stmt_rslt_dscr"]

    cancel_day = {name: -value for name, value in day1.items() if name != "fixmedins_setl_cnt"} | {"fixmedins_setl_cnt": 1}
    assert stmt(call(hospital, "3201", totals_request(cancel_day, DAY2, DAY2), f"{DAY2} 18:00:00"))["stmt_rslt"] == "0"

    # refd_setl_flag "0" in either spelling leaves the cancel record out of day 2.
    zeros = {"medfee_sumamt": 0, "fund_pay_sumamt": 0, "acct_pay": 0, "fixmedins_setl_cnt": 0}
    for key in ("refd_setl_flag", "REFD_SETL_FLAG"):
        assert stmt(call(hospital, "3201", totals_request(zeros, DAY2, DAY2, **{key: "0"}), f"{DAY2} 18:00:00"))["stmt_rslt"] == "0"

    # Over both days the original and its cancel count one each and cancel out.
    both_days = stmt(call(hospital, "3201", totals_request(dict(zeros, fixmedins_setl_cnt=2), DAY1, DAY2), f"{DAY2} 18:00:00"))
    assert both_days["stmt_rslt"] == "0", both_days["stmt_rslt_dscr"]


def zipped(name, text):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()


def detail_line(block, separator, fund=None):
    fund = block["fund_pay_sumamt"] if fund is None else fund
    return separator.join((block["setl_id"], block["mdtrt_id"], block["psn_no"], f"{Decimal(block['medfee_sumamt']):.2f}",
                           f"{Decimal(fund):.2f}", f"{Decimal(block['acct_pay']):.2f}", "0"))


def upload(c, content, filename):
    answer = call(c, "9101", {"fsUploadIn": {"in": content, "filename": filename, "fixmedins_code": HOSPITAL["fixmedins_code"]}})
    assert answer["infcode"] == 0, answer["err_msg"]
    assert answer["output"]["filename"] == filename
    return answer["output"]["file_qury_no"]


def detail_request(file_qury_no, lines_sum, count):
    return {"data": {"setl_optins": AGENCY, "file_qury_no": file_qury_no, "stmt_begndate": DAY1, "stmt_enddate": DAY1,
                     "medfee_sumamt": f"{lines_sum[0]:.2f}", "fund_pay_sumamt": f"{lines_sum[1]:.2f}", "cash_payamt": "0.00",
                     "fixmedins_setl_cnt": count}}


def download_result(c, fileinfo):
    answer = call(c, "9102", {"fsDownloadIn": {"file_qury_no": fileinfo["file_qury_no"], "filename": fileinfo["filename"]}})
    assert answer["infcode"] == 0, answer["err_msg"]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(answer["output"]["in"]))) as archive:
        (member,) = archive.namelist()
        text = archive.read(member).decode("utf-8")
    return {line.split("\t")[2]: line.split("\t") for line in text.splitlines()}


def test_detail_file_missing_and_altered(hospital):
    matching = settle(hospital, 41, 1, f"{DAY1} 09:00:00")
    altered = settle(hospital, 42, 2, f"{DAY1} 10:00:00")
    left_out = settle(hospital, 43, 3, f"{DAY1} 11:00:00")
    wrong_fund = Decimal(altered["fund_pay_sumamt"]) + Decimal("1.00")
    text = detail_line(matching, "\t") + "\n" + detail_line(altered, "\t", fund=wrong_fund) + "\n"
    sums = (Decimal(matching["medfee_sumamt"]) + Decimal(altered["medfee_sumamt"]), Decimal(matching["fund_pay_sumamt"]) + wrong_fund)

    file_qury_no = upload(hospital, base64.b64encode(zipped("details.txt", text)).decode(), "details.zip")
    answer = call(hospital, "3202", detail_request(file_qury_no, sums, 2))
    assert answer["infcode"] == 0, answer["err_msg"]
    fileinfo = answer["output"]["fileinfo"]
    assert fileinfo["dld_endtime"] > f"{DAY1} 18:00:00"

    rows = download_result(hospital, fileinfo)
    assert set(rows) == {matching["setl_id"], altered["setl_id"], left_out["setl_id"]}
    assert {setl_id for setl_id, row in rows.items() if row[4] == "1"} == {altered["setl_id"], left_out["setl_id"]}
    assert rows[matching["setl_id"]][4] == "0"
    assert rows[altered["setl_id"]][6] == f"fund_pay_sumamt 本系统 {Decimal(altered['fund_pay_sumamt']):.2f}，机构 {wrong_fund:.2f}"
    assert rows[left_out["setl_id"]][6] == "机构明细中无此结算"
    assert rows[left_out["setl_id"]][7:] == [f"{Decimal(left_out[name]):.2f}" for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")]


def test_detail_plain_comma_file_as_byte_array(hospital):
    matching = settle(hospital, 41, 1, f"{DAY1} 09:00:00")
    stranger = "SETL-NOT-OURS,MDTRT-NOT-OURS,PSN-TEST-0099,10.00,8.00,0.00,0"
    text = detail_line(matching, ",") + "\n" + stranger + "\n"
    signed_bytes = [byte - 256 if byte > 127 else byte for byte in text.encode("utf-8")]
    sums = (Decimal(matching["medfee_sumamt"]) + Decimal("10.00"), Decimal(matching["fund_pay_sumamt"]) + Decimal("8.00"))

    file_qury_no = upload(hospital, signed_bytes, "details.txt")
    answer = call(hospital, "3202", detail_request(file_qury_no, sums, 2), **{"accept-language": "en"})
    assert answer["infcode"] == 0, answer["err_msg"]

    rows = download_result(hospital, answer["output"]["fileinfo"])
    assert rows[matching["setl_id"]][4] == "0"
    assert rows["SETL-NOT-OURS"][4:7] == ["1", "0", "not a settlement of the engine"]


def test_bad_input_coded_and_writes_nothing(served, hospital):
    port, dsn = served
    block = settle(hospital, 41, 1, f"{DAY1} 09:00:00")
    figures = totals_of([block])
    file_qury_no = upload(hospital, base64.b64encode(detail_line(block, "\t").encode()).decode(), "details.txt")
    # The pharmacy signs in before the snapshot, because a sign-in is recorded.
    pharmacy = Client("127.0.0.1", port, fixmedins_code=PHARMACY["fixmedins_code"], secret=PHARMACY["secret"], admdvs=AGENCY)
    pharmacy.sign_in()
    inspector = LedgerInspector(dsn)
    before = inspector.snapshot()
    files_before = inspector.query("SELECT file_qury_no FROM srv_file ORDER BY file_qury_no")

    good_detail = detail_request(file_qury_no, (Decimal(block["medfee_sumamt"]), Decimal(block["fund_pay_sumamt"])), 1)
    cases = [
        ("3201", totals_request(figures, begin="2024-13-01"), 2003, "stmt_begndate"),
        ("3201", totals_request(figures, begin=f"{DAY1} 00:00:00"), 6050, "stmt_begndate"),
        ("3201", totals_request(figures, begin=DAY2, end=DAY1), 6050, "stmt_enddate"),
        ("3201", totals_request(dict(figures, fund_pay_sumamt="1.001")), 1001, "fund_pay_sumamt"),
        ("3201", totals_request(figures, setl_optins="11"), 2003, "setl_optins"),
        ("3201", totals_request(figures, REFD_SETL_FLAG="2"), 2002, "REFD_SETL_FLAG"),
        ("3202", {"data": dict(good_detail["data"], file_qury_no="F-UNKNOWN")}, 6051, "file_qury_no"),
        ("3202", {"data": dict(good_detail["data"], stmt_enddate="2024-05-19")}, 6050, "stmt_enddate"),
        ("3202", {"data": dict(good_detail["data"], fixmedins_setl_cnt=2)}, 6052, "fixmedins_setl_cnt"),
        ("3202", {"data": dict(good_detail["data"], medfee_sumamt="0.01")}, 6052, "medfee_sumamt"),
        ("9101", {"fsUploadIn": {"in": "not base64!", "filename": "x.txt"}}, 2003, "in"),
        ("9101", {"fsUploadIn": {"in": [1, 300], "filename": "x.txt"}}, 2003, "in[1]"),
        ("9101", {"fsUploadIn": {"in": "QQ==", "filename": "x.txt", "fixmedins_code": PHARMACY["fixmedins_code"]}}, 6005, "fixmedins_code"),
        ("9102", {"fsDownloadIn": {"file_qury_no": "F-UNKNOWN"}}, 6051, "file_qury_no"),
    ]
    for infno, node, code, field in cases:
        answer = call(hospital, infno, node)
        assert answer.get("err_code") == code, f"{infno} {field}: {answer.get('err_msg')}"
        assert field in answer["err_msg"], answer["err_msg"]

    # A file of one institution is unknown to another.
    try:
        assert call(pharmacy, "9102", {"fsDownloadIn": {"file_qury_no": file_qury_no}})["err_code"] == 6051
        assert call(pharmacy, "3202", good_detail)["err_code"] == 6051
    finally:
        pharmacy.close()

    # An upload is no longer usable after its download deadline.
    assert call(hospital, "3202", good_detail, "2024-06-30 09:00:00")["err_code"] == 6051

    assert inspector.snapshot() == before
    assert inspector.query("SELECT file_qury_no FROM srv_file ORDER BY file_qury_no") == files_before
