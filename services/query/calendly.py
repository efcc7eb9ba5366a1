"""Calendly's availability API (seed 004) over the same read models and engine as the SavvyCal API.

Resources are addressed by URI, built from the caller's base URL (`…/calendly/users/<user id>`,
`…/event_types/<link id>`, `…/organizations/<account id>`); a parameter that is not such a URI, or a
time range in the past or longer than 7 days, is an error naming the parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from projections.calendars import queries as calendars
from projections.resources import queries as resources
from services.query.reads import Reads
from shared.availability import ProviderSchedule, link_slots, parse_instant
from shared.domain.links import link_rules
from shared.domain.validation import Problems
from shared.errors import NotFound, ValidationFailed
from shared.messages.queries import (
    CalendlyAvailabilitySchedulesQuery,
    CalendlyAvailableTimesQuery,
    CalendlyBusyTimesQuery,
    CalendlyEventTypesQuery,
    CalendlyMembershipsQuery,
    CalendlyQuery,
    CalendlyUsersMeQuery,
)

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MAX_RANGE = 7 * 86400


def calendly_time(seconds: int) -> str:
    """Calendly prints instants with microseconds: 2020-01-02T20:00:00.000000Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id_from_uri(query: CalendlyQuery, parameter: str, collection: str) -> str:
    value = getattr(query, parameter) or ""
    prefix = f"{query.base_url}/{collection}/"
    if not value.startswith(prefix) or "/" in value[len(prefix):] or not value[len(prefix):]:
        raise ValidationFailed.on(parameter, f"must be a {collection[:-1].replace('_', ' ')} URI ({prefix}<id>)")
    return value[len(prefix):]


def _range(query: CalendlyAvailableTimesQuery | CalendlyBusyTimesQuery, now: float) -> tuple[int, int]:
    """start_time and end_time: required, in the future, at most 7 days apart (every fault named at once)."""
    problems = Problems()
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
    problems.raise_if_any()
    start, end = bounds
    problems.check(start >= now, "start_time", "must be in the future")
    if end <= start:
        problems.add("end_time", "must be after start_time")
    elif end - start > MAX_RANGE:
        problems.add("end_time", "must be at most 7 days after start_time")
    problems.raise_if_any()
    return start, end


async def _account(reads: Reads, query: CalendlyQuery) -> Any:
    account = await resources.get_state(reads.pool, "account", query.account_id, query.account_id)
    if account is None:
        raise NotFound("organization")
    return account


def _user_resource(query: CalendlyQuery, user: Any, account: Any, zone: str) -> dict[str, Any]:
    scope = account.scopes.get(user.personal_scope_id)
    return {
        "uri": f"{query.base_url}/users/{user.user_id}", "name": user.name, "slug": scope.slug if scope else None,
        "email": user.email, "scheduling_url": f"{query.base_url.rsplit('/calendly', 1)[0]}/book/"
        f"{scope.slug if scope else user.user_id}", "timezone": zone, "avatar_url": None,
        "created_at": account.created_at, "updated_at": account.created_at,
        "current_organization": f"{query.base_url}/organizations/{account.account_id}",
    }


async def _zones(reads: Reads, provider_ids: list[str]) -> dict[str, str]:
    rows = await calendars.providers(reads.pool, provider_ids)
    return {p: msgspec.json.decode(r["schedule"])["time_zone"] for p, r in rows.items()}


async def _user(reads: Reads, query: CalendlyQuery, parameter: str = "user") -> tuple[Any, Any]:
    account = await _account(reads, query)
    user = account.users.get(_id_from_uri(query, parameter, "users"))
    if user is None:
        raise NotFound("user")
    return account, user


def _count(query: CalendlyEventTypesQuery | CalendlyMembershipsQuery) -> int:
    if not 1 <= query.count <= 100:
        raise ValidationFailed.on("count", "must be 1 to 100")
    return query.count


def _pagination(query: CalendlyEventTypesQuery, path: str, metadata: dict[str, Any]) -> dict[str, Any]:
    def page(token: str | None) -> str | None:
        return f"{query.base_url}/{path}?count={metadata['limit']}&page_token={token}" if token else None

    return {"count": metadata["limit"], "next_page": page(metadata["after"]),
            "previous_page": page(metadata["before"]), "next_page_token": metadata["after"],
            "previous_page_token": metadata["before"]}


async def users_me(reads: Reads, query: CalendlyUsersMeQuery) -> dict[str, Any]:
    account = await _account(reads, query)
    user = account.users.get(query.user_id or "")
    if user is None:
        raise NotFound("user")
    zones = await _zones(reads, [user.provider_id])
    """The user behind the token."""
    return {"resource": _user_resource(query, user, account, zones.get(user.provider_id, "Etc/UTC"))}


def _event_type(query: CalendlyQuery, link: Any, owner: str) -> dict[str, Any]:
    settings = link.settings
    return {
        "uri": f"{query.base_url}/event_types/{link.link_id}", "name": settings.name,
        "active": settings.state == "active", "slug": settings.slug,
        "scheduling_url": f"{query.base_url.rsplit('/calendly', 1)[0]}/book/{link.scope.slug}/{settings.slug}",
        "duration": settings.default_duration, "duration_options": settings.durations,
        "kind": "solo" if len(settings.hosts) == 1 else "group",
        "pooling_type": None if len(settings.hosts) == 1 else ("round_robin" if settings.host_mode == "any"
                                                                 else "collective"),
        "type": "StandardEventType", "color": "#0069ff", "created_at": link.created_at,
        "updated_at": link.updated_at, "internal_note": settings.private_name,
        "description_plain": settings.description, "description_html": settings.description,
        "profile": {"type": "User", "name": link.scope.name, "owner": owner}, "secret": False,
        "booking_method": "instant", "custom_questions": [], "deleted_at": None, "admin_managed": False,
        "locations": None, "position": 0,
    }


async def event_types(reads: Reads, query: CalendlyEventTypesQuery) -> dict[str, Any]:
    """The links a user hosts (`user`), or every link of the organization (`organization`)."""
    account = await _account(reads, query)
    provider_id: str | None = None
    if query.user:
        _, user = await _user(reads, query)
        provider_id = user.provider_id
    elif query.organization:
        if _id_from_uri(query, "organization", "organizations") != account.account_id:
            raise NotFound("organization")
    else:
        raise ValidationFailed.on("user", "either user or organization is required")
    links, metadata = await resources.links_hosted_page(reads.pool, query.account_id, provider_id,
                                                        after=query.page_token, limit=_count(query))
    owners = {u.provider_id: u.user_id for u in account.users.values()}
    return {"collection": [_event_type(query, link, f"{query.base_url}/users/"
                                       f"{owners.get(link.settings.hosts[0], link.settings.hosts[0])}")
                           for link in links],
            "pagination": _pagination(query, "event_types", metadata)}


async def event_type_available_times(reads: Reads, query: CalendlyAvailableTimesQuery) -> dict[str, Any]:
    """Rank-1 slots of the link's default duration in [start_time, end_time)."""
    link_id = _id_from_uri(query, "event_type", "event_types")
    start, end = _range(query, reads.clock())
    link = await resources.get_state(reads.pool, "link", link_id, query.account_id)
    if link is None:
        raise NotFound("event_type")
    if link.settings.state != "active":
        return {"collection": []}
    now = int(reads.clock())
    hosts = await reads.host_calendars(link.settings.hosts, now, start, end)
    rules = msgspec.structs.replace(link_rules(link), durations=[link.settings.default_duration])
    booking = f"{query.base_url.rsplit('/calendly', 1)[0]}/book/{link.scope.slug}/{link.settings.slug}"
    return {"collection": [
        {"status": "available", "invitees_remaining": 1, "start_time": calendly_time(slot.start),
         "scheduling_url": f"{booking}/{calendly_time(slot.start)}"}
        for slot in link_slots(rules, hosts, now, start, end) if slot.rank == 1]}


async def organization_memberships(reads: Reads, query: CalendlyMembershipsQuery) -> dict[str, Any]:
    """The organization's memberships, or the one of `user`."""
    account = await _account(reads, query)
    if query.organization:
        if _id_from_uri(query, "organization", "organizations") != account.account_id:
            raise NotFound("organization")
        users = sorted(account.users.values(), key=lambda u: u.user_id)
    elif query.user:
        users = [(await _user(reads, query))[1]]
    else:
        raise ValidationFailed.on("organization", "either organization or user is required")
    owner = min(account.users) if account.users else None
    zones = await _zones(reads, [u.provider_id for u in users])
    organization = f"{query.base_url}/organizations/{account.account_id}"
    collection = [{"uri": f"{organization}/memberships/{u.user_id}", "role": "owner" if u.user_id == owner else "user",
                   "user": _user_resource(query, u, account, zones.get(u.provider_id, "Etc/UTC")),
                   "organization": organization, "created_at": account.created_at,
                   "updated_at": account.created_at} for u in users[:_count(query)]]
    return {"collection": collection,
            "pagination": {"count": len(collection), "next_page": None, "previous_page": None,
                           "next_page_token": None, "previous_page_token": None}}


async def user_availability_schedules(reads: Reads, query: CalendlyAvailabilitySchedulesQuery) -> dict[str, Any]:
    """One default schedule: all seven `wday` rules (days off with no intervals) and a `date` rule per override."""
    _, user = await _user(reads, query)
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
    user_uri = f"{query.base_url}/users/{user.user_id}"
    return {"collection": [{"uri": f"{query.base_url}/user_availability_schedules/{user.provider_id}",
                            "default": True, "name": "Working hours", "user": user_uri,
                            "timezone": schedule.time_zone, "rules": rules}]}


async def user_busy_times(reads: Reads, query: CalendlyBusyTimesQuery) -> dict[str, Any]:
    """Meetings, holds and blocks ("calendly", with buffers) and external busy times in the range."""
    _, user = await _user(reads, query)
    start, end = _range(query, reads.clock())
    now = reads.clock()
    collection = []
    for row in await calendars.busy_rows(reads.pool, user.provider_id, start, end):
        a, b = int(row["start_at"].timestamp()), int(row["end_at"].timestamp())
        before, after = 60 * (row.get("buffer_before") or 0), 60 * (row.get("buffer_after") or 0)
        if b + after <= start or a - before >= end:
            continue
        if row.get("expires_at") is not None and row["expires_at"].timestamp() <= now:
            continue  # an expired hold is not busy
        item: dict[str, Any] = {"type": "external" if row["kind"] == "external" else "calendly",
                                "start_time": calendly_time(a), "end_time": calendly_time(b),
                                "buffered_start_time": calendly_time(a - before),
                                "buffered_end_time": calendly_time(b + after)}
        if row["kind"] == "event":
            item["event"] = {"uri": f"{query.base_url}/scheduled_events/{row['reservation_id']}"}
        collection.append(item)
    collection.sort(key=lambda item: item["start_time"])
    return {"collection": collection}


HANDLERS = {
    "calendly_users_me": users_me,
    "calendly_event_types": event_types,
    "calendly_event_type_available_times": event_type_available_times,
    "calendly_organization_memberships": organization_memberships,
    "calendly_user_availability_schedules": user_availability_schedules,
    "calendly_user_busy_times": user_busy_times,
}
