"""The invitee's reads (DESIGN.md section 9): booking pages, signed manage links, calendar files and feeds.

Public reads carry no account: a link is found by its page address, a booking by a signed token
(`shared.manage`), a provider's feed by its feed token. A forged token is "not found"; a genuine
one whose booking was canceled or is past is "forbidden", and neither answer holds a booking's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from projections.calendars import queries as calendars
from projections.resources import queries as resources
from services.query.reads import Reads
from services.query.slots import _service_providers, _slot, _utc_midnight, link_window, service_dates
from shared.availability import iso_utc, parse_instant
from shared.availability import link_slots as engine_link_slots
from shared.availability import service_slots as engine_service_slots
from shared.calendar_files import (
    Person,
    appointment_entry,
    booking_ics,
    calendar_file,
    event_entry,
    feed_ics,
)
from shared.domain.appointments import AppointmentState, appointment_resource
from shared.domain.link_bookings import BookedEventState, event_resource
from shared.domain.links import link_resource, link_rules, on_hosts
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.manage import feed_provider, feed_token, token_booking_id, token_matches, view_url
from shared.messages.queries import (
    AppointmentRescheduleSlots,
    BookingPageSlots,
    GetById,
    LinkSlots,
    ManageBooking,
    ProviderFeed,
    PublicLinkPage,
    ServiceSlots,
)

ACTIONS = ("reschedule", "cancel", "view")


def _stamp(reads: Reads) -> str:
    return iso_utc(reads.now())


async def _get_any(reads: Reads, kind: str, resource_id: str) -> tuple[Any, str, int] | None:
    """A resource by id alone; on a miss, once the read models hold the whole log (it may be a fresh write)."""
    found = await resources.get_any(reads.pool, kind, resource_id)
    if found is None:
        await reads.wait_for_head()
        found = await resources.get_any(reads.pool, kind, resource_id)
    return found


async def _provider_person(reads: Reads, provider_id: str) -> Person:
    row = (await calendars.providers(reads.pool, [provider_id])).get(provider_id)
    return Person(row["display_name"], row["email"]) if row else Person("", None)


async def _appointment_file(reads: Reads, state: AppointmentState, version: int) -> dict[str, Any]:
    created = state.created
    assert created is not None
    service = await resources.get_any(reads.pool, "service", created.service_id)
    service_name = service[0].created.name if service and service[0].created else "Appointment"
    entry = appointment_entry(state, version, service_name, await _provider_person(reads, created.provider_id),
                              reads.public_url, reads.signing_secret)
    return calendar_file(booking_ics(entry, _stamp(reads)), created.appointment_id)


async def event_ics(reads: Reads, query: GetById) -> dict[str, Any]:
    """One event of the account as an iCalendar file."""
    found = await _get_any(reads, "event", query.id)
    if found is None or found[1] != query.account_id:
        raise NotFound("event")
    state, _, version = found
    entry = event_entry(state, version, reads.public_url, reads.signing_secret)
    return calendar_file(booking_ics(entry, _stamp(reads)), query.id)


async def appointment_ics(reads: Reads, query: GetById) -> dict[str, Any]:
    """One appointment of the account as an iCalendar file."""
    found = await _get_any(reads, "appointment", query.id)
    if found is None or found[1] != query.account_id:
        raise NotFound("appointment")
    return await _appointment_file(reads, found[0], found[2])


async def provider_feed_url(reads: Reads, query: GetById) -> dict[str, Any]:
    """A provider's secret feed URL (the gateway serves `…/ical/<token>.ics` next to `…/book`)."""
    row = (await calendars.providers(reads.pool, [query.id])).get(query.id)
    if row is None or row["account_id"] != query.account_id:
        raise NotFound("provider")
    base = reads.public_url.removesuffix("/book")
    return {"provider_id": query.id, "url": f"{base}/ical/{feed_token(reads.signing_secret, query.id)}.ics"}


async def provider_feed(reads: Reads, query: ProviderFeed) -> dict[str, Any]:
    """A provider's upcoming confirmed bookings as one subscribable calendar."""
    provider_id = feed_provider(reads.signing_secret, query.token)
    if provider_id is None:
        raise NotFound("calendar")
    person = await _provider_person(reads, provider_id)
    now = datetime.fromtimestamp(reads.now(), UTC)
    entries = []
    for kind, state, version in await resources.provider_bookings(reads.pool, provider_id, now):
        if kind == "event":
            entries.append(event_entry(state, version, reads.public_url, reads.signing_secret))
        else:
            service = await resources.get_any(reads.pool, "service", state.created.service_id)
            name = service[0].created.name if service and service[0].created else "Appointment"
            entries.append(appointment_entry(state, version, name, person, reads.public_url, reads.signing_secret))
    return calendar_file(feed_ics(entries, f"{person.name} (sched)", _stamp(reads)), provider_id)


async def public_link_page(reads: Reads, query: PublicLinkPage) -> dict[str, Any]:
    """An active link by its page address, with its account."""
    found = await resources.link_by_slugs(reads.pool, query.scope_slug, query.link_slug)
    if found is None:
        await reads.wait_for_head()
        found = await resources.link_by_slugs(reads.pool, query.scope_slug, query.link_slug)
    if found is None or found[0].settings is None or found[0].settings.state != "active":
        raise NotFound("link")
    return {"account_id": found[1], "link": link_resource(found[0], reads.public_url)}


def _start_of(state: BookedEventState | AppointmentState) -> str:
    if isinstance(state, BookedEventState):
        return state.start_at
    assert state.created is not None
    return str(state.start_at)


async def _booking(reads: Reads, token: str, action: str) -> tuple[str, Any, str, int]:
    """(kind, state, account, version) of the booking a token names; NotFound or Forbidden otherwise."""
    if action not in ACTIONS:
        raise ValidationFailed.on("action", "must be one of: reschedule, cancel, view")
    booking_id = token_booking_id(token)
    kind = "event" if booking_id and booking_id.startswith("event_") else "appointment"
    found = await _get_any(reads, kind, booking_id) if booking_id else None
    if found is None or not token_matches(reads.signing_secret, action, token, _start_of(found[0])):  # type: ignore[arg-type]
        raise NotFound("booking")
    state, account_id, version = found
    if action != "view":
        if state.state == "canceled":
            raise Forbidden("this link was used: the booking is canceled")
        if parse_instant(_start_of(state)) <= reads.now():
            raise Forbidden("this link has expired: the booking has started")
    return kind, state, account_id, version


async def manage_booking(reads: Reads, query: ManageBooking) -> dict[str, Any]:
    """The booking a signed token names, for the invitee's reschedule, cancel or confirmation page."""
    kind, state, account_id, _ = await _booking(reads, query.token, query.action)
    start = _start_of(state)
    if kind == "event":
        link = await resources.get_state(reads.pool, "link", state.created.link.id, account_id)
        return {"kind": kind, "account_id": account_id,
                "event": event_resource(state, reads.public_url, reads.signing_secret),
                "link": link_resource(link, reads.public_url) if link is not None else None,
                "view_url": view_url(reads.public_url, reads.signing_secret, state.created.event_id, start)}
    return {"kind": kind, "account_id": account_id,
            "appointment": appointment_resource(state, reads.public_url, reads.signing_secret),
            "view_url": view_url(reads.public_url, reads.signing_secret, state.created.appointment_id, start)}


async def booking_page_slots(reads: Reads, query: BookingPageSlots) -> list[dict[str, Any]]:
    """An active link's slots in a window; with a valid reschedule token its booking's time counts as free.

    A reschedule reads its own link's slots even when the link is disabled (a used single-use link always
    is), as `reschedule_event` allows the move; a plain visit needs an active link.
    """
    found = await _get_any(reads, "link", query.link_id)
    if found is None or found[0].settings is None or not found[0].exists:
        raise NotFound("link")
    if found[0].settings.state != "active" and not query.reschedule_token:
        raise NotFound("link")
    link = found[0]
    exclude: str | None = None
    if query.reschedule_token:
        kind, state, _, _ = await _booking(reads, query.reschedule_token, "reschedule")
        if kind != "event" or state.created.link.id != query.link_id:
            raise NotFound("booking")
        # as reschedule_event decides: on the booking's own hosts, its own reservation not counting
        exclude, link = state.created.event_id, on_hosts(link, state.created.provider_ids, "all")
    now = reads.now()
    start, end = link_window(LinkSlots(account_id=found[1], link_id=query.link_id, from_=query.from_,
                                       until=query.until), now)
    calendars_ = await calendars.host_calendars(reads.pool, link.settings.hosts, now, start, end, exclude=exclude)
    rules = link_rules(link)
    return [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration, "rank": s.rank}
            for s in engine_link_slots(rules, calendars_, now, start, end)]


async def appointment_reschedule_slots(reads: Reads, query: AppointmentRescheduleSlots) -> dict[str, Any]:
    """The service slots an appointment may move to, as `reschedule_appointment` decides: its own provider,
    the service's rules and blocks, its own reservation not counting."""
    kind, state, account_id, _ = await _booking(reads, query.reschedule_token, "reschedule")
    if kind != "appointment":
        raise NotFound("booking")
    created = state.created
    slots_query = ServiceSlots(account_id=account_id, service_id=created.service_id, from_=query.from_,
                               until=query.until, time_zone=query.time_zone, provider_ids=created.provider_id)
    from_date, until_date, _ = service_dates(reads, slots_query)
    assert until_date is not None
    service, sps, extra, _ = await _service_providers(reads, slots_query)
    if not sps:
        return {"data": []}
    now = reads.now()
    hosts = await calendars.host_calendars(reads.pool, [created.provider_id], now,
                                           _utc_midnight(from_date) - 2 * 86400, _utc_midnight(until_date) + 3 * 86400,
                                           extra, exclude=created.appointment_id)
    result = engine_service_slots(service.rules(), hosts, now, query.time_zone, from_date, until_date, None)
    return {"data": [_slot(slot.start, slot.end, query.time_zone) for slot, _ in result.aggregated]}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]]
HANDLERS = {"event_ics": event_ics, "appointment_ics": appointment_ics, "provider_feed_url": provider_feed_url,
            "provider_feed": provider_feed, "public_link_page": public_link_page,
            "booking_page_slots": booking_page_slots, "manage_booking": manage_booking,
            "appointment_reschedule_slots": appointment_reschedule_slots}
