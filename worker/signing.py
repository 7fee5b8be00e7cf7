"""HMAC-SHA256 signatures of outbound webhooks (pure; the README shows a receiver).

Header `Calsync-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]` where each v1 is
HMAC-SHA256(secret, f"{t}.{body}"); during a secret rotation both secrets sign.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Calsync-Signature"
TOLERANCE_SECONDS = 300  # receivers should refuse older timestamps (replay protection)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header_value(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The signature header for a body signed by every given secret."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: parse the header, check the age, compare in constant time."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for k, _, v in parts if k == "v1")
