"""Coded errors: one stable code per kind of bad input or refused operation.

Every error names where it happened (a file, a line number or a field path) and the
offending value, and carries a Chinese message with an English form. Values that
identify a person are masked before they reach a message (see ``mask_identity``).

Codes are listed once, in ``ErrorCode``, grouped by subject. A code's number never
changes once it has shipped; add new codes at the end of their group.
"""

from __future__ import annotations

import decimal
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
    NEGATIVE_PRICE = (1003, "字段 {field} 的单价 {value} 不能为负数；退费请把负号放在数量 cnt 上", "field {field}: price {value} must not be negative; for a refund put the minus sign on cnt")
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
    WRONG_TYPE = (2009, "字段 {field} 的类型应为 {detail}，实际为 {value}", "field {field} should be {detail}, got {value}")

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

    # National interface server: signing, sessions, visits and their state (6xxx).
    SIGNATURE_INVALID = (6001, "请求签名校验失败：{detail}", "request signature is invalid: {detail}")
    TIMESTAMP_STALE = (6002, "请求头 {field} 的时间戳 {value} 超出允许的时间窗口：{detail}", "header {field}: timestamp {value} is outside the allowed window: {detail}")
    NONCE_REUSED = (6003, "请求头 {field} 的随机串 {value} 已被使用", "header {field}: nonce {value} was already used")
    UNKNOWN_INSTITUTION = (6004, "机构编码 {value} 未登记", "institution code {value} is not registered")
    INSTITUTION_MISMATCH = (6005, "字段 {field} 的机构编码 {value} 与签名机构 {detail} 不一致", "field {field}: institution code {value} differs from the signing institution {detail}")
    SIGN_IN_REQUIRED = (6006, "字段 {field} 的签到编号 {value} 无效：{detail}", "field {field}: sign-in number {value} is not valid: {detail}")
    UNKNOWN_PERSON = (6007, "字段 {field} 的人员 {value} 不存在", "field {field}: person {value} not found")
    PERSON_MISMATCH = (6008, "字段 {field} 的值 {value} 与{detail}不一致", "field {field}: value {value} does not match {detail}")
    UNKNOWN_VISIT = (6009, "字段 {field} 的就诊 {value} 不存在或不属于本机构", "field {field}: visit {value} not found for this institution")
    VISIT_CANCELLED = (6010, "就诊 {value} 已撤销", "visit {value} has been cancelled")
    DUPLICATE_FEEDETL_SN = (6011, "字段 {field} 的明细流水号 {value} 在本次就诊中已上传", "field {field}: fee line {value} was already uploaded for this visit")
    LINE_AMOUNT_MISMATCH = (6012, "字段 {field} 的明细金额 {value} 与单价乘数量不符：{detail}", "field {field}: line amount {value} does not match price x quantity: {detail}")
    SUM_MISMATCH = (6013, "字段 {field} 的金额 {value} 与已上传明细不符：{detail}", "field {field}: amount {value} does not match the uploaded details: {detail}")
    ALREADY_SETTLED = (6014, "收费批次 {value} 已有有效结算 {detail}", "charge batch {value} already has live settlement {detail}")
    ALREADY_CANCELLED = (6015, "结算 {value} 已撤销", "settlement {value} was already cancelled")
    UNKNOWN_SETTLEMENT = (6016, "字段 {field} 的结算 {value} 不存在或不属于本机构", "field {field}: settlement {value} not found for this institution")
    DETAILS_SETTLED = (6017, "收费批次 {value} 的明细属于有效结算 {detail}，请先撤销结算", "details of charge batch {value} belong to live settlement {detail}; cancel it first")
    VISIT_HAS_SETTLEMENT = (6018, "就诊 {value} 有有效结算 {detail}，请先撤销结算", "visit {value} has live settlement {detail}; cancel it first")
    MSGID_REUSED = (6019, "报文编号 {value} 已用于{detail}", "message id {value} was already used for {detail}")
    NO_DETAILS = (6020, "收费批次 {value} 没有已上传的明细", "charge batch {value} has no uploaded details")
    FEE_TIME_OUT_OF_RANGE = (6021, "字段 {field} 的费用发生时间 {value} 早于就诊开始时间 {detail}", "field {field}: fee time {value} is before the visit began at {detail}")
    UNKNOWN_ORIGINAL = (6022, "字段 {field} 的原明细 {value} 不是本次就诊的已上传明细", "field {field}: original line {value} is not an uploaded line of this visit")
    OVER_REFUND = (6023, "字段 {field} 的退费数量超过原明细 {value} 的剩余数量：{detail}", "field {field}: refund exceeds what is left of line {value}: {detail}")
    REFUND_RESIDUE = (6024, "字段 {field} 退费后原明细 {value} 数量为 0 但金额不为 0：{detail}", "field {field}: after this refund line {value} has quantity 0 but amount {detail}")
    NOT_ENROLLED = (6025, "人员未参加险种 {value}", "the person is not enrolled in insurance type {value}")
    SERVICE_UNAVAILABLE = (6026, "服务暂时不可用：{detail}", "service temporarily unavailable: {detail}")
    BAD_DATE_RANGE = (6050, "字段 {field} 的对账期间 {value} 无效：{detail}", "field {field}: reconciliation period {value} is invalid: {detail}")
    UNKNOWN_FILE = (6051, "字段 {field} 的文件 {value} 不存在或不属于本机构：{detail}", "field {field}: file {value} not found for this institution: {detail}")
    DETAIL_TOTALS_MISMATCH = (6052, "字段 {field} 的值 {value} 与明细文件不符：{detail}", "field {field}: value {value} does not match the detail file: {detail}")
    WRONG_VISIT_KIND = (6027, "字段 {field} 的就诊 {value} 是{detail}", "field {field}: visit {value} is {detail}")
    NOT_REVERSIBLE = (6028, "字段 {field} 的交易 {value} 不能冲正：{detail}", "field {field}: transaction {value} cannot be reversed: {detail}")
    ALREADY_REVERSED = (6029, "报文 {value} 已于 {detail} 冲正", "message {value} was already reversed at {detail}")
    ORIGINAL_MISMATCH = (6030, "字段 {field} 的值 {value} 与原报文{detail}不一致", "field {field}: value {value} does not match the original message's {detail}")
    UNKNOWN_ORIGINAL_MESSAGE = (6031, "字段 {field} 的原报文 {value} 不存在或不属于本机构", "field {field}: original message {value} not found for this institution")
    STAY_STATE = (6032, "字段 {field} 的住院 {value} {detail}", "field {field}: stay {value} {detail}")
    QUERY_PERIOD_INVALID = (6040, "字段 {field} 的查询时间 {value} 无效：{detail}", "field {field}: query time {value} is invalid: {detail}")

    # Ledger: journal, balances, accumulators and the database behind them (7xxx).
    UNBALANCED_TRANSACTION = (7001, "交易 {value} 借贷不平衡：{detail}", "transaction {value} does not balance: {detail}")
    INSUFFICIENT_BALANCE = (7002, "账户 {value} 余额不足：{detail}", "account {value} has an insufficient balance: {detail}")
    PLAN_INCONSISTENT = (7003, "结算 {value} 的计算结果与账本不一致：{field} {detail}", "settlement {value}: the computed result disagrees with the ledger: {field} {detail}")
    LEDGER_FAILED = (7004, "账本数据库操作失败，本次写入未保存：{detail}", "the ledger database failed and nothing of this write was kept: {detail}")
    LEDGER_DSN_INVALID = (7005, "账本地址 {value} 无效：{detail}", "ledger address {value} is invalid: {detail}")
    LEDGER_SCHEMA_OUTDATED = (7006, "账本 {value} 的表结构版本过旧：{detail}，请先执行 settlement db migrate", "ledger {value} has an outdated schema: {detail}; run settlement db migrate first")
    MIGRATION_FAILED = (7007, "迁移 {value} 执行失败：{detail}", "migration {value} failed: {detail}")
    UNKNOWN_ACCOUNT = (7008, "字段 {field} 的账户 {value} 无效：{detail}", "field {field}: account {value} is invalid: {detail}")

    # Social insurance services: cards, employment, pension, self-service (8xxx).
    CARD_NOT_FOUND = (8001, "字段 {field} 的社会保障卡 {value} 不存在", "field {field}: social security card {value} not found")
    CARD_TRANSITION_FORBIDDEN = (8002, "社会保障卡 {value} 当前状态为{detail}，不能执行{field}", "social security card {value} is {detail}; {field} is not allowed")
    CARD_LOST = (8003, "字段 {field} 的社会保障卡 {value} 已挂失，不能结算：{detail}", "field {field}: social security card {value} is reported lost and cannot settle: {detail}")
    CARD_CANCELLED = (8004, "字段 {field} 的社会保障卡 {value} 已注销或已换卡，不能结算：{detail}", "field {field}: social security card {value} is cancelled or replaced and cannot settle: {detail}")
    CARD_NOT_ACTIVE = (8005, "字段 {field} 的社会保障卡 {value} 尚未启用，不能结算：{detail}", "field {field}: social security card {value} is not activated yet and cannot settle: {detail}")
    APPLICATION_NOT_FOUND = (8006, "字段 {field} 的制卡申请 {value} 不存在", "field {field}: card application {value} not found")
    EMPLOYMENT_STATE_CONFLICT = (8007, "人员 {value} 的就业状态为{detail}，不能办理{field}", "person {value} has employment status {detail}; {field} is not allowed")
    BENEFIT_NOT_ELIGIBLE = (8008, "人员 {value} 不符合失业保险金领取条件：{detail}", "person {value} is not eligible for unemployment benefit: {detail}")
    SERVICE_STANDARD_MISSING = (8009, "地区 {value} 在 {detail} 没有生效的{field}标准", "region {value} has no {field} standard in force on {detail}")
    ALREADY_RETIRED = (8010, "人员 {value} 已于 {detail} 办理退休", "person {value} already retired on {detail}")
    DUPLICATE_CONTRIBUTION = (8011, "人员 {value} 的 {detail} 缴费已记账，内容不同", "person {value}: the contribution for {detail} is already recorded with other content")
    INTEREST_ALREADY_CREDITED = (8012, "人员 {value} 的 {detail} 年度利息已记账", "person {value}: interest for {detail} is already credited")
    VERIFICATION_FAILED = (8013, "验证码错误或已过期，请重新获取", "the verification code is wrong or has expired; request a new one")
    READ_ONLY_ROLE = (8014, "自助查询只能读取，不能发送 {field} 请求", "self-service access is read-only; {field} requests are not allowed")
    INJURY_NOT_RECOGNIZED = (8015, "工伤认定 {value} 不存在或未认定：{detail}", "work-injury case {value} not found or not recognized: {detail}")

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
    # A decimal is shown as the number the sender wrote ("-5.0"), not as its repr.
    text = value if isinstance(value, str) else str(value) if isinstance(value, decimal.Decimal) else repr(value)
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
