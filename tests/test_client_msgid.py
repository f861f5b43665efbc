"""The demo and test client builds msgids in the HIS format, each client from a random first serial."""

import re

from adapters.server.client import Client


def _client() -> Client:
    return Client("127.0.0.1", 9, fixmedins_code="H99000000001", secret="not-used")


def test_msgid_follows_his_format():
    msgid = _client().new_msgid()

    assert re.fullmatch(r"H99000000001\d{14}\d{4}", msgid), msgid


def test_msgid_serial_advances_within_client():
    client = _client()
    first, second = client.new_msgid(), client.new_msgid()

    assert (int(second[-4:]) - int(first[-4:])) % 10000 == 1


def test_clients_start_at_different_serials():
    # With a fixed first serial, two demo runs started in one second send the same first msgid with different content.
    serials = {_client().new_msgid()[-4:] for _ in range(20)}

    assert len(serials) > 1, serials
