"""Signed links for invitees: reschedule, cancel and view a booking, and each provider's calendar feed.

A token is `<booking id>.<mac>`, the mac an HMAC-SHA256 (server secret `SCHED_SIGNING_SECRET`) over
the action, the booking id and the booking's current start. So a token cannot be guessed or forged,
and it stops working by itself once the booking moves (a reschedule gives new links). A canceled or
past booking keeps a valid mac, but the booking page refuses it as used or expired. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

MAC_CHARS = 32  # 128 bits of HMAC-SHA256: unguessable

Action = Literal["reschedule", "cancel", "view"]
_TOKEN = re.compile(r"^(?P<id>(?:event|appt|prov)_[0-9A-Za-z]{1,64})\.(?P<mac>[0-9a-f]{32})$")


MIN_SECRET_CHARS = 32
# Secrets that were ever public (an old built-in default): a server refuses them like a missing one.
_PUBLIC_SECRETS = frozenset({"sched-development-signing-secret"})


class SigningSecretMissing(SystemExit):
    """A process that signs or verifies links was started without a usable SCHED_SIGNING_SECRET."""


def signing_secret_problem(secret: str) -> str | None:
    """Why `secret` must not sign links (missing, public or too short), or None when it will do."""
    if not secret:
        return "SCHED_SIGNING_SECRET is not set"
    if secret in _PUBLIC_SECRETS:
        return "SCHED_SIGNING_SECRET is a published value"
    if len(secret) < MIN_SECRET_CHARS:
        return f"SCHED_SIGNING_SECRET is shorter than {MIN_SECRET_CHARS} characters"
    return None


def require_signing_secret(secret: str, service: str) -> str:
    """`secret`, or a clear refusal to start (SigningSecretMissing) when it is missing or guessable."""
    problem = signing_secret_problem(secret)
    if problem is not None:
        raise SigningSecretMissing(
            f"{service} refuses to start: {problem}. It signs the invitees' manage links and the feed URLs; set it "
            f"to a long random value shared by every service (e.g. `python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'`); `make run` generates one in .sched/signing_secret.")
    return secret


def _mac(secret: str, *parts: str) -> str:
    if not secret:  # an empty key would make every link forgeable
        raise ValueError("no signing secret: links cannot be signed")
    message = "\x1f".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:MAC_CHARS]


def manage_token(secret: str, action: Action, booking_id: str, start_at: str) -> str:
    """The token of one action on a booking as it starts now."""
    return f"{booking_id}.{_mac(secret, action, booking_id, start_at)}"


def manage_urls(public_url: str, secret: str, booking_id: str, start_at: str) -> dict[str, str]:
    """The booking resource's `reschedule_url` and `cancel_url`."""
    return {"reschedule_url": f"{public_url}/reschedule/{manage_token(secret, 'reschedule', booking_id, start_at)}",
            "cancel_url": f"{public_url}/cancel/{manage_token(secret, 'cancel', booking_id, start_at)}"}


def view_url(public_url: str, secret: str, booking_id: str, start_at: str) -> str:
    """The confirmation page of a booking (time, .ics download, manage links)."""
    return f"{public_url}/booked/{manage_token(secret, 'view', booking_id, start_at)}"


def token_booking_id(token: str) -> str | None:
    """The booking id a well-formed token names (not yet verified), or None."""
    match = _TOKEN.match(token)
    return match.group("id") if match else None


def token_matches(secret: str, action: Action, token: str, start_at: str) -> bool:
    """Whether `token` is the signed token of `action` on its booking starting at `start_at` (constant time)."""
    booking_id = token_booking_id(token)
    if booking_id is None:
        return False
    return hmac.compare_digest(token, manage_token(secret, action, booking_id, start_at))


def feed_token(secret: str, provider_id: str) -> str:
    """The secret token of a provider's iCalendar feed (`…/ical/<token>.ics`)."""
    return f"{provider_id}.{_mac(secret, 'feed', provider_id)}"


def feed_provider(secret: str, token: str) -> str | None:
    """The provider a feed token belongs to, or None when it is forged."""
    provider_id = token_booking_id(token)
    if provider_id is None or not hmac.compare_digest(token, feed_token(secret, provider_id)):
        return None
    return provider_id
