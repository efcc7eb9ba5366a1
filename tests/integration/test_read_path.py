"""The query service's read path over real NATS: the earliest-slot index, cached states, schedules and blocks.

Stories: the earliest slot of a service follows the changes tried here (a booking of the next
free slot and its cancellation, a hold and its release, provider, service, service-provider and
location blocks, external busy times, a new schedule, public bookings turned off), and each answer of
the query service (in-memory calendars, the next-free index, cached states) equals a search over the
read models' rows without any of them. A link's update, a service's new provider, location and service
blocks and a new schedule are seen by the next query at the change's position. A kept answer is reused
within its second, and not once its window, the second, a host's calendar, the link, the time zone,
`provider_ids` or a block changes.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import nats
import pytest

from projections import PROJECTIONS
from projections.calendars.memory import LiveCalendars
from projections.runner import ProjectionRunner
from services.query import slots
from services.query.link_days import LinkDays
from services.query.reads import Reads, StateCache
from shared.messages.queries import EarliestSlot, LinkSlots
from shared.settings import Settings
from tests.integration.booking_setup import WEEKDAYS, Bookable, bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.messaging_query import query

pytestmark = pytest.mark.integration

LOCATION = "loc_main"


async def _ok(nc: nats.NATS, settings: Settings, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await send(nc, settings, name, body)
    assert reply["ok"], (name, reply)
    return reply  # type: ignore[no-any-return]


async def _service_from(nc: nats.NATS, settings: Settings, account: Bookable, first_day: datetime) -> dict[str, Any]:
    """A 30-minute service at LOCATION, slots every 30 minutes 09:00-17:00 UTC on weekdays from `first_day`,
    offered by the account's provider; returns the add_service_provider reply (the service provider)."""
    service = await _ok(nc, settings, "create_service", {
        **account.ids, "name": "Checkup", "duration": 30, "time_zone": "Etc/UTC", "location_id": LOCATION,
        "slot_rules": [{"days_of_week": WEEKDAYS, "start_time": "09:00", "end_time": "17:00", "interval": 30,
                        "starts_on": first_day.date().isoformat()}]})
    added = await _ok(nc, settings, "add_service_provider", {**account.ids, "service_id": service["result"]["id"],
                                                             "provider_id": account.provider_id})
    return added


async def _schedule(nc: nats.NATS, settings: Settings, account: Bookable, start: str, public: bool = True) -> int:
    reply = await _ok(nc, settings, "set_provider_schedule", {
        **account.ids, "provider_id": account.provider_id, "time_zone": "Etc/UTC",
        "public_bookings": {"enabled": public},
        "weekly_rules": [{"day_of_week": d, "start_time": start, "end_time": "24:00"} for d in WEEKDAYS]})
    return int(reply["position"])


async def test_the_earliest_slot_index_equals_a_search_without_it_after_bookings_holds_blocks_busy_times_and_schedules(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    account = await bookable_account(nc, settings)
    day = weekday_at(3, 0)
    ready = await _service_from(nc, settings, account, day)
    service_provider = ready["result"]
    service_id = service_provider["service_id"]
    question = {"account_id": account.ids["account_id"], "service_id": service_id, "time_zone": "Etc/UTC"}

    async def earliest(reply: dict[str, Any]) -> datetime | None:
        """The query service's answer at the reply's position, checked against a search without the index."""
        served = await query(nc, settings, "earliest_slot", {**question, "min_position": reply["position"]})
        plain = Reads(pool)  # read-model rows and the engine, day by day: no memory, no index, no cache
        await plain.wait_for(reply["position"])
        assert served == await slots.earliest_slot(plain, EarliestSlot(**question))
        return None if served["data"] is None else datetime.fromisoformat(served["data"]["start_at"])

    nine = day.replace(hour=9)
    assert await earliest(ready) == nine

    booked = await _ok(nc, settings, "create_appointment", {
        **account.ids, "service_id": service_id, "provider_id": account.provider_id, "start_at": iso(nine),
        "display_name": "Ann", "email": "ann@example.com", "time_zone": "Etc/UTC"})
    assert await earliest(booked) == nine + timedelta(minutes=30)  # the booking took the next free slot
    assert await earliest(await _ok(nc, settings, "cancel_appointment", {
        **account.ids, "appointment_id": booked["result"]["id"]})) == nine

    held = await _ok(nc, settings, "hold_slot", {**account.ids, "service_id": service_id, "start_at": iso(nine)})
    assert await earliest(held) == nine + timedelta(minutes=30)
    assert await earliest(await _ok(nc, settings, "release_hold", {
        **account.ids, "booking_intent_id": held["result"]["id"]})) == nine

    for minutes, (kind, attached_to) in enumerate([("provider", account.provider_id), ("service", service_id),
                                                   ("service_provider", service_provider["id"]),
                                                   ("location", LOCATION)], start=1):
        block = await _ok(nc, settings, "create_block", {
            **account.ids, "attachment_type": kind, "attachment_id": attached_to, "start_at": iso(nine),
            "end_at": iso(nine + timedelta(minutes=60 * minutes))})
        assert await earliest(block) == nine + timedelta(minutes=60 * minutes), kind
        assert await earliest(await _ok(nc, settings, "delete_block", {
            **account.ids, "block_id": block["result"]["id"]})) == nine, kind

    busy = {**account.ids, "provider_id": account.provider_id, "from": iso(day), "until": iso(day + timedelta(days=1))}
    synced = await _ok(nc, settings, "sync_external_busy_times", {
        **busy, "busy_times": [{"start_at": iso(nine - timedelta(minutes=10)), "end_at": iso(nine + timedelta(hours=2))}]})
    assert await earliest(synced) == nine + timedelta(hours=2)
    assert await earliest(await _ok(nc, settings, "sync_external_busy_times", {**busy, "busy_times": []})) == nine

    later = await _schedule(nc, settings, account, "11:00")
    assert await earliest({"position": later}) == day.replace(hour=11)  # working hours moved it
    assert await earliest({"position": await _schedule(nc, settings, account, "11:00", public=False)}) is None


async def test_a_link_update_a_new_service_provider_blocks_and_a_schedule_are_seen_at_their_positions(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings
):
    account = await bookable_account(nc, settings)
    day = weekday_at(3, 0)
    ready = await _service_from(nc, settings, account, day)
    service_id = ready["result"]["service_id"]
    window = {"account_id": account.ids["account_id"], "link_id": account.link_id, "from": iso(day),
              "until": iso(day + timedelta(days=1))}
    service_day = {"account_id": account.ids["account_id"], "service_id": service_id, "from": day.date().isoformat(),
                   "until": day.date().isoformat(), "time_zone": "Etc/UTC"}

    async def link_slots(position: int) -> list[dict[str, Any]]:
        return await query(nc, settings, "link_slots", {**window, "min_position": position})  # type: ignore[no-any-return]

    async def service_slots(position: int) -> dict[int, int]:
        """Aggregated slot start (epoch seconds) -> count of free providers."""
        reply = await query(nc, settings, "service_slots", {**service_day, "min_position": position})
        return {s["start_at_ts"]: s["count"] for s in reply["data"]["aggregated_slots"]}

    def at(hour: int, minute: int = 0) -> int:
        return int(day.replace(hour=hour, minute=minute).timestamp())

    assert {s["duration"] for s in await link_slots(ready["position"])} == {30}  # the link is read and kept
    updated = await _ok(nc, settings, "update_link", {**account.ids, "link_id": account.link_id, "durations": [45]})
    assert {s["duration"] for s in await link_slots(updated["position"])} == {45}

    assert (await service_slots(ready["position"]))[at(9)] == 1
    other = await _ok(nc, settings, "create_provider", {**account.ids, "display_name": "Bo", "email": "bo@example.com",
                                                        "time_zone": "Etc/UTC"})
    added = await _ok(nc, settings, "add_service_provider", {**account.ids, "service_id": service_id,
                                                             "provider_id": other["result"]["id"]})
    assert (await service_slots(added["position"]))[at(9)] == 2  # the service's new provider (default hours)

    at_location = await _ok(nc, settings, "create_block", {
        **account.ids, "attachment_type": "location", "attachment_id": LOCATION, "start_at": iso(day.replace(hour=9)),
        "end_at": iso(day.replace(hour=10))})
    assert at(9) not in await service_slots(at_location["position"])
    on_service = await _ok(nc, settings, "create_block", {
        **account.ids, "attachment_type": "service", "attachment_id": service_id,
        "start_at": iso(day.replace(hour=10)), "end_at": iso(day.replace(hour=10, minute=30))})
    counts = await service_slots(on_service["position"])
    assert at(9) not in counts and at(10) not in counts and counts[at(10, 30)] == 2

    moved = await _schedule(nc, settings, account, "12:00")
    counts = await service_slots(moved)
    assert counts[at(11)] == 1 and counts[at(12)] == 2  # only Bo before noon
    assert min(s["start_at"] for s in await link_slots(moved)) == iso(day.replace(hour=12))


async def test_a_kept_answer_is_reused_in_its_second_and_recomputed_when_any_input_tried_here_changes(
    command_service, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    """The query service's parts in this process, with a clock that stands still unless moved: an answer
    kept for its second is the same object while its inputs are; changing the window's start or end, the
    second, the host's calendar, the link, the time zone, `provider_ids`, a service or a location block
    gives a new answer."""
    account = await bookable_account(nc, settings)
    day = weekday_at(3, 0)
    service_id = (await _service_from(nc, settings, account, day))["result"]["service_id"]
    clock = [float(int(time.time()))]
    live = LiveCalendars(clock=lambda: clock[0])
    reads = Reads(pool, clock=lambda: clock[0], calendars=live, states=StateCache(live), link_days=LinkDays(live))
    runner = ProjectionRunner(pool, list(PROJECTIONS.values()))

    async def follow() -> None:
        """The read models, then the calendars, to the log's head (as the query service keeps them)."""
        await runner.catch_up()
        while await live.catch_up(pool):
            continue

    async def command(name: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await _ok(nc, settings, name, body)
        await follow()
        return reply

    await follow()
    window = LinkSlots(account_id=account.ids["account_id"], link_id=account.link_id, from_=iso(day),
                       until=iso(day + timedelta(days=1)))
    kept = await slots.link_slots(reads, window)
    assert await slots.link_slots(reads, window) is kept  # the same answer object within its second

    async def answer(query: LinkSlots) -> list[dict[str, Any]]:
        """The link's slots for `query`, as the caller gets them (kept answers are JSON already)."""
        found = await slots.link_slots(reads, query)
        return msgspec.json.decode(found) if isinstance(found, msgspec.Raw) else found

    first = await answer(window)
    assert first  # the link is open all day
    assert await answer(msgspec.structs.replace(window, until=iso(day + timedelta(hours=12)))) \
        == first[:len(first) // 2]  # the window's end is in the key
    later_start = await answer(msgspec.structs.replace(window, from_=iso(day + timedelta(hours=1))))
    assert later_start == first[4:]  # and its start
    clock[0] += 1
    recomputed = await slots.link_slots(reads, window)
    assert recomputed is not kept and await answer(window) == first  # and the second
    await command("create_event", account.event_body(day.replace(hour=9)))
    assert len(await answer(window)) == len(first) - 3  # and the host's calendar
    await command("update_link", {**account.ids, "link_id": account.link_id,
                                                         "durations": [30, 60]})
    assert {s["duration"] for s in await answer(window)} == {30, 60}  # and the link

    question = EarliestSlot(account_id=account.ids["account_id"], service_id=service_id, time_zone="Etc/UTC")
    earliest = await slots.earliest_slot(reads, question)
    assert earliest["data"]["start_at_ts"] == int(day.replace(hour=9, minute=30).timestamp())  # after the event
    assert await slots.earliest_slot(reads, question) == earliest
    in_new_york = await slots.earliest_slot(reads, msgspec.structs.replace(question, time_zone="America/New_York"))
    assert in_new_york["data"]["start_at_ts"] == earliest["data"]["start_at_ts"]
    assert in_new_york["data"]["start_at"] != earliest["data"]["start_at"]  # the time zone is in the key
    other = await command("create_provider", {**account.ids, "display_name": "Bo", "email": "bo@example.com",
                                                        "time_zone": "Etc/UTC"})
    bo = other["result"]["id"]
    await command("set_provider_schedule", {
        **account.ids, "provider_id": bo, "time_zone": "Etc/UTC", "public_bookings": {"enabled": True},
        "weekly_rules": [{"day_of_week": d, "start_time": "10:00", "end_time": "17:00"} for d in WEEKDAYS]})
    await command("add_service_provider", {**account.ids, "service_id": service_id,
                                                                  "provider_id": bo})
    assert await slots.earliest_slot(reads, question) == earliest  # Bo is free later than the first provider
    # Two changes on each provider's calendar, so only `provider_ids` tells the two questions apart.
    await command("sync_external_busy_times", {**account.ids, "provider_id": bo, "from": iso(day - timedelta(days=1)),
                                               "until": iso(day), "busy_times": []})
    only_first = await slots.earliest_slot(reads, msgspec.structs.replace(question, provider_ids=account.provider_id))
    assert only_first == earliest
    only_bo = await slots.earliest_slot(reads, msgspec.structs.replace(question, provider_ids=bo))
    assert only_bo["data"]["start_at_ts"] == int(day.replace(hour=10).timestamp())  # provider_ids are in the key
    for kind, attached_to, free_at in (("service", service_id, 10), ("location", LOCATION, 11)):
        await command("create_block", {
            **account.ids, "attachment_type": kind, "attachment_id": attached_to,
            "start_at": iso(day.replace(hour=9)), "end_at": iso(day.replace(hour=free_at))})
        moved = await slots.earliest_slot(reads, question)
        assert moved["data"]["start_at_ts"] == int(day.replace(hour=free_at).timestamp()), kind  # and the states
