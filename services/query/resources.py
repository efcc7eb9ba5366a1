"""Resource reads: lists with opaque cursors and single resources, in the API's shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from projections.calendars import queries as calendars
from projections.resources import queries as resources
from services.query.reads import Reads, page_limit
from shared.domain.appointments import appointment_resource
from shared.domain.holds import hold_resource
from shared.domain.link_bookings import event_resource
from shared.domain.links import link_resource
from shared.domain.service_catalogue import service_resource
from shared.domain.validation import Problems
from shared.errors import NotFound
from shared.messages.queries import EventsList, GetById, ListQuery

EVENT_STATES = ("confirmed", "canceled", "all")
EVENT_PERIODS = ("past", "upcoming", "all")


async def events_list(reads: Reads, query: EventsList) -> dict[str, Any]:
    """The account's events by `state` and `period`, one page."""
    problems = Problems()
    problems.check(query.state in EVENT_STATES, "state", "must be one of: confirmed, canceled, all")
    problems.check(query.period in EVENT_PERIODS, "period", "must be one of: past, upcoming, all")
    problems.check(1 <= query.limit <= 100, "limit", "must be 1 to 100")
    problems.raise_if_any()
    now = datetime.fromtimestamp(reads.clock(), UTC)
    states, metadata = await resources.events_page(
        reads.pool, query.account_id, state=None if query.state == "all" else query.state,
        upcoming_from=now if query.period == "upcoming" else None,
        past_before=now if query.period == "past" else None,
        before=query.before, after=query.after, limit=query.limit)
    return {"entries": [event_resource(s, reads.public_url, reads.signing_secret) for s in states], "metadata": metadata}


async def links_list(reads: Reads, query: ListQuery) -> dict[str, Any]:
    """The account's links, one page."""
    states, metadata = await resources.page(reads.pool, "link", query.account_id, before=query.before,
                                            after=query.after, limit=page_limit(query.limit))
    return {"entries": [link_resource(s, reads.public_url) for s in states], "metadata": metadata}


async def _state(reads: Reads, kind: str, query: GetById) -> Any:
    state = await resources.get_state(reads.pool, kind, query.id, query.account_id)
    if state is None:
        raise NotFound(kind)
    return state


async def event_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One event."""
    return event_resource(await _state(reads, "event", query), reads.public_url, reads.signing_secret)


async def link_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One link."""
    found = await reads.state("link", query.id, query.account_id)
    if found is None:
        raise NotFound("link")
    return link_resource(found[1], reads.public_url)


async def appointment_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One appointment."""
    return appointment_resource(await _state(reads, "appointment", query), reads.public_url,
                                reads.signing_secret)


async def booking_intent_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One booking intent; its state says `expired` once past `expires_at`, swept or not."""
    return hold_resource(await _state(reads, "booking_intent", query), reads.now())


async def service_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One service."""
    return service_resource(await _state(reads, "service", query))


async def provider_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One provider with its schedule."""
    row = (await calendars.providers(reads.pool, [query.id])).get(query.id)
    if row is None or row["account_id"] != query.account_id:
        raise NotFound("provider")
    schedule = msgspec.json.decode(row["schedule"])
    return {"object": "provider", "id": row["provider_id"], "display_name": row["display_name"],
            "email": row["email"], "time_zone": schedule["time_zone"], "user_id": row["user_id"],
            "created_at": row["created_at"], "schedule": schedule}


async def me(reads: Reads, query: GetById) -> dict[str, Any]:
    """The user behind a token (GET /v1/me): `id` is the user id."""
    account = await resources.get_state(reads.pool, "account", query.account_id, query.account_id)
    user = account.users.get(query.id) if account else None
    if user is None:
        raise NotFound("user")
    return {"id": user.user_id, "display_name": user.name, "email": user.email, "provider_id": user.provider_id,
            "account_id": query.account_id, "personal_scope_id": user.personal_scope_id}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]]
HANDLERS = {"events_list": events_list, "links_list": links_list, "event_get": event_get, "link_get": link_get,
            "appointment_get": appointment_get, "booking_intent_get": booking_intent_get,
            "service_get": service_get, "provider_get": provider_get, "me": me}
