"""Races of 50 bookings or holds of one time through two command-service processes on real NATS and Postgres:
exactly one wins each round, the others get a sequential loser's 422, and no two reservations overlap."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from itertools import combinations

import nats
import pytest

from services.commands.repository import Repository
from shared.eventstore import EventStore
from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send

pytestmark = pytest.mark.integration

ROUNDS = 20
CONTENDERS = 50


@pytest.fixture
def two_command_services(settings_env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Two command-service processes in one queue group, both subscribed before the test starts."""
    procs = [subprocess.Popen([sys.executable, "-m", "services.commands"], env=settings_env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "ready" in line, f"command service did not start: {line!r}"
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


async def assert_calendar_never_overlaps(store: EventStore, provider_id: str) -> int:
    """Fold the provider's stream from the log and check no two bookings or holds share time."""
    _, state = await Repository(store).load(f"provider-{provider_id}")
    taken = [(r.start, r.end) for r in state.calendar.reservations.values()
             if r.kind in ("event", "appointment", "hold")]
    for (a_start, a_end), (b_start, b_end) in combinations(taken, 2):
        assert a_end <= b_start or b_end <= a_start, "two reservations overlap on one provider"
    return len(taken)


def outcome(reply: dict) -> str:
    if reply["ok"]:
        return "won"
    assert reply["error"]["code"] == "validation_failed", reply  # never a 500-like internal error
    assert "start_at" in reply["error"]["fields"], reply  # the same 422 a sequential loser gets
    return "lost"


async def test_fifty_concurrent_bookings_of_one_slot_give_exactly_one_event(
    two_command_services, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    for round_no in range(ROUNDS):
        start = weekday_at(2, 0) + timedelta(minutes=30 * round_no)
        replies = await asyncio.gather(*[send(nc, settings, "create_event", account.event_body(start, name=f"P{i}"))
                                         for i in range(CONTENDERS)])
        results = [outcome(r) for r in replies]
        assert results.count("won") == 1, (round_no, results.count("won"))
    assert await assert_calendar_never_overlaps(store, account.provider_id) == ROUNDS


async def test_fifty_overlapping_holds_give_exactly_one_hold(
    two_command_services, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    for round_no in range(ROUNDS):
        base = weekday_at(3, 0) + timedelta(hours=round_no)
        # 30-minute holds starting at :00 and :15 all overlap one another
        bodies = [{**account.ids, "link_id": account.link_id, "start_at": iso(base + timedelta(minutes=15 * (i % 2)))}
                  for i in range(CONTENDERS)]
        replies = await asyncio.gather(*[send(nc, settings, "hold_slot", body) for body in bodies])
        assert [outcome(r) for r in replies].count("won") == 1, round_no
    assert await assert_calendar_never_overlaps(store, account.provider_id) == ROUNDS


async def test_holds_racing_bookings_of_the_same_time_have_one_winner(
    two_command_services, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    for round_no in range(ROUNDS):
        start = weekday_at(4, 0) + timedelta(hours=round_no)
        holds = [send(nc, settings, "hold_slot", {**account.ids, "service_id": account.service_id,
                                                  "start_at": iso(start)}) for _ in range(CONTENDERS // 2)]
        bookings = [send(nc, settings, "create_event", account.event_body(start, name=f"B{i}"))
                    for i in range(CONTENDERS // 2)]
        contenders = [x for pair in zip(holds, bookings) for x in pair]  # interleaved
        replies = await asyncio.gather(*contenders)
        assert [outcome(r) for r in replies].count("won") == 1, round_no
    assert await assert_calendar_never_overlaps(store, account.provider_id) == ROUNDS


async def test_fifty_concurrent_appointments_of_one_service_slot_give_exactly_one(
    two_command_services, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await bookable_account(nc, settings)
    for round_no in range(ROUNDS // 2):
        start = weekday_at(5, 0) + timedelta(hours=round_no)
        body = {**account.ids, "service_id": account.service_id, "start_at": iso(start), "display_name": "C",
                "email": "c@example.com", "time_zone": "Etc/UTC"}
        replies = await asyncio.gather(*[send(nc, settings, "create_appointment", body) for _ in range(CONTENDERS)])
        assert [outcome(r) for r in replies].count("won") == 1, round_no
    assert await assert_calendar_never_overlaps(store, account.provider_id) == ROUNDS // 2
