"""Exact parsing and formatting of money, prices, quantities and ratios."""

from __future__ import annotations

import decimal

import pytest

from settlement import money
from settlement.errors import ErrorCode, SettlementError
from settlement.money import (
    decode_json,
    format_amount,
    format_price,
    format_quantity,
    format_ratio,
    parse_amount,
    parse_count,
    parse_price,
    parse_quantity,
    parse_ratio,
    round_half_away,
)

ACCEPTED_AMOUNTS = [
    ("12.34", 1234),
    ("0", 0),
    ("0.5", 50),
    ("1.230", 123),
    ("1.2300000", 123),
    ("007.50", 750),
    ("-0.00", 0),
    (12, 1200),
    (0, 0),
    (decimal.Decimal("12.34"), 1234),
    (decimal.Decimal("1.230"), 123),
    ("99999999999999.99", 10**16 - 1),
]


@pytest.mark.parametrize(("value", "fen"), ACCEPTED_AMOUNTS, ids=[repr(case[0]) for case in ACCEPTED_AMOUNTS])
def test_parse_amount_accepts_exact_decimals(value, fen):
    assert parse_amount(value, "medfee_sumamt") == fen


REJECTED_AMOUNTS = [
    ("1.234", ErrorCode.BAD_NUMBER, "decimal places"),
    ("1.2301", ErrorCode.BAD_NUMBER, "decimal places"),
    ("1e3", ErrorCode.BAD_NUMBER, "exponent"),
    ("1.234E2", ErrorCode.BAD_NUMBER, "exponent"),
    ("1,200.00", ErrorCode.BAD_NUMBER, "thousands separator"),
    ("1_200", ErrorCode.BAD_NUMBER, "thousands separator"),
    ("NaN", ErrorCode.BAD_NUMBER, "NaN"),
    ("Infinity", ErrorCode.BAD_NUMBER, "NaN"),
    ("-inf", ErrorCode.BAD_NUMBER, "NaN"),
    ("+1.00", ErrorCode.BAD_NUMBER, "'+'"),
    (" 123.40", ErrorCode.BAD_NUMBER, "space"),
    ("123.40 ", ErrorCode.BAD_NUMBER, "space"),
    ("12 3", ErrorCode.BAD_NUMBER, "space"),
    ("", ErrorCode.BAD_NUMBER, "empty"),
    (".5", ErrorCode.BAD_NUMBER, "plain decimal"),
    ("5.", ErrorCode.BAD_NUMBER, "plain decimal"),
    ("1.2.3", ErrorCode.BAD_NUMBER, "plain decimal"),
    ("１２", ErrorCode.BAD_NUMBER, "plain decimal"),
    ("0x10", ErrorCode.BAD_NUMBER, "plain decimal"),
    ("1" * 41, ErrorCode.BAD_NUMBER, "longer than"),
    (1.5, ErrorCode.BAD_NUMBER, "float"),
    (True, ErrorCode.BAD_NUMBER, "boolean"),
    ([1], ErrorCode.BAD_NUMBER, "type list"),
    (decimal.Decimal("NaN"), ErrorCode.BAD_NUMBER, "NaN"),
    (decimal.Decimal("1E+3"), ErrorCode.BAD_NUMBER, "exponent"),
    (decimal.Decimal("0.001"), ErrorCode.BAD_NUMBER, "decimal places"),
    (None, ErrorCode.REQUIRED_FIELD, ""),
    ("-0.01", ErrorCode.NEGATIVE_AMOUNT, ""),
    (-1, ErrorCode.NEGATIVE_AMOUNT, ""),
    ("100000000000000.00", ErrorCode.AMOUNT_OUT_OF_RANGE, "at most"),
]


@pytest.mark.parametrize(("value", "code", "reason"), REJECTED_AMOUNTS, ids=[repr(case[0])[:20] for case in REJECTED_AMOUNTS])
def test_parse_amount_rejects(value, code, reason):
    with pytest.raises(SettlementError) as raised:
        parse_amount(value, "medfee_sumamt")

    assert raised.value.code is code
    assert raised.value.field == "medfee_sumamt"
    assert reason in raised.value.message_en


def test_parse_amount_negative_allowed_on_request():
    assert parse_amount("-0.50", "acct_pay", allow_negative=True) == -50
    assert parse_amount(-3, "acct_pay", allow_negative=True) == -300


def test_parse_amount_negative_still_bounded():
    with pytest.raises(SettlementError) as raised:
        parse_amount("-100000000000000", "acct_pay", allow_negative=True)

    assert raised.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE


def test_error_messages_have_both_languages():
    with pytest.raises(SettlementError) as raised:
        parse_amount("123.405", "medfee_sumamt")

    assert raised.value.message("zh") == "[1001] 字段 medfee_sumamt 的数值 123.405 无效：有 3 位小数，金额最多 2 位"
    assert raised.value.message("en") == "[1001] field medfee_sumamt: invalid number 123.405: has 3 decimal places; money allows 2"


@pytest.mark.parametrize(
    ("value", "micro"),
    [("0.086000", 86_000), ("0.333333", 333_333), ("2.8", 2_800_000), ("9999999999.999999", 10**16 - 1), (3, 3_000_000)],
)
def test_parse_price_accepts_six_decimals(value, micro):
    assert parse_price(value, "pric") == micro


def test_parse_price_rejects_seven_decimals():
    with pytest.raises(SettlementError) as raised:
        parse_price("0.3333333", "pric")

    assert raised.value.code is ErrorCode.BAD_NUMBER
    assert "price allows 6" in raised.value.message_en


def test_parse_price_negative_is_negative_price():
    with pytest.raises(SettlementError) as raised:
        parse_price("-1.00", "pric")

    assert raised.value.code is ErrorCode.NEGATIVE_PRICE


def test_negative_value_echoed_in_money_form():
    with pytest.raises(SettlementError) as raised:
        parse_price(decode_json(b"-5.0"), "pric")

    assert raised.value.value == "-5.00"
    assert "-5.00" in raised.value.message("zh")


def test_parse_price_out_of_range():
    with pytest.raises(SettlementError) as raised:
        parse_price("10000000000", "pric")

    assert raised.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE


@pytest.mark.parametrize(("value", "units"), [("1", 10_000), ("233.3333", 2_333_333), ("0.5", 5_000), ("1.25000", 12_500)])
def test_parse_quantity_accepts_four_decimals(value, units):
    assert parse_quantity(value, "cnt") == units


def test_parse_quantity_rejects_five_decimals():
    with pytest.raises(SettlementError) as raised:
        parse_quantity("0.33333", "cnt")

    assert raised.value.code is ErrorCode.BAD_NUMBER
    assert "quantity allows 4" in raised.value.message_en


def test_parse_quantity_zero_rejected_unless_allowed():
    with pytest.raises(SettlementError) as raised:
        parse_quantity("0.0000", "cnt")

    assert raised.value.code is ErrorCode.ZERO_QUANTITY
    assert parse_quantity("0", "cnt", allow_zero=True) == 0


def test_parse_quantity_negative_only_for_refunds():
    with pytest.raises(SettlementError) as raised:
        parse_quantity("-1", "cnt")

    assert raised.value.code is ErrorCode.NEGATIVE_AMOUNT
    assert parse_quantity("-1", "cnt", allow_negative=True) == -10_000


@pytest.mark.parametrize(("value", "units"), [("0.7", 7000), ("0.9220", 9220), ("1.0000", 10_000), ("0", 0), (1, 10_000)])
def test_parse_ratio_accepts_shares(value, units):
    assert parse_ratio(value, "selfpay_prop") == units


@pytest.mark.parametrize(
    ("value", "code"),
    [("0.12345", ErrorCode.BAD_NUMBER), ("1.0001", ErrorCode.AMOUNT_OUT_OF_RANGE), ("1.5", ErrorCode.AMOUNT_OUT_OF_RANGE), ("-0.1", ErrorCode.NEGATIVE_AMOUNT), (2, ErrorCode.AMOUNT_OUT_OF_RANGE)],
)
def test_parse_ratio_rejects(value, code):
    with pytest.raises(SettlementError) as raised:
        parse_ratio(value, "selfpay_prop")

    assert raised.value.code is code


def test_parse_count_accepts_only_integers():
    assert parse_count(3, "ip_admission_count") == 3

    for value, code in [("3", ErrorCode.BAD_NUMBER), (True, ErrorCode.BAD_NUMBER), (-1, ErrorCode.NEGATIVE_AMOUNT), (1.0, ErrorCode.BAD_NUMBER)]:
        with pytest.raises(SettlementError) as raised:
            parse_count(value, "ip_admission_count")
        assert raised.value.code is code, value


def test_decode_json_keeps_numbers_exact():
    decoded = decode_json(b'{"a": 0.1, "b": 12, "c": "7.35", "d": 123.40}')

    assert parse_amount(decoded["a"], "a") == 10
    assert decoded["b"] == 12
    assert parse_amount(decoded["d"], "d") == 12340
    assert isinstance(decoded["a"], decimal.Decimal)


def test_decode_json_number_judged_by_its_text():
    decoded = decode_json(b'[1e3, 1e-2, 123.405, 1.230]')

    for value, reason in [(decoded[0], "exponent"), (decoded[1], "exponent"), (decoded[2], "decimal places")]:
        with pytest.raises(SettlementError) as raised:
            parse_amount(value, "x")
        assert reason in raised.value.message_en
        assert raised.value.code is ErrorCode.BAD_NUMBER
    assert parse_amount(decoded[3], "x") == 123


def test_json_number_and_string_give_same_value():
    as_number = decode_json(b'{"pric": 119.72}')["pric"]
    assert parse_price(as_number, "pric") == parse_price("119.72", "pric") == 119_720_000


@pytest.mark.parametrize(
    ("formatter", "units", "text"),
    [
        (format_amount, 1234, "12.34"),
        (format_amount, -50, "-0.50"),
        (format_amount, 0, "0.00"),
        (format_amount, -123456, "-1234.56"),
        (format_price, 2_800_000, "2.800000"),
        (format_price, 86_000, "0.086000"),
        (format_quantity, 12_500, "1.2500"),
        (format_ratio, 7000, "0.7000"),
        (format_ratio, 10_000, "1.0000"),
    ],
)
def test_format_fixed_point(formatter, units, text):
    assert formatter(units) == text


def test_format_round_trips_parse():
    for fen in (0, 1, 99, 100, 12345, 10**16 - 1):
        assert parse_amount(format_amount(fen), "x") == fen
        assert parse_amount(format_amount(-fen), "x", allow_negative=True) == -fen


@pytest.mark.parametrize(
    ("numerator", "denominator", "rounded"),
    [
        (5, 2, 3),
        (-5, 2, -3),
        (4, 3, 1),
        (-4, 3, -1),
        (5, 3, 2),
        (15, 10, 2),
        (14, 10, 1),
        (-15, 10, -2),
        (5, -2, -3),
        (0, 7, 0),
        (42_350, 10_000, 4),
        (4_235 * 100, 10_000, 42),
    ],
)
def test_round_half_away(numerator, denominator, rounded):
    assert round_half_away(numerator, denominator) == rounded


def test_round_half_away_zero_denominator():
    with pytest.raises(ZeroDivisionError):
        round_half_away(1, 0)


def test_scales_match_national_fields():
    assert (money.AMOUNT_SCALE, money.PRICE_SCALE, money.QUANTITY_SCALE, money.RATIO_SCALE) == (2, 6, 4, 4)
