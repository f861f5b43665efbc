"""Inpatient stays end to end against a real server, checked to the fen against the inpatient claim vectors.

The vectors cover a first and a later admission, a band crossing, the pooled cap reached
with the large-amount layer, the civil-servant subsidy, and critical illness for residents
with medical assistance. Each becomes a stay: 2401 admission at a hospital of the vector's
level, 2301 upload, 2402 discharge, 2303 pre-settlement and 2304 settlement. The person's accumulators before
are posted first through the ledger's adjustment API; afterwards the ledger must hold the
vector's accumulators after.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
from decimal import ROUND_HALF_UP, Decimal

import pytest

from adapters.ledger import migrate_ledger, open_store
from adapters.server.client import Client
from settlement.store import AccumulatorDelta, AdjustmentRequest
from tests.server_harness import LedgerInspector, ledger_dsn, running_server

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "examples"
STAY_VECTORS = ("ex11", "ex13", "ex15", "ex17", "ex26", "ex27")

# One test hospital per level the vectors use.
HOSPITALS = {
    "level3": {"fixmedins_code": "H99000000003", "fixmedins_name": "测试三级医院（虚构）", "kind": "hospital", "hosp_lv": "level3",
               "admdvs": "110000", "secret": "test-secret-level3"},
    "level2": {"fixmedins_code": "H99000000002", "fixmedins_name": "测试二级医院（虚构）", "kind": "hospital", "hosp_lv": "level2",
               "admdvs": "110000", "secret": "test-secret-level2"},
}

COUNTERS = ("ip_admission_count",)

# National person-type codes of the vectors' groups: 11xx active employee, 15xx resident.
PSN_TYPE_CODES = {"active": "1101", "resident": "1501"}


def vector(name: str) -> dict:
    return json.loads(next(EXAMPLES.glob(f"{name}-*.json")).read_text(encoding="utf-8"))


def _number(name: str) -> int:
    return int(name[2:])


def _fen(text: str) -> int:
    return int(Decimal(text) * 100)


def person_row(name: str, case: dict) -> dict:
    setl_date = datetime.date.fromisoformat(case["visit"]["setl_date"])
    number = _number(name)
    resident = case["person"]["psn_type"] == "resident"
    return {
        "psn_no": f"PSN-TEST-{number:04d}", "certno": f"99000019800101{number:04d}", "psn_name": case["person"]["psn_name"],
        "gend": "1", "brdy": f"{setl_date.year - case['person']['age'] - 1}-12-31", "insutype": "390" if resident else "310",
        "psn_type": PSN_TYPE_CODES[case["person"]["psn_type"]], "cvlserv_flag": case["person"]["cvlserv_flag"], "maf_type": case["person"]["maf_type"],
        "insuplc_admdvs": "110000", "acct_balc": case["accumulators_before"].get("acct_balc", "0.00"),
        "cards": [{"card_no": f"TESTCARD{number:04d}"}],
    }


def seed_accumulators(dsn: str, cases: dict[str, dict]) -> None:
    """Post every vector's accumulators before, as the ledger's own adjustment."""
    deltas = []
    for name, case in cases.items():
        year = int(case["visit"]["setl_date"][:4])
        for key, value in case["accumulators_before"].items():
            amount = int(value) if key in COUNTERS else _fen(value)
            if key != "acct_balc" and amount:
                deltas.append(AccumulatorDelta(psn_no=f"PSN-TEST-{_number(name):04d}", year=year, key=key, delta=amount))

    async def run() -> None:
        await migrate_ledger(dsn)
        store = await open_store(dsn)
        try:
            await store.adjust(AdjustmentRequest(msgid="inpatient-vectors-before", reason="inpatient vector setup", accumulator_deltas=tuple(deltas)))
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def stays(request, tmp_path):
    cases = {name: vector(name) for name in STAY_VECTORS}
    with ledger_dsn(request.param, tmp_path) as dsn:
        seed_accumulators(dsn, cases)
        persons = [person_row(name, case) for name, case in cases.items()]
        with running_server(tmp_path, dsn, persons, list(HOSPITALS.values())) as port:
            clients = {}
            for level, hospital in HOSPITALS.items():
                clients[level] = Client("127.0.0.1", port, fixmedins_code=hospital["fixmedins_code"], secret=hospital["secret"], admdvs="110000")
            try:
                yield cases, clients, LedgerInspector(dsn)
            finally:
                for client in clients.values():
                    client.close()


class Stay:
    """One vector's stay, driven through the inpatient transactions at the vector's settlement date."""

    def __init__(self, name: str, case: dict, client: Client) -> None:
        self.name = name
        self.case = case
        self.client = client
        self.number = _number(name)
        self.psn_no = f"PSN-TEST-{self.number:04d}"
        self.insutype = "390" if case["person"]["psn_type"] == "resident" else "310"
        setl_date = datetime.date.fromisoformat(case["visit"]["setl_date"])
        self.clock = {"x-settlement-clock": f"{setl_date} 10:00:00"}
        self.admitted = f"{setl_date - datetime.timedelta(days=5)} 08:00:00"
        self.mdtrt_id = ""

    def call(self, infno: str, node: dict, **kwargs) -> dict:
        return self.client.call(infno, node, headers={**self.clock, **kwargs.pop("headers", {})}, **kwargs)

    def admit(self) -> dict:
        answer = self.call("2401", {"mdtrtinfo": {
            "psn_no": self.psn_no, "insutype": self.insutype, "begntime": self.admitted, "mdtrt_cert_type": "03",
            "mdtrt_cert_no": f"TESTCARD{self.number:04d}", "med_type": "21", "ipt_no": f"IPT{self.number}", "atddr_no": "D01",
            "chfpdr_name": "测试医生", "adm_diag_dscr": "测试诊断", "adm_dept_codg": "A03", "adm_dept_name": "内科", "adm_bed": "12",
            "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎",
        }, "diseinfo": []})
        assert answer["infcode"] == 0, answer["err_msg"]
        self.mdtrt_id = answer["output"]["result"]["mdtrt_id"]
        return answer

    def lines(self) -> list[dict]:
        return [
            {
                "feedetl_sn": f"IP{line['seq']:03d}", "mdtrt_id": self.mdtrt_id, "psn_no": self.psn_no, "med_type": "21",
                "fee_ocur_time": self.admitted[:10] + " 09:00:00", "med_list_codg": line["code"], "medins_list_codg": line["code"],
                "pric": line["pric"], "cnt": line["cnt"], "det_item_fee_sumamt": _line_total(line),
                "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D01", "bilg_dr_name": "测试医生",
            }
            for line in self.case["lines"]
        ]

    def upload(self) -> dict:
        return self.call("2301", {"feedetail": self.lines()})

    def discharge(self) -> dict:
        return self.call("2402", {"dscginfo": {
            "mdtrt_id": self.mdtrt_id, "psn_no": self.psn_no, "insutype": self.insutype, "endtime": self.clock["x-settlement-clock"],
            "dscg_dept_codg": "A03", "dscg_dept_name": "内科", "dscg_way": "1",
        }, "diseinfo": []})

    def settle_data(self, **extra) -> dict:
        return {"data": {
            "psn_no": self.psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": f"TESTCARD{self.number:04d}",
            "medfee_sumamt": self.case["expected"]["outputs"]["medfee_sumamt"], "psn_setlway": "01", "mdtrt_id": self.mdtrt_id,
            "insutype": self.insutype, "acct_used_flag": self.case["visit"]["acct_used_flag"], "mid_setl_flag": "0", **extra,
        }}


def _line_total(line: dict) -> str:
    return str((Decimal(line["pric"]) * Decimal(line["cnt"])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _amounts(block: dict, names) -> dict[str, str]:
    return {name: f"{Decimal(str(block[name])):.2f}" for name in names}


def accumulators_now(inspector: LedgerInspector, psn_no: str, year: int, names) -> dict[str, str]:
    stored = dict(inspector.query("SELECT acc_key, value FROM ledger_accumulators WHERE psn_no = $1 AND year = $2", psn_no, year))
    balance = inspector.query("SELECT debits_posted, credits_posted FROM ledger_accounts WHERE account_key = $1", f"personal:{psn_no}")
    stored["acct_balc"] = balance[0][1] - balance[0][0] if balance else 0
    return {name: int(stored.get(name, 0)) if name in COUNTERS else f"{Decimal(int(stored.get(name, 0))) / 100:.2f}" for name in names}


def test_inpatient_chain_matches_claim_vectors(stays):
    cases, clients, inspector = stays
    for level in {case["visit"]["hosp_lv"] for case in cases.values()}:
        clients[level].sign_in()

    for name, case in cases.items():
        stay = Stay(name, case, clients[case["visit"]["hosp_lv"]])
        stay.admit()
        upload = stay.upload()
        assert upload["infcode"] == 0, f"{name}: {upload['err_msg']}"
        assert len(upload["output"]["result"]) == len(case["lines"])
        assert stay.discharge()["infcode"] == 0

        expected = case["expected"]["outputs"]
        pre = stay.call("2303", stay.settle_data())
        assert pre["infcode"] == 0, f"{name}: {pre['err_msg']}"
        assert _amounts(pre["output"]["setlinfo"], expected) == expected, name

        settled = stay.call("2304", stay.settle_data())
        assert settled["infcode"] == 0, f"{name}: {settled['err_msg']}"
        assert _amounts(settled["output"]["setlinfo"], expected) == expected, name
        assert settled["output"]["setlinfo"]["setl_id"]

        after = case["expected"]["accumulators_after"]
        year = int(case["visit"]["setl_date"][:4])
        assert accumulators_now(inspector, stay.psn_no, year, after) == after, name


def test_cancel_restores_and_settles_again(stays):
    cases, clients, inspector = stays
    case = cases["ex13"]
    client = clients["level3"]
    client.sign_in()
    stay = Stay("ex13", case, client)
    stay.admit()
    assert stay.upload()["infcode"] == 0
    settled = stay.call("2304", stay.settle_data())
    assert settled["infcode"] == 0, settled["err_msg"]
    setl_id = settled["output"]["setlinfo"]["setl_id"]
    year = int(case["visit"]["setl_date"][:4])
    names = case["accumulators_before"]

    # A settled stay takes no more lines, and its lines cannot be withdrawn.
    more = stay.call("2301", {"feedetail": [dict(stay.lines()[0], feedetl_sn="IP999")]})
    assert more["err_code"] == 6014
    assert stay.call("2302", {"data": {"feedetl_sn": "IP001", "mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["err_code"] == 6017
    assert stay.call("2404", {"data": {"mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["err_code"] == 6018
    # An outpatient cancel does not take an inpatient settlement.
    assert stay.call("2208", {"data": {"setl_id": setl_id, "mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["err_code"] == 6027

    cancelled = stay.call("2305", {"data": {"setl_id": setl_id, "mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})
    assert cancelled["infcode"] == 0, cancelled["err_msg"]
    assert f"{Decimal(str(cancelled['output']['setlinfo']['hifp_pay'])):.2f}" == "-" + case["expected"]["outputs"]["hifp_pay"]
    assert accumulators_now(inspector, stay.psn_no, year, names) == names

    again = stay.call("2304", stay.settle_data())
    assert again["infcode"] == 0, again["err_msg"]
    assert _amounts(again["output"]["setlinfo"], case["expected"]["outputs"]) == case["expected"]["outputs"]
    assert again["output"]["setlinfo"]["setl_id"] != setl_id


def test_stay_rejections_write_nothing(stays):
    cases, clients, inspector = stays
    client = clients["level3"]
    client.sign_in()
    stay = Stay("ex11", cases["ex11"], client)
    stay.admit()

    before = inspector.snapshot()
    line = stay.lines()[0]
    # Outpatient upload into a stay, mid-stay settlement, nothing to settle, unknown line to withdraw.
    assert stay.call("2204", {"feedetail": [dict(line, chrg_bchno="B1")]})["err_code"] == 6027
    assert stay.call("2304", stay.settle_data())["err_code"] == 6020
    assert stay.call("2304", stay.settle_data(mid_setl_flag="1"))["err_code"] == 2002
    assert stay.call("2302", {"data": {"feedetl_sn": "NOPE", "mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["err_code"] == 6022
    assert stay.call("2405", {"data": {"mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["err_code"] == 6032
    assert stay.call("2401", {"mdtrtinfo": {"psn_no": stay.psn_no}})["infcode"] == -1
    assert inspector.snapshot() == before

    assert stay.upload()["infcode"] == 0
    wrong_total = stay.call("2304", stay.settle_data(medfee_sumamt="1.00"))
    assert wrong_total["err_code"] == 6013
    assert stay.call("2302", {"data": {"feedetl_sn": "IP001", "mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["infcode"] == 0
    assert len(inspector.query("SELECT line_id FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL", stay.mdtrt_id)) == len(stay.lines()) - 1
    assert stay.call("2404", {"data": {"mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no}})["infcode"] == 0
    assert stay.upload()["err_code"] == 6010


def test_lines_priced_on_fee_date(stays):
    """A stay across a catalogue change prices each line with the version in force on its fee date."""
    cases, clients, _ = stays
    client = clients["level3"]
    client.sign_in()
    stay = Stay("ex11", cases["ex11"], client)
    stay.clock = {"x-settlement-clock": "2024-07-03 10:00:00"}
    stay.admitted = "2024-06-28 08:00:00"
    stay.admit()

    # T-DRG-9001 is class B with a first self-pay of 10 % until 2024-06-30 and 5 % from 2024-07-01.
    line = {"mdtrt_id": stay.mdtrt_id, "psn_no": stay.psn_no, "med_type": "21", "med_list_codg": "T-DRG-9001",
            "medins_list_codg": "T-DRG-9001", "pric": "20.00", "cnt": "1", "det_item_fee_sumamt": "20.00"}
    upload = stay.call("2301", {"feedetail": [
        dict(line, feedetl_sn="JUNE", fee_ocur_time="2024-06-29 09:00:00"),
        dict(line, feedetl_sn="JULY", fee_ocur_time="2024-07-02 09:00:00"),
    ]})
    assert upload["infcode"] == 0, upload["err_msg"]

    by_sn = {row["feedetl_sn"]: row for row in upload["output"]["result"]}
    assert f"{Decimal(str(by_sn['JUNE']['selfpay_prop'])):.4f}" == "0.1000"
    assert f"{Decimal(str(by_sn['JUNE']['preselfpay_amt'])):.2f}" == "2.00"
    assert f"{Decimal(str(by_sn['JULY']['selfpay_prop'])):.4f}" == "0.0500"
    assert f"{Decimal(str(by_sn['JULY']['preselfpay_amt'])):.2f}" == "1.00"

    settled = stay.call("2304", dict(stay.settle_data(), data={**stay.settle_data()["data"], "medfee_sumamt": "40.00"}))
    assert settled["infcode"] == 0, settled["err_msg"]
    assert f"{Decimal(str(settled['output']['setlinfo']['preselfpay_amt'])):.2f}" == "3.00"
