"""Protocol layer of the server: envelope and input decoding, field checks, signing, output encoding."""

import decimal
import hmac
import json
import pathlib

import msgspec
import pytest

from settlement import signing
from settlement.errors import ErrorCode, SettlementError
from settlement.protocol import outputs, requests
from settlement.protocol.envelope import canonical_digest, decode_envelope
from settlement.protocol.inputs import decode_input

SAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "nhsa-samples"


def sample_input(name):
    envelope = json.loads((SAMPLES / f"{name}-request.json").read_text(encoding="utf-8"))
    return envelope["infno"], json.dumps(envelope["input"]).encode()


def settle_input(**overrides):
    data = {
        "psn_no": "PSN-1", "mdtrt_cert_type": "03", "mdtrt_cert_no": "CARD1", "med_type": "11", "medfee_sumamt": "10.00",
        "psn_setlway": "01", "mdtrt_id": "M1", "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310",
    }
    data.update(overrides)
    return decode_input("2207", json.dumps({"data": data}).encode())


def fee_line(**overrides):
    line = {
        "feedetl_sn": "L1", "mdtrt_id": "M1", "psn_no": "P1", "chrg_bchno": "B1", "fee_ocur_time": "2024-05-06 09:10:00",
        "med_list_codg": "XM0001", "medins_list_codg": "XM0001", "pric": 12.5, "cnt": 2, "det_item_fee_sumamt": 25.0,
    }
    line.update(overrides)
    return line


def read_lines(*lines, max_lines=1000):
    raw = decode_input("2204", json.dumps({"feedetail": list(lines)}).encode())
    return requests.read_fee_upload(raw, max_lines=max_lines, tolerance_fen=1)


def test_samples_decode_and_check():
    infno, raw = sample_input("2204")
    lines = requests.read_fee_upload(decode_input(infno, raw), max_lines=1000, tolerance_fen=1)
    assert [line.amount for line in lines] == [2500, 6000, 2000, 1500]

    infno, raw = sample_input("2207")
    request = requests.read_settle(decode_input(infno, raw))
    assert request.medfee_sumamt == 12000
    assert request.splits.inscp_scp_amt == 9450

    infno, raw = sample_input("2102")
    sale = requests.read_drug_sale(decode_input(infno, raw), max_lines=1000, tolerance_fen=1)
    assert sale.medfee_sumamt == 3600
    assert len(sale.lines) == 2


def test_envelope_malformed_json_is_coded():
    with pytest.raises(SettlementError) as caught:
        decode_envelope(b'{"infno": ')
    assert caught.value.code is ErrorCode.MALFORMED_JSON


def test_envelope_wrong_type_names_field():
    with pytest.raises(SettlementError) as caught:
        decode_envelope(b'{"infno": 2207}')
    assert caught.value.code is ErrorCode.WRONG_TYPE
    assert caught.value.field == "infno"


def test_input_wrong_type_names_path():
    with pytest.raises(SettlementError) as caught:
        decode_input("2204", b'{"feedetail": [{"feedetl_sn": 5}]}')
    assert caught.value.field == "input.feedetail[0].feedetl_sn"


@pytest.mark.parametrize("empty", [None, "", "absent"])
def test_required_field_empty_null_absent_alike(empty):
    data = {"psn_no": "PSN-1", "mdtrt_cert_type": "03", "mdtrt_cert_no": "C", "med_type": "11", "medfee_sumamt": "1.00",
            "psn_setlway": "01", "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    if empty != "absent":
        data["mdtrt_id"] = empty
    raw = decode_input("2207", json.dumps({"data": data}).encode())
    with pytest.raises(SettlementError) as caught:
        requests.read_settle(raw)
    assert caught.value.code is ErrorCode.REQUIRED_FIELD
    assert caught.value.field == "input.data.mdtrt_id"


def test_optional_split_amounts_empty_strings_ignored():
    request = requests.read_settle(settle_input(fulamt_ownpay_amt="", inscp_scp_amt=None))
    assert request.splits.fulamt_ownpay_amt is None
    assert request.splits.inscp_scp_amt is None


@pytest.mark.parametrize(
    "value, fen",
    [("123.40", 12340), ("123.4", 12340), ("3.680", 368), (12, 1200)],
)
def test_amount_strings_accepted_when_exact(value, fen):
    assert requests.read_settle(settle_input(medfee_sumamt=value)).medfee_sumamt == fen


def test_amount_json_number_kept_exact():
    raw = decode_input("2207", b'{"data": {"psn_no": "P", "mdtrt_cert_type": "03", "mdtrt_cert_no": "C", "med_type": "11",'
                                b' "medfee_sumamt": 123.40, "psn_setlway": "01", "mdtrt_id": "M", "chrg_bchno": "B",'
                                b' "acct_used_flag": "0", "insutype": "310"}}')
    assert requests.read_settle(raw).medfee_sumamt == 12340


@pytest.mark.parametrize("value", ["123.405", "1.234E2", " 123.40", "1,200.00", "NaN"])
def test_amount_bad_strings_rejected(value):
    with pytest.raises(SettlementError) as caught:
        requests.read_settle(settle_input(medfee_sumamt=value))
    assert caught.value.code is ErrorCode.BAD_NUMBER
    assert caught.value.field == "input.data.medfee_sumamt"


def test_json_number_over_precise_rejected():
    body = json.dumps({"data": {"medfee_sumamt": "PLACEHOLDER"}}).replace('"PLACEHOLDER"', "123.405").encode()
    raw = decode_input("2207", body)
    data = msgspec.structs.replace(settle_input().data, medfee_sumamt=raw.data.medfee_sumamt)
    with pytest.raises(SettlementError) as caught:
        requests.read_settle(msgspec.structs.replace(settle_input(), data=data))
    assert caught.value.code is ErrorCode.BAD_NUMBER


def test_invalid_code_rejected_with_table():
    with pytest.raises(SettlementError) as caught:
        requests.read_settle(settle_input(mdtrt_cert_type="-"))
    assert caught.value.code is ErrorCode.INVALID_CODE
    assert caught.value.field == "input.data.mdtrt_cert_type"


def test_line_within_one_fen_tolerance_accepted():
    (line,) = read_lines(fee_line(pric=0.3333, cnt=300, det_item_fee_sumamt=100.00))
    assert line.amount == 10000


def test_line_amount_mismatch_rejected():
    with pytest.raises(SettlementError) as caught:
        read_lines(fee_line(pric=0.3333, cnt=3000, det_item_fee_sumamt=1000.00))
    assert caught.value.code is ErrorCode.LINE_AMOUNT_MISMATCH
    assert "999.90" in caught.value.message_zh


def test_negative_price_rejected_before_amount():
    with pytest.raises(SettlementError) as caught:
        read_lines(fee_line(pric=-5.0, cnt=2, det_item_fee_sumamt=-10.0, init_feedetl_sn="L0"))
    assert caught.value.code is ErrorCode.NEGATIVE_PRICE


def test_refund_line_needs_original():
    with pytest.raises(SettlementError) as caught:
        read_lines(fee_line(cnt=-1, pric=5.0, det_item_fee_sumamt=-5.0))
    assert caught.value.field == "input.feedetail[0].init_feedetl_sn"


def test_too_many_lines_rejected():
    lines = [fee_line(feedetl_sn=f"L{i}") for i in range(3)]
    with pytest.raises(SettlementError) as caught:
        read_lines(*lines, max_lines=2)
    assert caught.value.code is ErrorCode.TOO_MANY_LINES


def test_duplicate_serial_in_one_upload_rejected():
    with pytest.raises(SettlementError) as caught:
        read_lines(fee_line(), fee_line())
    assert caught.value.code is ErrorCode.DUPLICATE_FEEDETL_SN


def test_digest_ignores_key_order_and_spacing():
    first = canonical_digest("2207", b'{"data": {"a": 1.50, "b": "x"}}')
    second = canonical_digest("2207", b'{"data":{"b":"x","a":1.50}}')
    assert first == second
    assert first != canonical_digest("2206", b'{"data":{"b":"x","a":1.50}}')


def test_outputs_encode_amounts_exactly():
    encoded = outputs.encode_output({"a": outputs.yuan(-5), "b": outputs.yuan(12340), "r": outputs.ratio(7000)})
    assert encoded == b'{"a":-0.05,"b":123.40,"r":0.7000}'


def test_sign_sha256_matches_hmac():
    expected = hmac.new(b"secret", b"1700000000nonce" + b"{}", "sha256").hexdigest()
    assert signing.sign(b"secret", "1700000000", "nonce", b"{}") == expected


def test_sign_sm3_pure_python_matches_default():
    body = b'{"infno":"9001"}'
    pure = hmac.new(b"secret", b"1nonce" + body, signing._GmsslSm3).hexdigest()
    assert signing.sign(b"secret", "1", "nonce", body, "HMAC-SM3") == pure


def test_signature_mismatch_detected():
    good = signing.sign(b"secret", "1", "n", b"body")
    assert signing.signature_matches(b"secret", "1", "n", b"body", good, "HMAC-SHA256")
    assert not signing.signature_matches(b"secret", "1", "n", b"body2", good, "HMAC-SHA256")


def test_decimal_input_never_float():
    raw = decode_input("2204", json.dumps({"feedetail": [fee_line()]}).encode())
    assert isinstance(raw.feedetail[0].pric, decimal.Decimal)
