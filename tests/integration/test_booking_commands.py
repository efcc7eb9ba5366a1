"""Booking commands over real NATS and Postgres: flows, typed errors that append nothing, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import nats
import pytest

from shared.eventstore import EventStore, LogCursor
from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send

pytestmark = pytest.mark.integration


class MovableClock:
    """The command service's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def clock(settings: Settings) -> AsyncIterator[MovableClock]:
    from services.commands.app import bootstrap as command_bootstrap

    movable = MovableClock()
    async with command_bootstrap(settings, clock=movable):
        yield movable


async def event_count(store: EventStore) -> int:
    return len(await store.read_all(LogCursor(), limit=100_000))


async def expect_error(nc: nats.NATS, settings: Settings, store: EventStore, name: str, body: dict,
                       field: str) -> None:
    before = await event_count(store)
    reply = await send(nc, settings, name, body)
    assert reply["ok"] is False, (name, reply)
    assert reply["error"]["code"] == "validation_failed", reply
    assert field in reply["error"]["fields"], (field, reply)
    assert await event_count(store) == before, f"{name} appended events although it failed"


async def test_bad_booking_input_gets_typed_errors_and_appends_nothing(
    clock: MovableClock, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    start = weekday_at(2, 10)
    ok = await send(nc, settings, "create_event", account.event_body(start))
    assert ok["ok"], ok

    await expect_error(nc, settings, store, "create_event",
                       {**account.event_body(start + timedelta(hours=1)), "time_zone": "Mars/Base"}, "time_zone")
    body = account.event_body(start + timedelta(hours=1))
    await expect_error(nc, settings, store, "create_event", {**body, "end_at": iso(start)}, "end_at")
    await expect_error(nc, settings, store, "create_event", account.event_body(start), "start_at")  # taken
    await expect_error(nc, settings, store, "create_event",
                       account.event_body(start + timedelta(hours=1, minutes=7)), "start_at")  # off the grid
    await expect_error(nc, settings, store, "create_event",
                       account.event_body(weekday_at(2, 10) - timedelta(days=3)), "start_at")  # in the past
    await expect_error(nc, settings, store, "create_event",
                       account.event_body(start + timedelta(hours=2), minutes=45), "end_at")  # not offered
    await expect_error(nc, settings, store, "create_event", {**body, "start_at": "tomorrow"}, "start_at")


async def test_canceled_event_canceled_again_and_disabled_link(
    clock: MovableClock, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    start = weekday_at(2, 11)
    event = await send(nc, settings, "create_event", account.event_body(start))
    canceled = await send(nc, settings, "cancel_event", {**account.ids, "event_id": event["result"]["id"],
                                                        "cancel_reason": "conflict"})
    assert canceled["ok"] and canceled["result"]["state"] == "canceled"
    assert canceled["result"]["cancel_reason"] == "conflict" and canceled["result"]["canceled_at"]
    await expect_error(nc, settings, store, "cancel_event", {**account.ids, "event_id": event["result"]["id"]},
                       "event_id")
    rebooked = await send(nc, settings, "create_event", account.event_body(start))  # the time is free again
    assert rebooked["ok"], rebooked

    toggled = await send(nc, settings, "toggle_link", {**account.ids, "link_id": account.link_id})
    assert toggled["result"]["state"] == "disabled"
    await expect_error(nc, settings, store, "create_event", account.event_body(start + timedelta(hours=1)),
                       "link_id")
    await expect_error(nc, settings, store, "hold_slot", {**account.ids, "link_id": account.link_id,
                                                          "start_at": iso(start + timedelta(hours=1))}, "link_id")


async def test_expired_hold_cannot_be_completed_and_frees_its_time(
    clock: MovableClock, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    start = weekday_at(2, 12)
    hold = await send(nc, settings, "hold_slot", {**account.ids, "service_id": account.service_id,
                                                  "start_at": iso(start), "hold_minutes": 10})
    assert hold["ok"] and hold["result"]["state"] == "active"
    blocked = {**account.ids, "service_id": account.service_id, "start_at": iso(start), "display_name": "Other",
               "email": "o@example.com", "time_zone": "Etc/UTC"}
    await expect_error(nc, settings, store, "create_appointment", blocked, "start_at")

    clock.offset = timedelta(minutes=11)
    await expect_error(nc, settings, store, "complete_hold", {
        **account.ids, "booking_intent_id": hold["result"]["id"], "display_name": "Late", "email": "l@example.com",
        "time_zone": "Etc/UTC"}, "booking_intent_id")
    expired = await send(nc, settings, "expire_hold", {**account.ids, "booking_intent_id": hold["result"]["id"]})
    assert expired["ok"] and expired["result"]["state"] == "expired"
    taken = await send(nc, settings, "create_appointment", blocked)  # expired holds occupy nothing
    assert taken["ok"], taken


async def test_hold_completes_into_an_appointment_atomically(clock, nc: nats.NATS, settings: Settings,
                                                            store: EventStore):
    account = await bookable_account(nc, settings)
    start = weekday_at(2, 13)
    hold = await send(nc, settings, "hold_slot", {**account.ids, "service_id": account.service_id,
                                                  "start_at": iso(start)})
    done = await send(nc, settings, "complete_hold", {**account.ids, "booking_intent_id": hold["result"]["id"],
                                                      "display_name": "Cleo Client", "email": "cleo@example.com",
                                                      "time_zone": "Europe/Paris"})
    assert done["ok"], done
    appointment = done["result"]
    assert appointment["object"] == "appointment" and appointment["booking_intent_id"] == hold["result"]["id"]
    assert appointment["start_at"] == iso(start) and appointment["client"]["display_name"] == "Cleo Client"
    await expect_error(nc, settings, store, "complete_hold", {
        **account.ids, "booking_intent_id": hold["result"]["id"], "display_name": "Again",
        "email": "a@example.com", "time_zone": "Etc/UTC"}, "booking_intent_id")


async def test_blocks_with_unknown_attachments_are_refused(clock, nc: nats.NATS, settings: Settings,
                                                           store: EventStore):
    account = await bookable_account(nc, settings)
    window = {"start_at": iso(weekday_at(2, 14)), "end_at": iso(weekday_at(2, 15))}
    for attachment_type, attachment_id, field in [
        ("provider", "prov_unknown", "attachment_id"),
        ("service", "srv_unknown", "attachment_id"),
        ("service_provider", "sp_unknown", "attachment_id"),
        ("location", "nowhere", "attachment_id"),
        ("building", account.provider_id, "attachment_type"),
    ]:
        await expect_error(nc, settings, store, "create_block", {**account.ids, "attachment_type": attachment_type,
                                                                 "attachment_id": attachment_id, **window}, field)
    await expect_error(nc, settings, store, "create_block", {
        **account.ids, "attachment_type": "provider", "attachment_id": account.provider_id,
        "start_at": window["end_at"], "end_at": window["start_at"]}, "end_at")
    block = await send(nc, settings, "create_block", {**account.ids, "attachment_type": "service",
                                                      "attachment_id": account.service_id, **window})
    assert block["ok"], block
    await expect_error(nc, settings, store, "create_appointment", {
        **account.ids, "service_id": account.service_id, "start_at": window["start_at"], "display_name": "C",
        "email": "c@example.com", "time_zone": "Etc/UTC"}, "start_at")
    deleted = await send(nc, settings, "delete_block", {**account.ids, "block_id": block["result"]["id"]})
    assert deleted["ok"]
    booked = await send(nc, settings, "create_appointment", {
        **account.ids, "service_id": account.service_id, "start_at": window["start_at"], "display_name": "C",
        "email": "c@example.com", "time_zone": "Etc/UTC"})
    assert booked["ok"], booked


async def test_reschedule_moves_the_event_and_keeps_the_originals(clock, nc: nats.NATS, settings: Settings):
    account = await bookable_account(nc, settings)
    start = weekday_at(2, 9)
    event = (await send(nc, settings, "create_event", account.event_body(start)))["result"]
    moved = await send(nc, settings, "reschedule_event", {
        **account.ids, "event_id": event["id"], "start_at": iso(start + timedelta(minutes=15)),
        "end_at": iso(start + timedelta(minutes=45)), "reschedule_reason": "later"})
    assert moved["ok"], moved
    result = moved["result"]
    assert result["start_at"] == iso(start + timedelta(minutes=15))  # overlapping its own old time is fine
    assert (result["original_start_at"], result["original_end_at"]) == (event["start_at"], event["end_at"])
    assert result["reschedule_reason"] == "later" and result["rescheduled_at"]


async def test_sweeper_appends_expire_hold_for_due_holds_only(clock, nc: nats.NATS, settings: Settings,
                                                              store: EventStore):
    from services.commands.service import CommandService
    from services.commands.sweeper import HoldSweeper

    account = await bookable_account(nc, settings)
    short = await send(nc, settings, "hold_slot", {**account.ids, "link_id": account.link_id,
                                                   "start_at": iso(weekday_at(2, 15)), "hold_minutes": 5})
    long = await send(nc, settings, "hold_slot", {**account.ids, "link_id": account.link_id,
                                                  "start_at": iso(weekday_at(2, 16)), "hold_minutes": 30})
    done = await send(nc, settings, "hold_slot", {**account.ids, "link_id": account.link_id,
                                                  "start_at": iso(weekday_at(2, 17)), "hold_minutes": 5})
    await send(nc, settings, "release_hold", {**account.ids, "booking_intent_id": done["result"]["id"]})
    sweeper = HoldSweeper(store, CommandService(store, clock=clock))
    while await sweeper.follow():
        continue  # until caught up
    assert await sweeper.expire_due(datetime.now(UTC)) == 0  # nothing is due yet
    clock.offset = timedelta(minutes=6)
    assert await sweeper.expire_due(datetime.now(UTC) + clock.offset) == 1
    types = [e.type for e in await store.read_all(LogCursor(), limit=100_000)]
    assert types.count("hold_expired") == 1
    expired = [e for e in await store.read_stream(f"bi-{short['result']['id']}")]
    assert [e.type for e in expired] == ["slot_held", "hold_expired"]
    assert [e.type for e in await store.read_stream(f"bi-{long['result']['id']}")] == ["slot_held"]
