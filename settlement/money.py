"""Exact fixed-point parsing and formatting of money, prices, quantities and ratios.

Every value becomes an integer in its field's unit and never passes through a binary
float:

=========  ==============  ======================  ================================
kind       unit            national field          largest magnitude accepted
=========  ==============  ======================  ================================
amount     0.01 yuan (fen) N(16,2)                 99999999999999.99
price      1e-6 yuan       N(16,6)                 9999999999.999999
quantity   1e-4 unit       N(16,4)                 999999999999.9999
ratio      1e-4            N(5,4)                  1.0000 (a share cannot exceed 1)
=========  ==============  ======================  ================================

Accepted inputs are ``str``, ``int`` and ``decimal.Decimal``. A string must be a plain
decimal: an optional ``-``, ASCII digits, and optionally ``.`` followed by at least one
digit. Leading zeros are accepted because the value is still unambiguous. Digits beyond
the field's decimals are accepted only when they are all zeros (``"1.230"`` is an
amount of 1.23, ``"1.234"`` is rejected), because then nothing is rounded away.

Rejected with ``BAD_NUMBER``: ``float`` and ``bool``, empty strings, spaces, a leading
``+``, exponents (``1e3``), thousands separators, NaN and Infinity, a bare ``.5`` or
``5.``, and more decimals than the field allows. Values below zero raise
``NEGATIVE_AMOUNT`` (``NEGATIVE_PRICE`` for prices) unless ``allow_negative`` is set, and
values beyond the field size raise ``AMOUNT_OUT_OF_RANGE``.

A ``decimal.Decimal`` that came from ``decode_json`` remembers the text of its JSON
literal and is judged by that text, so a JSON ``1e3`` is rejected like the string
``"1e3"``. Any other ``Decimal`` is judged by its value. One with a positive exponent
can only come from exponent notation, so it is rejected.
"""

from __future__ import annotations

import decimal
import re
from typing import Any, Final

import msgspec

from settlement.errors import ErrorCode, SettlementError

__all__ = [
    "AMOUNT_SCALE",
    "JsonDecimal",
    "PRICE_SCALE",
    "QUANTITY_SCALE",
    "RATIO_SCALE",
    "decode_json",
    "format_amount",
    "format_price",
    "format_quantity",
    "format_ratio",
    "parse_amount",
    "parse_count",
    "parse_price",
    "parse_quantity",
    "parse_ratio",
    "round_half_away",
]

# Decimal places of each kind of number, from the national field definitions.
AMOUNT_SCALE: Final = 2
PRICE_SCALE: Final = 6
QUANTITY_SCALE: Final = 4
RATIO_SCALE: Final = 4

# Largest magnitudes in the field's unit: N(16,2), N(16,6) and N(16,4) all allow 16 digits.
_MAX_AMOUNT: Final = 10**16 - 1
_MAX_PRICE: Final = 10**16 - 1
_MAX_QUANTITY: Final = 10**16 - 1
_MAX_RATIO: Final = 10**RATIO_SCALE

# Longer strings are rejected before any work, so a megabyte of digits cannot cost time.
_MAX_TEXT_CHARS: Final = 40

# [0-9] and not \d: \d would also accept full-width and other Unicode digits.
_PLAIN_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class JsonDecimal(decimal.Decimal):
    """A ``Decimal`` decoded from a JSON number literal, keeping the literal's text in ``text``."""

    __slots__ = ("text",)

    text: str

    def __new__(cls, text: str) -> JsonDecimal:
        number = super().__new__(cls, text)
        number.text = text
        return number


_JSON_DECODER = msgspec.json.Decoder(float_hook=JsonDecimal)


def decode_json(data: bytes | str) -> Any:
    """Decode JSON, turning every number with a fraction or exponent into an exact ``JsonDecimal``.

    Integers stay ``int``. Raises ``msgspec.DecodeError`` on malformed JSON.
    """
    return _JSON_DECODER.decode(data)


class _Kind:
    """Name of one kind of number in messages, with its scale and limits."""

    __slots__ = ("name_zh", "name_en", "scale", "maximum", "negative_code")

    def __init__(self, name_zh: str, name_en: str, scale: int, maximum: int, negative_code: ErrorCode) -> None:
        self.name_zh = name_zh
        self.name_en = name_en
        self.scale = scale
        self.maximum = maximum
        self.negative_code = negative_code


_AMOUNT = _Kind("金额", "money", AMOUNT_SCALE, _MAX_AMOUNT, ErrorCode.NEGATIVE_AMOUNT)
_PRICE = _Kind("单价", "price", PRICE_SCALE, _MAX_PRICE, ErrorCode.NEGATIVE_PRICE)
_QUANTITY = _Kind("数量", "quantity", QUANTITY_SCALE, _MAX_QUANTITY, ErrorCode.NEGATIVE_AMOUNT)
_RATIO = _Kind("比例", "ratio", RATIO_SCALE, _MAX_RATIO, ErrorCode.NEGATIVE_AMOUNT)


def _bad_number(field: str, value: Any, detail_zh: str, detail_en: str) -> SettlementError:
    return SettlementError(ErrorCode.BAD_NUMBER, field=field, value=value, detail=detail_zh, detail_en=detail_en)


def _diagnose_text(text: str, field: str, value: Any) -> SettlementError:
    """Build the error for a string that is not a plain decimal, naming the first problem found."""
    if text == "":
        return _bad_number(field, value, "空字符串", "empty string")
    if text != text.strip():
        return _bad_number(field, value, "前后不能有空格", "leading or trailing space")
    if any(ch.isspace() for ch in text):
        return _bad_number(field, value, "不能含空格", "contains a space")
    if text.startswith("+"):
        return _bad_number(field, value, "不接受前导 '+'", "leading '+' not accepted")
    if "," in text or "，" in text or "_" in text:
        return _bad_number(field, value, "不接受千位分隔符", "thousands separator not accepted")
    lowered = text.lower().lstrip("-")
    if lowered in ("nan", "snan", "inf", "infinity"):
        return _bad_number(field, value, "不接受 NaN 或无穷大", "NaN and Infinity not accepted")
    if "e" in lowered:
        return _bad_number(field, value, "不接受科学计数法", "exponent form not accepted")
    return _bad_number(
        field,
        value,
        "不是普通十进制数（可选 '-'、数字、可选小数点和小数位）",
        "not a plain decimal (optional '-', digits, optional '.' and digits)",
    )


def _scale_text(text: str, field: str, value: Any, kind: _Kind) -> int:
    """Convert plain decimal text to an integer count of 10**-scale units, exactly."""
    if len(text) > _MAX_TEXT_CHARS:
        raise _bad_number(field, value, f"超过 {_MAX_TEXT_CHARS} 个字符", f"longer than {_MAX_TEXT_CHARS} characters")

    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        raise _diagnose_text(text, field, value)

    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    digits_in_scale, digits_beyond_scale = fraction[: kind.scale], fraction[kind.scale :]
    if digits_beyond_scale.strip("0"):
        raise _bad_number(
            field,
            value,
            f"有 {len(fraction.rstrip('0'))} 位小数，{kind.name_zh}最多 {kind.scale} 位",
            f"has {len(fraction.rstrip('0'))} decimal places; {kind.name_en} allows {kind.scale}",
        )

    units = int(whole) * 10**kind.scale + int(digits_in_scale.ljust(kind.scale, "0"))
    return -units if sign else units


def _scale_decimal(number: decimal.Decimal, field: str, kind: _Kind) -> int:
    """Convert a ``Decimal`` that has no source text, judging it by its value."""
    if not number.is_finite():
        raise _bad_number(field, number, "不接受 NaN 或无穷大", "NaN and Infinity not accepted")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent > 0:
        raise _bad_number(field, number, "不接受科学计数法", "exponent form not accepted")

    scaled = number.scaleb(kind.scale)
    if scaled != scaled.to_integral_value():
        decimals = -number.normalize().as_tuple().exponent  # type: ignore[operator]
        raise _bad_number(
            field,
            number,
            f"有 {decimals} 位小数，{kind.name_zh}最多 {kind.scale} 位",
            f"has {decimals} decimal places; {kind.name_en} allows {kind.scale}",
        )
    return int(scaled)


def _parse(value: Any, field: str, kind: _Kind, allow_negative: bool) -> int:
    # bool is a subclass of int and float has already lost exactness, so both go first.
    if isinstance(value, bool):
        raise _bad_number(field, value, "不接受布尔值", "a boolean is not a number")
    if isinstance(value, float):
        raise _bad_number(
            field,
            value,
            "不接受二进制浮点数，请用字符串或精确十进制数",
            "binary float not accepted; send a string or an exact decimal",
        )

    if isinstance(value, JsonDecimal):
        units = _scale_text(value.text, field, value.text, kind)
    elif isinstance(value, decimal.Decimal):
        units = _scale_decimal(value, field, kind)
    elif isinstance(value, int):
        units = value * 10**kind.scale
    elif isinstance(value, str):
        units = _scale_text(value, field, value, kind)
    elif value is None:
        raise SettlementError(ErrorCode.REQUIRED_FIELD, field=field)
    else:
        raise _bad_number(field, value, f"类型 {type(value).__name__} 不是数值", f"type {type(value).__name__} is not a number")

    if units < 0 and not allow_negative:
        # Echo the value in its usual money form ("-5.00" for a JSON -5.0), so the message names the amount.
        raise SettlementError(kind.negative_code, field=field, value=_display_units(units, kind.scale))
    if abs(units) > kind.maximum:
        raise SettlementError(
            ErrorCode.AMOUNT_OUT_OF_RANGE,
            field=field,
            value=value,
            detail=f"{kind.name_zh}绝对值最大 {_format_units(kind.maximum, kind.scale)}",
            detail_en=f"{kind.name_en} magnitude is at most {_format_units(kind.maximum, kind.scale)}",
        )
    return units


def parse_amount(value: Any, field: str, *, allow_negative: bool = False) -> int:
    """Parse a money amount in yuan into integer fen."""
    return _parse(value, field, _AMOUNT, allow_negative)


def parse_price(value: Any, field: str, *, allow_negative: bool = False) -> int:
    """Parse a unit price or price cap in yuan into integer 1e-6 yuan."""
    return _parse(value, field, _PRICE, allow_negative)


def parse_quantity(value: Any, field: str, *, allow_negative: bool = False, allow_zero: bool = False) -> int:
    """Parse a quantity into integer 1e-4 units. Zero raises ``ZERO_QUANTITY`` unless ``allow_zero`` is set."""
    units = _parse(value, field, _QUANTITY, allow_negative)
    if units == 0 and not allow_zero:
        raise SettlementError(ErrorCode.ZERO_QUANTITY, field=field, value=value)
    return units


def parse_ratio(value: Any, field: str) -> int:
    """Parse a share between 0 and 1 into integer 1e-4 (``"0.7"`` gives 7000)."""
    return _parse(value, field, _RATIO, False)


def parse_count(value: Any, field: str) -> int:
    """Parse a non-negative integer counter such as an admission count. Only an ``int`` is accepted."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_number(field, value, "计数必须是非负整数", "a counter must be a non-negative integer")
    if value < 0:
        raise SettlementError(ErrorCode.NEGATIVE_AMOUNT, field=field, value=value)
    if value > _MAX_AMOUNT:
        raise SettlementError(
            ErrorCode.AMOUNT_OUT_OF_RANGE, field=field, value=value, detail=f"最大 {_MAX_AMOUNT}", detail_en=f"at most {_MAX_AMOUNT}"
        )
    return value


def _display_units(units: int, scale: int) -> str:
    """Format units with at least two decimals and no trailing zeros beyond them."""
    text = _format_units(units, scale)
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(min(2, scale), "0")
    return f"{whole}.{fraction}" if fraction else whole


def _format_units(units: int, scale: int) -> str:
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}"


def format_amount(fen: int) -> str:
    """Format fen as yuan with two decimals: ``1234`` gives ``"12.34"``, ``-50`` gives ``"-0.50"``."""
    return _format_units(fen, AMOUNT_SCALE)


def format_price(micro: int) -> str:
    """Format 1e-6 yuan with six decimals, the national price precision: ``2800000`` gives ``"2.800000"``."""
    return _format_units(micro, PRICE_SCALE)


def format_quantity(units: int) -> str:
    """Format 1e-4 units with four decimals: ``12500`` gives ``"1.2500"``."""
    return _format_units(units, QUANTITY_SCALE)


def format_ratio(units: int) -> str:
    """Format a 1e-4 ratio with four decimals: ``7000`` gives ``"0.7000"``."""
    return _format_units(units, RATIO_SCALE)


def round_half_away(numerator: int, denominator: int) -> int:
    """Divide exactly and round half away from zero (四舍五入): ``(5, 2)`` gives 3, ``(-5, 2)`` gives -3.

    Raises ``ZeroDivisionError`` when ``denominator`` is 0.
    """
    if denominator == 0:
        raise ZeroDivisionError("round_half_away: denominator is zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator

    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient
