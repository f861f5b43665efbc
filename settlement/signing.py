"""Request signatures in the style of the provincial gateways' ``x-tif-*`` headers.

A client sends its institution code in ``x-tif-paasid``, the unix time in seconds in
``x-tif-timestamp``, a random string in ``x-tif-nonce`` and, in ``x-tif-signature``,
the lowercase hex HMAC of ``timestamp + nonce + body`` keyed with the institution's
secret. The HMAC hash is SHA-256, or SM3 (GB/T 32905-2016) for institutions registered
with it. The gateways' plain-hash form (SHA-256 of timestamp + secret + nonce +
timestamp) is not accepted because it does not cover the body.

This module computes and compares signatures only; the caller checks the time window
and remembers nonces.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from gmssl import sm3 as _gmssl_sm3

__all__ = [
    "ALGORITHMS",
    "HEADER_NONCE",
    "HEADER_PAASID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_NONCE_CHARS",
    "sign",
    "signature_matches",
    "signed_headers",
]

HEADER_PAASID: Final = "x-tif-paasid"
HEADER_TIMESTAMP: Final = "x-tif-timestamp"
HEADER_NONCE: Final = "x-tif-nonce"
HEADER_SIGNATURE: Final = "x-tif-signature"

# The gateways send 32-character nonces or GUIDs; anything far longer is not a nonce.
MAX_NONCE_CHARS: Final = 64

ALGORITHMS: Final = ("HMAC-SHA256", "HMAC-SM3")


class _GmsslSm3:
    """SM3 from the pure-Python gmssl package, shaped like a hashlib object for ``hmac``.

    Used only when the linked OpenSSL has no SM3, because it is far slower.
    """

    name = "sm3"
    digest_size = 32
    block_size = 64

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytearray(data)

    def update(self, data: bytes) -> None:
        self._data += data

    def copy(self) -> _GmsslSm3:
        return _GmsslSm3(bytes(self._data))

    def digest(self) -> bytes:
        return bytes.fromhex(_gmssl_sm3.sm3_hash(list(self._data)))

    def hexdigest(self) -> str:
        return self.digest().hex()


def _sm3_constructor():
    try:
        hashlib.new("sm3")
    except ValueError:
        return _GmsslSm3
    return "sm3"


_DIGESTS = {"HMAC-SHA256": hashlib.sha256, "HMAC-SM3": _sm3_constructor()}


def sign(secret: bytes, timestamp: str, nonce: str, body: bytes, algorithm: str = "HMAC-SHA256") -> str:
    """Return the lowercase hex signature of ``timestamp + nonce + body``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + nonce.encode("ascii"), _DIGESTS[algorithm])
    mac.update(body)
    return mac.hexdigest()


def signature_matches(secret: bytes, timestamp: str, nonce: str, body: bytes, signature: str, algorithm: str) -> bool:
    """Compare a received signature with the expected one in constant time."""
    expected = sign(secret, timestamp, nonce, body, algorithm)
    return hmac.compare_digest(expected, signature.lower())


def signed_headers(institution: str, secret: bytes, body: bytes, timestamp: int, nonce: str, algorithm: str = "HMAC-SHA256") -> dict[str, str]:
    """Build the four ``x-tif-*`` headers a client sends with ``body``."""
    stamp = str(timestamp)
    return {
        HEADER_PAASID: institution,
        HEADER_TIMESTAMP: stamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, stamp, nonce, body, algorithm),
    }
