"""Webhook signatures: HMAC-SHA256 of the raw body, and of "<t>.<raw body>" for replay protection.

    x-savvycal-signature: sha256=<hex HMAC(secret, body)>
    x-savvycal-webhook-id: whk_...
    x-sched-signature:    t=<unix seconds>,v1=<hex HMAC(secret, "<t>.<body>")>

While a rotated secret is in its grace period both secrets sign: `v1=` appears twice (newest
first), and x-savvycal-signature carries two comma-separated `sha256=` values. A receiver accepts
a request when any value matches its secret (README.md, "Webhooks").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SAVVYCAL_SIGNATURE = "x-savvycal-signature"
WEBHOOK_ID = "x-savvycal-webhook-id"
SCHED_SIGNATURE = "x-sched-signature"
CALENDLY_SIGNATURE = "calendly-webhook-signature"
TOLERANCE_SECONDS = 300


def hmac_hex(secret: str, message: bytes) -> str:
    """The HMAC-SHA256 of `message` under `secret`, in hex."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def savvycal_signature(secrets: Sequence[str], body: bytes) -> str:
    """`sha256=<hex>` per secret, comma-separated."""
    return ",".join(f"sha256={hmac_hex(secret, body)}" for secret in secrets)


def sched_signature(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """`t=<timestamp>` then `v1=<hex>` per secret."""
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}", *(f"v1={hmac_hex(secret, signed)}" for secret in secrets)])


def signed_headers(webhook_id: str, secrets: Sequence[str], body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one delivery attempt; `secrets` newest first, at least one."""
    if not secrets:
        raise ValueError("a webhook delivery needs at least one signing secret")
    return {
        "content-type": "application/json",
        SAVVYCAL_SIGNATURE: savvycal_signature(secrets, body),
        WEBHOOK_ID: webhook_id,
        SCHED_SIGNATURE: sched_signature(secrets, body, timestamp),
    }


def with_calendly_signature(headers: dict[str, str]) -> dict[str, str]:
    """A Calendly delivery's headers: Calendly-Webhook-Signature is `t=…,v1=…` over "<t>.<body>", as ours."""
    return {**headers, CALENDLY_SIGNATURE: headers[SCHED_SIGNATURE]}


def verify_savvycal_signature(secret: str, body: bytes, header: str) -> bool:
    """Whether any `sha256=` value of the header is the body's HMAC under `secret` (constant time)."""
    expected = hmac_hex(secret, body)
    values = [part.strip() for part in header.split(",")]
    return any(v.startswith("sha256=") and hmac.compare_digest(v[len("sha256="):], expected) for v in values)


def verify_sched_signature(secret: str, body: bytes, header: str, now: float,
                           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether the header is fresh (|now - t| <= tolerance) and any `v1=` value matches (constant time)."""
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance:
        return False
    expected = hmac_hex(secret, f"{stamps[0]}.".encode() + body)
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, _, value in fields)
