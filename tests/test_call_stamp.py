"""The request time as the interface writes it: ``yyyy-MM-dd HH:mm:ss``, as sent back in setl_time and sign_time."""

import datetime

import pytest

from adapters.server.handlers_visit import Call


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime.datetime(2024, 5, 20, 10, 0, 0), "2024-05-20 10:00:00"),
        (datetime.datetime(1999, 1, 2, 3, 4, 5), "1999-01-02 03:04:05"),
        (datetime.datetime(2026, 12, 31, 23, 59, 59), "2026-12-31 23:59:59"),
    ],
)
def test_call_stamp_format(moment, expected):
    call = Call(services=None, institution=None, envelope=None, infno="2207", msgid="M1", input=None, digest="", now=moment)

    assert call.stamp == expected
    assert call.stamp == moment.strftime("%Y-%m-%d %H:%M:%S")
