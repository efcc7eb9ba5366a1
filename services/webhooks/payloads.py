"""What a webhook delivers: the body `{type, id, version, occurred_at, payload}` of one domain event.

`id`, `version` and `occurred_at` are those of the domain event on SCHED_EVENTS (its event id, its
aggregate's stream version, its commit time), so every retry and every webhook of the same event
carries the same `id`. `payload` is the resource exactly as the HTTP API returns it, built with the
domain's own resource functions from the aggregate's stream folded up to that event: a webhook
shows the resource as the event left it, not as it is by the time the delivery goes out.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability import parse_instant
from shared.domain.appointments import appointment_resource
from shared.domain.holds import hold_resource
from shared.domain.link_bookings import event_resource
from shared.domain.links import link_resource
from shared.domain.registry import stream_kind
from shared.domain.webhooks import WEBHOOK_TYPE_OF
from shared.messages.events import Event, LinkDeleted

_encoder = msgspec.json.Encoder()


def webhook_type(event_type: str) -> str | None:
    """The webhook event type a domain event is delivered as (`link_toggled` -> `link.updated`), or None."""
    return WEBHOOK_TYPE_OF.get(event_type)


def resource_payload(stream_id: str, before: Any, event: Event, occurred_at: str, public_url: str,
                     signing_secret: str = "") -> dict[str, Any]:
    """The resource of `stream_id` as `event` left it, given the aggregate's state `before` that event.

    A deleted link is shown as it was when deleted, as DELETE /v1/links/:id answers.
    """
    kind = stream_kind(stream_id)
    state = before if isinstance(event, LinkDeleted) else kind.fold(before, [event])
    match kind.kind:
        case "link":
            return link_resource(state, public_url)
        case "event":
            return event_resource(state, public_url, signing_secret)
        case "appointment":
            return appointment_resource(state, public_url, signing_secret)
        case "booking_intent":
            return hold_resource(state, parse_instant(occurred_at))
    raise ValueError(f"no webhook payload for stream {stream_id!r}")


def webhook_body(webhook_event_type: str, event_id: str, version: int, occurred_at: str,
                 payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) on every attempt of one delivery."""
    return _encoder.encode({"type": webhook_event_type, "id": event_id, "version": version,
                            "occurred_at": occurred_at, "payload": payload})
