"""National code tables the server checks coded fields against.

Only tables whose values are settled nationally are checked; regional routing codes
(``recer_sys_code``) and extension-heavy tables (``psn_type``) are passed through.
"""

from __future__ import annotations

__all__ = [
    "ACCT_USED_FLAG",
    "CERT_BY_CARD",
    "CERT_BY_ID",
    "CERT_BY_TOKEN",
    "CHRGITM_LV",
    "FLAG",
    "GEND",
    "INSUTYPE",
    "MDTRT_CERT_TYPE",
    "MED_TYPE",
    "OPTER_TYPE",
    "PSN_CERT_TYPE",
    "PSN_SETLWAY",
    "CodeTable",
]


class CodeTable:
    """A named set of allowed codes; ``name_zh`` is what an error message calls the table."""

    __slots__ = ("name", "name_zh", "codes")

    def __init__(self, name: str, name_zh: str, codes: dict[str, str]) -> None:
        self.name = name
        self.name_zh = name_zh
        self.codes = codes

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def describe(self) -> str:
        return "、".join(self.codes)


CERT_BY_TOKEN = "01"
CERT_BY_ID = "02"
CERT_BY_CARD = "03"

MDTRT_CERT_TYPE = CodeTable(
    "mdtrt_cert_type", "就诊凭证类型", {CERT_BY_TOKEN: "医保电子凭证", CERT_BY_ID: "居民身份证", CERT_BY_CARD: "社会保障卡"}
)

INSUTYPE = CodeTable(
    "insutype",
    "险种类型",
    {
        "310": "职工基本医疗保险",
        "320": "公务员医疗补助",
        "330": "大额医疗费用补助",
        "340": "离休人员医疗保障",
        "350": "一至六级残废军人医疗补助",
        "360": "老红军医疗保障",
        "370": "企业补充医疗保险",
        "380": "新型农村合作医疗",
        "390": "城乡居民基本医疗保险",
        "391": "城镇居民基本医疗保险",
        "392": "城乡居民大病医疗保险",
        "399": "其他特殊人员医疗保障",
        "410": "长期照护保险",
        "510": "生育保险",
    },
)

# National core values; regional extensions are rejected until a region needs them.
MED_TYPE = CodeTable(
    "med_type",
    "医疗类别",
    {
        "11": "普通门诊",
        "12": "门诊挂号",
        "13": "急诊",
        "14": "门诊慢特病",
        "21": "普通住院",
        "22": "外伤住院",
        "23": "转外诊治住院",
        "24": "急诊转住院",
        "41": "定点药店购药",
        "51": "生育门诊",
        "52": "生育住院",
        "53": "计划生育手术费",
        "91": "其他门诊",
        "92": "其他住院",
        "93": "其他购药",
        "99": "其他",
    },
)

PSN_SETLWAY = CodeTable("psn_setlway", "个人结算方式", {"01": "按项目结算", "02": "按定额结算", "0201": "单病种", "0202": "日间手术"})

FLAG = CodeTable("flag", "标志", {"0": "否", "1": "是"})
ACCT_USED_FLAG = CodeTable("acct_used_flag", "个人账户使用标志", {"0": "不使用", "1": "使用"})

OPTER_TYPE = CodeTable("opter_type", "经办人类别", {"1": "经办人", "2": "自助终端", "3": "移动终端"})

GEND = CodeTable("gend", "性别", {"0": "未知的性别", "1": "男", "2": "女", "9": "未说明的性别"})

PSN_CERT_TYPE = CodeTable(
    "psn_cert_type",
    "人员证件类型",
    {f"{n:02d}": "" for n in range(1, 18)} | {"90": "社会保障卡", "99": "其他身份证件"},
)

CHRGITM_LV = CodeTable("chrgitm_lv", "收费项目等级", {"01": "甲类", "02": "乙类", "03": "丙类"})
