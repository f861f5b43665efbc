"""The cardholder self-service page: server-rendered HTML in Simplified Chinese (English with ``?lang=en``), no scripts.

The form posts back to ``/self-service``. Every field has a label, errors are announced
with ``role="alert"`` and tables have captions and header cells. The page loads only its
own stylesheet, so it works without outside network, and with the keyboard alone.
"""

from __future__ import annotations

import html
from typing import Any

from settlement.money import format_amount, format_ratio

__all__ = ["STYLESHEET", "TEXTS", "render_form", "render_summary"]

STYLESHEET = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0; color: #1a1a1a; background: #f6f7f9; line-height: 1.6; }
header, main, footer { max-width: 56rem; margin: 0 auto; padding: 1rem; }
header { border-bottom: 3px solid #0b5cab; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; }
h2 { font-size: 1.2rem; border-left: 4px solid #0b5cab; padding-left: 0.5rem; margin-top: 2rem; }
form { background: #fff; padding: 1rem; border: 1px solid #ccd; border-radius: 4px; max-width: 28rem; }
label { display: block; font-weight: bold; margin-top: 0.75rem; }
input { font-size: 1rem; padding: 0.4rem; width: 100%; box-sizing: border-box; border: 1px solid #667; }
button { margin-top: 1rem; font-size: 1rem; padding: 0.5rem 1.5rem; background: #0b5cab; color: #fff; border: 0; border-radius: 4px; }
:focus { outline: 3px solid #f5a623; outline-offset: 2px; }
.alert { background: #fde8e8; border: 1px solid #c62828; color: #8e0000; padding: 0.75rem; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 0.5rem 0; }
caption { text-align: left; font-weight: bold; padding: 0.25rem 0; }
th, td { border: 1px solid #ccd; padding: 0.35rem 0.5rem; text-align: left; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; }
.done { color: #1b5e20; }
.pending { color: #666; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: 0.5rem; }
"""

_HEAD = """<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/self-service/style.css">
</head>
<body>
<a class="skip" href="#main">{skip}</a>
<header><h1>{heading}</h1><p>{subheading} · <a href="/self-service?lang={other_lang}" lang="{other_html_lang}">{other_name}</a></p></header>
<main id="main">
"""

_FOOT = """</main>
<footer><p>{footer}</p></footer>
</body>
</html>
"""

# Every text the page shows, in Chinese and English.
TEXTS = {
    "zh": {
        "html_lang": "zh-CN", "other_lang": "en", "other_html_lang": "en", "other_name": "English",
        "skip": "跳到主要内容", "heading": "社会保障卡 自助查询", "subheading": "只读查询", "title": "社会保障卡自助查询",
        "result_title": "查询结果 - 社会保障卡自助查询",
        "footer": "本页面只读，不能办理业务。如需挂失请拨打服务热线或到网点办理。",
        "help": "请输入社会保障卡号或身份证号码，以及发给您的 6 位验证码。",
        "number": "社会保障卡号或身份证号码", "code": "验证码", "submit": "查询",
        "holder": "持卡人：", "cards": "制卡进度", "no_cards": "暂无制卡申请记录。", "stage": "环节", "date": "日期",
        "not_reached": "未到此环节", "card_caption": "卡号 {card_no}（申请编号 {application_no}，第{generation}代卡）当前状态：{status}",
        "generations": {1: "一", 2: "二"},
        "medical": "医疗保险", "medical_balance": "个人账户余额：", "yuan": "元", "settlements": "最近结算记录",
        "settlement_columns": ["结算时间", "类型", "医疗费总额（元）", "基金支付（元）", "个人账户支付（元）", "现金支付（元）"],
        "settle": "结算", "cancel": "撤销",
        "pension": "养老保险个人账户", "pension_balance": "账户余额：", "pension_entries": "缴费与记息记录",
        "pension_columns": ["所属期", "类型", "缴费基数（元）", "费率/利率", "金额（元）"], "contribution": "个人缴费", "interest": "记账利息",
        "employment": "就业与失业保险", "employment_status": "就业状态：", "since": "（{date} 起）", "events": "登记记录",
        "event_columns": ["日期", "事项"], "payments": "失业保险金发放记录",
        "payment_columns": ["所属期", "失业保险金（元）", "代缴医疗保险费（元）"], "none": "暂无记录", "again": "重新查询",
        "event_kinds": {"job": "就业登记", "unemployment": "失业登记", "benefit": "失业保险金申领", "training": "就业培训登记", "retirement": "退休"},
        "status_names": {},
    },
    "en": {
        "html_lang": "en", "other_lang": "zh", "other_html_lang": "zh-CN", "other_name": "中文",
        "skip": "Skip to main content", "heading": "Social security card self-service", "subheading": "Read-only inquiry",
        "title": "Social security card self-service", "result_title": "Results - social security card self-service",
        "footer": "This page is read-only. To report a lost card, call the service line or visit a branch.",
        "help": "Enter your social security card number or ID number and the 6-digit verification code you were given.",
        "number": "Card number or ID number", "code": "Verification code", "submit": "Look up",
        "holder": "Cardholder: ", "cards": "Card printing progress", "no_cards": "No card applications.", "stage": "Stage", "date": "Date",
        "not_reached": "not reached yet", "card_caption": "Card {card_no} (application {application_no}, generation {generation}), status: {status}",
        "generations": {1: "1", 2: "2"},
        "medical": "Medical insurance", "medical_balance": "Personal account balance: ", "yuan": "yuan", "settlements": "Recent settlements",
        "settlement_columns": ["Settled at", "Kind", "Medical fees (yuan)", "Funds paid (yuan)", "Account paid (yuan)", "Cash paid (yuan)"],
        "settle": "settlement", "cancel": "cancellation",
        "pension": "Endowment personal account", "pension_balance": "Balance: ", "pension_entries": "Contributions and interest",
        "pension_columns": ["Period", "Kind", "Base (yuan)", "Rate", "Amount (yuan)"], "contribution": "contribution", "interest": "interest",
        "employment": "Employment and unemployment insurance", "employment_status": "Employment status: ", "since": " (since {date})",
        "events": "Registrations", "event_columns": ["Date", "Registration"], "payments": "Unemployment benefit payments",
        "payment_columns": ["Period", "Benefit (yuan)", "Medical contribution paid (yuan)"], "none": "No records", "again": "New inquiry",
        "event_kinds": {"job": "job", "unemployment": "unemployment", "benefit": "benefit application", "training": "training", "retirement": "retirement"},
        "status_names": {
            "applied": "applied", "in_production": "in production", "produced": "produced", "issued": "issued at branch",
            "activated": "activated", "lost_temporary": "temporarily lost", "lost_formal": "formally lost", "cancelled": "cancelled",
            "replaced": "replaced", "none": "not registered", "employed": "employed", "unemployed": "unemployed", "retired": "retired",
        },
    },
}


def _head(texts: dict[str, Any], title: str) -> str:
    return _HEAD.format(
        html_lang=texts["html_lang"], title=_e(title), skip=texts["skip"], heading=texts["heading"], subheading=texts["subheading"],
        other_lang=texts["other_lang"], other_html_lang=texts["other_html_lang"], other_name=texts["other_name"],
    )


def _status(texts: dict[str, Any], code: str, name_zh: str) -> str:
    return texts["status_names"].get(code, name_zh)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_form(error: str | None = None, number: str = "", lang: str = "zh") -> str:
    """Return the lookup form in ``lang`` (``zh`` or ``en``), with an error message above it when given."""
    texts = TEXTS[lang]
    parts = [_head(texts, texts["title"])]
    if error:
        parts.append(f'<div class="alert" role="alert" id="error">{_e(error)}</div>\n')
    parts.append(
        f'<form method="post" action="/self-service?lang={lang}" aria-describedby="form-help">\n'
        f'<p id="form-help">{texts["help"]}</p>\n'
        f'<label for="number">{texts["number"]}</label>\n'
        f'<input id="number" name="number" type="text" autocomplete="off" required maxlength="20" value="{_e(number)}">\n'
        f'<label for="code">{texts["code"]}</label>\n'
        '<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="6" pattern="[0-9]{6}">\n'
        f'<button type="submit" id="submit">{texts["submit"]}</button>\n'
        "</form>\n"
    )
    parts.append(_FOOT.format(footer=texts["footer"]))
    return "".join(parts)


def _table(caption: str, table_id: str, headers: list[str], rows: list[list[str]], amount_columns: set[int], empty: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    if not rows:
        return f'<table id="{table_id}"><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody><tr><td colspan="{len(headers)}">{_e(empty)}</td></tr></tbody></table>\n'
    body = []
    for row in rows:
        cells = "".join(f'<td class="amount">{_e(c)}</td>' if i in amount_columns else f"<td>{_e(c)}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="{table_id}"><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>\n'


def _cards_section(cards: list[dict[str, Any]], texts: dict[str, Any]) -> str:
    parts = [f'<section aria-labelledby="cards-title"><h2 id="cards-title">{texts["cards"]}</h2>\n']
    if not cards:
        parts.append(f"<p>{texts['no_cards']}</p>\n")
    for index, card in enumerate(cards):
        rows = [[_status(texts, stage["stage"], stage["stage_name"]), stage["date"] or texts["not_reached"]] for stage in card["stages"]]
        caption = texts["card_caption"].format(
            card_no=card["card_no"], application_no=card["application_no"], generation=texts["generations"][card["generation"]],
            status=_status(texts, card["status"], card["status_name"]),
        )
        parts.append(_table(caption, f"card-progress-{index}", [texts["stage"], texts["date"]], rows, set(), texts["none"]))
    parts.append("</section>\n")
    return "".join(parts)


def render_summary(summary: dict[str, Any], lang: str = "zh") -> str:
    """Return the result page for one cardholder in ``lang`` (``zh`` or ``en``)."""
    texts = TEXTS[lang]
    pension = summary["pension"]
    employment = summary["employment"]
    parts = [_head(texts, texts["result_title"])]
    parts.append(f'<p id="holder">{texts["holder"]}{_e(summary["name_masked"])}</p>\n')
    parts.append(_cards_section(summary["cards"], texts))

    parts.append(f'<section aria-labelledby="medical-title"><h2 id="medical-title">{texts["medical"]}</h2>\n')
    balance = format_amount(summary["medical_account_balance"])
    parts.append(f'<p>{texts["medical_balance"]}<strong id="medical-balance">{balance}</strong> {texts["yuan"]}</p>\n')
    settlement_rows = [
        [s["setl_time"], texts["settle"] if s["kind"] == "settle" else texts["cancel"], format_amount(s["medfee_sumamt"]),
         format_amount(s["fund_pay_sumamt"]), format_amount(s["acct_pay"]), format_amount(s["psn_cash_pay"])]
        for s in summary["settlements"]
    ]
    parts.append(_table(texts["settlements"], "settlements", texts["settlement_columns"], settlement_rows, {2, 3, 4, 5}, texts["none"]))
    parts.append("</section>\n")

    parts.append(f'<section aria-labelledby="pension-title"><h2 id="pension-title">{texts["pension"]}</h2>\n')
    parts.append(f'<p>{texts["pension_balance"]}<strong id="pension-balance">{format_amount(pension["balance"])}</strong> {texts["yuan"]}</p>\n')
    pension_rows = [
        [e["period"], texts[e["kind"]], format_amount(e["base"]) if e["kind"] == "contribution" else "—", format_ratio(e["rate"]),
         format_amount(e["amount"])]
        for e in pension["entries"]
    ]
    parts.append(_table(texts["pension_entries"], "pension-entries", texts["pension_columns"], pension_rows, {2, 4}, texts["none"]))
    parts.append("</section>\n")

    parts.append(f'<section aria-labelledby="employment-title"><h2 id="employment-title">{texts["employment"]}</h2>\n')
    since = texts["since"].format(date=employment["since"]) if employment["since"] else ""
    status = _status(texts, employment["status"], employment["status_name"])
    parts.append(f'<p>{texts["employment_status"]}<strong id="employment-status">{_e(status)}</strong>{_e(since)}</p>\n')
    event_rows = [[e["date"], texts["event_kinds"].get(e["kind"], e["kind"])] for e in employment["events"]]
    parts.append(_table(texts["events"], "employment-events", texts["event_columns"], event_rows, set(), texts["none"]))
    payment_rows = [[p["period"], format_amount(p["benefit"]), format_amount(p["medical_contribution"])] for p in employment["benefit_payments"]]
    parts.append(_table(texts["payments"], "benefit-payments", texts["payment_columns"], payment_rows, {1, 2}, texts["none"]))
    parts.append("</section>\n")

    parts.append(f'<p><a href="/self-service?lang={lang}">{texts["again"]}</a></p>\n')
    parts.append(_FOOT.format(footer=texts["footer"]))
    return "".join(parts)
