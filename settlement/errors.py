"""Coded errors: one stable code per kind of bad input or refused operation.

Every error names where it happened (a file, a line number or a field path) and the
offending value, and carries a Chinese message with an English form. Values that
identify a person are masked before they reach a message (see ``mask_identity``).

Codes are listed once, in ``ErrorCode``, grouped by subject. A code's number never
changes once it has shipped; add new codes at the end of their group.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "ErrorCode",
    "SettlementError",
    "mask_identity",
]

# Echoed values are cut to this many characters so a huge field cannot flood a message.
MAX_ECHO_CHARS = 64


class ErrorCode(enum.Enum):
    """Stable error codes: ``(number, Chinese template, English template)``.

    Templates use ``{field}``, ``{value}`` and ``{detail}``. The symbolic names follow
    the kinds integrators already use in their test cases (``BAD_NUMBER``...).
    """

    # Numbers and money (1xxx).
    BAD_NUMBER = (1001, "字段 {field} 的数值 {value} 无效：{detail}", "field {field}: invalid number {value}: {detail}")
    NEGATIVE_AMOUNT = (1002, "字段 {field} 的值 {value} 不能为负数（仅退费可为负）", "field {field}: value {value} must not be negative outside a refund")
    NEGATIVE_PRICE = (1003, "字段 {field} 的单价 {value} 不能为负数", "field {field}: price {value} must not be negative")
    ZERO_QUANTITY = (1004, "字段 {field} 的数量不能为 0", "field {field}: quantity must not be zero")
    AMOUNT_OUT_OF_RANGE = (1005, "字段 {field} 的值 {value} 超出允许范围：{detail}", "field {field}: value {value} is out of range: {detail}")

    # Request shape (2xxx).
    REQUIRED_FIELD = (2001, "缺少必填字段 {field}", "missing required field {field}")
    INVALID_CODE = (2002, "字段 {field} 的代码 {value} 不在代码表中：{detail}", "field {field}: code {value} is not in its code table: {detail}")
    INVALID_FIELD = (2003, "字段 {field} 的值 {value} 无效：{detail}", "field {field}: invalid value {value}: {detail}")
    TOO_MANY_LINES = (2004, "明细条数 {value} 超过上限 {detail}", "{value} fee lines exceed the maximum of {detail}")
    MALFORMED_JSON = (2005, "请求不是合法的 JSON：{detail}", "request is not valid JSON: {detail}")
    ENCODING = (2006, "请求体不是合法的 UTF-8 编码：{detail}", "request body is not valid UTF-8: {detail}")
    BODY_TOO_LARGE = (2007, "请求体 {value} 字节超过上限 {detail} 字节", "request body of {value} bytes exceeds the limit of {detail} bytes")
    UNKNOWN_INFNO = (2008, "不支持的交易编号 {value}", "unsupported transaction number {value}")

    # Catalogue and policy lookups (3xxx).
    UNKNOWN_CATALOG_CODE = (3001, "字段 {field} 的目录编码 {value} 在 {detail} 有效的目录中不存在", "field {field}: catalogue code {value} is not in the catalogue in force on {detail}")
    MISSING_PERSON_GROUP = (3002, "字段 {field} 缺少人员类别", "field {field}: person group is missing")
    UNKNOWN_PERSON_GROUP = (3003, "字段 {field} 的人员类别 {value} 未知：{detail}", "field {field}: unknown person group {value}: {detail}")
    NO_POLICY_IN_FORCE = (3004, "{detail} 没有生效的政策 {value}", "no policy {value} in force on {detail}")
    NO_SCHEME = (3005, "政策 {value} 不支持医疗类别 {field}", "policy {value} has no scheme for medical type {field}")
    NO_MATCHING_RULE = (3006, "政策 {value} 在 {field} 没有适用于 {detail} 的规则", "policy {value} has no rule at {field} for {detail}")

    # Rule files (4xxx).
    RULE_FILE_INVALID = (4001, "规则文件 {value} 的 {field} 无效：{detail}", "rule file {value}: {field} is invalid: {detail}")
    RULE_DATES_OVERLAP = (4002, "规则文件 {value} 的生效期与 {detail} 重叠", "rule file {value}: effective dates overlap {detail}")
    RULE_BANDS_ORDER = (4003, "规则文件 {value} 的 {field} 分段未按升序排列：{detail}", "rule file {value}: bands at {field} are not in ascending order: {detail}")

    # Claim vectors and other input files (5xxx).
    CLAIM_FILE_INVALID = (5001, "文件 {value} 的 {field} 无效：{detail}", "file {value}: {field} is invalid: {detail}")

    @property
    def number(self) -> int:
        return self.value[0]


def mask_identity(value: str) -> str:
    """Mask an ID number, card number or name so that a log line never carries it whole.

    Keeps the first and last few characters of long numbers (enough to tell two apart
    in a support call) and only the first character of a name.
    """
    if len(value) >= 10:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    if len(value) >= 2:
        return value[0] + "*" * (len(value) - 1)
    return "*"


def _echo(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_ECHO_CHARS:
        return text[:MAX_ECHO_CHARS] + "..."
    return text


class SettlementError(Exception):
    """An input or operation the engine rejects, with its code, where, what and why.

    ``field`` is a field path (``input.feedetail[3].pric``), a JSON path in a rule file
    or ``file:line``. ``value`` is echoed truncated; pass ``sensitive=True`` for
    identity numbers and names so that only a masked form is kept.
    """

    def __init__(
        self,
        code: ErrorCode,
        *,
        field: str = "",
        value: Any = "",
        detail: str = "",
        detail_en: str | None = None,
        sensitive: bool = False,
    ) -> None:
        self.code = code
        self.field = field
        self.value = mask_identity(str(value)) if sensitive else _echo(value)
        self.detail = detail
        self.detail_en = detail if detail_en is None else detail_en
        super().__init__(self.message_en)

    @property
    def message_zh(self) -> str:
        return self.code.value[1].format(field=self.field, value=self.value, detail=self.detail)

    @property
    def message_en(self) -> str:
        return self.code.value[2].format(field=self.field, value=self.value, detail=self.detail_en)

    def message(self, lang: str = "zh") -> str:
        """Return the message in ``lang`` (``zh`` or ``en``), prefixed with the numeric code."""
        text = self.message_en if lang == "en" else self.message_zh
        return f"[{self.code.number}] {text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.number,
            "kind": self.code.name,
            "field": self.field,
            "value": self.value,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
