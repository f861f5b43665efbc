"""Check a decoded policy file and turn it into a ``Policy`` with integer values.

Every problem raises a ``SettlementError`` whose ``value`` is the file and whose
``field`` is the JSON path of the offending value (``schemes.inpatient.bands.lower_bounds[2]``),
so the author can go straight to it. Checks stop at the first problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.policy.model import (
    CivilServant,
    CriticalIllness,
    DeductibleRule,
    LargeAmountRule,
    MedicalAssistance,
    Policy,
    RatioRule,
    Scheme,
)
from settlement.policy.schema import (
    AnnualDeductibleSpec,
    CivilServantSchemeSpec,
    CivilServantSpec,
    CriticalIllnessSpec,
    MedicalAssistanceSpec,
    PerAdmissionDeductibleSpec,
    PolicyFile,
    SchemeSpec,
    split_validation_error,
)
from settlement.types import (
    ACCUMULATOR_KEYS,
    HOSPITAL_LEVELS,
    MED_TYPE_CODES,
    MED_TYPES,
    MEDICAL_ASSISTANCE_TYPES,
    PERSON_GROUPS,
    AccountParams,
    Band,
    CriticalIllnessParams,
)

__all__ = ["FUND_LAYERS", "MAX_BANDS", "compile_policy"]

# The kernel keeps a claim's bands in a fixed-size row, so a longer scale is rejected at load.
MAX_BANDS = 8

# Fund layers of a settlement, each reported under a national fund_pay_type code.
FUND_LAYERS = ("hifp", "hifob", "hifmi", "cvlserv", "maf", "acct")

# Balances belong to the account step, so no deductible, band or cap may count in them.
_BALANCE_KEYS = frozenset({"acct_balc", "family_acct_balc"})

_T = TypeVar("_T")

_POLICY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ADMDVS = re.compile(r"[0-9]{6}")
_INSUTYPE = re.compile(r"[0-9]{3}")
_FUND_PAY_TYPE = re.compile(r"[0-9]{6}")


class _Checker:
    """Raise errors that name the policy file being compiled."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, detail_zh: str, detail_en: str, code: ErrorCode = ErrorCode.RULE_FILE_INVALID) -> SettlementError:
        return SettlementError(code, field=path, value=self.source, detail=detail_zh, detail_en=detail_en)

    def decode(self, raw: msgspec.Raw, spec_type: type[_T], path: str) -> _T:
        """Decode one value of a map kept raw by the schema, naming its key in any error."""
        try:
            return msgspec.json.decode(raw, type=spec_type)
        except msgspec.ValidationError as error:
            inner, reason = split_validation_error(str(error))
            raise self.fail(path if inner == "(root)" else f"{path}.{inner}", reason, reason) from error

    def parse(self, parser: Any, text: str, path: str) -> int:
        """Run a ``settlement.money`` parser and re-raise its error as a rule-file error at ``path``."""
        try:
            return int(parser(text, path))
        except SettlementError as error:
            # The parser's own detail is empty for some codes (negative values); its full message is not.
            detail_zh = error.detail or error.message_zh
            detail_en = error.detail_en or error.message_en
            raise self.fail(path, f"{text!r}: {detail_zh}", f"{text!r}: {detail_en}") from error

    def amount(self, text: str, path: str) -> int:
        return self.parse(money.parse_amount, text, path)

    def optional_amount(self, text: str | None, path: str) -> int | None:
        return None if text is None else self.amount(text, path)

    def ratio(self, text: str, path: str) -> int:
        return self.parse(money.parse_ratio, text, path)

    def match(self, pattern: re.Pattern[str], text: str, path: str, what_zh: str, what_en: str) -> None:
        if pattern.fullmatch(text) is None:
            raise self.fail(path, f"{text!r} 不是{what_zh}", f"{text!r} is not {what_en}")

    def accumulator(self, name: str, path: str, *, counter: bool = False) -> str:
        """Check an accumulator name: known, not a balance, and a counter exactly where one is needed."""
        if name not in ACCUMULATOR_KEYS:
            raise self.fail(
                path,
                f"未知的累计项 {name!r}，可选：{', '.join(ACCUMULATOR_KEYS)}",
                f"unknown accumulator {name!r}; expected one of {', '.join(ACCUMULATOR_KEYS)}",
            )
        if name in _BALANCE_KEYS:
            raise self.fail(path, f"{name!r} 是账户余额，不能作为累计项", f"{name!r} is an account balance, not a counter or total")
        is_counter = name.endswith("_count")
        if counter and not is_counter:
            raise self.fail(path, f"{name!r} 不是次数累计项", f"{name!r} is not a count accumulator")
        if not counter and is_counter:
            raise self.fail(path, f"{name!r} 是次数，这里需要金额累计项", f"{name!r} is a count; an amount accumulator is needed here")
        return name

    def members(self, values: Sequence[str], allowed: Iterable[str], path: str, what_zh: str, what_en: str) -> frozenset[str]:
        """Check a ``groups`` or ``levels`` list. With ``"*"`` anywhere it returns the empty set, meaning all."""
        allowed = tuple(allowed)
        if not values:
            raise self.fail(path, f"{what_zh}列表不能为空（所有值用 \"*\"）", f"{what_en} list is empty (use \"*\" for all)")
        for index, value in enumerate(values):
            if value != "*" and value not in allowed:
                raise self.fail(
                    f"{path}[{index}]",
                    f"未知的{what_zh} {value!r}，可选：{', '.join(allowed)} 或 *",
                    f"unknown {what_en} {value!r}; expected one of {', '.join(allowed)} or *",
                )
        return frozenset() if "*" in values else frozenset(values)

    def med_types(self, values: Sequence[str], path: str) -> frozenset[str]:
        for index, value in enumerate(values):
            self.med_type(value, f"{path}[{index}]")
        return frozenset(values)

    def med_type(self, value: str, path: str) -> None:
        if value not in MED_TYPES:
            raise self.fail(
                path,
                f"未知的医疗类别 {value!r}，可选：{', '.join(MED_TYPES)}",
                f"unknown medical type {value!r}; expected one of {', '.join(MED_TYPES)}",
            )

    def ascending(self, values: Sequence[int], path: str, *, start_at_zero: bool) -> None:
        """Check a band scale: at most ``MAX_BANDS`` entries, strictly ascending, optionally from 0."""
        if not values:
            raise self.fail(path, "至少需要一个分段", "at least one band is required")
        if len(values) > MAX_BANDS:
            raise self.fail(path, f"分段数 {len(values)} 超过上限 {MAX_BANDS}", f"{len(values)} bands exceed the maximum of {MAX_BANDS}")
        if start_at_zero and values[0] != 0:
            raise self.fail(
                f"{path}[0]", "第一个分段必须从 0.00 开始", "the first band must start at 0.00", code=ErrorCode.RULE_BANDS_ORDER
            )
        for index in range(1, len(values)):
            if values[index] <= values[index - 1]:
                raise self.fail(
                    f"{path}[{index}]",
                    f"{money.format_amount(values[index])} 不大于前一个分段 {money.format_amount(values[index - 1])}",
                    f"{money.format_amount(values[index])} is not above the previous bound {money.format_amount(values[index - 1])}",
                    code=ErrorCode.RULE_BANDS_ORDER,
                )


def compile_policy(spec: PolicyFile, source: str) -> Policy:
    """Check ``spec`` (decoded from the file ``source``) and return the policy with parsed values."""
    check = _Checker(source)

    check.match(_POLICY_ID, spec.policy_id, "policy_id", "小写字母、数字、'.'、'_'、'-' 组成的标识", "an id of lowercase letters, digits, '.', '_' and '-'")
    check.match(_ADMDVS, spec.admdvs, "admdvs", "6 位行政区划代码", "a 6-digit admdvs code")
    check.match(_INSUTYPE, spec.insutype, "insutype", "3 位险种代码", "a 3-digit insutype code")
    if spec.effective_to is not None and spec.effective_to < spec.effective_from:
        raise check.fail("effective_to", "终止日期早于开始日期", "is before effective_from")
    if spec.max_lines < 1:
        raise check.fail("max_lines", "必须至少为 1", "must be at least 1")
    if not spec.schemes:
        raise check.fail("schemes", "至少需要一个医疗类别", "at least one scheme is required")

    schemes = {
        med_type: _compile_scheme(check, med_type, check.decode(raw, SchemeSpec, f"schemes.{med_type}"))
        for med_type, raw in spec.schemes.items()
    }
    account = AccountParams(
        has_account=spec.account.has_account,
        pays_fulamt=spec.account.pays_fulamt,
        pays_overlmt=spec.account.pays_overlmt,
        mutual_aid=spec.account.mutual_aid,
    )
    critical_illness = None if spec.critical_illness is None else _compile_critical_illness(check, spec.critical_illness)
    civil_servant = None if spec.civil_servant is None else _compile_civil_servant(check, spec.civil_servant)
    medical_assistance = None if spec.medical_assistance is None else _compile_medical_assistance(check, spec.medical_assistance)

    _check_fund_pay_types(check, spec, schemes)

    return Policy(
        policy_id=spec.policy_id,
        title=spec.title,
        admdvs=spec.admdvs,
        insutype=spec.insutype,
        effective_from=spec.effective_from,
        effective_to=spec.effective_to,
        year_rule=spec.year_rule,
        max_lines=spec.max_lines,
        provenance=dict(spec.provenance),
        fund_pay_types=dict(spec.fund_pay_types),
        account=account,
        schemes=schemes,
        critical_illness=critical_illness,
        civil_servant=civil_servant,
        medical_assistance=medical_assistance,
        source=source,
    )


def _compile_scheme(check: _Checker, med_type: str, spec: SchemeSpec) -> Scheme:
    path = f"schemes.{med_type}"
    if med_type not in MED_TYPE_CODES:
        raise check.fail(path, f"未知的医疗类别，可选：{', '.join(MED_TYPES)}", f"unknown medical type; expected one of {', '.join(MED_TYPES)}")
    if spec.med_type_code != MED_TYPE_CODES[med_type]:
        raise check.fail(
            f"{path}.med_type_code",
            f"{med_type} 的国家代码是 {MED_TYPE_CODES[med_type]}，不是 {spec.med_type_code}",
            f"the national code of {med_type} is {MED_TYPE_CODES[med_type]}, not {spec.med_type_code}",
        )

    if not spec.fund:
        return _compile_scheme_without_fund(check, med_type, spec, path)
    if spec.ratios is None:
        raise check.fail(f"{path}.ratios", "有统筹基金的医疗类别必须给出比例", "a scheme with a fund needs ratios")

    basis, deductible_rules = _compile_deductible(check, spec, path)

    if spec.bands is None:
        band_accumulator = None
        lower_bounds: tuple[int, ...] = (0,)
    else:
        band_accumulator = check.accumulator(spec.bands.accumulator, f"{path}.bands.accumulator")
        lower_bounds = tuple(
            check.amount(text, f"{path}.bands.lower_bounds[{index}]") for index, text in enumerate(spec.bands.lower_bounds)
        )
        check.ascending(lower_bounds, f"{path}.bands.lower_bounds", start_at_zero=True)

    ratio_rules = []
    for index, rule in enumerate(spec.ratios.rules):
        rule_path = f"{path}.ratios.rules[{index}]"
        if len(rule.ratios) != len(lower_bounds):
            raise check.fail(
                f"{rule_path}.ratios",
                f"有 {len(rule.ratios)} 个比例，但分段有 {len(lower_bounds)} 个",
                f"has {len(rule.ratios)} ratios for {len(lower_bounds)} bands",
            )
        ratio_rules.append(
            RatioRule(
                groups=check.members(rule.groups, PERSON_GROUPS, f"{rule_path}.groups", "人员类别", "person group"),
                levels=check.members(rule.levels, HOSPITAL_LEVELS, f"{rule_path}.levels", "医院等级", "hospital level"),
                ratios=tuple(check.ratio(text, f"{rule_path}.ratios[{band}]") for band, text in enumerate(rule.ratios)),
            )
        )
    if not ratio_rules:
        raise check.fail(f"{path}.ratios.rules", "至少需要一条比例规则", "at least one ratio rule is required")

    fund_cap = fund_cap_accumulator = None
    if spec.fund_cap is not None:
        fund_cap = check.amount(spec.fund_cap.amount, f"{path}.fund_cap.amount")
        fund_cap_accumulator = check.accumulator(spec.fund_cap.accumulator, f"{path}.fund_cap.accumulator")

    large_amount_rules: list[LargeAmountRule] = []
    large_amount_cap = large_amount_accumulator = None
    if spec.large_amount is not None:
        large_path = f"{path}.large_amount"
        # The large-amount layer pays the expense above the pooled cap, so it needs one.
        if fund_cap is None:
            raise check.fail(large_path, "大额医疗费用补助需要统筹基金封顶线 fund_cap", "a large-amount layer needs a fund_cap to start from")
        for index, rule in enumerate(spec.large_amount.rules):
            rule_path = f"{large_path}.rules[{index}]"
            large_amount_rules.append(
                LargeAmountRule(
                    groups=check.members(rule.groups, PERSON_GROUPS, f"{rule_path}.groups", "人员类别", "person group"),
                    levels=check.members(rule.levels, HOSPITAL_LEVELS, f"{rule_path}.levels", "医院等级", "hospital level"),
                    ratio=check.ratio(rule.ratio, f"{rule_path}.ratio"),
                )
            )
        if not large_amount_rules:
            raise check.fail(f"{large_path}.rules", "至少需要一条规则", "at least one rule is required")
        large_amount_cap = check.optional_amount(spec.large_amount.cap, f"{large_path}.cap")
        large_amount_accumulator = check.accumulator(spec.large_amount.accumulator, f"{large_path}.accumulator")

    return Scheme(
        med_type=med_type,
        med_type_code=spec.med_type_code,
        fund_enabled=True,
        deductible_basis=basis,
        deductible_rules=deductible_rules,
        band_accumulator=band_accumulator,
        band_lower_bounds=lower_bounds,
        ratio_rules=tuple(ratio_rules),
        fund_cap=fund_cap,
        fund_cap_accumulator=fund_cap_accumulator,
        large_amount_rules=tuple(large_amount_rules),
        large_amount_cap=large_amount_cap,
        large_amount_accumulator=large_amount_accumulator,
    )


def _compile_scheme_without_fund(check: _Checker, med_type: str, spec: SchemeSpec, path: str) -> Scheme:
    # With no fund there is nothing for a deductible, band or cap to act on, so a value there is a mistake.
    for name in ("deductible", "bands", "ratios", "fund_cap", "large_amount"):
        if getattr(spec, name) is not None:
            raise check.fail(f"{path}.{name}", "fund 为 false 时必须为 null", "must be null when fund is false")
    return Scheme(
        med_type=med_type,
        med_type_code=spec.med_type_code,
        fund_enabled=False,
        deductible_basis="none",
        deductible_rules=(),
        band_accumulator=None,
        band_lower_bounds=(0,),
        ratio_rules=(),
        fund_cap=None,
        fund_cap_accumulator=None,
        large_amount_rules=(),
        large_amount_cap=None,
        large_amount_accumulator=None,
    )


def _compile_deductible(check: _Checker, spec: SchemeSpec, path: str) -> tuple[Any, tuple[DeductibleRule, ...]]:
    deductible = spec.deductible
    rules_path = f"{path}.deductible.rules"
    rules: list[DeductibleRule] = []

    if deductible is None:
        return "none", ()

    if isinstance(deductible, AnnualDeductibleSpec):
        for index, rule in enumerate(deductible.rules):
            rule_path = f"{rules_path}[{index}]"
            rules.append(
                DeductibleRule(
                    groups=check.members(rule.groups, PERSON_GROUPS, f"{rule_path}.groups", "人员类别", "person group"),
                    levels=check.members(rule.levels, HOSPITAL_LEVELS, f"{rule_path}.levels", "医院等级", "hospital level"),
                    amount=check.amount(rule.amount, f"{rule_path}.amount"),
                    # An annual deductible has no later-admission amount, so SchemeParams leaves it 0.
                    subsequent=0,
                    accumulator=check.accumulator(rule.accumulator, f"{rule_path}.accumulator"),
                )
            )
        basis = "annual"
    else:
        assert isinstance(deductible, PerAdmissionDeductibleSpec)
        counter = check.accumulator(deductible.counter, f"{path}.deductible.counter", counter=True)
        for index, rule in enumerate(deductible.rules):
            rule_path = f"{rules_path}[{index}]"
            rules.append(
                DeductibleRule(
                    groups=check.members(rule.groups, PERSON_GROUPS, f"{rule_path}.groups", "人员类别", "person group"),
                    levels=check.members(rule.levels, HOSPITAL_LEVELS, f"{rule_path}.levels", "医院等级", "hospital level"),
                    amount=check.amount(rule.first, f"{rule_path}.first"),
                    subsequent=check.amount(rule.subsequent, f"{rule_path}.subsequent"),
                    accumulator=counter,
                )
            )
        basis = "per_admission"

    if not rules:
        raise check.fail(rules_path, "至少需要一条起付线规则（无起付线时 deductible 写 null）", "at least one rule is required (write null for no deductible)")
    return basis, tuple(rules)


def _compile_critical_illness(check: _Checker, spec: CriticalIllnessSpec) -> CriticalIllness:
    path = "critical_illness"
    starts = [check.amount(band.start, f"{path}.bands[{index}].from") for index, band in enumerate(spec.bands)]
    check.ascending(starts, f"{path}.bands", start_at_zero=False)
    bands = tuple(
        Band(lower=start, ratio=check.ratio(band.ratio, f"{path}.bands[{index}].ratio"))
        for index, (start, band) in enumerate(zip(starts, spec.bands))
    )
    params = CriticalIllnessParams(
        include_preselfpay=spec.include_preselfpay,
        base_accumulator=check.accumulator(spec.base_accumulator, f"{path}.base_accumulator"),
        paid_accumulator=check.accumulator(spec.paid_accumulator, f"{path}.paid_accumulator"),
        bands=bands,
        cap=check.optional_amount(spec.cap, f"{path}.cap"),
    )
    return CriticalIllness(med_types=check.med_types(spec.schemes, f"{path}.schemes"), params=params)


def _compile_civil_servant(check: _Checker, spec: CivilServantSpec) -> CivilServant:
    path = "civil_servant"
    ratios = {}
    for med_type, raw in spec.schemes.items():
        shares_path = f"{path}.schemes.{med_type}"
        check.med_type(med_type, shares_path)
        shares = check.decode(raw, CivilServantSchemeSpec, shares_path)
        ratios[med_type] = (
            check.ratio(shares.dedc_ratio, f"{shares_path}.dedc_ratio"),
            check.ratio(shares.copay_ratio, f"{shares_path}.copay_ratio"),
        )
    return CivilServant(
        ratios=ratios,
        cap=check.optional_amount(spec.cap, f"{path}.cap"),
        accumulator=check.accumulator(spec.accumulator, f"{path}.accumulator"),
    )


def _compile_medical_assistance(check: _Checker, spec: MedicalAssistanceSpec) -> MedicalAssistance:
    path = "medical_assistance"
    ratios = {}
    for category, text in spec.ratios.items():
        if category not in MEDICAL_ASSISTANCE_TYPES:
            raise check.fail(
                f"{path}.ratios.{category}",
                f"未知的救助类别，可选：{', '.join(MEDICAL_ASSISTANCE_TYPES)}",
                f"unknown assistance category; expected one of {', '.join(MEDICAL_ASSISTANCE_TYPES)}",
            )
        ratios[category] = check.ratio(text, f"{path}.ratios.{category}")
    return MedicalAssistance(
        med_types=check.med_types(spec.schemes, f"{path}.schemes"),
        ratios=ratios,
        cap=check.optional_amount(spec.cap, f"{path}.cap"),
        accumulator=check.accumulator(spec.accumulator, f"{path}.accumulator"),
    )


def _check_fund_pay_types(check: _Checker, spec: PolicyFile, schemes: dict[str, Scheme]) -> None:
    """Check the layer-to-code map: known layers, 6-digit codes, and a code for every layer the policy can pay from."""
    for layer, code in spec.fund_pay_types.items():
        path = f"fund_pay_types.{layer}"
        if layer not in FUND_LAYERS:
            raise check.fail(path, f"未知的基金层，可选：{', '.join(FUND_LAYERS)}", f"unknown fund layer; expected one of {', '.join(FUND_LAYERS)}")
        check.match(_FUND_PAY_TYPE, code, path, "6 位基金支付类型代码", "a 6-digit fund_pay_type code")

    needed = {
        "hifp": any(scheme.fund_enabled for scheme in schemes.values()),
        "hifob": any(scheme.large_amount_rules for scheme in schemes.values()),
        "hifmi": spec.critical_illness is not None,
        "cvlserv": spec.civil_servant is not None,
        "maf": spec.medical_assistance is not None,
        # A relative's account paying through mutual aid is an account payment too.
        "acct": spec.account.has_account or spec.account.mutual_aid,
    }
    for layer, is_needed in needed.items():
        if is_needed and layer not in spec.fund_pay_types:
            raise check.fail(
                f"fund_pay_types.{layer}",
                "政策会从该基金层支付，必须给出基金支付类型代码",
                "the policy can pay from this layer, so it needs a fund_pay_type code",
            )
