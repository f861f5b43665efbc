"""The ``input`` node of the query transactions 5201, 5203, 5204, 5205 and 5206.

As in ``inputs``, every field is optional in shape, so that a missing, ``null`` or ``""``
value reaches the readers in ``query_requests`` and is reported there with its path.
Importing this module registers the Structs with ``inputs.decode_input``.
"""

from __future__ import annotations

import msgspec

from settlement.protocol import inputs

__all__ = [
    "CumulativeQueryData",
    "CumulativeQueryInput",
    "INPUT_TYPES",
    "SettlementListData",
    "SettlementListInput",
    "SettlementQueryData",
    "SettlementQueryInput",
    "VisitQueryData",
    "VisitQueryInput",
]

Text = str | None


class VisitQueryData(msgspec.Struct):
    psn_no: Text = None
    begntime: Text = None
    endtime: Text = None
    med_type: Text = None
    mdtrt_id: Text = None


class VisitQueryInput(msgspec.Struct):
    """5201 visits of a person."""

    data: VisitQueryData | None = None


class SettlementQueryData(msgspec.Struct):
    psn_no: Text = None
    setl_id: Text = None
    mdtrt_id: Text = None


class SettlementQueryInput(msgspec.Struct):
    """5203 settlement information and 5204 its fee lines."""

    data: SettlementQueryData | None = None


class SettlementListData(msgspec.Struct):
    psn_no: Text = None
    begntime: Text = None
    endtime: Text = None


class SettlementListInput(msgspec.Struct):
    """5205 settlement records of a person."""

    data: SettlementListData | None = None


class CumulativeQueryData(msgspec.Struct):
    psn_no: Text = None
    cum_ym: Text = None
    # Clients send a year as text or as a JSON number.
    year: str | int | None = None


class CumulativeQueryInput(msgspec.Struct):
    """5206 year-to-date accumulators of a person."""

    data: CumulativeQueryData | None = None


INPUT_TYPES: dict[str, type[msgspec.Struct]] = {
    "5201": VisitQueryInput,
    "5203": SettlementQueryInput,
    "5204": SettlementQueryInput,
    "5205": SettlementListInput,
    "5206": CumulativeQueryInput,
}

inputs.register_inputs(INPUT_TYPES)
