"""The request and response envelopes shared by every transaction.

The request's ``input`` node is kept as raw JSON so that it can be decoded with the
Struct of the transaction named by ``infno``, and so that a retried message can be
compared with the first one by content.
"""

from __future__ import annotations

import decimal
import hashlib

import msgspec

from settlement.errors import ErrorCode, SettlementError

__all__ = [
    "RequestEnvelope",
    "ResponseEnvelope",
    "decode_envelope",
    "canonical_digest",
    "validation_error",
]


class RequestEnvelope(msgspec.Struct):
    """Top level of every request. Every field is optional in shape; requiredness is checked later."""

    infno: str | None = None
    msgid: str | None = None
    mdtrtarea_admvs: str | None = None
    insuplc_admdvs: str | None = None
    recer_sys_code: str | None = None
    dev_no: str | None = None
    dev_safe_info: str | None = None
    cainfo: str | None = None
    signtype: str | None = None
    infver: str | None = None
    opter_type: str | None = None
    opter: str | None = None
    opter_name: str | None = None
    inf_time: str | None = None
    fixmedins_code: str | None = None
    fixmedins_name: str | None = None
    sign_no: str | None = None
    fixmedins_soft_fcty: str | None = None
    enc_type: str | None = None
    input: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class ResponseEnvelope(msgspec.Struct, omit_defaults=True):
    """Top level of every response; ``infcode`` is 0 on success and -1 on failure.

    ``err_code`` (the numeric code of a failure, also at the start of ``err_msg``) is an
    extension that clients ignore; it is left out on success.
    """

    infcode: int
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    err_msg: str | None
    warn_msg: str | None
    enctype: str
    signtype: str
    cainfo: str
    output: msgspec.Raw | None = None
    err_code: int | None = None


_ENVELOPE_DECODER = msgspec.json.Decoder(RequestEnvelope)
_ANY_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)
_SORTED_ENCODER = msgspec.json.Encoder(order="sorted", decimal_format="string")


def validation_error(exc: msgspec.ValidationError, prefix: str) -> SettlementError:
    """Turn a msgspec validation error into a coded error whose field path starts at ``prefix``.

    msgspec reports ``Expected `str | null`, got `int` - at `$.data.psn_no```; the path
    after ``$`` is joined to ``prefix`` so that the client sees ``input.data.psn_no``.
    """
    reason, _, where = str(exc).partition(" - at `")
    field = join_path(prefix, where.rstrip("`").removeprefix("$").removeprefix("."))
    if reason.startswith("Object missing required field"):
        missing = reason.rpartition("`")[0].rpartition("`")[2]
        return SettlementError(ErrorCode.REQUIRED_FIELD, field=join_path(field, missing))
    if reason.startswith("Expected `"):
        expected, _, got = reason[len("Expected `"):].partition("`, got `")
        return SettlementError(
            ErrorCode.WRONG_TYPE,
            field=field or "$",
            value=_JSON_TYPE_NAMES.get(got.rstrip("`"), got.rstrip("`")),
            detail=_JSON_TYPE_NAMES.get(expected, expected),
        )
    return SettlementError(ErrorCode.INVALID_FIELD, field=field or "$", detail=reason)


# msgspec names JSON types after Python ones; clients know the JSON names.
_JSON_TYPE_NAMES = {
    "str": "string",
    "str | null": "string",
    "int": "number",
    "float": "number",
    "object": "object",
    "array": "array",
    "bool": "boolean",
    "null": "null",
}


def join_path(prefix: str, name: str) -> str:
    """Join two parts of a field path, ``input`` + ``data.psn_no`` -> ``input.data.psn_no``."""
    if not prefix:
        return name
    if not name:
        return prefix
    if name.startswith("["):
        return prefix + name
    return f"{prefix}.{name}"


def decode_envelope(body: bytes) -> RequestEnvelope:
    """Decode the envelope; raise MALFORMED_JSON for bad JSON and INVALID_FIELD for wrong types."""
    try:
        return _ENVELOPE_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "") from None
    except msgspec.DecodeError as exc:
        raise SettlementError(ErrorCode.MALFORMED_JSON, detail=_translate_decode(str(exc)), detail_en=str(exc)) from None


def _translate_decode(reason: str) -> str:
    if reason.startswith("JSON is malformed"):
        return "JSON 格式错误（" + reason + "）"
    if reason.startswith("Input data was truncated"):
        return "JSON 不完整（" + reason + "）"
    return reason


def canonical_digest(infno: str, raw_input: bytes | None) -> str:
    """Return a digest of the transaction and its input that ignores key order and spacing.

    Two messages with the same ``infno`` and the same ``input`` values have the same digest,
    so a retried msgid can be distinguished from a msgid reused for other content.
    """
    value = _ANY_DECODER.decode(raw_input) if raw_input else None
    digest = hashlib.sha256(infno.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(_SORTED_ENCODER.encode(value))
    return digest.hexdigest()
