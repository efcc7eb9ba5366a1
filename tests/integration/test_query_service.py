"""The query service over real NATS: read-your-writes, the seeds' shapes, the engine's answers."""

from __future__ import annotations

import time
from datetime import date, timedelta

import asyncpg
import nats
import pytest

from projections.calendars.queries import host_calendars
from projections.resources.queries import get_state
from shared.availability import iso_utc, link_slots, parse_instant
from shared.domain.links import link_rules
from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.messaging_query import query

pytestmark = pytest.mark.integration

SLOT_KEYS = {"object", "start_at", "start_at_ts", "end_at", "end_at_ts", "time_zone"}


async def test_query_with_min_position_sees_the_command_it_follows(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings
):
    account = await bookable_account(nc, settings)
    for hour in range(8):
        start = weekday_at(2, 9 + hour)
        booked = await send(nc, settings, "create_event", account.event_body(start))
        assert booked["ok"], booked
        window = {"account_id": account.ids["account_id"], "link_id": account.link_id,
                  "from": iso(start - timedelta(hours=1)), "until": iso(start + timedelta(hours=1)),
                  "min_position": booked["position"]}
        slots = await query(nc, settings, "link_slots", window)
        assert iso(start) not in [s["start_at"] for s in slots]  # the booking is already visible
        event = await query(nc, settings, "event_get", {"account_id": account.ids["account_id"],
                                                         "id": booked["result"]["id"],
                                                         "min_position": booked["position"]})
        assert event == booked["result"]


async def test_link_slots_match_the_engine_on_the_same_inputs(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    account = await bookable_account(nc, settings, durations=[30, 60], buffer_after=15)
    last = None
    for hour in (9, 11, 14):
        last = await send(nc, settings, "create_event", account.event_body(weekday_at(2, hour)))
    start, end = weekday_at(2, 0), weekday_at(2, 0) + timedelta(days=3)
    body = {"account_id": account.ids["account_id"], "link_id": account.link_id, "from": iso(start),
            "until": iso(end), "min_position": last["position"]}
    served = await query(nc, settings, "link_slots", body)
    link = await get_state(pool, "link", account.link_id, account.ids["account_id"])
    now = int(time.time())
    hosts = await host_calendars(pool, link.settings.hosts, now, int(start.timestamp()), int(end.timestamp()))
    expected = link_slots(link_rules(link), hosts, now, int(start.timestamp()), int(end.timestamp()))
    assert served == [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                       "rank": s.rank} for s in expected]
    assert {s["duration"] for s in served} == {30, 60} and all(set(s) == {"start_at", "end_at", "duration", "rank"}
                                                                for s in served)
    assert iso(weekday_at(2, 9)) not in [s["start_at"] for s in served]


async def test_service_slot_shapes_follow_seed_003(command_service, query_service, projector, nc: nats.NATS,
                                                   settings: Settings):
    account = await bookable_account(nc, settings)
    booked = await send(nc, settings, "create_appointment", {
        **account.ids, "service_id": account.service_id, "start_at": iso(weekday_at(2, 10)),
        "display_name": "C", "email": "c@example.com", "time_zone": "Etc/UTC"})
    day = weekday_at(2, 10).date()
    base = {"account_id": account.ids["account_id"], "service_id": account.service_id,
            "time_zone": "America/New_York", "min_position": booked["position"]}
    authed = await query(nc, settings, "service_slots", {**base, "from": day.isoformat(), "until": day.isoformat()})
    aggregated = authed["data"]["aggregated_slots"]
    assert aggregated and set(aggregated[0]) == SLOT_KEYS | {"count"} and aggregated[0]["object"] == "aggregated_slot"
    assert aggregated[0]["start_at"].endswith(("-05:00", "-04:00"))  # the requested zone's offset
    assert parse_instant(aggregated[0]["start_at"]) == aggregated[0]["start_at_ts"]
    assert all(date.fromisoformat(s["start_at"][:10]) == day for s in aggregated)  # local dates of the range
    provider = authed["data"]["provider_slots"][0]
    assert provider["service_provider"]["object"] == "service_provider"
    assert provider["service_provider"]["provider"]["id"] == account.provider_id
    assert set(provider["open"][0]) == SLOT_KEYS and provider["open"][0]["object"] == "slot"
    booked_ts = int(weekday_at(2, 10).timestamp())
    assert booked_ts not in [s["start_at_ts"] for s in aggregated]  # the appointment removed it

    public = await query(nc, settings, "public_service_slots", {**base, "from": day.isoformat(), "limit": 5})
    assert len(public["data"]) == 5 and all(set(s) == SLOT_KEYS for s in public["data"])
    earliest = await query(nc, settings, "earliest_slot", {k: v for k, v in base.items()})
    assert earliest["data"] is not None and set(earliest["data"]) == SLOT_KEYS
    assert earliest["data"]["start_at_ts"] >= time.time()

    missing = await query(nc, settings, "service_slots", {**base, "from": day.isoformat()})
    assert missing["ok"] is False and {"until", "limit"} <= set(missing["error"]["fields"])
    bad_zone = await query(nc, settings, "service_slots", {**base, "until": day.isoformat(), "time_zone": "X/Y"})
    assert "time_zone" in bad_zone["error"]["fields"]


async def test_events_list_pages_walk_back_and_forth_without_gaps(command_service, query_service, projector,
                                                                  nc: nats.NATS, settings: Settings):
    account = await bookable_account(nc, settings)
    last = None
    for i in range(7):
        last = await send(nc, settings, "create_event", account.event_body(weekday_at(2, 8 + i)))
    base = {"account_id": account.ids["account_id"], "limit": 3, "min_position": last["position"]}
    first = await query(nc, settings, "events_list", base)
    assert first["metadata"]["before"] is None and first["metadata"]["limit"] == 3
    second = await query(nc, settings, "events_list", {**base, "after": first["metadata"]["after"]})
    third = await query(nc, settings, "events_list", {**base, "after": second["metadata"]["after"]})
    assert third["metadata"]["after"] is None
    walked = [e["id"] for page in (first, second, third) for e in page["entries"]]
    assert len(walked) == len(set(walked)) == 7
    starts = [e["start_at"] for page in (first, second, third) for e in page["entries"]]
    assert starts == sorted(starts)
    back = await query(nc, settings, "events_list", {**base, "before": third["metadata"]["before"]})
    assert [e["id"] for e in back["entries"]] == [e["id"] for e in second["entries"]]
    bad = await query(nc, settings, "events_list", {**base, "after": "not-a-cursor"})
    assert "after" in bad["error"]["fields"]
    canceled = await send(nc, settings, "cancel_event", {**account.ids, "event_id": walked[0]})
    only_canceled = await query(nc, settings, "events_list", {**base, "state": "canceled",
                                                              "min_position": canceled["position"]})
    assert [e["id"] for e in only_canceled["entries"]] == [walked[0]]


async def test_other_accounts_ids_are_not_found(command_service, query_service, projector, nc: nats.NATS,
                                                settings: Settings):
    ours = await bookable_account(nc, settings)
    theirs = await bookable_account(nc, settings)
    event = await send(nc, settings, "create_event", theirs.event_body(weekday_at(2, 10)))
    for name, body in [("link_get", {"id": theirs.link_id}), ("event_get", {"id": event["result"]["id"]}),
                       ("service_get", {"id": theirs.service_id}), ("provider_get", {"id": theirs.provider_id}),
                       ("link_slots", {"link_id": theirs.link_id}),
                       ("earliest_slot", {"service_id": theirs.service_id})]:
        reply = await query(nc, settings, name, {"account_id": ours.ids["account_id"], **body,
                                                 "min_position": event["position"]})
        assert reply["ok"] is False and reply["error"]["code"] == "not_found", (name, reply)
