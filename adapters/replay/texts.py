"""Words of the replay report and command output, in Chinese (default) and English."""

from __future__ import annotations

__all__ = ["FUND_NAMES", "TEXTS", "text"]

TEXTS: dict[str, dict[str, str]] = {
    "title": {"zh": "医保结算回放审计报告", "en": "Settlement replay audit report"},
    "generated": {"zh": "数据来源", "en": "Source"},
    "result_ok": {"zh": "结论：全部结算与规则重算一致，哈希链完整。", "en": "Result: every settlement matches the replay and the hash chain is intact."},
    "result_empty": {"zh": "结论：所选范围内没有结算记录，未核对任何结算。请检查日期（yyyy-MM-dd）、机构和统筹区。",
                     "en": "Result: the selection holds no settlement, so nothing was checked. Check the dates (yyyy-MM-dd), institution and region."},
    "result_bad": {"zh": "结论：发现差异或哈希链断裂，详见下文。", "en": "Result: discrepancies or a broken hash link were found; see below."},
    "counts": {"zh": "核对数量", "en": "Counts"},
    "checked": {"zh": "已核对结算", "en": "Settlements checked"},
    "matching": {"zh": "一致", "en": "Matching"},
    "differing": {"zh": "存在差异", "en": "Differing"},
    "settlements": {"zh": "其中结算", "en": "of which settlements"},
    "cancels": {"zh": "其中撤销", "en": "of which cancels"},
    "discrepancy_rows": {"zh": "差异项数", "en": "Discrepancy rows"},
    "chain": {"zh": "哈希链", "en": "Hash chain"},
    "chain_none": {"zh": "记录未携带哈希，未检查哈希链。", "en": "The records carry no hashes; the chain was not checked."},
    "chain_ok": {"zh": "已检查 {count} 条记录，哈希链完整（{layout}）。", "en": "{count} records checked, the chain is intact ({layout})."},
    "chain_break": {"zh": "第一处断裂：结算 {setl_id}（链序号 {seq}），原因 {reason}；记录值 {stored}，重算值 {recomputed}",
                    "en": "First broken link: settlement {setl_id} (chain position {seq}), reason {reason}; stored {stored}, recomputed {recomputed}"},
    "totals_fund": {"zh": "按基金汇总（元）", "en": "Totals per fund (yuan)"},
    "totals_institution": {"zh": "按机构汇总（元）", "en": "Totals per institution (yuan)"},
    "totals_day": {"zh": "按日汇总（元）", "en": "Totals per day (yuan)"},
    "fund": {"zh": "基金", "en": "Fund"},
    "amount": {"zh": "金额", "en": "Amount"},
    "institution": {"zh": "机构", "en": "Institution"},
    "day": {"zh": "日期", "en": "Day"},
    "count": {"zh": "笔数", "en": "Count"},
    "discrepancies": {"zh": "差异明细", "en": "Discrepancies"},
    "no_discrepancies": {"zh": "无差异。", "en": "No discrepancies."},
    "shown_first": {"zh": "仅显示前 {shown} 项，共 {total} 项；完整列表见 CSV。", "en": "Showing the first {shown} of {total}; the CSV has all of them."},
    "setl_id": {"zh": "结算ID", "en": "Settlement id"},
    "psn_no": {"zh": "人员编号", "en": "Person"},
    "kind": {"zh": "类型", "en": "Kind"},
    "field": {"zh": "字段", "en": "Field"},
    "recorded": {"zh": "账本记录值", "en": "Recorded"},
    "recomputed": {"zh": "重算值", "en": "Recomputed"},
    "step": {"zh": "计算步骤", "en": "Step"},
    "chart_day": {"zh": "按日差异数", "en": "Discrepancies by day"},
    "chart_fund": {"zh": "按基金差异数", "en": "Discrepancies by fund"},
    "medfee_sumamt": {"zh": "医疗费总额", "en": "Medical fees"},
    "fund_pay_sumamt": {"zh": "基金支付合计", "en": "Fund total"},
    "acct_pay": {"zh": "个人账户支付", "en": "Personal account"},
    "psn_cash_pay": {"zh": "个人现金支付", "en": "Cash"},
}

FUND_NAMES: dict[str, dict[str, str]] = {
    "hifp_pay": {"zh": "基本医疗保险统筹基金", "en": "Basic pooled fund (hifp)"},
    "hifob_pay": {"zh": "职工大额医疗费用补助", "en": "Employee large-amount subsidy (hifob)"},
    "hifmi_pay": {"zh": "居民大病保险", "en": "Resident critical illness (hifmi)"},
    "cvlserv_pay": {"zh": "公务员医疗补助", "en": "Civil servant subsidy (cvlserv)"},
    "maf_pay": {"zh": "医疗救助", "en": "Medical assistance (maf)"},
    "acct_pay": {"zh": "个人账户", "en": "Personal account"},
    "psn_cash_pay": {"zh": "个人现金", "en": "Cash"},
}


def text(key: str, lang: str, **values: object) -> str:
    """Return the text for ``key`` in ``lang`` (zh or en), with ``values`` filled in."""
    return TEXTS[key]["en" if lang == "en" else "zh"].format(**values)
