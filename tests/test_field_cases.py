"""Run every field case (``Fnn.json``) against a real server and check what each step expects.

The case folder is ``$SETTLEMENT_FIELD_CASES`` (default ``../shared/reference/field-cases``
beside the repository). For each case the harness writes a rules folder with the case's
catalogue and the toy split policy of the case format, which ``setup.policy`` overrides.
It writes a persons file and the two test institutions and starts ``settlement serve
--test-clock`` on 127.0.0.1 and a free port. It seeds visits, stored lines and ledger
records through the server's own transactions and state API. Then it sends each step with
``x-settlement-clock`` set to the step's ``at``.

A step whose transaction the server does not handle yet (``op`` steps, or an ``infno``
outside the server's handler table) is pending: the case is marked xfail there with the
missing transaction in the reason, because the later steps expect its effect. Earlier
steps must pass. A new case file needs no code.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pathlib
import re
from decimal import Decimal

import pytest

from adapters.server.app import HANDLERS
from adapters.server.client import Client
from settlement.errors import ErrorCode
from tests.server_harness import REPO, LedgerInspector, ledger_dsn, running_server

CASES_DIR = pathlib.Path(os.environ.get("SETTLEMENT_FIELD_CASES", REPO.parent / "shared" / "reference" / "field-cases"))
CASE_FILES = sorted(CASES_DIR.glob("F*.json"))

REGION = "990100"
HOSPITAL = {"fixmedins_code": "H99000000001", "fixmedins_name": "测试医院（虚构）", "kind": "hospital", "hosp_lv": "level1",
            "admdvs": REGION, "secret": "field-case-secret-hospital"}
PHARMACY = {"fixmedins_code": "P99000000001", "fixmedins_name": "测试药店（虚构）", "kind": "pharmacy", "hosp_lv": "pharmacy",
            "admdvs": REGION, "secret": "field-case-secret-pharmacy"}

# Toy policy of the case format when a case gives none. The pool ratio 0.80 is the one the
# seeded ledger row of F14 implies (40.00 claimed, 32.00 paid by the fund).
DEFAULT_POLICY = {"deductible": "0.00", "pool_ratio": "0.80", "annual_fund_cap": None, "year_rule": "discharge_year"}

# Transactions named in the case format that are missing from the server, with their names.
TRANSACTION_NAMES = {
    "2301": "inpatient fee upload 2301", "2303": "inpatient pre-settlement 2303", "2304": "inpatient settlement 2304",
    "2601": "reversal 2601",
}

# State checks the engine cannot serve yet, with what is missing.
UNSUPPORTED_STATE: dict[str, str] = {}

# Case-format accumulator names mapped to the engine's, by the medical type of the visit.
ACCUMULATOR_NAMES = {
    "outpatient": {"fund_paid": "op_fund_paid", "dedc_used": "op_dedc_used"},
    "inpatient": {"fund_paid": "ip_fund_paid", "dedc_used": "op_dedc_used"},
}

_STEP_REFERENCE = re.compile(r"^\$(\d+)\.(\w+)$")
_AMOUNT = re.compile(r"-?\d+\.\d{2}\b")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _pending_reason(step: dict) -> str | None:
    if "op" in step:
        return f"step {step['step']}: internal operation {step['op']!r} is not built"
    infno = step.get("infno")
    if infno not in HANDLERS:
        return f"step {step['step']}: {TRANSACTION_NAMES.get(infno, 'transaction ' + str(infno))} is not built"
    return None


# ---------------------------------------------------------------------------
# Rules, persons and institutions written for one case


def _policy_files(rules_dir: pathlib.Path, policy: dict, insutypes: set[str]) -> None:
    ratios = {"rules": [{"groups": ["*"], "levels": ["*"], "ratios": [_ratio(policy["pool_ratio"])]}]}
    deductible = {"basis": "annual", "rules": [{"groups": ["*"], "levels": ["*"], "amount": policy["deductible"], "accumulator": "op_dedc_used"}]}

    def scheme(code: str, cap_key: str) -> dict:
        cap = policy.get("annual_fund_cap")
        return {
            "med_type_code": code, "deductible": deductible, "bands": None, "ratios": ratios,
            "fund_cap": None if cap is None else {"amount": cap, "accumulator": cap_key}, "large_amount": None,
        }

    (rules_dir / "policies").mkdir(parents=True)
    for insutype in sorted(insutypes):
        fund_code = "310100" if insutype == "310" else "390100"
        document = {
            "policy_id": f"field-case-{insutype}", "title": "field-case toy policy", "admdvs": REGION, "insutype": insutype,
            "effective_from": "2000-01-01", "effective_to": None, "year_rule": policy.get("year_rule") or "discharge_year",
            "max_lines": 9999, "fund_pay_types": {"hifp": fund_code, "acct": "310200"},
            "provenance": {"all": "I (toy split rules of the field-case format, only to make the numbers checkable)"},
            "account": {"has_account": True, "pays_fulamt": True, "pays_overlmt": True, "mutual_aid": False},
            "schemes": {
                "outpatient_general": scheme("11", "op_fund_paid"),
                "outpatient_chronic": scheme("14", "op_fund_paid"),
                "inpatient": scheme("21", "ip_fund_paid"),
            },
            "civil_servant": None, "critical_illness": None, "medical_assistance": None,
        }
        path = rules_dir / "policies" / f"field-case-{insutype}.json"
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def _ratio(text: str) -> str:
    return f"{Decimal(text):.4f}"


def _catalogue_file(rules_dir: pathlib.Path, catalogue: dict, codes_used: set[str]) -> None:
    """Write the case's catalogue; a code the case uses without listing it is class 01 with no cap."""
    rows = ["med_list_codg,name,chrgitm_lv,selfpay_prop,pric_uplmt_amt,begndate,enddate"]
    for code in sorted(set(catalogue) | codes_used):
        entry = catalogue.get(code, {"chrgitm_lv": "01", "selfpay_prop": "0"})
        prop = _ratio(entry.get("selfpay_prop") or "0")
        caps = sorted(entry.get("price_caps") or [], key=lambda cap: cap["begndate"])
        start = "2000-01-01"
        for cap in caps:
            if cap["begndate"] > start:
                rows.append(f"{code},{code},{entry['chrgitm_lv']},{prop},,{start},{_day_before(cap['begndate'])}")
            rows.append(f"{code},{code},{entry['chrgitm_lv']},{prop},{cap['pric_uplmt_amt']},{cap['begndate']},{cap.get('enddate') or ''}")
            start = None if cap.get("enddate") is None else _day_after(cap["enddate"])
            if start is None:
                break
        if start is not None:
            rows.append(f"{code},{code},{entry['chrgitm_lv']},{prop},,{start},")
    (rules_dir / "catalogs").mkdir(parents=True)
    (rules_dir / "catalogs" / "field-case.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _day_before(date: str) -> str:
    import datetime

    return (datetime.date.fromisoformat(date) - datetime.timedelta(days=1)).isoformat()


def _day_after(date: str) -> str:
    import datetime

    return (datetime.date.fromisoformat(date) + datetime.timedelta(days=1)).isoformat()


def _card_of(person: dict) -> str:
    return person.get("card") or "TESTCARD" + person["psn_no"][-4:]


def _person_row(person: dict, acct_balc: Decimal) -> dict:
    digits = person["psn_no"][-4:]
    resident = person.get("insutype", "310") == "390"
    return {
        "psn_no": person["psn_no"], "psn_cert_type": "01", "certno": f"99000019900101{digits}", "psn_name": person["psn_name"],
        "gend": "1", "brdy": "1990-01-01", "insutype": person.get("insutype", "310"), "psn_type": "1501" if resident else "1101",
        "insuplc_admdvs": REGION, "acct_balc": f"{acct_balc:.2f}", "cards": [{"card_no": _card_of(person)}],
    }


# ---------------------------------------------------------------------------
# One case


class CaseRun:
    """State of one case while it runs: the server, the client, step outputs and id aliases."""

    def __init__(self, case: dict, port: int, inspector: LedgerInspector) -> None:
        self.case = case
        self.setup = case.get("setup", {})
        self.person = self.setup.get("person") or {}
        self.visits = self.setup.get("visits") or ([self.setup["visit"]] if "visit" in self.setup else [])
        self.inspector = inspector
        self.client = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"],
                             fixmedins_name=HOSPITAL["fixmedins_name"], admdvs=REGION)
        self.outputs: dict[int, dict] = {}
        self.aliases: dict[str, str] = {}
        self.serial = 0

    def close(self) -> None:
        self.client.close()

    def fresh_msgid(self) -> str:
        self.serial += 1
        return f"{HOSPITAL['fixmedins_code']}{self.case['id']}{self.serial:014d}"[:30]

    def send(self, infno: str, node: dict, at: str, msgid: str | None = None) -> dict:
        return self.client.call(infno, node, msgid=msgid or self.fresh_msgid(), headers={"x-settlement-clock": at})

    def visit(self, mdtrt_id: str | None = None) -> dict:
        for visit in self.visits:
            if mdtrt_id is None or visit["mdtrt_id"] == mdtrt_id:
                return visit
        return self.visits[0] if self.visits else {}

    # -- setup through the server ------------------------------------------------------

    def seed(self, dsn: str) -> None:
        first_moment = self.visits[0]["begntime"] if self.visits else "2024-01-01 00:00:00"
        answer = self.send("9001", {"signIn": {"opter_no": "FC01", "mac": "00-00-00-00-00-00", "ip": "127.0.0.1"}}, first_moment)
        assert answer["infcode"] == 0, answer["err_msg"]
        self.client.sign_no = answer["output"]["signinoutb"]["sign_no"]

        if self.visits:
            _insert_visits(dsn, self.visits, self.person)
        self._upload_stored_lines()
        self._settle_ledger_rows()

    def _upload_stored_lines(self) -> None:
        lines = self.setup.get("stored_lines") or []
        groups: dict[tuple[str, str], list[dict]] = {}
        for line in lines:
            key = (line.get("mdtrt_id") or self.visit()["mdtrt_id"], line.get("uploaded_by_msgid") or "")
            groups.setdefault(key, []).append(line)
        for (mdtrt_id, msgid), group in groups.items():
            visit = self.visit(mdtrt_id)
            rows = [self.fill_line(dict(line, fee_ocur_time=line.get("fee_ocur_time") or visit["begntime"]), visit) for line in group]
            for row in rows:
                row.pop("note", None)
                row.pop("uploaded_by_msgid", None)
            # A stay (medical type 2x) takes its lines through the inpatient upload.
            infno = "2301" if visit.get("med_type", "11").startswith("2") else "2204"
            answer = self.send(infno, {"feedetail": rows}, visit["begntime"], msgid=msgid or None)
            assert answer["infcode"] == 0, f"setup: stored lines rejected: {answer['err_msg']}"

    def _settle_ledger_rows(self) -> None:
        for row in self.setup.get("ledger") or []:
            # A row of a case without visits (a reconciliation case) has no fee lines that 2207
            # could settle, so it is written through the ledger store directly.
            if row.get("mdtrt_id") is None and not self.visits:
                self.aliases[row["setl_id"]] = _store_ledger_row(self.inspector.dsn, row, self.person)
                continue
            visit = self.visit(row.get("mdtrt_id"))
            data = {
                "psn_no": self.person["psn_no"], "mdtrt_cert_type": "03", "mdtrt_cert_no": _card_of(self.person),
                "med_type": visit.get("med_type", "11"), "medfee_sumamt": row["medfee_sumamt"], "psn_setlway": "01",
                "mdtrt_id": visit["mdtrt_id"], "chrg_bchno": row["chrg_bchno"], "insutype": row.get("insutype", self.person.get("insutype", "310")),
                "acct_used_flag": "1" if Decimal(row.get("acct_pay", "0")) != 0 else "0",
            }
            answer = self.send("2207", {"data": data}, row["setl_time"], msgid=row.get("msgid"))
            assert answer["infcode"] == 0, f"setup: ledger row {row['setl_id']} could not be settled: {answer['err_msg']}"
            block = answer["output"]["setlinfo"]
            for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"):
                if name in row:
                    assert Decimal(block[name]) == Decimal(row[name]), f"setup: ledger row {row['setl_id']} {name} is {block[name]}"
            self.aliases[row["setl_id"]] = block["setl_id"]

    # -- steps -------------------------------------------------------------------------

    def fill_line(self, line: dict, visit: dict) -> dict:
        """Fill the line fields a case leaves out with the visit's values, as the case format specifies."""
        filled = {
            "mdtrt_id": visit.get("mdtrt_id"), "psn_no": self.person.get("psn_no"), "rx_circ_flag": "0",
            "medins_list_codg": line.get("med_list_codg"), "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
            "bilg_dr_codg": "D001", "bilg_dr_name": "测试医生", "chrg_bchno": f"BCH-{self.case['id']}",
        }
        filled.update(line)
        return filled

    def build_input(self, step: dict) -> dict:
        node = self.resolve(copy.deepcopy(step.get("input") or {}))
        if "lines_generator" in step:
            node.setdefault("feedetail", []).extend(_generated_lines(step["lines_generator"]))
        if "feedetail" in node:
            node["feedetail"] = [self.fill_line(line, self.visit(line.get("mdtrt_id"))) for line in node["feedetail"]]
        return node

    def resolve(self, value):
        """Replace ``$N.field`` references and seeded setl_ids by the values the engine returned."""
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, str):
            match = _STEP_REFERENCE.match(value)
            if match:
                return _find_field(self.outputs[int(match.group(1))], match.group(2))
            return self.aliases.get(value, value)
        return value

    def run_step(self, step: dict) -> None:
        label = f"{self.case['id']} step {step['step']}"
        expect = step["expect"]
        before = self.inspector.snapshot()
        ledger_count = len(before.get("ledger_settlements", []))

        if "raw_body_base64" in step:
            content_type = (step.get("http") or {}).get("content_type", "application/json;charset=UTF-8")
            _, answer = self.client.post_raw(
                base64.b64decode(step["raw_body_base64"]),
                headers={"content-type": content_type, "x-settlement-clock": step["at"]},
            )
        else:
            answer = self.send(step["infno"], self.build_input(step), step["at"], msgid=step.get("msgid"))

        assert answer["infcode"] == expect["infcode"], f"{label}: infcode {answer['infcode']}, err_msg {answer.get('err_msg')}"
        if answer["infcode"] == 0:
            self.outputs[step["step"]] = answer["output"]
            _check_output(label, answer["output"], self.resolve(expect.get("output") or {}))
        if "error" in expect:
            _check_error(label, answer, self.resolve(expect["error"]))
        if expect.get("no_side_effects"):
            assert self.inspector.snapshot() == before, f"{label}: a rejected request changed the ledger or stored details"
        self.check_state(label, expect.get("state") or {}, ledger_count)

    # -- state checks ------------------------------------------------------------------

    def check_state(self, label: str, state: dict, ledger_count: int) -> None:
        unsupported = [key for key in state if key in UNSUPPORTED_STATE]
        for key, wanted in state.items():
            if key in UNSUPPORTED_STATE:
                continue
            actual = self.state_value(key, wanted, ledger_count)
            if isinstance(wanted, list) and wanted and isinstance(wanted[0], dict):
                assert len(actual) == len(wanted), f"{label}: state {key} has {len(actual)} rows, expected {len(wanted)}: {actual}"
                for index, (row, wanted_row) in enumerate(zip(actual, wanted)):
                    for name, value in self.resolve(wanted_row).items():
                        assert _same(row[name], value), f"{label}: state {key}[{index}].{name} is {row[name]}, expected {value}"
            elif isinstance(wanted, dict):
                for name, value in wanted.items():
                    assert _same(actual[name], value), f"{label}: state {key}.{name} is {actual[name]}, expected {value}"
            else:
                assert _same(actual, wanted), f"{label}: state {key} is {actual}, expected {wanted}"
        if unsupported:
            pytest.xfail(f"{label}: {UNSUPPORTED_STATE[unsupported[0]]} (state {', '.join(unsupported)})")

    def state_value(self, key: str, wanted, ledger_count: int):
        inspector = self.inspector
        psn_no = self.person.get("psn_no")
        mdtrt_id = self.visit().get("mdtrt_id")
        if key == "acct_balc":
            rows = inspector.query("SELECT debits_posted, credits_posted FROM ledger_accounts WHERE account_key = $1", f"personal:{psn_no}")
            return _fen(rows[0][1] - rows[0][0]) if rows else "0.00"
        if key == "ledger_added":
            rows = inspector.query(
                "SELECT kind, original_setl_id, setl_time, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay FROM ledger_settlements ORDER BY txn_id"
            )
            return [
                {"reverses": row[1], "setl_time": row[2], "refd_setl_flag": "1" if row[0] == "cancel" else "0",
                 "medfee_sumamt": _fen(row[3]), "fund_pay_sumamt": _fen(row[4]), "acct_pay": _fen(row[5]), "psn_cash_pay": _fen(row[6])}
                for row in rows[ledger_count:]
            ]
        if key == "new_ledger_records":
            return len(inspector.query("SELECT txn_id FROM ledger_settlements")) - ledger_count
        if key == "stored_line_count":
            return self._live_lines("mdtrt_id = $1", mdtrt_id)
        if key.startswith("stored_lines_of_"):
            return self._live_lines("mdtrt_id = $1 AND chrg_bchno = $2", mdtrt_id, key[len("stored_lines_of_"):])
        if key.startswith("live_settlements_of_"):
            return self._live_settlements(key[len("live_settlements_of_"):])
        if key.startswith("net_of_"):
            sn = key[len("net_of_"):]
            rows = inspector.query(
                "SELECT quantity, amount FROM srv_fee_line WHERE mdtrt_id = $1 AND cancelled_by IS NULL AND (feedetl_sn = $2 OR init_feedetl_sn = $2)",
                mdtrt_id, sn,
            )
            quantity = sum(row[0] for row in rows)
            return {"cnt": Decimal(quantity) / 10_000, "det_item_fee_sumamt": _fen(sum(row[1] for row in rows))}
        if key == "visit_status":
            rows = inspector.query("SELECT cancelled_by FROM srv_visit WHERE mdtrt_id = $1", mdtrt_id)
            return "cancelled" if rows and rows[0][0] is not None else "live"
        if key == "accumulators":
            return self._accumulators(wanted)
        if key == "ledger_lines":
            by_serial = {item.feedetl_sn: item for item in self._ledger_lines(mdtrt_id)}
            return [
                {name: (serial_row[name] if name == "feedetl_sn" else _fen(getattr(by_serial[serial_row["feedetl_sn"]], name)))
                 for name in serial_row}
                for serial_row in wanted
            ]
        if key == "ledger_lines_sum":
            allocations = self._ledger_lines(mdtrt_id)
            return {name: _fen(sum(getattr(item, name) for item in allocations)) for name in wanted}
        raise AssertionError(f"unknown state check {key!r}: teach the harness what it means")

    def _ledger_lines(self, mdtrt_id: str):
        """Return the line allocations of the visit's latest settlement, from the stored record."""
        import asyncio

        from adapters.ledger import open_store
        from settlement.allocation import allocate_lines

        rows = self.inspector.query(
            "SELECT setl_id FROM ledger_settlements WHERE mdtrt_id = $1 AND kind = 'settle' ORDER BY txn_id DESC LIMIT 1", mdtrt_id
        )
        assert rows, f"no settlement recorded for visit {mdtrt_id}"

        async def fetch():
            store = await open_store(self.inspector.dsn)
            try:
                return await store.get_settlement(rows[0][0])
            finally:
                await store.close()

        record = asyncio.run(fetch())
        return allocate_lines(record.result.outputs, record.result.lines)

    def _live_lines(self, where: str, *args) -> int:
        return len(self.inspector.query(f"SELECT line_id FROM srv_fee_line WHERE cancelled_by IS NULL AND {where}", *args))

    def _live_settlements(self, chrg_bchno: str) -> int:
        rows = self.inspector.query(
            "SELECT s.txn_id FROM ledger_settlements s WHERE s.chrg_bchno = $1 AND s.kind = 'settle'"
            " AND NOT EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id)",
            chrg_bchno,
        )
        return len(rows)

    def _accumulators(self, wanted: dict) -> dict:
        names = ACCUMULATOR_NAMES["inpatient" if self.visit().get("med_type") == "21" else "outpatient"]
        found = {}
        for year, values in wanted.items():
            rows = dict(self.inspector.query(
                "SELECT acc_key, value FROM ledger_accumulators WHERE psn_no = $1 AND year = $2", self.person["psn_no"], int(year)
            ))
            found[year] = {name: _fen(rows.get(names[name], 0)) for name in values}
        return found


def _insert_visits(dsn: str, visits: list[dict], person: dict) -> None:
    """Store the case's visits through the server's state API (a visit id is normally issued by 2201)."""
    import asyncio

    from adapters.server import state
    from adapters.server.sqldb import open_database

    async def run() -> None:
        db = await open_database(dsn)
        try:
            async with db.transaction() as conn:
                for visit in visits:
                    await state.insert_visit(
                        conn, mdtrt_id=visit["mdtrt_id"], fixmedins_code=HOSPITAL["fixmedins_code"], psn_no=person["psn_no"],
                        insutype=person.get("insutype", "310"), med_type=visit.get("med_type", "11"), begntime=visit["begntime"],
                        mdtrt_cert_type="03", ipt_otp_no=visit.get("ipt_otp_no"), dise_codg=None, detail={},
                        registered_by=visit.get("registered_by") or "field-case-setup",
                    )
        finally:
            await db.close()

    asyncio.run(run())


def _store_ledger_row(dsn: str, row: dict, person: dict) -> str:
    """Write a case's ledger row that has no visit with the ledger store's settle API; return the engine's setl_id.

    The row's figures map onto the engine's settlement outputs so that the store's
    identities hold (fund = the five fund layers, person part = account + cash,
    medical fee = fund + person part + hospital part):

    * ``fund_pay_sumamt`` is stored as the fund total. The engine has no ``oth_pay`` layer,
      so the whole total (``hifp_pay`` plus any ``oth_pay`` of the row) is stored as ``hifp_pay``.
    * ``acct_pay`` is stored as is and is taken from the personal account, which the test funds first.
    * ``hosp_part_amt`` is kept when the row states it. It moves no money and is outside the fund total.
    * The cash payment is the rest: medfee - fund - acct - hosp_part.

    Reconciliation reads only the medical fee, fund and account figures, which are stored
    exactly as the row states them. Year-to-date fund counters are left alone, as no case
    without visits checks them.
    """
    import asyncio

    from adapters.ledger import open_store
    from settlement.money import parse_amount
    from settlement.store import SettlementPlan, SettlementRequest
    from settlement.types import FundDetail, SettlementOutputs, SettlementResult

    def fen(name: str) -> int:
        return parse_amount(row.get(name) or "0", f"setup.ledger.{row['setl_id']}.{name}", allow_negative=True)

    medfee, fund, acct, hosp_part = fen("medfee_sumamt"), fen("fund_pay_sumamt"), fen("acct_pay"), fen("hosp_part_amt")
    cash = medfee - fund - acct - hosp_part

    def compute(before: dict[str, int]):
        balance = before["acct_balc"] - acct
        outputs = SettlementOutputs(
            medfee_sumamt=medfee, fulamt_ownpay_amt=0, overlmt_selfpay=0, preselfpay_amt=0, inscp_scp_amt=medfee, act_pay_dedc=0,
            hifp_pay=fund, hifob_pay=0, hifmi_pay=0, cvlserv_pay=0, maf_pay=0, fund_pay_sumamt=fund, psn_part_amt=acct + cash,
            acct_pay=acct, acct_mulaid_pay=0, psn_cash_pay=cash, hosp_part_amt=hosp_part, balc=balance, pool_prop_selfpay=0,
        )
        details = (FundDetail(layer="hifp", inscp_scp_amt=medfee, crt_payb_lmt_amt=None, fund_payamt=fund),) if fund else ()
        result = SettlementResult(outputs=outputs, lines=(), fund_details=details, accumulators_after={"acct_balc": balance}, trace=())
        return SettlementPlan(result=result, rule_version="field-case-setup")

    request = SettlementRequest(
        fixmedins_code=HOSPITAL["fixmedins_code"], msgid=row.get("msgid") or f"FC-{row['setl_id']}"[:30],
        mdtrt_id=f"MDTRT-{row['setl_id']}", chrg_bchno=row.get("chrg_bchno") or row["setl_id"], psn_no=person["psn_no"],
        insuplc_admdvs=REGION, insutype=row.get("insutype", person.get("insutype", "310")), med_type=row.get("med_type", "11"),
        clr_type=row.get("clr_type", "11"), setl_time=row["setl_time"], acct_used=acct != 0, clr_optins=row.get("setl_optins", REGION),
    )

    async def run() -> str:
        store = await open_store(dsn)
        try:
            return (await store.settle(request, compute)).setl_id
        finally:
            await store.close()

    return asyncio.run(run())


def _before_seeded_rows(person: dict, rows: list[dict]) -> dict:
    """Return the person with the accumulators as they stood before the seeded ledger rows.

    ``setup.person.accumulators`` is the state before step 1, which already counts the
    settlements of ``setup.ledger``. Those rows are settled again during setup and add
    their fund payment themselves, so it is taken off the seeded figure first.
    """
    years = copy.deepcopy(person.get("accumulators") or {})
    for row in rows:
        values = years.get(row["setl_time"][:4])
        if values is not None and "fund_paid" in values:
            values["fund_paid"] = str(Decimal(values["fund_paid"]) - Decimal(row.get("fund_pay_sumamt", "0")))
    return dict(person, accumulators=years)


def _seed_accumulators(dsn: str, person: dict, med_type: str) -> None:
    """Post the case's year-to-date accumulators with the ledger's adjustment API."""
    import asyncio

    from adapters.ledger import migrate_ledger, open_store
    from settlement.store import AccumulatorDelta, AdjustmentRequest

    names = ACCUMULATOR_NAMES["inpatient" if med_type == "21" else "outpatient"]
    deltas = tuple(
        AccumulatorDelta(psn_no=person["psn_no"], year=int(year), key=names[name], delta=int(Decimal(value) * 100))
        for year, values in (person.get("accumulators") or {}).items()
        for name, value in values.items()
        if Decimal(value) != 0
    )
    if not deltas:
        return

    async def run() -> None:
        await migrate_ledger(dsn)
        store = await open_store(dsn)
        try:
            await store.adjust(AdjustmentRequest(msgid=f"field-case-accumulators-{person['psn_no']}", reason="field case setup", accumulator_deltas=deltas))
        finally:
            await store.close()

    asyncio.run(run())


def _generated_lines(spec: dict) -> list[dict]:
    lines = []
    for index in range(spec["from"], spec["to"] + 1):
        line = {key: value for key, value in spec.items() if key not in ("prefix", "from", "to", "override")}
        line["feedetl_sn"] = f"{spec['prefix']}{index:03d}"
        line.update((spec.get("override") or {}).get(line["feedetl_sn"], {}))
        lines.append(line)
    return lines


def _find_field(node, name: str):
    if isinstance(node, dict):
        if name in node:
            return node[name]
        for value in node.values():
            found = _find_field(value, name)
            if found is not None:
                return found
    if isinstance(node, list):
        for value in node:
            found = _find_field(value, name)
            if found is not None:
                return found
    return None


def _fen(value: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"


def _same(actual, wanted) -> bool:
    """Compare exactly: numbers as decimals (never floats), everything else as equal values."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual == wanted
    if isinstance(actual, (int, Decimal)) and isinstance(wanted, str):
        try:
            return Decimal(actual) == Decimal(wanted)
        except ArithmeticError:
            return False
    if isinstance(actual, str) and isinstance(wanted, str) and re.fullmatch(r"-?\d+(\.\d+)?", wanted) and re.fullmatch(r"-?\d+(\.\d+)?", actual):
        return Decimal(actual) == Decimal(wanted)
    return actual == wanted


def _check_output(label: str, actual, wanted, path: str = "output") -> None:
    if isinstance(wanted, dict):
        assert isinstance(actual, dict), f"{label}: {path} is {actual!r}, expected an object"
        for key, value in wanted.items():
            if key == "stmt_rslt_dscr_mentions":
                text = actual.get("stmt_rslt_dscr", "")
                for mention in value:
                    assert str(mention) in text, f"{label}: {path}.stmt_rslt_dscr does not mention {mention}: {text}"
                continue
            assert key in actual, f"{label}: {path}.{key} is missing"
            _check_output(label, actual[key], value, f"{path}.{key}")
    elif isinstance(wanted, list):
        assert isinstance(actual, list) and len(actual) >= len(wanted), f"{label}: {path} has {actual!r}"
        for index, value in enumerate(wanted):
            _check_output(label, actual[index], value, f"{path}[{index}]")
    else:
        assert _same(actual, wanted), f"{label}: {path} is {actual}, expected {wanted}"


def _check_error(label: str, answer: dict, error: dict) -> None:
    kind = error["kind"]
    assert kind in ErrorCode.__members__, f"{label}: the engine has no error code for kind {kind}"
    code = ErrorCode[kind].number
    assert answer.get("err_code") == code, f"{label}: err_code {answer.get('err_code')} ({answer.get('err_msg')}), expected {code} {kind}"

    # A good message names the same amounts as the reason (compared as numbers, sign aside,
    # so "-5.0" names "5.00"). Line serials are not required: the engine names the field path.
    message = answer.get("err_msg", "")
    named = {abs(Decimal(number)) for number in _NUMBER.findall(message)}
    missing = [amount for amount in _AMOUNT.findall(error.get("reason", "")) if abs(Decimal(amount)) not in named]
    assert not missing, f"{label}: err_msg {message!r} does not name {missing} (reason: {error.get('reason')})"


def _case_id(path: pathlib.Path) -> str:
    return path.stem


@pytest.mark.parametrize("ledger", ["sqlite", "postgres"])
@pytest.mark.parametrize("case_file", CASE_FILES, ids=_case_id)
def test_field_case(case_file, ledger, tmp_path):
    case = json.loads(case_file.read_text(encoding="utf-8"))
    steps = case["steps"]
    pending = {step["step"]: reason for step in steps if (reason := _pending_reason(step)) is not None}
    first_pending = min(pending, default=None)
    if first_pending == steps[0]["step"]:
        pytest.xfail(pending[first_pending])

    setup = case.get("setup", {})
    person = setup.get("person") or {"psn_no": "PSN-TEST-0000", "psn_name": "测试甲", "insutype": "310"}
    # A seeded settlement paid by the account leaves the balance the case states, so fund it first.
    seeded_acct_pay = sum(Decimal(row.get("acct_pay", "0")) for row in setup.get("ledger") or [])
    policy = {**DEFAULT_POLICY, **(setup.get("policy") or {})}
    visits = setup.get("visits") or ([setup["visit"]] if "visit" in setup else [])

    rules_dir = tmp_path / "rules"
    _policy_files(rules_dir, policy, {person.get("insutype", "310"), "310", "390"})
    codes_used = {line["med_list_codg"] for line in setup.get("stored_lines") or []}
    codes_used |= {line["med_list_codg"] for step in steps for line in (step.get("input") or {}).get("feedetail", []) if "med_list_codg" in line}
    _catalogue_file(rules_dir, setup.get("catalogue") or {}, codes_used)
    persons = [_person_row(person, Decimal(person.get("acct_balc", "0")) + seeded_acct_pay)]

    with ledger_dsn(ledger, tmp_path) as dsn:
        _seed_accumulators(dsn, _before_seeded_rows(person, setup.get("ledger") or []), visits[0].get("med_type", "11") if visits else "11")
        institutions = [HOSPITAL, PHARMACY]
        with running_server(tmp_path, dsn, persons, institutions, extra=["--rules", str(rules_dir)]) as port:
            run = CaseRun(dict(case, setup=dict(setup, person=person)), port, LedgerInspector(dsn))
            try:
                run.seed(dsn)
                for step in steps:
                    if step["step"] == first_pending:
                        pytest.xfail(pending[first_pending] + "; the later steps expect its effect")
                    run.run_step(step)
            finally:
                run.close()
