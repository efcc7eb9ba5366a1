"""Calendly's API v2 over the same read models and engine as the SavvyCal API.

Resources are addressed by URI, built from the caller's base URL (`…/calendly/users/<user id>`,
`…/event_types/<link id>`, `…/organizations/<account id>`, `…/scheduled_events/<event id>`); a
parameter that is not such a URI, a filter value Calendly does not know, or a time range in the past
or longer than 7 days, is a 400 naming every parameter at fault. Lists page as Calendly does:
`count` 1 to 100, opaque `page_token`s both ways, `next_page`/`previous_page` keeping every filter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from projections.calendars import queries as calendars
from projections.pagination import decode_cursor
from projections.resources import queries as resources
from projections.webhooks import queries as deliveries
from services.query.reads import Reads
from shared import calendly as shapes
from shared.availability import ProviderSchedule, link_slots, parse_instant
from shared.availability.occupancy import EXTERNAL
from shared.calendly import calendly_iso, calendly_time
from shared.domain.link_bookings import event_resource
from shared.domain.links import link_rules
from shared.domain.validation import Problems
from shared.errors import NotFound, ValidationFailed
from shared.messages.queries import (
    CalendlyAvailabilitySchedulesQuery,
    CalendlyAvailableTimesQuery,
    CalendlyBusyTimesQuery,
    CalendlyEventTypesQuery,
    CalendlyGetQuery,
    CalendlyInviteeGetQuery,
    CalendlyInviteesQuery,
    CalendlyMembershipsQuery,
    CalendlyPageQuery,
    CalendlyQuery,
    CalendlyScheduledEventsQuery,
    CalendlyUsersMeQuery,
    CalendlyWebhookSubscriptionsQuery,
)

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MAX_RANGE = 7 * 86400


def _id_from_uri(query: CalendlyQuery, parameter: str, collection: str) -> str:
    return shapes.id_from_uri(getattr(query, parameter), query.base_url, collection, parameter)


def _uri_id(problems: Problems, query: CalendlyQuery, parameter: str, collection: str) -> str | None:
    """The id in a resource URI parameter, or None with the fault noted."""
    try:
        return _id_from_uri(query, parameter, collection)
    except ValidationFailed as error:
        for name, messages in error.fields.items():
            for message in messages:
                problems.add(name, message)
        return None


def _range(problems: Problems, query: CalendlyAvailableTimesQuery | CalendlyBusyTimesQuery,
           now: float) -> tuple[int, int]:
    """start_time and end_time: required, in the future, at most 7 days apart; every fault noted in `problems`."""
    bounds: list[int] = []
    for parameter in ("start_time", "end_time"):
        text = getattr(query, parameter)
        if not text:
            problems.add(parameter, "is required")
            continue
        try:
            bounds.append(parse_instant(text.replace("Z", "+00:00")))
        except ValueError:
            problems.add(parameter, "must be an ISO-8601 datetime with a time zone")
    if len(bounds) < 2:
        return 0, 0
    start, end = bounds
    problems.check(start >= now, "start_time", "must be in the future")
    if end <= start:
        problems.add("end_time", "must be after start_time")
    elif end - start > MAX_RANGE:
        problems.add("end_time", "must be at most 7 days after start_time")
    return start, end


async def _account(reads: Reads, query: CalendlyQuery) -> Any:
    account = await resources.get_state(reads.pool, "account", query.account_id, query.account_id)
    if account is None:
        raise NotFound("organization")
    return account


LOCALE = "en"  # the domain has no locale: Calendly's default


def _user_resource(query: CalendlyQuery, user: Any, account: Any, zone: str) -> dict[str, Any]:
    scope = account.scopes.get(user.personal_scope_id)
    slug = scope.slug if scope else user.user_id
    return {
        "uri": f"{query.base_url}/users/{user.user_id}", "name": user.name, "slug": slug,
        "email": user.email, "scheduling_url": f"{shapes.site_url(query.base_url)}/{slug}", "timezone": zone,
        "time_notation": "24h", "avatar_url": None, "created_at": calendly_iso(account.created_at),
        "updated_at": calendly_iso(account.created_at),
        "current_organization": f"{query.base_url}/organizations/{account.account_id}",
        "resource_type": "User", "locale": LOCALE,
    }


async def _zones(reads: Reads, provider_ids: list[str]) -> dict[str, str]:
    rows = await calendars.providers(reads.pool, provider_ids)
    return {p: msgspec.json.decode(r["schedule"])["time_zone"] for p, r in rows.items()}


async def _user(reads: Reads, query: CalendlyQuery, parameter: str = "user",
                user_id: str | None = None) -> tuple[Any, Any]:
    """The account and the user a `user` URI names (or `user_id`, already taken from it)."""
    account = await _account(reads, query)
    user = account.users.get(user_id or _id_from_uri(query, parameter, "users"))
    if user is None:
        raise NotFound("user")
    return account, user


def _owners(account: Any) -> shapes.Owners:
    return {u.provider_id: (u.user_id, u.name, u.email) for u in account.users.values()}


# --- Calendly's pagination ---------------------------------------------------------------------------

_PAGE_FIELDS = frozenset({"account_id", "base_url", "user_id", "min_position", "page_token", "count", "uuid"})


def _count(query: CalendlyPageQuery) -> int:
    if not 1 <= query.count <= 100:
        raise ValidationFailed.on("count", "must be 1 to 100")
    return query.count


def _bad_token() -> ValidationFailed:
    return ValidationFailed.on("page_token", "is not a valid page token")


def _token(direction: str, cursor: Any) -> str:
    raw = msgspec.msgpack.encode([direction, cursor])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(query: CalendlyPageQuery) -> tuple[str, Any] | None:
    """("next" | "previous", cursor) of a page_token this service made, or a 400 on page_token."""
    if not query.page_token:
        return None
    try:
        raw = base64.urlsafe_b64decode(query.page_token + "=" * (-len(query.page_token) % 4))
        direction, cursor = msgspec.msgpack.decode(raw)
        if direction not in ("next", "previous"):
            raise ValueError(direction)
        return direction, cursor
    except (binascii.Error, ValueError, TypeError, msgspec.DecodeError):
        raise _bad_token() from None


def _db_cursor(token: tuple[str, Any] | None) -> str | None:
    """The keyset cursor a scheduled_events page_token carries (checked now: a 400 on page_token)."""
    if token is None:
        return None
    cursor = token[1]
    if not (isinstance(cursor, list) and len(cursor) == 1 and isinstance(cursor[0], str)):
        raise _bad_token()
    try:
        sort_at, _ = decode_cursor("page_token", cursor[0])
    except ValidationFailed:
        raise _bad_token() from None
    if sort_at.tzinfo is None:
        raise _bad_token()
    return cursor[0]


def _pagination(query: CalendlyPageQuery, path: str, next_cursor: Any, previous_cursor: Any) -> dict[str, Any]:
    """Calendly's pagination object; both page URLs repeat every filter of the request."""
    filters = {f: getattr(query, f) for f in query.__struct_fields__ if f not in _PAGE_FIELDS}
    kept = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None}
    next_token = _token("next", next_cursor) if next_cursor is not None else None
    previous_token = _token("previous", previous_cursor) if previous_cursor is not None else None

    def page(token: str | None) -> str | None:
        return f"{query.base_url}/{path}?{urlencode({**kept, 'count': query.count, 'page_token': token})}" \
            if token else None

    return {"count": query.count, "next_page": page(next_token), "previous_page": page(previous_token),
            "next_page_token": next_token, "previous_page_token": previous_token}


def _sort(query: Any, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    """(field, descending) of Calendly's `sort` ("field:asc|desc", comma-separated: the first one orders)."""
    text = query.sort or default
    parts = [p.strip().partition(":") for p in text.split(",")]
    if not all(field in allowed and sep and direction in ("asc", "desc") for field, sep, direction in parts):
        raise ValidationFailed.on("sort", f"must be field:asc or field:desc, field one of {', '.join(allowed)}")
    return parts[0][0], parts[0][2] == "desc"


def _page(query: CalendlyPageQuery, path: str, items: list[Any], key: Callable[[Any], list[Any]],
          descending: bool = False) -> tuple[list[Any], dict[str, Any]]:
    """One page of a short list sorted by `key` (unique, ends with an id); cursors are keys, so no gaps or repeats."""
    count = _count(query)
    token = _read_token(query)
    ordered = sorted(items, key=key, reverse=descending)

    def beyond(item: Any, cursor: list[Any]) -> bool:
        return (key(item) < cursor) if descending else (key(item) > cursor)

    if token is not None and not (isinstance(token[1], list) and all(isinstance(c, str | int) for c in token[1])
                                  and all(len(key(i)) == len(token[1]) for i in ordered[:1])):
        raise _bad_token()
    try:
        if token is None:
            page, more_before, more_after = ordered[:count], False, len(ordered) > count
        elif token[0] == "next":
            rest = [i for i in ordered if beyond(i, token[1])]
            page, more_before, more_after = rest[:count], True, len(rest) > count
        else:
            head = [i for i in ordered if (key(i) > token[1] if descending else key(i) < token[1])]
            page, more_before, more_after = head[-count:], len(head) > count, True
    except TypeError:  # a cursor of other types than the keys: not a token of this list
        raise _bad_token() from None
    next_cursor = key(page[-1]) if page and more_after else None
    previous_cursor = key(page[0]) if page and more_before else None
    return page, _pagination(query, path, next_cursor, previous_cursor)


# --- users, organizations, memberships ---------------------------------------------------------------

async def users_me(reads: Reads, query: CalendlyUsersMeQuery) -> dict[str, Any]:
    """The user behind the token."""
    account = await _account(reads, query)
    user = account.users.get(query.user_id or "")
    if user is None:
        raise NotFound("user")
    zones = await _zones(reads, [user.provider_id])
    return {"resource": _user_resource(query, user, account, zones.get(user.provider_id, "Etc/UTC"))}


async def user_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One user of the organization (`me`: the caller)."""
    account = await _account(reads, query)
    user = account.users.get(query.user_id if query.uuid == "me" else query.uuid)
    if user is None:
        raise NotFound("user")
    zones = await _zones(reads, [user.provider_id])
    return {"resource": _user_resource(query, user, account, zones.get(user.provider_id, "Etc/UTC"))}


async def organization_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """The caller's organization: the account (no plans or trials in the domain: Calendly's paid defaults)."""
    account = await _account(reads, query)
    if query.uuid != account.account_id:
        raise NotFound("organization")
    owner = account.users.get(min(account.users)) if account.users else None
    zone = (await _zones(reads, [owner.provider_id])).get(owner.provider_id, "Etc/UTC") if owner else "Etc/UTC"
    team = next((s for s in account.scopes.values() if getattr(s, "kind", "") == "team"), None)
    return {"resource": {
        "uri": f"{query.base_url}/organizations/{account.account_id}", "name": account.name,
        "slug": team.slug if team else account.account_id, "status": "active", "timezone": zone,
        "created_at": calendly_iso(account.created_at), "updated_at": calendly_iso(account.created_at),
        "plan": "enterprise", "stage": "paid"}}


def _membership(query: CalendlyQuery, account: Any, user: Any, zone: str) -> dict[str, Any]:
    owner = min(account.users) if account.users else None
    return {"uri": f"{query.base_url}/organization_memberships/{user.user_id}",
            "role": "owner" if user.user_id == owner else "user",
            "user": _user_resource(query, user, account, zone),
            "organization": f"{query.base_url}/organizations/{account.account_id}",
            "created_at": calendly_iso(account.created_at), "updated_at": calendly_iso(account.created_at)}


async def organization_memberships(reads: Reads, query: CalendlyMembershipsQuery) -> dict[str, Any]:
    """The organization's memberships, or the one of `user`, by `email` and `role`."""
    account = await _account(reads, query)
    problems = Problems()
    if query.role is not None and query.role not in ("owner", "admin", "user"):
        problems.add("role", "must be owner, admin or user")
    if not query.organization and not query.user:
        problems.add("organization", "either organization or user is required")
    if not 1 <= query.count <= 100:
        problems.add("count", "must be 1 to 100")
    problems.raise_if_any()
    if query.organization and _id_from_uri(query, "organization", "organizations") != account.account_id:
        raise NotFound("organization")
    users = list(account.users.values())
    if query.user:
        users = [(await _user(reads, query))[1]]
    zones = await _zones(reads, [u.provider_id for u in users])
    members = [_membership(query, account, u, zones.get(u.provider_id, "Etc/UTC")) for u in users]
    members = [m for m in members if (query.email is None or m["user"]["email"].lower() == query.email.lower())
               and (query.role is None or m["role"] == query.role)]
    page, pagination = _page(query, "organization_memberships", members, lambda m: [m["created_at"], m["uri"]])
    return {"collection": page, "pagination": pagination}


async def organization_membership_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One membership: its uuid is the member's user id."""
    account = await _account(reads, query)
    user = account.users.get(query.uuid)
    if user is None:
        raise NotFound("organization_membership")
    zones = await _zones(reads, [user.provider_id])
    return {"resource": _membership(query, account, user, zones.get(user.provider_id, "Etc/UTC"))}


# --- event types -------------------------------------------------------------------------------------

def _event_type(query: CalendlyQuery, link: Any, owners: shapes.Owners) -> dict[str, Any]:
    settings = link.settings
    solo = len(settings.hosts) == 1
    pooling = None if solo else ("round_robin" if settings.host_mode == "any" else "collective")
    owner = owners.get(settings.hosts[0], (settings.hosts[0], link.scope.name, "")) if settings.hosts else None
    profile = {"type": "User" if solo else "Team", "name": owner[1] if solo and owner else link.scope.name,
               "owner": f"{query.base_url}/users/{owner[0]}" if owner else ""} if owner else None
    return {
        "uri": f"{query.base_url}/event_types/{link.link_id}", "name": settings.name,
        "active": settings.state == "active", "booking_method": "instant", "slug": settings.slug,
        "scheduling_url": f"{shapes.site_url(query.base_url)}/{link.scope.slug}/{settings.slug}",
        "duration": settings.default_duration, "duration_options": list(settings.durations),
        "kind": "solo" if solo else "group", "pooling_type": pooling,
        "type": "StandardEventType", "color": "#0069ff", "created_at": calendly_iso(link.created_at),
        "updated_at": calendly_iso(link.updated_at), "internal_note": settings.private_name or "",
        "description_plain": settings.description or "", "description_html": settings.description or "",
        "profile": profile, "secret": False, "deleted_at": None, "admin_managed": False, "locations": None,
        "position": 0, "custom_questions": [],
        "kind_description": "One-on-One" if solo else ("Round Robin" if pooling == "round_robin" else "Collective"),
        "locale": LOCALE, "start_time_increment": settings.increment,
        "before_buffer": settings.buffer_before, "after_buffer": settings.buffer_after,
    }


_EVENT_TYPE_SORTS = ("name", "position", "created_at", "updated_at")


async def event_types(reads: Reads, query: CalendlyEventTypesQuery) -> dict[str, Any]:
    """The links a user hosts (`user`), or every link of the organization (`organization`), filtered and sorted."""
    account = await _account(reads, query)
    problems = Problems()
    if not query.user and not query.organization:
        problems.add("organization", "either user or organization is required")
    if not 1 <= query.count <= 100:
        problems.add("count", "must be 1 to 100")
    try:
        field, descending = _sort(query, _EVENT_TYPE_SORTS, "name:asc")
    except ValidationFailed as error:
        problems.add("sort", error.fields["sort"][0])
    provider_id: str | None = None
    if query.user:
        try:
            provider_id = (await _user(reads, query))[1].provider_id
        except ValidationFailed as error:
            problems.add("user", error.fields["user"][0])
    if query.organization:
        try:
            if _id_from_uri(query, "organization", "organizations") != account.account_id:
                raise NotFound("organization")
        except ValidationFailed as error:
            problems.add("organization", error.fields["organization"][0])
    schedule_of: str | None = None  # a schedule's uuid is its user's provider id
    if query.user_availability_schedule is not None:
        schedule_of = _uri_id(problems, query, "user_availability_schedule", "user_availability_schedules")
    problems.raise_if_any()
    owners = _owners(account)
    # Single-use scheduling links (POST /scheduling_links) are not event types: Calendly never lists them.
    links = [link for link in await resources.all_states(reads.pool, "link", query.account_id)
             if link.settings is not None and link.settings.type != "single"
             and (provider_id is None or provider_id in link.settings.hosts)
             and (schedule_of is None or schedule_of in link.settings.hosts)]
    types = [_event_type(query, link, owners) for link in links]
    types = [t for t in types if (query.active is None or t["active"] == query.active)
             and (query.admin_managed is None or t["admin_managed"] == query.admin_managed)]
    page, pagination = _page(query, "event_types", types, lambda t: [t[field], t["uri"]], descending)
    return {"collection": page, "pagination": pagination}


async def event_type_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One event type (a link)."""
    account = await _account(reads, query)
    link = await resources.get_state(reads.pool, "link", query.uuid, query.account_id)
    if link is None or link.settings is None:
        raise NotFound("event_type")
    return {"resource": _event_type(query, link, _owners(account))}


async def event_type_available_times(reads: Reads, query: CalendlyAvailableTimesQuery) -> dict[str, Any]:
    """Rank-1 slots of the link's default duration in [start_time, end_time)."""
    now = int(reads.clock())
    problems = Problems()
    link_id = _uri_id(problems, query, "event_type", "event_types")
    start, end = _range(problems, query, now)
    problems.raise_if_any()
    link = await resources.get_state(reads.pool, "link", link_id or "", query.account_id)
    if link is None:
        raise NotFound("event_type")
    if link.settings.state != "active":
        return {"collection": []}
    hosts = await reads.host_calendars(link.settings.hosts, now, start, end)
    rules = msgspec.structs.replace(link_rules(link), durations=[link.settings.default_duration])
    booking = f"{query.base_url.rsplit('/calendly', 1)[0]}/book/{link.scope.slug}/{link.settings.slug}"
    return {"collection": [
        {"status": "available", "invitees_remaining": 1, "start_time": calendly_time(slot.start),
         "scheduling_url": f"{booking}/{calendly_time(slot.start)}"}
        for slot in link_slots(rules, hosts, now, start, end) if slot.rank == 1]}


async def _schedule(reads: Reads, query: CalendlyQuery, user: Any) -> dict[str, Any]:
    """The provider's working hours as Calendly's availability schedule."""
    rows = await calendars.providers(reads.pool, [user.provider_id])
    if user.provider_id not in rows:
        raise NotFound("user")
    schedule = msgspec.json.decode(rows[user.provider_id]["schedule"], type=ProviderSchedule)
    rules: list[dict[str, Any]] = [
        {"type": "wday", "wday": day, "date": None,
         "intervals": [{"from": r.start_time, "to": r.end_time}
                       for r in sorted(schedule.weekly_rules, key=lambda r: r.start_time) if r.day_of_week == day]}
        for day in DAYS]
    rules += [{"type": "date", "date": o.date, "wday": None,
               "intervals": [{"from": i.start_time, "to": i.end_time} for i in o.intervals]}
              for o in sorted(schedule.date_overrides, key=lambda o: o.date)]
    return {"uri": f"{query.base_url}/user_availability_schedules/{user.provider_id}", "default": True,
            "name": "Working hours", "user": f"{query.base_url}/users/{user.user_id}",
            "timezone": schedule.time_zone, "rules": rules}


async def user_availability_schedules(reads: Reads, query: CalendlyAvailabilitySchedulesQuery) -> dict[str, Any]:
    """One default schedule: all seven `wday` rules (days off with no intervals) and a `date` rule per override."""
    _, user = await _user(reads, query)
    return {"collection": [await _schedule(reads, query, user)]}


async def user_availability_schedule_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One availability schedule: its uuid is the user's provider id."""
    account = await _account(reads, query)
    user = next((u for u in account.users.values() if u.provider_id == query.uuid), None)
    if user is None:
        raise NotFound("availability_schedule")
    return {"resource": await _schedule(reads, query, user)}


async def user_busy_times(reads: Reads, query: CalendlyBusyTimesQuery) -> dict[str, Any]:
    """Meetings, holds and blocks ("calendly", with buffers) and external busy times in the range."""
    now = reads.clock()
    problems = Problems()
    user_id = _uri_id(problems, query, "user", "users")
    start, end = _range(problems, query, now)
    problems.raise_if_any()
    _, user = await _user(reads, query, user_id=user_id)
    collection = []
    for busy in await calendars.busy_times(reads.pool, user.provider_id, now, start, end):
        item: dict[str, Any] = {"type": "external" if busy.kind == EXTERNAL else "calendly",
                                "start_time": calendly_time(busy.start), "end_time": calendly_time(busy.end),
                                "buffered_start_time": calendly_time(busy.start - busy.buffer_before),
                                "buffered_end_time": calendly_time(busy.end + busy.buffer_after)}
        if busy.kind == "event":
            item["event"] = {"uri": f"{query.base_url}/scheduled_events/{busy.reservation_id}"}
        collection.append(item)
    return {"collection": collection}


# --- scheduled events and invitees -------------------------------------------------------------------

def _instant(problems: Problems, parameter: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(parse_instant(text.replace("Z", "+00:00")), UTC)
    except ValueError:
        problems.add(parameter, "must be an ISO-8601 datetime with a time zone")
        return None


async def scheduled_events(reads: Reads, query: CalendlyScheduledEventsQuery) -> dict[str, Any]:
    """The events of a `user` or an `organization`: by status, start time and invitee email, sorted by start."""
    account = await _account(reads, query)
    problems = Problems()
    if not query.user and not query.organization:
        problems.add("organization", "either user or organization is required")
    if query.group is not None:
        problems.add("group", "groups are not supported")
    if query.status is not None and query.status not in ("active", "canceled"):
        problems.add("status", "must be active or canceled")
    if not 1 <= query.count <= 100:
        problems.add("count", "must be 1 to 100")
    descending = False
    try:
        descending = _sort(query, ("start_time",), "start_time:asc")[1]
    except ValidationFailed as error:
        problems.add("sort", error.fields["sort"][0])
    min_start = _instant(problems, "min_start_time", query.min_start_time)
    max_start = _instant(problems, "max_start_time", query.max_start_time)
    provider_id: str | None = None
    for parameter, collection in (("user", "users"), ("organization", "organizations")):
        if getattr(query, parameter):
            try:
                _id_from_uri(query, parameter, collection)
            except ValidationFailed as error:
                problems.add(parameter, error.fields[parameter][0])
    problems.raise_if_any()
    if query.organization and _id_from_uri(query, "organization", "organizations") != account.account_id:
        raise NotFound("organization")
    if query.user:
        provider_id = (await _user(reads, query))[1].provider_id
    token = _read_token(query)
    cursor = _db_cursor(token)
    status = {"active": "confirmed", "canceled": "canceled"}.get(query.status or "")
    states, metadata = await resources.scheduled_events_page(
        reads.pool, query.account_id, provider_id=provider_id, status=status, min_start=min_start,
        max_start=max_start, invitee_email=query.invitee_email,
        before=cursor if token and token[0] == "previous" else None,
        after=cursor if token and token[0] == "next" else None, limit=query.count, newest_first=descending)
    owners = _owners(account)
    pagination = _pagination(query, "scheduled_events", [metadata["after"]] if metadata["after"] else None,
                             [metadata["before"]] if metadata["before"] else None)
    return {"collection": [shapes.scheduled_event(query.base_url, s, owners) for s in states],
            "pagination": pagination}


async def _event(reads: Reads, query: CalendlyQuery, event_id: str) -> tuple[Any, Any]:
    account = await _account(reads, query)
    state = await resources.get_state(reads.pool, "event", event_id, query.account_id)
    if state is None or state.created is None:
        raise NotFound("scheduled_event")
    return account, state


def _invitee(reads: Reads, query: CalendlyQuery, state: Any) -> dict[str, Any]:
    """The event's invitee, its manage links those of the event's SavvyCal resource."""
    return shapes.invitee(query.base_url, state, event_resource(state, reads.public_url, reads.signing_secret))


async def scheduled_event_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One scheduled event (a link event)."""
    account, state = await _event(reads, query, query.uuid)
    return {"resource": shapes.scheduled_event(query.base_url, state, _owners(account))}


async def event_invitees(reads: Reads, query: CalendlyInviteesQuery) -> dict[str, Any]:
    """The event's invitees (its one scheduler), by `status` and `email`, sorted by created_at."""
    problems = Problems()
    if query.status is not None and query.status not in ("active", "canceled"):
        problems.add("status", "must be active or canceled")
    if not 1 <= query.count <= 100:
        problems.add("count", "must be 1 to 100")
    descending = False
    try:
        descending = _sort(query, ("created_at",), "created_at:asc")[1]
    except ValidationFailed as error:
        problems.add("sort", error.fields["sort"][0])
    problems.raise_if_any()
    _, state = await _event(reads, query, query.uuid)
    invitees = [_invitee(reads, query, state)]
    invitees = [i for i in invitees if (query.status is None or i["status"] == query.status)
                and (query.email is None or i["email"].lower() == query.email.lower())]
    page, pagination = _page(query, f"scheduled_events/{query.uuid}/invitees", invitees,
                             lambda i: [i["created_at"], i["uri"]], descending)
    return {"collection": page, "pagination": pagination}


async def event_invitee_get(reads: Reads, query: CalendlyInviteeGetQuery) -> dict[str, Any]:
    """One invitee of a scheduled event."""
    _, state = await _event(reads, query, query.event_uuid)
    if state.created.scheduler.id != query.invitee_uuid:
        raise NotFound("invitee")
    return {"resource": _invitee(reads, query, state)}


# --- webhook subscriptions ---------------------------------------------------------------------------

async def webhook_subscriptions(reads: Reads, query: CalendlyWebhookSubscriptionsQuery) -> dict[str, Any]:
    """The organization's webhook subscriptions of a `scope` (and `user` for scope user)."""
    account = await _account(reads, query)
    problems = Problems()
    if not query.organization:
        problems.add("organization", "is required")
    if query.scope not in ("user", "organization"):
        problems.add("scope", "must be user or organization")
    if query.scope == "user" and not query.user:
        problems.add("user", "is required when scope is user")
    if not 1 <= query.count <= 100:
        problems.add("count", "must be 1 to 100")
    field, descending = "created_at", False
    try:
        field, descending = _sort(query, ("created_at",), "created_at:asc")
    except ValidationFailed as error:
        problems.add("sort", error.fields["sort"][0])
    for parameter, collection in (("user", "users"), ("organization", "organizations")):
        if getattr(query, parameter):
            try:
                _id_from_uri(query, parameter, collection)
            except ValidationFailed as error:
                problems.add(parameter, error.fields[parameter][0])
    problems.raise_if_any()
    if _id_from_uri(query, "organization", "organizations") != account.account_id:
        raise NotFound("organization")
    user_id = _id_from_uri(query, "user", "users") if query.user else None
    states = [s for s in await resources.all_states(reads.pool, "webhook", query.account_id)
              if s.scope == query.scope and (user_id is None or s.scope_user_id == user_id)]
    failing = await deliveries.failing(reads.pool, [s.webhook_id for s in states])
    subscriptions = [shapes.webhook_subscription(query.base_url, s, s.webhook_id in failing) for s in states]
    page, pagination = _page(query, "webhook_subscriptions", subscriptions, lambda w: [w[field], w["uri"]],
                             descending)
    return {"collection": page, "pagination": pagination}


async def webhook_subscription_get(reads: Reads, query: CalendlyGetQuery) -> dict[str, Any]:
    """One webhook subscription."""
    state = await resources.get_state(reads.pool, "webhook", query.uuid, query.account_id)
    if state is None or state.scope is None:
        raise NotFound("webhook_subscription")
    failing = await deliveries.failing(reads.pool, [state.webhook_id])
    return {"resource": shapes.webhook_subscription(query.base_url, state, bool(failing))}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "calendly_users_me": users_me,
    "calendly_event_types": event_types,
    "calendly_event_type_available_times": event_type_available_times,
    "calendly_organization_memberships": organization_memberships,
    "calendly_user_availability_schedules": user_availability_schedules,
    "calendly_user_busy_times": user_busy_times,
    "calendly_user_get": user_get,
    "calendly_organization_get": organization_get,
    "calendly_organization_membership_get": organization_membership_get,
    "calendly_event_type_get": event_type_get,
    "calendly_user_availability_schedule_get": user_availability_schedule_get,
    "calendly_scheduled_events": scheduled_events,
    "calendly_scheduled_event_get": scheduled_event_get,
    "calendly_event_invitees": event_invitees,
    "calendly_event_invitee_get": event_invitee_get,
    "calendly_webhook_subscriptions": webhook_subscriptions,
    "calendly_webhook_subscription_get": webhook_subscription_get,
}
