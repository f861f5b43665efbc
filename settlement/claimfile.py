"""Read claim vector files (one worked claim with its expected results) into engine inputs.

A claim vector is a JSON file with ``operation`` ``settle``, ``cancel`` or
``refund_partial``, documented in ``rules/README.md``. Reading one resolves its
``policy_ref`` (``"policy-bj-employee-2024.json"``) to a policy of the ``RuleSet``
(``bj-employee-2024``), derives the person group, checks every line against the
catalogue in force on the settlement date, and parses every number exactly.

Errors name the file and the JSON path. ``CLAIM_FILE_INVALID`` carries the file as its
value and the path as its field. Every other code (``BAD_NUMBER``,
``UNKNOWN_CATALOG_CODE``...) carries ``file:path`` as its field.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from settlement import money
from settlement.catalog import CatalogEntry
from settlement.errors import ErrorCode, SettlementError
from settlement.policy.groups import person_group
from settlement.policy.loader import RuleSet
from settlement.policy.schema import split_validation_error
from settlement.policy.model import Policy
from settlement.types import ACCUMULATOR_KEYS, MED_TYPE_CODES, SETTLEMENT_OUTPUT_FIELDS, ChargeClass, ClaimInput, FeeLine

__all__ = ["ClaimFile", "SettleCase", "read_claim_file", "resolve_policy_ref"]

_CLASSES = {"A": (ChargeClass.A, "01"), "B": (ChargeClass.B, "02"), "C": (ChargeClass.C, "03")}
_FLAGS = {"0": False, "1": True}

# Ages above this are a typing error, not a person.
_MAX_AGE = 150


# ---------------------------------------------------------------------------
# File shape, checked by msgspec before any value is read.


class _Spec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class _LineSpec(_Spec, rename={"charge_class": "class"}):
    seq: int
    code: str
    charge_class: str
    pric: Any
    cnt: Any
    name: str = ""
    chrgitm_lv: str | None = None
    selfpay_prop: Any = None
    pric_uplmt_amt: Any = None


class _VisitSpec(_Spec):
    med_type: str
    hosp_lv: str
    acct_used_flag: str
    setl_date: datetime.date
    med_type_code: str | None = None


class _PersonSpec(_Spec):
    psn_type: str | None = None
    age: int | None = None
    cvlserv_flag: str = "0"
    maf_type: str | None = None
    psn_name: str = ""


class _FamilyAccountSpec(_Spec):
    balc: Any
    relation: str = ""
    psn_name: str = ""
    insutype: str = ""


class _ExpectedSpec(_Spec):
    outputs: dict[str, Any] | None = None
    reversal_outputs: dict[str, Any] | None = None
    resettle_outputs: dict[str, Any] | None = None
    accumulators_after: dict[str, Any] | None = None
    family_account_balc_after: Any = None


class _SettleSpec(_Spec):
    visit: _VisitSpec
    person: _PersonSpec
    accumulators_before: dict[str, Any]
    lines: list[_LineSpec]
    line_count: int | None = None
    family_account: _FamilyAccountSpec | None = None
    expected: _ExpectedSpec | None = None
    steps: list[str] = []


class _VectorSpec(_Spec):
    policy_ref: str
    operation: Literal["settle", "cancel", "refund_partial"]
    example_id: str = ""
    title: str = ""
    covers: list[str] = []
    steps: list[str] = []
    visit: _VisitSpec | None = None
    person: _PersonSpec | None = None
    accumulators_before: dict[str, Any] | None = None
    line_count: int | None = None
    lines: list[_LineSpec] | None = None
    family_account: _FamilyAccountSpec | None = None
    original: _SettleSpec | None = None
    refund_seqs: list[int] | None = None
    expected: _ExpectedSpec | None = None


# ---------------------------------------------------------------------------
# What a reader returns.


class SettleCase(msgspec.Struct, frozen=True):
    """One claim to settle, with its expected results when the file gives them.

    ``accumulator_keys`` are the keys the file lists in ``accumulators_before``, and a
    check compares exactly those.
    """

    claim: ClaimInput
    setl_date: datetime.date
    group: str
    accumulator_keys: tuple[str, ...]
    expected_outputs: dict[str, int] | None
    expected_accumulators_after: dict[str, int] | None
    expected_family_account_balc_after: int | None


class ClaimFile(msgspec.Struct, frozen=True):
    """A claim vector read and checked.

    For ``settle``, ``case`` is the claim and the expected values are on it. For
    ``cancel`` and ``refund_partial``, ``case`` is the original settlement (its own
    expected values are what must be reproduced before reversing it),
    ``accumulators_before`` is the state just before the cancel, and ``expected_outputs``
    contains ``outputs`` (cancel) or ``reversal_outputs`` and ``resettle_outputs`` (refund).
    """

    path: str
    example_id: str
    title: str
    operation: Literal["settle", "cancel", "refund_partial"]
    policy_id: str
    case: SettleCase
    accumulators_before: dict[str, int] | None
    refund_feedetl_sns: tuple[str, ...]
    expected_outputs: dict[str, dict[str, int]]
    expected_accumulators_after: dict[str, int] | None
    expected_family_account_balc_after: int | None


# ---------------------------------------------------------------------------
# Reading.


def read_claim_file(path: str | Path, rules: RuleSet) -> ClaimFile:
    """Read the claim vector at ``path``, resolving its policy and catalogue codes in ``rules``."""
    # Errors name the file by its base name: messages cut long values short, and the
    # caller already knows the directory it passed.
    reader = _Reader(Path(path).name)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise reader.invalid("$", f"无法读取：{error.strerror}", f"cannot be read: {error.strerror}") from error
    try:
        raw = money.decode_json(data)
    except msgspec.DecodeError as error:
        raise reader.invalid("(JSON)", f"不是合法的 JSON：{error}", f"not valid JSON: {error}") from error
    try:
        spec = msgspec.convert(raw, _VectorSpec)
    except msgspec.ValidationError as error:
        if isinstance(raw, dict) and "policy_id" in raw and "schemes" in raw:
            raise reader.invalid(
                "$",
                "这是政策文件，不是结算样例；政策应放在规则目录中（--rules DIR）",
                "this is a policy file, not a claim vector; policies belong in the rules folder (--rules DIR)",
            ) from error
        field, reason = split_validation_error(str(error))
        raise reader.invalid(field, f"字段不符合结算样例格式：{reason}", reason) from error

    return reader.read(spec, rules, str(path))


def resolve_policy_ref(ref: str, rules: RuleSet) -> str:
    """Return the policy id a ``policy_ref`` names.

    A ref is a policy id or a policy file name, so ``policy-<id>.json`` and ``<id>.json``
    both name ``<id>``. Raises ``KeyError`` when ``rules`` has no such policy.
    """
    name = ref.rsplit("/", 1)[-1]
    candidates = [name, name.removesuffix(".json")]
    candidates.append(candidates[-1].removeprefix("policy-"))
    known = set(rules.policy_ids())
    for candidate in candidates:
        if candidate in known:
            return candidate
    raise KeyError(ref)


class _Reader:
    """Turns a decoded vector into engine inputs, raising errors that name this file."""

    def __init__(self, file: str) -> None:
        self.file = file

    def invalid(self, path: str, detail_zh: str, detail_en: str) -> SettlementError:
        return SettlementError(ErrorCode.CLAIM_FILE_INVALID, field=path, value=self.file, detail=detail_zh, detail_en=detail_en)

    def at(self, path: str) -> str:
        """Return the field name used by errors of other codes: ``file:path``."""
        return f"{self.file}:{path}"

    def read(self, spec: _VectorSpec, rules: RuleSet, path: str) -> ClaimFile:
        try:
            policy_id = resolve_policy_ref(spec.policy_ref, rules)
        except KeyError:
            raise self.invalid(
                "policy_ref",
                f"规则中没有政策 {spec.policy_ref!r}，已有：{', '.join(rules.policy_ids())}",
                f"no policy {spec.policy_ref!r} in the rules; known: {', '.join(rules.policy_ids())}",
            ) from None

        expected = spec.expected
        if spec.operation == "settle":
            block = self._top_level_block(spec)
            case = self.settle_case(block, "", rules, policy_id)
            return ClaimFile(
                path=path,
                example_id=spec.example_id,
                title=spec.title,
                operation="settle",
                policy_id=policy_id,
                case=case,
                accumulators_before=None,
                refund_feedetl_sns=(),
                expected_outputs={} if case.expected_outputs is None else {"outputs": case.expected_outputs},
                expected_accumulators_after=case.expected_accumulators_after,
                expected_family_account_balc_after=case.expected_family_account_balc_after,
            )

        if spec.original is None:
            raise self.invalid("original", f"{spec.operation} 需要 original（原结算）", f"{spec.operation} needs the original settlement")
        if spec.accumulators_before is None:
            raise self.invalid("accumulators_before", "撤销前的累计值缺失", "the accumulators just before the cancel are missing")
        for name in ("visit", "person", "lines", "line_count", "family_account"):
            if getattr(spec, name) is not None:
                raise self.invalid(name, f"{spec.operation} 文件的 {name} 应放在 original 中", f"in a {spec.operation} file, {name} belongs inside original")

        case = self.settle_case(spec.original, "original.", rules, policy_id)
        accumulators_before = self.accumulators(spec.accumulators_before, "accumulators_before")

        refund_sns: tuple[str, ...] = ()
        output_names = ("outputs",)
        if spec.operation == "refund_partial":
            refund_sns = self.refund_sns(spec.refund_seqs, case.claim)
            output_names = ("reversal_outputs", "resettle_outputs")
        elif spec.refund_seqs is not None:
            raise self.invalid("refund_seqs", "只有 refund_partial 可以给出退费明细", "only refund_partial takes refund_seqs")

        expected_outputs: dict[str, dict[str, int]] = {}
        expected_after = None
        if expected is not None:
            for name in output_names:
                raw_outputs = getattr(expected, name)
                if raw_outputs is not None:
                    expected_outputs[name] = self.outputs(raw_outputs, f"expected.{name}")
            expected_after = self.expected_accumulators(expected, tuple(spec.accumulators_before), "expected")

        return ClaimFile(
            path=path,
            example_id=spec.example_id,
            title=spec.title,
            operation=spec.operation,
            policy_id=policy_id,
            case=case,
            accumulators_before=accumulators_before,
            refund_feedetl_sns=refund_sns,
            expected_outputs=expected_outputs,
            expected_accumulators_after=expected_after,
            expected_family_account_balc_after=None,
        )

    def _top_level_block(self, spec: _VectorSpec) -> _SettleSpec:
        """Gather the settle fields of the file's top level into one block."""
        for name in ("visit", "person", "accumulators_before", "lines"):
            if getattr(spec, name) is None:
                raise self.invalid(name, "settle 文件缺少该字段", "missing in a settle file")
        if spec.original is not None or spec.refund_seqs is not None:
            raise self.invalid("original", "settle 文件不能有 original 或 refund_seqs", "a settle file has no original or refund_seqs")
        assert spec.visit is not None and spec.person is not None
        assert spec.accumulators_before is not None and spec.lines is not None
        return _SettleSpec(
            visit=spec.visit,
            person=spec.person,
            accumulators_before=spec.accumulators_before,
            lines=spec.lines,
            line_count=spec.line_count,
            family_account=spec.family_account,
            expected=spec.expected,
        )

    def settle_case(self, block: _SettleSpec, prefix: str, rules: RuleSet, policy_id: str) -> SettleCase:
        """Build the ``ClaimInput`` of one settle block whose JSON path is ``prefix`` (``original.`` or empty)."""
        visit, person = block.visit, block.person
        setl_date = visit.setl_date

        try:
            policy = rules.policy(policy_id, setl_date)
        except SettlementError as error:
            raise self.invalid(f"{prefix}visit.setl_date", error.message_zh, error.message_en) from error

        if visit.med_type_code is not None and MED_TYPE_CODES.get(visit.med_type) not in (None, visit.med_type_code):
            raise self.invalid(
                f"{prefix}visit.med_type_code",
                f"{visit.med_type} 的国家代码是 {MED_TYPE_CODES[visit.med_type]}",
                f"the national code of {visit.med_type} is {MED_TYPE_CODES[visit.med_type]}",
            )
        acct_used = self.flag(visit.acct_used_flag, f"{prefix}visit.acct_used_flag")
        cvlserv = self.flag(person.cvlserv_flag, f"{prefix}person.cvlserv_flag")
        if person.age is not None and not 0 <= person.age <= _MAX_AGE:
            raise self.invalid(f"{prefix}person.age", f"年龄 {person.age} 不在 0 到 {_MAX_AGE} 之间", f"age {person.age} is not between 0 and {_MAX_AGE}")
        try:
            group = person_group(person.psn_type, person.age, field=self.at(f"{prefix}person.psn_type"))
        except SettlementError as error:
            if error.code is not ErrorCode.REQUIRED_FIELD:
                raise
            # The only required field person_group can miss is the age of a retiree.
            raise SettlementError(ErrorCode.REQUIRED_FIELD, field=self.at(f"{prefix}person.age"), detail=error.detail) from error

        lines = self.lines(block, prefix, policy, rules, setl_date)

        params = policy.resolve(visit.med_type, group, visit.hosp_lv, cvlserv, person.maf_type)

        accumulators = self.accumulators(block.accumulators_before, f"{prefix}accumulators_before")
        if "family_acct_balc" in accumulators:
            raise self.invalid(
                f"{prefix}accumulators_before.family_acct_balc",
                "亲属账户余额请写在 family_account.balc",
                "give a relative's account balance in family_account.balc",
            )
        has_family_account = block.family_account is not None
        if block.family_account is not None:
            accumulators["family_acct_balc"] = money.parse_amount(block.family_account.balc, self.at(f"{prefix}family_account.balc"))

        expected_outputs = expected_after = family_after = None
        if block.expected is not None:
            expected = block.expected
            if expected.outputs is not None:
                expected_outputs = self.outputs(expected.outputs, f"{prefix}expected.outputs")
            expected_after = self.expected_accumulators(expected, tuple(block.accumulators_before), f"{prefix}expected")
            if expected.family_account_balc_after is not None:
                family_after = money.parse_amount(
                    expected.family_account_balc_after, self.at(f"{prefix}expected.family_account_balc_after")
                )

        claim = ClaimInput(
            params=params,
            lines=lines,
            accumulators=accumulators,
            acct_used=acct_used,
            has_family_account=has_family_account,
        )
        return SettleCase(
            claim=claim,
            setl_date=setl_date,
            group=group,
            accumulator_keys=tuple(block.accumulators_before),
            expected_outputs=expected_outputs,
            expected_accumulators_after=expected_after,
            expected_family_account_balc_after=family_after,
        )

    def lines(self, block: _SettleSpec, prefix: str, policy: Policy, rules: RuleSet, setl_date: datetime.date) -> tuple[FeeLine, ...]:
        count = len(block.lines)
        # Checked before any line is parsed, so an oversized file costs nothing more.
        if count > policy.max_lines:
            raise SettlementError(ErrorCode.TOO_MANY_LINES, field=self.at(f"{prefix}lines"), value=count, detail=str(policy.max_lines))
        if block.line_count is not None and block.line_count != count:
            raise self.invalid(f"{prefix}line_count", f"为 {block.line_count}，但 lines 有 {count} 条", f"is {block.line_count} but lines has {count}")

        seen: set[int] = set()
        lines = []
        for index, raw in enumerate(block.lines):
            path = f"{prefix}lines[{index}]"
            if raw.seq in seen:
                raise self.invalid(f"{path}.seq", f"序号 {raw.seq} 重复", f"seq {raw.seq} is repeated")
            seen.add(raw.seq)
            lines.append(self.line(raw, path, rules, setl_date))
        return tuple(lines)

    def line(self, raw: _LineSpec, path: str, rules: RuleSet, setl_date: datetime.date) -> FeeLine:
        if raw.charge_class not in _CLASSES:
            raise self.invalid(f"{path}.class", f"{raw.charge_class!r} 不是 A、B 或 C", f"{raw.charge_class!r} is not A, B or C")
        charge_class, class_code = _CLASSES[raw.charge_class]
        if raw.chrgitm_lv is not None and raw.chrgitm_lv != class_code:
            raise self.invalid(f"{path}.chrgitm_lv", f"{raw.chrgitm_lv!r} 与 class {raw.charge_class} 不符", f"{raw.chrgitm_lv!r} does not match class {raw.charge_class}")

        price = money.parse_price(raw.pric, self.at(f"{path}.pric"))
        quantity = money.parse_quantity(raw.cnt, self.at(f"{path}.cnt"))
        # Kept as written even for class C, which is fully self-paid whatever ratio it carries.
        selfpay = 0 if raw.selfpay_prop is None else money.parse_ratio(raw.selfpay_prop, self.at(f"{path}.selfpay_prop"))
        if charge_class is ChargeClass.A and selfpay != 0:
            raise self.invalid(f"{path}.selfpay_prop", "甲类项目的先行自付比例必须为 0", "a class A item must have a first self-pay ratio of 0")
        cap = None if raw.pric_uplmt_amt is None else money.parse_price(raw.pric_uplmt_amt, self.at(f"{path}.pric_uplmt_amt"))

        entry = rules.catalog.lookup(raw.code, setl_date, field=self.at(f"{path}.code"))
        self.check_against_catalog(entry, charge_class, selfpay, cap, path)

        return FeeLine(
            feedetl_sn=str(raw.seq),
            med_list_codg=raw.code,
            charge_class=charge_class,
            price_micro=price,
            quantity=quantity,
            selfpay_prop=selfpay,
            price_cap_micro=cap,
        )

    def check_against_catalog(self, entry: CatalogEntry, charge_class: ChargeClass, selfpay: int, cap: int | None, path: str) -> None:
        """Reject a line whose class, first self-pay ratio or price cap differs from the catalogue version in force."""
        if entry.charge_class is not charge_class:
            raise self.invalid(
                f"{path}.class",
                f"目录 {entry.source} 中为 {entry.charge_class.name} 类",
                f"the catalogue ({entry.source}) has class {entry.charge_class.name}",
            )
        if charge_class is not ChargeClass.C and entry.selfpay_prop != selfpay:
            raise self.invalid(
                f"{path}.selfpay_prop",
                f"目录 {entry.source} 中为 {money.format_ratio(entry.selfpay_prop)}",
                f"the catalogue ({entry.source}) has {money.format_ratio(entry.selfpay_prop)}",
            )
        if entry.price_cap_micro != cap:
            in_catalog = "无" if entry.price_cap_micro is None else money.format_price(entry.price_cap_micro)
            in_catalog_en = "none" if entry.price_cap_micro is None else money.format_price(entry.price_cap_micro)
            raise self.invalid(
                f"{path}.pric_uplmt_amt",
                f"目录 {entry.source} 中的限价为 {in_catalog}",
                f"the catalogue ({entry.source}) has price cap {in_catalog_en}",
            )

    def flag(self, text: str, path: str) -> bool:
        if text not in _FLAGS:
            raise self.invalid(path, f"{text!r} 不是 \"0\" 或 \"1\"", f"{text!r} is not \"0\" or \"1\"")
        return _FLAGS[text]

    def accumulators(self, raw: dict[str, Any], path: str) -> dict[str, int]:
        """Parse accumulators: keys ending in ``_count`` are JSON integers, the rest money strings."""
        values = {}
        for key, value in raw.items():
            key_path = f"{path}.{key}"
            if key not in ACCUMULATOR_KEYS:
                raise self.invalid(key_path, f"未知的累计项，可选：{', '.join(ACCUMULATOR_KEYS)}", f"unknown accumulator; expected one of {', '.join(ACCUMULATOR_KEYS)}")
            if key.endswith("_count"):
                values[key] = money.parse_count(value, self.at(key_path))
            else:
                values[key] = money.parse_amount(value, self.at(key_path))
        return values

    def expected_accumulators(self, expected: _ExpectedSpec, keys_before: tuple[str, ...], path: str) -> dict[str, int] | None:
        """Parse ``accumulators_after``, which must list exactly the keys listed before the claim."""
        if expected.accumulators_after is None:
            return None
        after_path = f"{path}.accumulators_after"
        if set(expected.accumulators_after) != set(keys_before):
            missing = sorted(set(keys_before) - set(expected.accumulators_after))
            extra = sorted(set(expected.accumulators_after) - set(keys_before))
            raise self.invalid(
                after_path,
                f"必须列出与 accumulators_before 相同的键（缺少 {missing}，多出 {extra}）",
                f"must list the same keys as accumulators_before (missing {missing}, extra {extra})",
            )
        return self.accumulators(expected.accumulators_after, after_path)

    def outputs(self, raw: dict[str, Any], path: str) -> dict[str, int]:
        values = {}
        for key, value in raw.items():
            if key not in SETTLEMENT_OUTPUT_FIELDS:
                raise self.invalid(f"{path}.{key}", "不是结算输出字段", "is not a settlement output field")
            # Reversal records carry negative amounts, so signs are allowed in expected outputs.
            values[key] = money.parse_amount(value, self.at(f"{path}.{key}"), allow_negative=True)
        return values

    def refund_sns(self, seqs: list[int] | None, original: ClaimInput) -> tuple[str, ...]:
        if not seqs:
            raise self.invalid("refund_seqs", "refund_partial 需要至少一条退费明细序号", "refund_partial needs at least one line seq")
        known = {line.feedetl_sn for line in original.lines}
        sns = []
        for index, seq in enumerate(seqs):
            if str(seq) not in known:
                raise self.invalid(f"refund_seqs[{index}]", f"原结算没有序号 {seq} 的明细", f"the original has no line with seq {seq}")
            sns.append(str(seq))
        return tuple(sns)
