"""``settlement demo --url URL``: play a sample day against a running server and print each response.

The demo signs requests as the bundled demo hospital and pharmacy (the public demo
secrets in ``rules/persons/demo-institutions.json``) and uses the bundled demo persons,
so it works against ``settlement serve`` started with its defaults. Every date it sends
is today's, and the server stamps settlements with its own clock, so the bundled rules
must have a policy in force today. Names and certificate numbers are masked in the
tables even though the demo persons are invented.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse
from decimal import Decimal
from typing import Any

from settlement.errors import mask_identity
from settlement.paths import bundled_rules_dir

__all__ = ["register", "run_demo"]

# Visits of the sample day: person, credential card and the fee lines (code, price, quantity).
OUTPATIENT_VISITS = (
    ("PSN-DEMO-0001", "DEMOCARD0001", "310", [("T-SVC-0002", "30.00", "1"), ("T-SVC-0003", "25.00", "1"), ("T-DRG-0002", "18.50", "2")]),
    ("PSN-DEMO-0003", "DEMOCARD0003", "310", [("T-SVC-0002", "30.00", "1"), ("T-DRG-0008", "42.00", "3"), ("T-DRG-0004", "68.00", "1")]),
    ("PSN-DEMO-0006", "DEMOCARD0006", "390", [("T-SVC-0008", "10.00", "1"), ("T-DRG-0001", "12.80", "2")]),
)
PHARMACY_SALE = ("PSN-DEMO-0002", "DEMOCARD0002", "310", [("T-DRG-0007", "16.90", "2"), ("T-DRG-0202", "8.00", "1")])
# A three-day stay of a retiree for an appendectomy: operation, bed, nursing and a class-B drug.
INPATIENT_STAY = ("PSN-DEMO-0004", "DEMOCARD0004", "310", [
    ("T-SVC-0112", "2600.00", "1"), ("T-SVC-0101", "60.00", "3"), ("T-SVC-0102", "24.00", "3"), ("T-DRG-0002", "18.50", "4"),
])

SETTLE_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay",
                 "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "balc")

LABELS = {
    "zh": {
        "title": "医保结算演示（{url}）", "sign_in": "签到 9001", "person": "人员信息 1101", "register": "门诊挂号 2201",
        "upload": "费用明细上传 2204 · {psn_no}", "pre_settle": "预结算 2206", "settle": "结算 2207", "cancel": "撤销结算 2208",
        "pharmacy": "药店购药结算 2102", "field": "项目", "value": "值", "failed": "交易 {infno} 失败：{message}",
        "admit": "入院办理 2401 · {psn_no}", "stay_upload": "住院费用明细上传 2301 · {psn_no}", "discharge": "出院办理 2402",
        "stay_settle": "住院预结算 2303 / 住院结算 2304 · {psn_no}", "reversal": "冲正 2601（药店结算应答超时）· {psn_no}",
        "took_effect": "原交易已生效", "memo": "说明", "omsgid": "原报文编号",
        "done": "演示完成：{count} 笔交易全部成功", "unreachable": "无法连接服务 {url}：{error}",
        "bad_url": "服务地址 {url} 应以 http:// 开头，如 http://127.0.0.1:8080",
        "institution": "机构", "sign_no": "签到编号", "psn_no": "人员编号", "psn_name": "姓名", "certno": "证件号码",
        "insutype": "险种", "balc": "账户余额", "mdtrt_id": "就诊编号", "setl_id": "结算编号", "feedetl_sn": "明细流水号",
        "det_item_fee_sumamt": "明细金额", "overlmt_amt": "超限价", "medfee_sumamt": "医疗费总额", "fulamt_ownpay_amt": "全自费",
        "preselfpay_amt": "先行自付", "inscp_scp_amt": "符合范围", "act_pay_dedc": "起付线", "hifp_pay": "统筹支付",
        "fund_pay_sumamt": "基金支付", "acct_pay": "个人账户", "psn_cash_pay": "现金支付",
    },
    "en": {
        "title": "Settlement demo ({url})", "sign_in": "Sign-in 9001", "person": "Person query 1101", "register": "Outpatient registration 2201",
        "upload": "Fee detail upload 2204 · {psn_no}", "pre_settle": "Pre-settlement 2206", "settle": "Settlement 2207",
        "cancel": "Settlement cancel 2208", "pharmacy": "Pharmacy sale 2102", "field": "field", "value": "value",
        "admit": "Admission 2401 · {psn_no}", "stay_upload": "Inpatient fee upload 2301 · {psn_no}", "discharge": "Discharge 2402",
        "stay_settle": "Inpatient pre-settlement 2303 / settlement 2304 · {psn_no}",
        "reversal": "Reversal 2601 (pharmacy sale timed out) · {psn_no}", "took_effect": "original took effect", "memo": "memo",
        "omsgid": "original msgid",
        "failed": "transaction {infno} failed: {message}", "done": "demo finished: all {count} transactions succeeded",
        "unreachable": "cannot reach the server at {url}: {error}",
        "bad_url": "the server address {url} should start with http://, such as http://127.0.0.1:8080",
        "institution": "institution", "sign_no": "sign_no", "psn_no": "psn_no", "psn_name": "name", "certno": "certno",
        "insutype": "insutype", "balc": "balance", "mdtrt_id": "mdtrt_id", "setl_id": "setl_id", "feedetl_sn": "feedetl_sn",
        "det_item_fee_sumamt": "line total", "overlmt_amt": "over cap", "medfee_sumamt": "total", "fulamt_ownpay_amt": "full self-pay",
        "preselfpay_amt": "first self-pay", "inscp_scp_amt": "in scope", "act_pay_dedc": "deductible", "hifp_pay": "pooled fund",
        "fund_pay_sumamt": "all funds", "acct_pay": "account", "psn_cash_pay": "cash",
    },
}


class DemoFailed(Exception):
    """A transaction of the demo returned ``infcode -1``."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="向运行中的服务演示一天的业务 (play a sample day against a running server)",
        description="以演示机构身份签名，依次发送签到、门诊挂号、明细、预结算、结算、撤销、住院（入院至出院结算）、药店购药及其冲正，并以表格显示结果。"
                    " Sign as the demo institutions and play a sample day: sign-in, outpatient visits with a cancel,"
                    " an inpatient stay, a pharmacy sale and its 2601 reversal, printed as tables.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080/fsi/api/callService", help="服务地址 server URL (default http://127.0.0.1:8080/fsi/api/callService)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="输出语言 (language of the tables)")
    parser.set_defaults(handler=lambda args: run_demo(args.url, args.lang))


def run_demo(url: str, lang: str) -> int:
    """Play the sample day; return 0 when every transaction succeeded, 1 otherwise."""
    from rich.console import Console

    console = Console()
    labels = LABELS[lang]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # Without a scheme, 127.0.0.1:8080 parses as a path and the server would be blamed.
        console.print(f"[red]{labels['bad_url'].format(url=url)}[/red]")
        return 2
    try:
        count = _play(url, lang, console)
    except DemoFailed as failure:
        console.print(f"[red]{failure}[/red]")
        return 1
    except OSError as error:
        console.print(f"[red]{labels['unreachable'].format(url=url, error=error)}[/red]")
        return 1
    console.print(f"[green]{labels['done'].format(count=count)}[/green]")
    return 0


class _Session:
    """Signed clients of the demo institutions and the table printer."""

    def __init__(self, url: str, lang: str, console: Any) -> None:
        from adapters.server.client import Client

        parsed = urllib.parse.urlsplit(url)
        institutions = json.loads((bundled_rules_dir() / "persons" / "demo-institutions.json").read_text(encoding="utf-8"))["institutions"]
        by_kind = {}
        for row in institutions:
            by_kind.setdefault(row["kind"], row)
        self.clients = {
            kind: Client(
                parsed.hostname or "127.0.0.1", parsed.port or 80, fixmedins_code=row["fixmedins_code"], secret=row["secret"],
                fixmedins_name=row["fixmedins_name"], algorithm=row.get("sign_algorithm", "HMAC-SHA256"), admdvs=row["admdvs"],
                path=parsed.path or "/fsi/api/callService",
            )
            for kind, row in by_kind.items()
        }
        self.lang = lang
        self.labels = LABELS[lang]
        self.console = console
        self.count = 0

    def call(self, kind: str, infno: str, node: dict, msgid: str | None = None) -> dict:
        headers = {"accept-language": "en"} if self.lang == "en" else {}
        answer = self.clients[kind].call(infno, node, headers=headers, msgid=msgid)
        self.count += 1
        if answer.get("infcode") != 0:
            raise DemoFailed(self.labels["failed"].format(infno=infno, message=answer.get("err_msg")))
        return answer["output"]

    def sign_in(self, kind: str) -> str:
        output = self.call(kind, "9001", {"signIn": {"opter_no": "DEMO001", "mac": "00-00-00-00-00-00", "ip": "127.0.0.1"}})
        client = self.clients[kind]
        client.sign_no = output["signinoutb"]["sign_no"]
        return client.sign_no

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        from rich.table import Table

        # The title goes on its own line: as a table title it would wrap at the table's width.
        self.console.print(title, style="bold")
        table = Table()
        for column in columns:
            # Ids fold onto a second line in a narrow terminal instead of losing their ends.
            table.add_column(self.labels.get(column, column), justify="right" if column in _RIGHT_ALIGNED else "left", overflow="fold")
        for row in rows:
            table.add_row(*(_shown(value) for value in row))
        self.console.print(table)

    def fields(self, title: str, block: dict, names: tuple[str, ...]) -> None:
        """Print one output block as a two-column table, one field per row."""
        self.table(title, ["field", "value"], [[self.labels.get(name, name), block.get(name)] for name in names])

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


_RIGHT_ALIGNED = (*SETTLE_FIELDS, "det_item_fee_sumamt", "overlmt_amt", "2206", "2207", "2303", "2304", "value")


def _shown(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _play(url: str, lang: str, console: Any) -> int:
    session = _Session(url, lang, console)
    labels = session.labels
    try:
        console.rule(labels["title"].format(url=url))
        hospital_sign = session.sign_in("hospital")
        pharmacy_sign = session.sign_in("pharmacy")
        session.table(labels["sign_in"], ["institution", "sign_no"], [
            [session.clients["hospital"].fixmedins_code, hospital_sign], [session.clients["pharmacy"].fixmedins_code, pharmacy_sign],
        ])

        rows = []
        for psn_no, card, _, _ in OUTPATIENT_VISITS:
            output = session.call("hospital", "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card}})
            base, insurance = output["baseinfo"], output["insuinfo"][0]
            rows.append([psn_no, mask_identity(base["psn_name"]), mask_identity(base["certno"]), insurance["insutype"], insurance["balc"]])
        session.table(labels["person"], ["psn_no", "psn_name", "certno", "insutype", "balc"], rows)

        now = datetime.datetime.now().replace(microsecond=0)
        settled = []
        for index, (psn_no, card, insutype, lines) in enumerate(OUTPATIENT_VISITS, start=1):
            settled.append(_outpatient_visit(session, index, psn_no, card, insutype, lines, now))

        psn_no, mdtrt_id, setl_id = settled[1]
        output = session.call("hospital", "2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
        block = output["setlinfo"]
        session.fields(f"{labels['cancel']} · {psn_no}", block, ("setl_id", *SETTLE_FIELDS))

        _inpatient_stay(session, now)
        _pharmacy_sale_and_reversal(session, now)
        return session.count
    finally:
        session.close()


def _fee_rows(lines: list[tuple[str, str, str]], mdtrt_id: str | None, psn_no: str, batch: str, moment: str) -> list[dict]:
    # Line serials need only be unique within their visit, and short ones fit a narrow terminal.
    rows = []
    for number, (code, price, quantity) in enumerate(lines, start=1):
        total = (Decimal(price) * Decimal(quantity)).quantize(Decimal("0.01"))
        row = {
            "feedetl_sn": f"L{number:03d}", "chrg_bchno": batch, "rx_circ_flag": "0", "fee_ocur_time": moment,
            "med_list_codg": code, "medins_list_codg": code, "pric": price, "cnt": quantity, "det_item_fee_sumamt": f"{total}",
            "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D001", "bilg_dr_name": "演示医生",
        }
        if mdtrt_id is not None:
            row.update(mdtrt_id=mdtrt_id, psn_no=psn_no)
        rows.append(row)
    return rows


def _outpatient_visit(session: _Session, index: int, psn_no: str, card: str, insutype: str, lines: list, now: datetime.datetime) -> tuple[str, str, str]:
    labels = session.labels
    begin = f"{now:%Y-%m-%d %H:%M:%S}"
    output = session.call("hospital", "2201", {"data": {
        "psn_no": psn_no, "insutype": insutype, "begntime": begin, "mdtrt_cert_type": "03", "mdtrt_cert_no": card,
        "ipt_otp_no": f"DEMO{now:%H%M%S}{index:02d}", "atddr_no": "D001", "dr_name": "演示医生", "dept_code": "A03",
        "dept_name": "内科", "caty": "A03",
    }})
    mdtrt_id = output["data"]["mdtrt_id"]
    session.table(labels["register"], ["psn_no", "mdtrt_id"], [[psn_no, mdtrt_id]])

    batch = f"B{now:%H%M%S}{index:02d}"
    fee_rows = _fee_rows(lines, mdtrt_id, psn_no, batch, begin)
    output = session.call("hospital", "2204", {"feedetail": fee_rows})
    session.table(
        labels["upload"].format(psn_no=psn_no),
        ["feedetl_sn", "det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"],
        [[row["feedetl_sn"], row["det_item_fee_sumamt"], row["fulamt_ownpay_amt"], row["overlmt_amt"], row["preselfpay_amt"], row["inscp_scp_amt"]]
         for row in output["result"]],
    )

    total = sum(Decimal(row["det_item_fee_sumamt"]) for row in fee_rows)
    data = {
        "psn_no": psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "med_type": "11", "medfee_sumamt": f"{total:.2f}",
        "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "insutype": insutype, "acct_used_flag": "1",
    }
    pre = session.call("hospital", "2206", {"data": data})["setlinfo"]
    final = session.call("hospital", "2207", {"data": data})["setlinfo"]
    session.table(
        f"{labels['pre_settle']} / {labels['settle']} · {psn_no}",
        ["field", "2206", "2207"],
        [[labels[name], pre.get(name), final.get(name)] for name in SETTLE_FIELDS],
    )
    return psn_no, mdtrt_id, final["setl_id"]


def _inpatient_stay(session: _Session, now: datetime.datetime) -> None:
    """Admit three days ago, upload the stay's lines, discharge, then pre-settle and settle the whole stay."""
    labels = session.labels
    psn_no, card, insutype, lines = INPATIENT_STAY
    admitted = f"{now - datetime.timedelta(days=3):%Y-%m-%d} 08:00:00"
    output = session.call("hospital", "2401", {"mdtrtinfo": {
        "psn_no": psn_no, "insutype": insutype, "begntime": admitted, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "med_type": "21",
        "ipt_no": f"IPT{now:%H%M%S}", "atddr_no": "D001", "chfpdr_name": "演示医生", "adm_diag_dscr": "社区获得性肺炎",
        "adm_dept_codg": "A03", "adm_dept_name": "内科", "adm_bed": "12", "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎",
    }})
    mdtrt_id = output["result"]["mdtrt_id"]
    session.table(labels["admit"].format(psn_no=psn_no), ["psn_no", "mdtrt_id"], [[psn_no, mdtrt_id]])

    fee_rows = _fee_rows(lines, mdtrt_id, psn_no, f"IP{now:%H%M%S}", admitted)
    for row in fee_rows:
        del row["chrg_bchno"]
    output = session.call("hospital", "2301", {"feedetail": fee_rows})
    session.table(
        labels["stay_upload"].format(psn_no=psn_no), ["feedetl_sn", "det_item_fee_sumamt", "preselfpay_amt", "inscp_scp_amt"],
        [[row["feedetl_sn"], row["det_item_fee_sumamt"], row["preselfpay_amt"], row["inscp_scp_amt"]] for row in output["result"]],
    )
    session.call("hospital", "2402", {"dscginfo": {
        "mdtrt_id": mdtrt_id, "psn_no": psn_no, "insutype": insutype, "endtime": f"{now:%Y-%m-%d %H:%M:%S}",
        "dscg_dept_codg": "A03", "dscg_dept_name": "内科", "dscg_way": "1",
    }})

    total = sum(Decimal(row["det_item_fee_sumamt"]) for row in fee_rows)
    data = {
        "psn_no": psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "medfee_sumamt": f"{total:.2f}", "psn_setlway": "01",
        "mdtrt_id": mdtrt_id, "insutype": insutype, "acct_used_flag": "1", "mid_setl_flag": "0",
    }
    pre = session.call("hospital", "2303", {"data": data})["setlinfo"]
    final = session.call("hospital", "2304", {"data": data})["setlinfo"]
    session.table(labels["stay_settle"].format(psn_no=psn_no), ["field", "2303", "2304"],
                  [[labels[name], pre.get(name), final.get(name)] for name in SETTLE_FIELDS])


def _pharmacy_sale_and_reversal(session: _Session, now: datetime.datetime) -> None:
    """Sell at the pharmacy, then reverse the sale with 2601, as a checkout does when its response timed out."""
    psn_no = PHARMACY_SALE[0]
    msgid = session.clients["pharmacy"].new_msgid()
    _pharmacy_sale(session, now, msgid)
    output = session.call("pharmacy", "2601", {"data": {"psn_no": psn_no, "omsgid": msgid, "oinfno": "2102"}})["result"]
    session.fields(session.labels["reversal"].format(psn_no=psn_no), output, ("omsgid", "took_effect", "setl_id", "memo"))


def _pharmacy_sale(session: _Session, now: datetime.datetime, msgid: str) -> None:
    psn_no, card, insutype, lines = PHARMACY_SALE
    moment = f"{now:%Y-%m-%d %H:%M:%S}"
    drugs = _fee_rows(lines, None, psn_no, f"RX{now:%H%M%S}", moment)
    total = sum(Decimal(row["det_item_fee_sumamt"]) for row in drugs)
    info = {
        "psn_no": psn_no, "mdtrt_cert_type": "03", "mdtrt_cert_no": card, "begntime": moment, "medfee_sumamt": f"{total:.2f}",
        "insutype": insutype, "acct_used_flag": "1", "med_type": "41",
    }
    block = session.call("pharmacy", "2102", {"druginfo": info, "drugdetail": drugs}, msgid=msgid)["setlinfo"]
    session.fields(f"{session.labels['pharmacy']} · {psn_no}", block, ("setl_id", *SETTLE_FIELDS))

