"""The query service: answers from the read models and the pure engine only, never by replaying history.

A query's body is the HTTP endpoint's parameters plus `account_id` (and `min_position` for
read-your-writes); its reply is the HTTP response body, or `{"ok": false, "error": {...}}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

import asyncpg
import msgspec

from projections import PROJECTIONS
from services.query import calendly
from projections.calendars import queries as calendars
from projections.resources import queries as resources
from services.query import webhooks as webhook_queries
from services.commands.service import decode_error
from shared.availability import iso_in_zone, iso_utc, link_slots, parse_instant, service_slots
from shared.domain.appointments import appointment_resource
from shared.domain.holds import hold_resource
from shared.domain.link_bookings import event_resource
from shared.domain.links import link_resource, link_rules
from shared.domain.service_catalogue import ServiceState, service_resource
from shared.domain.validation import parse_date, zone_exists
from shared.errors import DomainError, NotFound, Unauthorized, ValidationFailed, internal_error_reply

log = logging.getLogger("sched.query")
MAX_LINK_WINDOW = 31 * 86400
_encoder = msgspec.json.Encoder()


class Query(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account_id: str
    min_position: int | None = None


class LinkSlots(Query, frozen=True, kw_only=True):
    link_id: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str | None = None


class ServiceSlots(Query, frozen=True, kw_only=True):
    service_id: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str | None = None
    limit: int | None = None
    time_zone: str = "Etc/UTC"
    provider_ids: str | None = None


class EarliestSlot(Query, frozen=True, kw_only=True):
    service_id: str
    time_zone: str = "Etc/UTC"
    provider_ids: str | None = None


class ListQuery(Query, frozen=True, kw_only=True):
    before: str | None = None
    after: str | None = None
    limit: int = 20


class EventsList(ListQuery, frozen=True, kw_only=True):
    state: str = "confirmed"
    period: str = "upcoming"


class GetById(Query, frozen=True, kw_only=True):
    id: str


class WebhookDeliveries(ListQuery, frozen=True, kw_only=True):
    webhook_id: str


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    token_hash: str
    min_position: int | None = None


class PublicAccount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account_id: str
    min_position: int | None = None


class Route(NamedTuple):
    query_type: type[msgspec.Struct]
    handler: Callable[[Any], Awaitable[Any]]


def _window(query: LinkSlots, now: int) -> tuple[int, int]:
    def parse(field: str, text: str) -> int:
        try:
            return parse_instant(text)
        except ValueError:
            raise ValidationFailed.on(field, "must be an ISO-8601 datetime with an offset") from None

    start = parse("from", query.from_) if query.from_ else now
    end = parse("until", query.until) if query.until else start + 7 * 86400
    if end <= start:
        raise ValidationFailed.on("until", "must be after from")
    if end - start > MAX_LINK_WINDOW:
        raise ValidationFailed.on("until", "must be at most 31 days after from")
    return start, end


def _limit(value: int) -> int:
    if not 1 <= value <= 100:
        raise ValidationFailed.on("limit", "must be 1 to 100")
    return value


class QueryService:
    """Stateless: any number of instances answer from the same read models."""

    def __init__(self, pool: asyncpg.Pool, public_url: str = "http://127.0.0.1:8000/book",
                 clock: Callable[[], float] = time.time, max_wait: float = 5.0) -> None:
        self.pool = pool
        self.public_url = public_url
        self.clock = clock
        self.max_wait = max_wait
        self.routes: dict[str, Route] = {
            "link_slots": Route(LinkSlots, self.link_slots),
            "service_slots": Route(ServiceSlots, self.service_slots),
            "public_service_slots": Route(ServiceSlots, self.public_service_slots),
            "earliest_slot": Route(EarliestSlot, self.earliest_slot),
            "events_list": Route(EventsList, self.events_list),
            "event_get": Route(GetById, self.event_get),
            "links_list": Route(ListQuery, self.links_list),
            "link_get": Route(GetById, self.link_get),
            "appointment_get": Route(GetById, self.appointment_get),
            "booking_intent_get": Route(GetById, self.booking_intent_get),
            "service_get": Route(GetById, self.service_get),
            "provider_get": Route(GetById, self.provider_get),
            "whoami": Route(WhoAmI, self.whoami),
            "account_exists": Route(PublicAccount, self.account_exists),
            "me": Route(GetById, self.me),
            "webhooks_list": Route(ListQuery, self.webhooks_list),
            "webhook_get": Route(GetById, self.webhook_get),
            "webhook_deliveries": Route(WebhookDeliveries, self.webhook_deliveries),
        }
        self.routes.update({name: Route(calendly.CalendlyQuery, partial(handler, self))
                            for name, handler in calendly.ROUTES.items()})

    async def execute(self, name: str, body: bytes) -> bytes:
        """The JSON reply to one query (never raises for anything a client can send)."""
        try:
            route = self.routes.get(name)
            if route is None:
                raise ValidationFailed.on("query", f"unknown query {name!r}")
            try:
                query = msgspec.json.decode(body, type=route.query_type)
            except msgspec.DecodeError as exc:
                raise decode_error(exc) from None
            min_position = getattr(query, "min_position", None)
            if min_position:
                await self.wait_for(min_position)
            return _encoder.encode(await route.handler(query))
        except DomainError as exc:
            return _encoder.encode(exc.to_reply())
        except Exception:
            log.exception("query %s failed", name)
            return _encoder.encode(internal_error_reply())

    async def wait_for(self, position: int) -> None:
        """Return once every read model has applied the event at `position` (read-your-writes)."""
        tx_id = await self.pool.fetchval("select tx_id::text::bigint from events where position = $1", position)
        if tx_id is None:
            return  # no such event (yet): nothing to wait for
        names = [p.checkpoint for p in PROJECTIONS.values()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while True:
            behind = await self.pool.fetchval(
                "select count(*) from unnest($1::text[]) as n(name) left join checkpoints c on c.name = n.name"
                " where c.name is null or (c.tx_id, c.position) < ($2::text::xid8, $3)", names, str(tx_id), position)
            if not behind:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise DomainError("the read models have not caught up yet; try again",
                                  {"min_position": ["not reached in time"]})
            await asyncio.sleep(0.003)

    # --- slots ------------------------------------------------------------------------------

    async def link_slots(self, query: LinkSlots) -> list[dict[str, Any]]:
        link = await resources.get_state(self.pool, "link", query.link_id, query.account_id)
        if link is None:
            raise NotFound("link")
        now = int(self.clock())
        start, end = _window(query, now)
        if link.settings.state != "active":
            return []
        hosts = await calendars.host_calendars(self.pool, link.settings.hosts, now, start, end)
        return [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration, "rank": s.rank}
                for s in link_slots(link_rules(link), hosts, now, start, end)]

    async def _service_result(self, query: ServiceSlots | EarliestSlot, public: bool,
                              from_date: date, until_date: date | None, limit: int | None) -> tuple[Any, ServiceState]:
        """The engine's service slots from the read models; without `until`, searched in growing windows
        (a week, a month, a year) so a first free slot next week does not cost a year of calendars."""
        service = await resources.get_state(self.pool, "service", query.service_id, query.account_id)
        if service is None:
            raise NotFound("service")
        if not zone_exists(query.time_zone):
            raise ValidationFailed.on("time_zone", "is not a known IANA time zone")
        sps = service.ordered_providers()
        if query.provider_ids:
            wanted = {p.strip() for p in query.provider_ids.split(",")}
            sps = [sp for sp in sps if sp.provider_id in wanted]
        location_busy: list[Any] = []
        if service.created.location_id:
            location = await resources.get_state(self.pool, "location",
                                                 f"{query.account_id}-{service.created.location_id}",
                                                 query.account_id)
            location_busy = location.busy() if location else []
        extra = {sp.provider_id: service.blocked_for(sp.service_provider_id) + location_busy for sp in sps}
        now = int(self.clock())
        spans: list[int | None] = [None] if until_date is not None else [7, 31, 366]
        for span in spans:
            last = from_date + timedelta(days=span) if span is not None else until_date or from_date
            window_start = _utc_midnight(from_date) - 2 * 86400  # a local date starts within ~1 day of UTC's
            window_end = _utc_midnight(last) + 3 * 86400
            hosts = await calendars.host_calendars(self.pool, [sp.provider_id for sp in sps], now, window_start,
                                                   window_end, extra)
            if public:
                hosts = [h for h in hosts if h.schedule.public_bookings.enabled]
            bounded = until_date if span is None else (None if span == 366 else last)
            result = service_slots(service.rules(), hosts, now, query.time_zone, from_date, bounded, limit)
            if span is None or span == 366 or len(result.aggregated) >= (limit or 0):
                break
        return result, service

    def _dates(self, query: ServiceSlots) -> tuple[date, date | None, int | None]:
        if not zone_exists(query.time_zone):
            raise ValidationFailed.on("time_zone", "is not a known IANA time zone")
        today = datetime.fromtimestamp(self.clock(), timezone.utc).astimezone(_zone(query.time_zone))
        from_date = parse_date(query.from_) if query.from_ else today.date()
        if from_date is None:
            raise ValidationFailed.on("from", "must be a date YYYY-MM-DD")
        until_date = None
        if query.until is not None:
            until_date = parse_date(query.until)
            if until_date is None:
                raise ValidationFailed.on("until", "must be a date YYYY-MM-DD")
            if until_date < from_date:
                raise ValidationFailed.on("until", "must not be before from")
            if (until_date - from_date).days > 366:
                raise ValidationFailed.on("until", "must be at most 366 days after from")
        if query.limit is not None and not 1 <= query.limit <= 1000:
            raise ValidationFailed.on("limit", "must be 1 to 1000")
        if until_date is None and query.limit is None:
            raise ValidationFailed("either until or limit is required",
                                   {"until": ["either until or limit is required"],
                                    "limit": ["either until or limit is required"]})
        return from_date, until_date, query.limit

    def _slot(self, start: int, end: int, zone_name: str, kind: str = "slot") -> dict[str, Any]:
        return {"object": kind, "start_at": iso_in_zone(start, zone_name), "start_at_ts": start,
                "end_at": iso_in_zone(end, zone_name), "end_at_ts": end, "time_zone": zone_name}

    async def service_slots(self, query: ServiceSlots) -> dict[str, Any]:
        from_date, until_date, limit = self._dates(query)
        result, service = await self._service_result(query, False, from_date, until_date, limit)
        by_provider = {sp.provider_id: sp for sp in service.ordered_providers()}
        return {"data": {
            "aggregated_slots": [{**self._slot(slot.start, slot.end, query.time_zone, "aggregated_slot"),
                                  "count": count} for slot, count in result.aggregated],
            "provider_slots": [
                {"service_provider": {"object": "service_provider", "id": by_provider[p.provider_id].service_provider_id,
                                      "service_id": query.service_id,
                                      "provider": {"object": "provider", "id": p.provider_id,
                                                   "display_name": by_provider[p.provider_id].display_name}},
                 "open": [self._slot(s.start, s.end, query.time_zone) for s in p.open]}
                for p in result.providers],
        }}

    async def public_service_slots(self, query: ServiceSlots) -> dict[str, Any]:
        from_date, until_date, limit = self._dates(query)
        result, _ = await self._service_result(query, True, from_date, until_date, limit)
        return {"data": [self._slot(slot.start, slot.end, query.time_zone) for slot, _ in result.aggregated]}

    async def earliest_slot(self, query: EarliestSlot) -> dict[str, Any]:
        if not zone_exists(query.time_zone):
            raise ValidationFailed.on("time_zone", "is not a known IANA time zone")
        today = datetime.fromtimestamp(self.clock(), timezone.utc).astimezone(_zone(query.time_zone)).date()
        result, _ = await self._service_result(query, True, today, None, 1)
        first = result.aggregated[0][0] if result.aggregated else None
        return {"data": self._slot(first.start, first.end, query.time_zone) if first else None}

    # --- resources --------------------------------------------------------------------------

    async def events_list(self, query: EventsList) -> dict[str, Any]:
        if query.state not in ("confirmed", "canceled", "all"):
            raise ValidationFailed.on("state", "must be one of: confirmed, canceled, all")
        if query.period not in ("past", "upcoming", "all"):
            raise ValidationFailed.on("period", "must be one of: past, upcoming, all")
        conditions: list[str] = []
        args: list[Any] = []
        if query.state != "all":
            args.append(query.state)
            conditions.append(f"status = ${len(args) + 2}")
        if query.period != "all":
            args.append(datetime.fromtimestamp(self.clock(), timezone.utc))
            conditions.append(f"sort_at {'>=' if query.period == 'upcoming' else '<'} ${len(args) + 2}")
        states, metadata = await resources.page(self.pool, "event", query.account_id, where=" and ".join(conditions),
                                                args=tuple(args), before=query.before, after=query.after,
                                                limit=_limit(query.limit))
        return {"entries": [event_resource(s, self.public_url) for s in states], "metadata": metadata}

    async def links_list(self, query: ListQuery) -> dict[str, Any]:
        states, metadata = await resources.page(self.pool, "link", query.account_id, before=query.before,
                                                after=query.after, limit=_limit(query.limit))
        return {"entries": [link_resource(s, self.public_url) for s in states], "metadata": metadata}

    async def _get(self, kind: str, query: GetById) -> Any:
        state = await resources.get_state(self.pool, kind, query.id, query.account_id)
        if state is None:
            raise NotFound(kind)
        return state

    async def event_get(self, query: GetById) -> dict[str, Any]:
        return event_resource(await self._get("event", query), self.public_url)

    async def link_get(self, query: GetById) -> dict[str, Any]:
        return link_resource(await self._get("link", query), self.public_url)

    async def appointment_get(self, query: GetById) -> dict[str, Any]:
        return appointment_resource(await self._get("appointment", query))

    async def booking_intent_get(self, query: GetById) -> dict[str, Any]:
        return hold_resource(await self._get("booking_intent", query), int(self.clock()))

    async def service_get(self, query: GetById) -> dict[str, Any]:
        return service_resource(await self._get("service", query))

    async def provider_get(self, query: GetById) -> dict[str, Any]:
        rows = await calendars.providers(self.pool, [query.id])
        row = rows.get(query.id)
        if row is None or row["account_id"] != query.account_id:
            raise NotFound("provider")
        schedule = msgspec.json.decode(row["schedule"])
        return {"object": "provider", "id": row["provider_id"], "display_name": row["display_name"],
                "email": row["email"], "time_zone": schedule["time_zone"], "user_id": row["user_id"],
                "created_at": row["created_at"], "schedule": schedule}


    async def whoami(self, query: WhoAmI) -> dict[str, Any]:
        """The account and user of a token. A miss waits once for the read models to reach the log's head:
        a token issued a moment ago (by the CLI, over NATS) works at once."""
        row = await resources.user_of_token(self.pool, query.token_hash)
        if row is None:
            head = await self.pool.fetchval("select max(position) from events")
            if head:
                await self.wait_for(int(head))
            row = await resources.user_of_token(self.pool, query.token_hash)
        if row is None:
            raise Unauthorized("missing or unknown API token")
        return {"account_id": row["account_id"], "user_id": row["user_id"]}

    async def account_exists(self, query: PublicAccount) -> dict[str, Any]:
        if await resources.get_state(self.pool, "account", query.account_id, query.account_id) is None:
            head = await self.pool.fetchval("select max(position) from events")
            if head:
                await self.wait_for(int(head))
        if await resources.get_state(self.pool, "account", query.account_id, query.account_id) is None:
            raise Unauthorized("unknown account")
        return {"account_id": query.account_id}

    async def me(self, query: GetById) -> dict[str, Any]:
        """The user behind a token (GET /v1/me): `id` is the user id."""
        account = await resources.get_state(self.pool, "account", query.account_id, query.account_id)
        user = account.users.get(query.id) if account else None
        if user is None:
            raise NotFound("user")
        return {"id": user.user_id, "display_name": user.name, "email": user.email, "provider_id": user.provider_id,
                "account_id": query.account_id, "personal_scope_id": user.personal_scope_id}

    async def webhooks_list(self, query: ListQuery) -> dict[str, Any]:
        return await webhook_queries.webhooks_list(self.pool, query.account_id, before=query.before,
                                                   after=query.after, limit=_limit(query.limit))

    async def webhook_get(self, query: GetById) -> dict[str, Any]:
        return await webhook_queries.webhook_get(self.pool, query.account_id, query.id)

    async def webhook_deliveries(self, query: WebhookDeliveries) -> dict[str, Any]:
        return await webhook_queries.webhook_deliveries(self.pool, query.account_id, query.webhook_id,
                                                        before=query.before, after=query.after,
                                                        limit=_limit(query.limit))


def _utc_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
