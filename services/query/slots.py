"""Availability queries: link slots, service slots, public slots and the earliest slot.

Calendars come from the `calendars` read model for the window asked about; the pure engine
(`shared.availability`) decides. The window policy (defaults and limits) lives here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from services.query.reads import Reads
from shared.availability import iso_in_zone, iso_utc, parse_instant
from shared.availability import link_slots as engine_link_slots
from shared.availability import service_slots as engine_service_slots
from shared.domain.links import link_rules
from shared.domain.service_catalogue import ServiceState
from shared.domain.validation import Problems, parse_date, zone_exists
from shared.errors import NotFound, ValidationFailed
from shared.messages.queries import EarliestSlot, LinkSlots, ServiceSlots

MAX_LINK_WINDOW = 31 * 86400
# Searching without `until`: a week, a month, then a year, so a free slot next week costs a week.
SEARCH_SPANS = (7, 31, 366)


def link_window(query: LinkSlots, now: int) -> tuple[int, int]:
    """[from, until) of a link slots query: defaults now and 7 days on, at most 31 days."""
    problems = Problems()

    def parse(field: str, text: str | None, default: int | None) -> int | None:
        if not text:
            return default
        try:
            return parse_instant(text)
        except ValueError:
            problems.add(field, "must be an ISO-8601 datetime with an offset")
            return None

    start = parse("from", query.from_, now)
    end = parse("until", query.until, start + 7 * 86400 if start is not None else None)
    problems.raise_if_any()
    assert start is not None and end is not None
    if end <= start:
        raise ValidationFailed.on("until", "must be after from")
    if end - start > MAX_LINK_WINDOW:
        raise ValidationFailed.on("until", "must be at most 31 days after from")
    return start, end


async def link_slots(reads: Reads, query: LinkSlots) -> list[dict[str, Any]] | msgspec.Raw:
    """Every (start, duration, rank) of an active link in the window, in UTC."""
    found = await reads.state("link", query.link_id, query.account_id)
    if found is None:
        raise NotFound("link")
    serial, link = found
    now = reads.now()
    start, end = link_window(query, now)
    if link.settings.state != "active":
        return []
    live = reads.calendars
    if not serial or live is None or reads.link_days is None:  # nothing to key a kept answer by
        hosts = await reads.host_calendars(link.settings.hosts, now, start, end)
        return [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration, "rank": s.rank}
                for s in engine_link_slots(link_rules(link), hosts, now, start, end)]
    # The engine is a pure function of the link, the hosts' calendars, now and the window: with the link
    # cached (serial) and the calendars' versions, an answer computed this second is the answer.
    key = ("link", serial, tuple(live.version(h) for h in link.settings.hosts), now, start, end)
    if (answer := reads.answers.get(key)) is not None:
        return answer  # type: ignore[no-any-return]
    # Any other window: assembled from the link's days (services.query.link_days), already JSON.
    answer = msgspec.Raw(reads.link_days.answer(serial, link_rules(link), link.settings.hosts, now, start, end))
    _keep(reads, key, answer, now)
    return answer


def _check_zone(problems: Problems, zone_name: str) -> None:
    problems.check(zone_exists(zone_name), "time_zone", "is not a known IANA time zone")


def _today(reads: Reads, zone_name: str) -> date:
    return datetime.fromtimestamp(reads.clock(), UTC).astimezone(ZoneInfo(zone_name)).date()


def service_dates(reads: Reads, query: ServiceSlots) -> tuple[date, date | None, int | None]:
    """`from`, `until` (inclusive) and `limit` of a service slots query, every fault named at once."""
    problems = Problems()
    _check_zone(problems, query.time_zone)
    from_date: date | None = None
    if query.from_:
        from_date = parse_date(query.from_)
        problems.check(from_date is not None, "from", "must be a date YYYY-MM-DD")
    until_date = None
    if query.until is not None:
        until_date = parse_date(query.until)
        problems.check(until_date is not None, "until", "must be a date YYYY-MM-DD")
    if query.limit is not None:
        problems.check(1 <= query.limit <= 1000, "limit", "must be 1 to 1000")
    if query.until is None and query.limit is None:
        problems.add("until", "either until or limit is required")
        problems.add("limit", "either until or limit is required")
    problems.raise_if_any()
    start = from_date or _today(reads, query.time_zone)
    if until_date is not None:
        if until_date < start:
            raise ValidationFailed.on("until", "must not be before from")
        if (until_date - start).days > 366:
            raise ValidationFailed.on("until", "must be at most 366 days after from")
    return start, until_date, query.limit


def _utc_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


async def _service_providers(reads: Reads, query: ServiceSlots | EarliestSlot) -> tuple[ServiceState, list[Any],
                                                                                  dict[str, list[Any]], Any]:
    """The service, its service providers (filtered by `provider_ids`), each one's extra busy time (blocks
    on the service, the service provider or the service's location), and a serial naming the service and
    location states read (None: not cached, so not a key for an answer)."""
    service, sps, _, extra, states = await _service_state(reads, query)
    wanted = _wanted(query)
    if wanted is not None:
        sps = [sp for sp in sps if sp.provider_id in wanted]
    return service, sps, extra, states


def _wanted(query: ServiceSlots | EarliestSlot) -> set[str] | None:
    """The providers `provider_ids` names, or None: all."""
    return {p.strip() for p in query.provider_ids.split(",")} if query.provider_ids else None


async def _service_state(reads: Reads, query: ServiceSlots | EarliestSlot) -> tuple[
        ServiceState, list[Any], list[str], dict[str, list[Any]], Any]:
    """The service, all its service providers in order and their provider ids, each one's extra busy time,
    and the serial of the states read (kept with those states while they are cached)."""
    found = await reads.state("service", query.service_id, query.account_id)
    if found is None:
        raise NotFound("service")
    serial, service = found
    states: Any = (serial,) if serial else None
    location: tuple[int, Any] | None = None
    if service.created.location_id:
        location = await reads.state("location", f"{query.account_id}-{service.created.location_id}",
                                     query.account_id)
        states = (serial, location[0]) if location and location[0] and states else None
    # Every provider's extra busy time depends on these states only: kept with them while they are cached.
    key = ("service providers", states) if states else None
    kept = reads.answers.get(key)
    if kept is None:
        everyone = service.ordered_providers()
        location_busy = location[1].busy() if location else []
        kept = (everyone, [sp.provider_id for sp in everyone],
                {sp.provider_id: service.blocked_for(sp.service_provider_id) + location_busy for sp in everyone})
        if key is not None:
            _keep(reads, key, kept)
    everyone, ids, extra = kept
    return service, everyone, ids, extra, states


async def _service_result(reads: Reads, query: ServiceSlots | EarliestSlot, public: bool, from_date: date,
                          until_date: date | None, limit: int | None) -> tuple[Any, ServiceState]:
    """The engine's service slots from the read models; without `until`, searched in growing windows."""
    service, sps, extra, _ = await _service_providers(reads, query)
    now = reads.now()
    spans: tuple[int | None, ...] = (None,) if until_date is not None else SEARCH_SPANS
    for span in spans:
        last = from_date + timedelta(days=span) if span is not None else until_date or from_date
        window_start = _utc_midnight(from_date) - 2 * 86400  # a local date starts within ~1 day of UTC's
        window_end = _utc_midnight(last) + 3 * 86400
        hosts = await reads.host_calendars([sp.provider_id for sp in sps], now, window_start, window_end, extra)
        if public:
            hosts = [h for h in hosts if h.schedule.public_bookings.enabled]
        bounded = until_date if span is None else (None if span == SEARCH_SPANS[-1] else last)
        result = engine_service_slots(service.rules(), hosts, now, query.time_zone, from_date, bounded, limit)
        if span is None or span == SEARCH_SPANS[-1] or len(result.aggregated) >= (limit or 0):
            break
    return result, service


def _slot(start: int, end: int, zone_name: str, kind: str = "slot") -> dict[str, Any]:
    return {"object": kind, "start_at": iso_in_zone(start, zone_name), "start_at_ts": start,
            "end_at": iso_in_zone(end, zone_name), "end_at_ts": end, "time_zone": zone_name}


async def service_slots(reads: Reads, query: ServiceSlots) -> dict[str, Any]:
    """Aggregated slots with their counts, and each service provider's open slots."""
    from_date, until_date, limit = service_dates(reads, query)
    result, service = await _service_result(reads, query, False, from_date, until_date, limit)
    by_provider = {sp.provider_id: sp for sp in service.ordered_providers()}
    return {"data": {
        "aggregated_slots": [{**_slot(slot.start, slot.end, query.time_zone, "aggregated_slot"), "count": count}
                             for slot, count in result.aggregated],
        "provider_slots": [
            {"service_provider": {"object": "service_provider", "id": by_provider[p.provider_id].service_provider_id,
                                  "service_id": query.service_id,
                                  "provider": {"object": "provider", "id": p.provider_id,
                                               "display_name": by_provider[p.provider_id].display_name}},
             "open": [_slot(s.start, s.end, query.time_zone) for s in p.open]}
            for p in result.providers],
    }}


async def public_service_slots(reads: Reads, query: ServiceSlots) -> dict[str, Any]:
    """The flat list of slots of the service's public-bookings providers."""
    from_date, until_date, limit = service_dates(reads, query)
    result, _ = await _service_result(reads, query, True, from_date, until_date, limit)
    return {"data": [_slot(slot.start, slot.end, query.time_zone) for slot, _ in result.aggregated]}


async def earliest_slot(reads: Reads, query: EarliestSlot) -> dict[str, Any]:
    """The first public slot from now (within 366 days), or null."""
    if not zone_exists(query.time_zone):
        raise ValidationFailed.on("time_zone", "is not a known IANA time zone")
    from_date = _today(reads, query.time_zone)
    if reads.calendars is not None and reads.next_free is not None:
        service, _, everyone, extra, states = await _service_state(reads, query)
        if states is not None:  # the service's state is kept: it keys the index (services.query.next_free)
            # The index holds the service's providers only, so naming others in `provider_ids` changes nothing.
            rules = service.rules()
            first = reads.next_free.earliest((query.service_id, states, query.time_zone, from_date), rules, everyone,
                                             extra, query.time_zone, from_date, reads.now(), _wanted(query))
            return {"data": _slot(first, first + 60 * rules.duration, query.time_zone) if first is not None else None}
    result, _ = await _service_result(reads, query, True, from_date, None, 1)
    slot = result.aggregated[0][0] if result.aggregated else None
    return {"data": _slot(slot.start, slot.end, query.time_zone) if slot else None}


def _keep(reads: Reads, key: tuple[Any, ...], answer: Any, second: int | None = None) -> None:
    """Keep an answer for its key (`services.query.answers`: within a byte budget; per-second answers of an
    earlier second go)."""
    reads.answers.keep(key, answer, second)


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]]
HANDLERS = {"link_slots": link_slots, "service_slots": service_slots, "public_service_slots": public_service_slots,
            "earliest_slot": earliest_slot}
