"""The query service's in-memory calendars: read-your-writes under concurrency, commit order, equal to the log.

Stories: many clients book and query at once with `min_position` of their last booking, and no answer
offers a slot that any booking at or before that position took (kept answers and kept days warm); readers
that do not wait get no slot whose booking's position was reached before they asked, nor is a slot hidden
once its cancellation's was; the earliest-slot index likewise; a host's busy times in memory equal the
`calendars` read model and a fresh load from the log; a past reservation moved into the future after it
was pruned is found in the log.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta
from typing import NamedTuple

import asyncpg
import nats
import pytest

from projections.calendars.memory import LiveCalendars
from projections.calendars.queries import host_calendars
from projections.runner import tx_of
from shared.availability import LinkRules, iso_utc, link_slots, parse_instant
from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.messages.events import ProviderCreated, ReservationMoved, TimeReserved, encode_event, event_type
from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.messaging_query import query

pytestmark = pytest.mark.integration

CLIENTS = 12
BOOKINGS_PER_CLIENT = 4


def _busy_view(calendars: list) -> dict[str, list[tuple[int, int, int, int]]]:
    return {c.provider_id: sorted(tuple(b) for b in c.busy) for c in calendars}


class Answer(NamedTuple):
    """One link_slots answer of the race: the position it waited for, its window and the starts it offered."""

    min_position: int
    start: str
    end: str
    served: set[str]


async def test_clients_booking_at_once_are_offered_no_slot_booked_at_or_before_their_min_position(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    """Clients book distinct slots of one host's day and, after each booking, ask at once for the day's slots
    (the same window, which a kept answer may serve, and a window moved per request, assembled from kept
    days) and for their event, with `min_position` of that booking. No answer offers a slot that any
    client's booking took at or before that position in the log's order ((tx id, position), the order
    `min_position` waits by), whichever client booked it; every client reads its own event back."""
    account = await bookable_account(nc, settings)
    account_id = account.ids["account_id"]
    day = weekday_at(2, 0)
    rng = random.Random(7)
    whole_day = {"account_id": account_id, "link_id": account.link_id, "from": iso(day),
                 "until": iso(day + timedelta(days=1))}

    def moved() -> dict[str, str]:
        """The day with its ends moved by up to an hour, on any second: never a kept answer's window."""
        return {**whole_day, "from": iso(day - timedelta(seconds=rng.randrange(3600))),
                "until": iso(day + timedelta(days=1, seconds=rng.randrange(3600)))}

    days = query_service.service.reads.link_days  # type: ignore[attr-defined]
    while not isinstance(await query(nc, settings, "link_slots", whole_day), list):
        await asyncio.sleep(0.01)  # the link reaches the read models a moment after create_link's reply
    await query(nc, settings, "link_slots", moved())
    warm = days.computed
    assert warm >= 2 and days.days  # the link's days are computed and kept before the race
    answers: list[Answer] = []
    bookings: dict[str, int] = {}  # booked slot start -> its reply's position
    problems: list[str] = []

    async def client(index: int) -> None:
        for k in range(BOOKINGS_PER_CLIENT):
            start = day + timedelta(minutes=30 * (index + CLIENTS * k))
            booked = await send(nc, settings, "create_event", account.event_body(start, name=f"Client {index}"))
            assert booked["ok"], booked
            position = booked["position"]
            bookings[iso(start)] = position
            windows = [{**whole_day, "min_position": position}, {**moved(), "min_position": position}]
            *offered, event = await asyncio.gather(
                *[query(nc, settings, "link_slots", window) for window in windows],
                query(nc, settings, "event_get", {"account_id": account_id, "id": booked["result"]["id"],
                                                  "min_position": position}))
            for window, slots in zip(windows, offered, strict=True):
                assert isinstance(slots, list), slots
                answers.append(Answer(position, window["from"], window["until"], {s["start_at"] for s in slots}))
            if event != booked["result"]:
                problems.append(f"client {index}: event {booked['result']['id']} not read back")

    await asyncio.gather(*[client(i) for i in range(CLIENTS)])
    assert problems == []
    order = {position: (await tx_of(pool, position), position)
             for position in {*bookings.values(), *(a.min_position for a in answers)}}
    checked = 0
    for answer in answers:
        for slot, position in bookings.items():
            if order[position] <= order[answer.min_position] and answer.start <= slot < answer.end:
                checked += 1
                if slot in answer.served:
                    problems.append(f"{slot} (booked at {position}) offered at min_position {answer.min_position}")
    assert problems == []
    total = CLIENTS * BOOKINGS_PER_CLIENT
    assert len(answers) == 2 * total
    assert checked > 4 * total  # most answers were checked against other clients' bookings, not only their own
    assert days.computed > warm  # the kept days were computed again as bookings landed


async def test_readers_without_min_position_get_no_slot_whose_booking_position_was_reached_before_they_asked(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings
):
    """Readers poll the slots without waiting while bookings commit; once a booking's reply is in hand, no
    answer that started afterwards shows its slot (the calendars only move forward, in commit order)."""
    account = await bookable_account(nc, settings)
    account_id = account.ids["account_id"]
    day = weekday_at(3, 0)
    window = {"account_id": account_id, "link_id": account.link_id, "from": iso(day),
              "until": iso(day + timedelta(hours=12))}
    committed: dict[str, float] = {}  # slot start -> when its booking's reply arrived
    violations: list[str] = []
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            asked = time.monotonic()
            taken_before = {start for start, at in committed.items() if at <= asked}
            slots = await query(nc, settings, "link_slots", window)
            assert isinstance(slots, list), slots
            served = {s["start_at"] for s in slots}
            violations.extend(f"{start} served after its booking committed" for start in taken_before & served)

    async def booker(offset: int) -> None:
        for k in range(6):
            start = day + timedelta(minutes=30 * (offset + 4 * k))
            booked = await send(nc, settings, "create_event", account.event_body(start))
            assert booked["ok"], booked
            # Once the position is reached here, every later answer must leave the slot out.
            await query(nc, settings, "link_slots", {**window, "min_position": booked["position"]})
            committed[iso(start)] = time.monotonic()

    while not isinstance(await query(nc, settings, "link_slots", window), list):
        await asyncio.sleep(0.01)  # the link reaches the read models a moment after create_link's reply
    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.gather(*[booker(i) for i in range(4)])
    done.set()
    await asyncio.gather(*readers)
    assert violations == []
    final = await query(nc, settings, "link_slots", window)
    assert not {s["start_at"] for s in final} & set(committed)


async def test_a_hosts_busy_times_in_memory_equal_the_read_model_and_a_load_from_the_log(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    """After bookings, a reschedule, a cancellation and external busy times, the query service's calendars
    equal the `calendars` read model, and so does a fresh LiveCalendars following the log from position 0."""
    account = await bookable_account(nc, settings)
    ids, provider = account.ids, account.provider_id
    booked = [await send(nc, settings, "create_event", account.event_body(weekday_at(2, h))) for h in (9, 11, 13)]
    assert all(b["ok"] for b in booked), booked
    moved = await send(nc, settings, "reschedule_event", {
        **ids, "event_id": booked[0]["result"]["id"], "start_at": iso(weekday_at(2, 15)),
        "end_at": iso(weekday_at(2, 15, 30))})
    canceled = await send(nc, settings, "cancel_event", {**ids, "event_id": booked[1]["result"]["id"]})
    synced = await send(nc, settings, "sync_external_busy_times", {
        **ids, "provider_id": provider, "from": iso(weekday_at(2, 0)), "until": iso(weekday_at(2, 0) + timedelta(days=2)),
        "busy_times": [{"start_at": iso(weekday_at(2, 17)), "end_at": iso(weekday_at(2, 18))}]})
    last = max(r["position"] for r in (*booked, moved, canceled, synced) if r["ok"])
    await query(nc, settings, "link_slots", {"account_id": ids["account_id"], "link_id": account.link_id,
                                             "min_position": last})
    now = int(time.time())
    start, end = now, now + 10 * 86400
    live = query_service.calendars  # type: ignore[attr-defined]
    in_memory = _busy_view(live.host_calendars([provider], now))
    from_rows = _busy_view(await host_calendars(pool, [provider], now, start, end))
    fresh = LiveCalendars()
    while await fresh.catch_up(pool, 2) == 2:  # small batches: many batch boundaries
        continue
    from_log = _busy_view(fresh.host_calendars([provider], now))
    assert in_memory == from_rows == from_log
    assert len(in_memory[provider]) == 3  # two events left and one external busy time


async def test_a_pruned_reservation_moved_into_the_future_is_found_in_the_log(pool: asyncpg.Pool):
    """A booking that ended days ago is pruned from memory; moving it into the future brings it back, with
    its kind and buffers, read from its TimeReserved in the provider's stream."""
    store = EventStore(pool)
    now = int(time.time())
    provider, stream = "prov_pruned", "provider-prov_pruned"

    def new(event: object) -> NewEvent:
        return NewEvent(f"evt_{time.time_ns()}", event_type(event), encode_event(event))  # type: ignore[arg-type]

    await store.append([StreamAppend(stream, 0, [
        new(ProviderCreated(provider_id=provider, account_id="acct_p", display_name="P", email=None, user_id=None,
                            time_zone="Etc/UTC", created_at="2026-01-01T00:00:00Z")),
        new(TimeReserved(provider_id=provider, reservation_id="evt_old", kind="event",
                         start_at=_iso(now - 5 * 86400), end_at=_iso(now - 5 * 86400 + 1800), buffer_after=15)),
    ])], command_id=None, command_name="test", account_id="acct_p")
    live = LiveCalendars()
    await live.catch_up(pool)
    assert live.prune(now) == 1 and live.host_calendars([provider], now)[0].busy == []
    await store.append([StreamAppend(stream, 2, [new(ReservationMoved(
        provider_id=provider, reservation_id="evt_old", start_at=_iso(now + 86400), end_at=_iso(now + 88200)))])],
        command_id=None, command_name="test", account_id="acct_p")
    await live.catch_up(pool)
    assert [tuple(b) for b in live.host_calendars([provider], now)[0].busy] == [(now + 86400, now + 88200, 0, 900)]


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def test_windows_assembled_from_kept_days_show_bookings_and_cancellations_reached_before_the_ask(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings, pool: asyncpg.Pool
):
    """Readers ask for a different window each time (so no answer of the second is reused: every one is
    assembled from the link's kept days) while bookers book and cancel. No answer computed after a booking
    committed shows its slot, none asked after a cancellation was read back hides it, and at the end the
    answer equals the engine's over calendars folded afresh from the log."""
    account = await bookable_account(nc, settings)
    account_id = account.ids["account_id"]
    day = weekday_at(3, 0)
    rng = random.Random(13)
    booked_at: dict[str, float] = {}  # slot start -> when its booking's position was reached
    cancel_sent: dict[str, float] = {}  # slot start -> when its cancellation was sent
    freed_at: dict[str, float] = {}  # slot start -> when its cancellation's position was reached
    violations: list[str] = []
    done = asyncio.Event()

    def window() -> tuple[datetime, datetime]:
        start = day + timedelta(minutes=15 * rng.randrange(0, 40), seconds=rng.randrange(0, 60))
        return start, start + timedelta(minutes=15 * rng.randrange(8, 96))

    async def reader() -> None:
        while not done.is_set():
            start, end = window()
            asked = time.monotonic()
            slots = await query(nc, settings, "link_slots", {"account_id": account_id, "link_id": account.link_id,
                                                            "from": iso(start), "until": iso(end)})
            answered = time.monotonic()
            assert isinstance(slots, list), slots
            served = {s["start_at"] for s in slots}
            for slot, at in list(booked_at.items()):
                if at <= asked and slot in served and cancel_sent.get(slot, float("inf")) >= answered:
                    violations.append(f"{slot} served after its booking committed")
            for slot, at in list(freed_at.items()):
                inside = iso(start) <= slot and iso_utc(parse_instant(slot) + 1800) <= iso(end)
                if at <= asked and inside and slot not in served:
                    violations.append(f"{slot} hidden after its cancellation committed")

    async def booker(offset: int) -> None:
        for k in range(5):
            start = day + timedelta(minutes=30 * (offset + 4 * k))
            booked = await send(nc, settings, "create_event", account.event_body(start))
            assert booked["ok"], booked
            await query(nc, settings, "link_slots", {"account_id": account_id, "link_id": account.link_id,
                                                     "min_position": booked["position"]})
            booked_at[iso(start)] = time.monotonic()
            if k % 2 == 0:
                cancel_sent[iso(start)] = time.monotonic()
                canceled = await send(nc, settings, "cancel_event", {**account.ids,
                                                                     "event_id": booked["result"]["id"]})
                assert canceled["ok"], canceled
                await query(nc, settings, "link_slots", {"account_id": account_id, "link_id": account.link_id,
                                                         "min_position": canceled["position"]})
                freed_at[iso(start)] = time.monotonic()

    while not isinstance(await query(nc, settings, "link_slots", {"account_id": account_id,
                                                                  "link_id": account.link_id}), list):
        await asyncio.sleep(0.01)
    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.gather(*[booker(i) for i in range(4)])
    done.set()
    await asyncio.gather(*readers)
    assert violations == []
    assert len(freed_at) == 12 and len(booked_at) == 20

    start, end = day, day + timedelta(days=1)
    final = await query(nc, settings, "link_slots", {"account_id": account_id, "link_id": account.link_id,
                                                     "from": iso(start), "until": iso(end)})
    fresh = LiveCalendars()
    while await fresh.catch_up(pool) == 5000:
        continue
    now = int(time.time())
    expected = link_slots(LinkRules(time_zone="Etc/UTC", durations=[30]), fresh.host_calendars(
        [account.provider_id], now), now, int(start.timestamp()), int(end.timestamp()))
    assert [s["start_at"] for s in final] == [iso_utc(s.start) for s in expected]
    assert not {s["start_at"] for s in final} & (set(booked_at) - set(freed_at))


async def test_the_earliest_slot_index_serves_no_slot_whose_booking_position_was_reached_before_the_ask(
    command_service, query_service, projector, nc: nats.NATS, settings: Settings
):
    """Two bookers take the earliest slot again and again while readers ask for it (all providers, or the one
    by `provider_ids`): once a booking's position is reached, no answer asked afterwards is that slot."""
    account = await bookable_account(nc, settings)
    account_id = account.ids["account_id"]
    booked_at: dict[int, float] = {}  # slot start -> when its booking's position was reached
    violations: list[str] = []
    done = asyncio.Event()
    asks = [{"account_id": account_id, "service_id": account.service_id, "time_zone": "Etc/UTC"},
            {"account_id": account_id, "service_id": account.service_id, "time_zone": "Etc/UTC",
             "provider_ids": account.provider_id}]

    async def reader(index: int) -> None:
        while not done.is_set():
            asked = time.monotonic()
            answer = await query(nc, settings, "earliest_slot", asks[index % 2])
            first = answer["data"]["start_at_ts"]
            if booked_at.get(first, float("inf")) <= asked:
                violations.append(f"{first} served after its booking committed")

    async def booker() -> None:
        position = 0
        taken = 0
        for _ in range(40):  # a stale earliest slot would be refused again and again: bounded, then the count fails
            if taken == 8:
                return
            answer = await query(nc, settings, "earliest_slot", {**asks[0], "min_position": position})
            first = answer["data"]["start_at_ts"]
            booked = await send(nc, settings, "create_appointment", {
                **account.ids, "service_id": account.service_id, "start_at": answer["data"]["start_at"],
                "display_name": "Racer", "email": "r@example.com", "time_zone": "Etc/UTC"})
            if not booked["ok"]:  # the other booker took it, or it started meanwhile: ask again
                continue
            position = booked["position"]
            after = await query(nc, settings, "earliest_slot", {**asks[0], "min_position": position})
            booked_at[first] = time.monotonic()
            taken += 1
            if after["data"]["start_at_ts"] == first:
                violations.append(f"{first} served to its own booker after the booking")

    while not (await query(nc, settings, "earliest_slot", asks[0])).get("data"):
        await asyncio.sleep(0.01)  # the service reaches the read models a moment after its commands' replies
    readers = [asyncio.create_task(reader(i)) for i in range(4)]
    await asyncio.gather(booker(), booker())
    done.set()
    await asyncio.gather(*readers)
    assert violations == []
    assert len(booked_at) == 16
