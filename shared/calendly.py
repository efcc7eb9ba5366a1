"""Calendly's shapes of what the command side, the query side and the webhook dispatcher share.

A link event is a Calendly scheduled event, its scheduler the event's one invitee, a webhook with
a `scope` a Calendly webhook subscription. Every URI is built from `base_url`, the caller's
`…/calendly`; the uuid at the end of a URI is the domain id (`event_…`, `attendee_…`, `whk_…`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from shared.domain.link_bookings import BookedEventState
from shared.domain.webhooks import WebhookState
from shared.errors import ValidationFailed

# Which user a provider is, for URIs: provider id -> (user id, name, email).
Owners = dict[str, tuple[str, str, str]]


def calendly_time(seconds: float) -> str:
    """Calendly prints instants with microseconds: 2020-01-02T20:00:00.000000Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def calendly_iso(text: str | None) -> str | None:
    """Any ISO-8601 instant of the domain in Calendly's form (None stays None)."""
    if not text:
        return None
    return calendly_time(datetime.fromisoformat(text).timestamp())


def api_url(public_url: str) -> str:
    """The Calendly API beside the booking site: `…/book` (Settings.public_url) -> `…/calendly`."""
    return f"{public_url.removesuffix('/').removesuffix('/book')}/calendly"


def site_url(base_url: str) -> str:
    """The booking site beside the API: `…/calendly` -> `…/book`."""
    return f"{base_url.rsplit('/calendly', 1)[0]}/book"


def id_from_uri(value: str | None, base_url: str, collection: str, parameter: str) -> str:
    """The uuid of a `<base_url>/<collection>/<uuid>` URI, or a 400 naming `parameter`."""
    prefix = f"{base_url}/{collection}/"
    text = value or ""
    uuid = text[len(prefix):]
    if not text.startswith(prefix) or not uuid or "/" in uuid:
        raise ValidationFailed.on(parameter, f"must be a {collection[:-1].replace('_', ' ')} URI ({prefix}<uuid>)")
    return uuid


def event_uri(base_url: str, event_id: str) -> str:
    """The URI of a scheduled event."""
    return f"{base_url}/scheduled_events/{event_id}"


def invitee_uri(base_url: str, state: BookedEventState) -> str:
    """The URI of a scheduled event's invitee (its scheduler)."""
    assert state.created is not None
    return f"{event_uri(base_url, state.created.event_id)}/invitees/{state.created.scheduler.id}"


def cancellation(state: BookedEventState) -> dict[str, Any]:
    """Who canceled (the host: cancellations come through the API, as Calendly's do), why and when."""
    assert state.created is not None
    return {"canceled_by": state.created.organizer.display_name, "reason": state.cancel_reason or "",
            "canceler_type": "host", "created_at": calendly_iso(state.canceled_at)}


def scheduled_event(base_url: str, state: BookedEventState, owners: Owners) -> dict[str, Any]:
    """A link event as Calendly's ScheduledEvent."""
    created = state.created
    assert created is not None
    active = state.state != "canceled"
    memberships = []
    for provider_id in created.provider_ids:
        user_id, name, email = owners.get(provider_id, (provider_id, created.organizer.display_name,
                                                        created.organizer.email or ""))
        memberships.append({"user": f"{base_url}/users/{user_id}", "user_email": email, "user_name": name})
    body: dict[str, Any] = {
        "uri": event_uri(base_url, created.event_id), "name": created.summary,
        "meeting_notes_plain": created.description, "meeting_notes_html": created.description,
        "status": "active" if active else "canceled", "start_time": calendly_iso(state.start_at),
        "end_time": calendly_iso(state.end_at), "event_type": f"{base_url}/event_types/{created.link.id}",
        "location": {"type": "custom", "location": None},
        "invitees_counter": {"total": 1, "active": 1 if active else 0, "limit": 1},
        "created_at": calendly_iso(created.created_at),
        "updated_at": calendly_iso(state.canceled_at or state.rescheduled_at or created.created_at),
        "event_memberships": memberships, "event_guests": [], "calendar_event": None,
    }
    if not active:
        body["cancellation"] = cancellation(state)
    return body


def invitee(base_url: str, state: BookedEventState, event: dict[str, Any],
            rescheduled: bool = False) -> dict[str, Any]:
    """A link event's scheduler as Calendly's Invitee; `event` is the event's SavvyCal resource.

    `cancel_url` and `reschedule_url` are the event resource's signed manage links. A reschedule
    keeps the domain's event and invitee, so the invitee Calendly would create is this same one:
    once moved, `old_invitee` is its own URI; `rescheduled` (with `new_invitee`, again its own URI)
    is true only on the `invitee.canceled` a reschedule delivers (`rescheduled=True`).
    """
    created = state.created
    assert created is not None
    scheduler = created.scheduler
    active = state.state != "canceled"
    uri = invitee_uri(base_url, state)
    answers = [{"question": str(f.get("label", f.get("id", ""))), "answer": str(f.get("value", "")),
                "position": index} for index, f in enumerate(scheduler.fields) if isinstance(f, dict)]
    body: dict[str, Any] = {
        "uri": uri, "email": scheduler.email or "", "first_name": scheduler.first_name,
        "last_name": scheduler.last_name, "name": scheduler.display_name, "status": "active" if active else "canceled",
        "questions_and_answers": answers, "timezone": scheduler.time_zone,
        "event": event_uri(base_url, created.event_id), "created_at": calendly_iso(created.created_at),
        "updated_at": calendly_iso(state.canceled_at or state.rescheduled_at or created.created_at),
        "tracking": {"utm_campaign": None, "utm_source": None, "utm_medium": None, "utm_content": None,
                     "utm_term": None, "salesforce_uuid": None},
        "text_reminder_number": scheduler.phone_number, "rescheduled": rescheduled,
        "old_invitee": uri if state.rescheduled_at else None, "new_invitee": uri if rescheduled else None,
        "cancel_url": event["cancel_url"], "reschedule_url": event["reschedule_url"], "routing_form_submission": None,
        "payment": None, "no_show": None, "reconfirmation": None, "scheduling_method": None,
        "invitee_scheduled_by": None,
    }
    if not active:
        body["cancellation"] = cancellation(state)
    return body


def webhook_subscription(base_url: str, state: WebhookState, failing: bool = False) -> dict[str, Any]:
    """A webhook with a scope as Calendly's WebhookSubscription (`disabled` while its deliveries fail)."""
    user = f"{base_url}/users/{state.scope_user_id}" if state.scope_user_id else None
    return {
        "uri": f"{base_url}/webhook_subscriptions/{state.webhook_id}", "callback_url": state.url,
        "created_at": calendly_iso(state.created_at), "updated_at": calendly_iso(state.updated_at),
        "retry_started_at": None, "state": "disabled" if failing else "active", "events": list(state.events),
        "scope": state.scope or "organization", "organization": f"{base_url}/organizations/{state.account_id}",
        "user": user, "group": None,
        "creator": f"{base_url}/users/{state.creator_user_id}" if state.creator_user_id else None,
    }


def rescheduled_away(before: BookedEventState, rescheduled_at: str, reason: str | None) -> BookedEventState:
    """The event as it was before a reschedule, canceled by it: what Calendly's `invitee.canceled` shows."""
    return msgspec.structs.replace(before, state="canceled", canceled_at=rescheduled_at, cancel_reason=reason)


def webhook_payload(event_type: str, base_url: str, state: BookedEventState, owners: Owners,
                    created_at: str, creator: str | None, event: dict[str, Any],
                    rescheduled: bool = False) -> dict[str, Any]:
    """Calendly's webhook body: `{event, created_at, created_by, payload}`, the payload an Invitee.

    As in Calendly's `invitee.*` payloads, the invitee carries its `scheduled_event` in full.
    """
    return {"event": event_type, "created_at": calendly_iso(created_at), "created_by": creator or "",
            "payload": {**invitee(base_url, state, event, rescheduled),
                        "scheduled_event": scheduled_event(base_url, state, owners)}}
