"""Webhooks (stream whk-<id>): a subscriber URL, the webhook event types it wants, its signing secrets.

The signing secret itself never enters the event log (the relay would publish it to every
consumer of SCHED_EVENTS): the decider draws it from `Env.new_secret`, the command handler keeps
it in the `webhook_secrets` table under a `secret_id`, and the events carry only that id. The
reply shows the secret once; the idempotency record keeps the reply without it.

Which addresses a webhook may point at is decided here too (pure, no DNS): the dispatcher applies
the same rule to every address a host name resolves to, right before it connects.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec

from shared.domain.accounts import AccountState, require_account
from shared.domain.core import Decision, Env, EventTypes, iso_z, unchanged, webhook_stream
from shared.domain.validation import Problems
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import CreateWebhook, DeleteWebhook, RotateWebhookSecret
from shared.messages.events import Event, WebhookCreated, WebhookDeleted, WebhookSecretRotated

# The webhook event types a subscriber may ask for (DESIGN.md section 6).
WEBHOOK_EVENT_TYPES = (
    "event.created", "event.canceled", "event.rescheduled",
    "appointment.created", "appointment.canceled",
    "link.created", "link.updated", "link.deleted",
    "booking_intent.expired",
)

# The event types of a Calendly webhook subscription, and the domain events delivered as each, in order:
# a reschedule is, as in Calendly, the old invitee's `invitee.canceled` (rescheduled) then `invitee.created`.
CALENDLY_EVENT_TYPES = ("invitee.created", "invitee.canceled")
CALENDLY_TYPE_OF: dict[str, tuple[str, ...]] = {"event_created": ("invitee.created",),
                                                "event_canceled": ("invitee.canceled",),
                                                "event_rescheduled": ("invitee.canceled", "invitee.created")}

# Domain event type -> the webhook event type it is delivered as; other events are not delivered.
WEBHOOK_TYPE_OF: dict[str, str] = {
    "event_created": "event.created",
    "event_canceled": "event.canceled",
    "event_rescheduled": "event.rescheduled",
    "appointment_created": "appointment.created",
    "appointment_canceled": "appointment.canceled",
    "link_created": "link.created",
    "link_updated": "link.updated",
    "link_toggled": "link.updated",
    "link_deleted": "link.deleted",
    "hold_expired": "booking_intent.expired",
}

MAX_URL_LENGTH = 2048
MAX_GRACE_PERIOD_SECONDS = 7 * 86_400
REFUSED_ADDRESS = "must not point to a private, loopback or link-local address"
# Host names that are loopback by definition (RFC 6761), whatever a resolver says.
_LOOPBACK_NAMES = re.compile(r"(.+\.)?localhost\.?")
# What inet_aton reads as an IPv4 address although ip_address does not ("127.1", "0x7f.0.0.1", "2130706433").
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


class WebhookState(msgspec.Struct, frozen=True):
    """A webhook subscription as folded from its stream: URL, event types and signing secrets."""

    webhook_id: str = ""
    account_id: str = ""
    url: str = ""
    events: list[str] = msgspec.field(default_factory=list)
    secret_id: str = ""
    previous_secret_id: str | None = None
    previous_expires_at: str | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted: bool = False
    scope: str | None = None  # set on Calendly webhook subscriptions: "organization" or "user"
    scope_user_id: str | None = None
    scope_provider_id: str | None = None
    creator_user_id: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the webhook was created and not deleted since."""
        return bool(self.webhook_id) and not self.deleted


# What a whk-<id> stream holds: every type is folded, none is ignored.
WEBHOOK_STREAM_EVENTS = EventTypes(handles=frozenset({WebhookCreated, WebhookSecretRotated, WebhookDeleted}))


def evolve(state: WebhookState, event: Event) -> WebhookState:
    """The webhook after one more event."""
    match event:
        case WebhookCreated():
            return WebhookState(webhook_id=event.webhook_id, account_id=event.account_id, url=event.url,
                                events=list(event.events), secret_id=event.secret_id, created_at=event.created_at,
                                updated_at=event.created_at, scope=event.scope, scope_user_id=event.scope_user_id,
                                scope_provider_id=event.scope_provider_id, creator_user_id=event.creator_user_id)
        case WebhookSecretRotated():
            return msgspec.structs.replace(state, secret_id=event.secret_id,
                                           previous_secret_id=event.previous_secret_id,
                                           previous_expires_at=event.previous_expires_at, updated_at=event.rotated_at)
        case WebhookDeleted():
            return msgspec.structs.replace(state, deleted=True, updated_at=event.deleted_at)
    return unchanged(state, event, WEBHOOK_STREAM_EVENTS)


def webhook_resource(state: WebhookState, delivery_state: str | None = None) -> dict[str, Any]:
    """The webhook as the HTTP API returns it (never with its secret; only create and rotate show that).

    `delivery_state` is the dispatcher's view: "failing" once a delivery has died, until one succeeds.
    """
    status = "deleted" if state.deleted else (delivery_state or "active")
    return {"id": state.webhook_id, "url": state.url, "events": list(state.events), "state": status,
            "created_at": state.created_at, "updated_at": state.updated_at}


def require_webhook(state: WebhookState, account_id: str | None) -> WebhookState:
    """The webhook, which must exist in the acting account (another account's is "not found")."""
    if not state.exists or state.account_id != account_id:
        raise NotFound("webhook")
    return state


# --- which targets are allowed ------------------------------------------------------------------

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def literal_address(host: str) -> IpAddress | None:
    """The address a host names literally, in any spelling a resolver accepts ("127.1", "[::1]"), else None."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]"))
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def address_refusal(address: IpAddress, allow_loopback: bool) -> str | None:
    """Why a webhook must not be sent to `address` (None: it may).

    Anything but a public unicast address is refused; loopback only when the setting allows it.
    IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo) are judged by that address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_refusal(embedded, allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "private"
    if address.is_private or not address.is_global:
        return "private"
    return None


def host_refusal(host: str, allow_loopback: bool) -> str | None:
    """Why a URL's host is refused before any DNS lookup: a literal address or a loopback name."""
    host = host.lower()
    if _LOOPBACK_NAMES.fullmatch(host):
        return None if allow_loopback else "loopback"
    address = literal_address(host)
    return address_refusal(address, allow_loopback) if address is not None else None


def check_url(problems: Problems, url: str, allow_loopback: bool) -> None:
    """An absolute http(s) URL with a host that is not a private, loopback or link-local address."""
    if not url.strip():
        problems.add("url", "is required")
        return
    if len(url) > MAX_URL_LENGTH or url != url.strip():
        problems.add("url", f"must be a URL of at most {MAX_URL_LENGTH} characters without surrounding spaces")
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        problems.add("url", "is not a valid URL")
        return
    if parts.scheme.lower() not in ("http", "https"):
        problems.add("url", "must be an http or https URL")
        return
    if not parts.hostname:
        problems.add("url", "must name a host")
        return
    if host_refusal(parts.hostname, allow_loopback) is not None:
        problems.add("url", REFUSED_ADDRESS)


def check_events(problems: Problems, events: list[str]) -> None:
    """`events` lists known webhook event types, at least one, none twice."""
    if not problems.check(bool(events), "events", "must list at least one event type"):
        return
    unknown = [e for e in events if e not in WEBHOOK_EVENT_TYPES]
    problems.check(not unknown, "events", f"unknown event types: {', '.join(unknown)}; "
                                          f"known: {', '.join(WEBHOOK_EVENT_TYPES)}")
    problems.check(len(set(events)) == len(events), "events", "must not repeat")


# --- deciders -----------------------------------------------------------------------------------

def new_signing_secret(env: Env) -> str:
    """A fresh signing secret, `whsec_` and the random part of Env's secret."""
    return "whsec_" + env.new_secret().partition("_")[2]


def create_webhook(command: CreateWebhook, account: AccountState, env: Env) -> Decision:
    """A new subscription; the result carries the signing secret, the stored reply does not."""
    require_account(account, command.account_id)
    problems = Problems()
    check_url(problems, command.url, env.webhook_allow_loopback)
    check_events(problems, command.events)
    problems.raise_if_any()
    webhook_id = env.new_id("whk")
    created = WebhookCreated(webhook_id=webhook_id, account_id=account.account_id, url=command.url,
                             events=list(command.events), secret_id=env.new_id("whsec"), created_at=env.now_iso)
    result = {**webhook_resource(evolve(WebhookState(), created)), "secret": new_signing_secret(env)}
    return Decision([(webhook_stream(webhook_id), [created])], result, stored_result={**result, "secret": None})


def create_calendly_subscription(url: str, events: list[str], scope: str, scope_user_id: str | None,
                                 scope_provider_id: str | None, signing_key: str | None, account: AccountState,
                                 creator_user_id: str | None, env: Env) -> Decision:
    """A Calendly webhook subscription: a webhook for `invitee.*`, scoped to the organization or one user.

    The caller's `signing_key` signs deliveries when given (Calendly lets a client choose it), else a new one.
    """
    problems = Problems()
    check_url(problems, url, env.webhook_allow_loopback)
    if not events:
        problems.add("events", "must list at least one event type")
    elif any(e not in CALENDLY_EVENT_TYPES for e in events) or len(set(events)) != len(events):
        problems.add("events", f"must be distinct values of: {', '.join(CALENDLY_EVENT_TYPES)}")
    problems.raise_if_any()
    webhook_id = env.new_id("whk")
    created = WebhookCreated(webhook_id=webhook_id, account_id=account.account_id, url=url, events=list(events),
                             secret_id=env.new_id("whsec"), created_at=env.now_iso, scope=scope,
                             scope_user_id=scope_user_id, scope_provider_id=scope_provider_id,
                             creator_user_id=creator_user_id)
    result = {**webhook_resource(evolve(WebhookState(), created)), "secret": signing_key or new_signing_secret(env)}
    return Decision([(webhook_stream(webhook_id), [created])], result, stored_result={**result, "secret": None})


def rotate_webhook_secret(command: RotateWebhookSecret, state: WebhookState, env: Env) -> Decision:
    """A new secret; the current one keeps signing for the grace period (only the latest previous one)."""
    require_webhook(state, command.account_id)
    if not 0 <= command.grace_period_seconds <= MAX_GRACE_PERIOD_SECONDS:
        raise ValidationFailed.on("grace_period_seconds", f"must be 0 to {MAX_GRACE_PERIOD_SECONDS} seconds")
    rotated = WebhookSecretRotated(
        webhook_id=state.webhook_id, secret_id=env.new_id("whsec"), previous_secret_id=state.secret_id,
        previous_expires_at=iso_z(env.now + timedelta(seconds=command.grace_period_seconds)),
        rotated_at=env.now_iso)
    result = {**webhook_resource(evolve(state, rotated)), "secret": new_signing_secret(env),
              "previous_secret_expires_at": rotated.previous_expires_at}
    return Decision([(webhook_stream(state.webhook_id), [rotated])], result,
                    stored_result={**result, "secret": None})


def delete_webhook(command: DeleteWebhook, state: WebhookState, env: Env) -> Decision:
    """Stop deliveries; the result is the deleted resource."""
    require_webhook(state, command.account_id)
    deleted = WebhookDeleted(webhook_id=state.webhook_id, deleted_at=env.now_iso)
    return Decision([(webhook_stream(state.webhook_id), [deleted])], webhook_resource(evolve(state, deleted)))


def new_secret_of(decision: Decision) -> tuple[str, str, str] | None:
    """(webhook_id, secret_id, secret) that a create or rotate decision introduces, for the secret store."""
    secret = decision.result.get("secret")
    for _, events in decision.changes:
        for event in events:
            if isinstance(event, (WebhookCreated, WebhookSecretRotated)) and isinstance(secret, str):
                return event.webhook_id, event.secret_id, secret
    return None
