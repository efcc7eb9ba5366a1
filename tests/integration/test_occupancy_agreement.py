"""The command side and the read model agree on what occupies a provider's time, at any `now`.

Random command sequences (events on a link, holds, cancels, reschedules, provider blocks, external busy
syncs, appointments, holds released, expired and completed) run through the command service in-process;
then, for several instants, each provider's calendar folded from its stream and its rows in the read
model give the same busy time, the same booking starts, the same Calendly busy times and the same slots.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from projections import PROJECTIONS
from projections.calendars.queries import busy_times, host_calendars
from projections.runner import ProjectionRunner
from services.commands.app import command_service
from services.commands.repository import Repository
from services.commands.service import CommandService
from shared.availability import LinkRules, link_slots
from shared.availability.occupancy import occupants
from shared.domain.core import link_stream, provider_stream
from shared.domain.links import link_rules
from shared.domain.providers import ProviderState
from shared.eventstore import EventStore
from shared.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)  # a Monday: the commands' clock starts here
QUARTER = timedelta(minutes=15)
SLOTS = 4 * 24 * 3  # booking starts: every quarter hour of three days from T0
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
SCHEDULES = [
    [{"day_of_week": d, "start_time": "00:00", "end_time": "24:00"} for d in WEEKDAYS],
    [{"day_of_week": d, "start_time": "09:00", "end_time": "17:00"} for d in WEEKDAYS],
    [{"day_of_week": d, "start_time": "06:00", "end_time": "12:00"} for d in ["monday", "tuesday", "wednesday"]],
]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def slot(index: int) -> datetime:
    return T0 + index * QUARTER


class Clock:
    """The command service's clock, moved forward by the sequence."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Run:
    """One example's commands: an account with a few providers, a link and a service on all of them."""

    def __init__(self, service: CommandService, clock: Clock) -> None:
        self.service, self.clock = service, clock
        self.ids: dict[str, str] = {}
        self.providers: list[str] = []
        self.link_id = self.service_id = ""
        self.made: dict[str, list[str]] = {"event": [], "hold": [], "appointment": []}

    async def send(self, name: str, body: dict[str, Any]) -> Any:
        payload = {"command_id": f"cmd-{uuid.uuid4().hex}", **self.ids, **body}
        return msgspec.json.decode(await self.service.execute(name, msgspec.json.encode(payload)))

    async def must(self, name: str, body: dict[str, Any]) -> Any:
        reply = await self.send(name, body)
        assert reply["ok"], (name, reply)
        return reply["result"]

    async def set_up(self, schedules: list[int], link: dict[str, Any]) -> None:
        account = await self.must("create_account", {"name": "Ada", "email": "ada@example.com"})
        self.ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
        self.providers = [account["provider_id"]]
        for n in schedules[1:]:
            self.providers.append((await self.must("create_provider", {"display_name": f"P{n}"}))["id"])
        for provider_id, n in zip(self.providers, schedules, strict=True):
            await self.must("set_provider_schedule", {"provider_id": provider_id, "time_zone": "Etc/UTC",
                                                      "weekly_rules": SCHEDULES[n]})
        self.link_id = (await self.must("create_link", {"name": "L", "durations": [30, 60], "time_zone": "Etc/UTC",
                                                        "hosts": self.providers, **link}))["id"]
        self.service_id = (await self.must("create_service", {
            "name": "S", "duration": 30, "time_zone": "Etc/UTC",
            "slot_rules": [{"days_of_week": WEEKDAYS, "start_time": "00:00", "end_time": "24:00",
                            "interval": 15}]}))["id"]
        for provider_id in self.providers:
            await self.must("add_service_provider", {"service_id": self.service_id, "provider_id": provider_id})

    def pick(self, kind: str, index: int) -> str | None:
        made = self.made[kind]
        return made[index % len(made)] if made else None

    async def made_one(self, kind: str, name: str, body: dict[str, Any]) -> None:
        reply = await self.send(name, body)
        if reply["ok"]:
            self.made[kind].append(reply["result"]["id"])

    async def apply(self, op: tuple[Any, ...]) -> None:
        """One generated step; a rejected command is part of the story too."""
        match op:
            case ("advance", minutes):
                self.clock.now += timedelta(minutes=minutes)
            case ("event", at, minutes):
                await self.made_one("event", "create_event", {
                    "link_id": self.link_id, "display_name": "Sal", "email": "sal@example.com", "time_zone": "Etc/UTC",
                    "start_at": iso(slot(at)), "end_at": iso(slot(at) + timedelta(minutes=minutes))})
            case ("cancel_event", which):
                if (event_id := self.pick("event", which)) is not None:
                    await self.send("cancel_event", {"event_id": event_id})
            case ("reschedule", which, at, minutes):
                if (event_id := self.pick("event", which)) is not None:
                    await self.send("reschedule_event", {"event_id": event_id, "start_at": iso(slot(at)),
                                                         "end_at": iso(slot(at) + timedelta(minutes=minutes))})
            case ("hold", on_link, at, hold_minutes):
                target = {"link_id": self.link_id} if on_link else {"service_id": self.service_id}
                await self.made_one("hold", "hold_slot", {**target, "start_at": iso(slot(at)),
                                                          "hold_minutes": hold_minutes})
            case ("hold_ends", how, which):
                if (hold_id := self.pick("hold", which)) is not None:
                    extra = {"display_name": "H", "email": "h@example.com", "time_zone": "Etc/UTC"}
                    await self.send(how, {"booking_intent_id": hold_id, **(extra if how == "complete_hold" else {})})
            case ("appointment", at):
                await self.made_one("appointment", "create_appointment", {
                    "service_id": self.service_id, "start_at": iso(slot(at)), "display_name": "C",
                    "email": "c@example.com", "time_zone": "Etc/UTC"})
            case ("cancel_appointment", which):
                if (appointment_id := self.pick("appointment", which)) is not None:
                    await self.send("cancel_appointment", {"appointment_id": appointment_id})
            case ("block", provider, at, quarters):
                await self.send("create_block", {
                    "attachment_type": "provider", "attachment_id": self.providers[provider % len(self.providers)],
                    "start_at": iso(slot(at)), "end_at": iso(slot(at + quarters))})
            case ("external", provider, at, quarters, busy):
                await self.send("sync_external_busy_times", {
                    "provider_id": self.providers[provider % len(self.providers)], "from": iso(slot(at)),
                    "until": iso(slot(at + quarters)),
                    "busy_times": [{"start_at": iso(slot(a)), "end_at": iso(slot(a + n))} for a, n in busy]})


at = st.integers(0, SLOTS - 1)
steps = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 5, 15, 60, 600])),
    st.tuples(st.just("event"), at, st.sampled_from([30, 60])),
    st.tuples(st.just("cancel_event"), st.integers(0, 9)),
    st.tuples(st.just("reschedule"), st.integers(0, 9), at, st.sampled_from([30, 60])),
    st.tuples(st.just("hold"), st.booleans(), at, st.sampled_from([1, 5, 10, 30])),
    st.tuples(st.just("hold_ends"), st.sampled_from(["release_hold", "expire_hold", "complete_hold"]),
              st.integers(0, 9)),
    st.tuples(st.just("appointment"), at),
    st.tuples(st.just("cancel_appointment"), st.integers(0, 9)),
    st.tuples(st.just("block"), st.integers(0, 2), at, st.integers(1, 12)),
    st.tuples(st.just("external"), st.integers(0, 2), at, st.integers(4, 96),
              st.lists(st.tuples(at, st.integers(1, 8)), max_size=3)),
)
links = st.fixed_dictionaries({"buffer_before": st.sampled_from([0, 15]), "buffer_after": st.sampled_from([0, 30]),
                               "host_mode": st.sampled_from(["any", "all"])})


def as_rows(found: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(msgspec.structs.astuple(r) for r in found)


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedules=st.lists(st.integers(0, len(SCHEDULES) - 1), min_size=1, max_size=3), link=links,
       sequence=st.lists(steps, min_size=8, max_size=30), later=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=3))
async def test_the_command_side_and_the_read_model_see_the_same_occupied_time(
        pool: asyncpg.Pool, settings: Settings, schedules: list[int], link: dict[str, Any],
        sequence: list[tuple[Any, ...]], later: list[int]) -> None:
    clock = Clock()
    run = Run(command_service(EventStore(pool), settings, clock=clock), clock)
    await run.set_up(schedules, link)
    for op in sequence:
        await run.apply(op)
    await ProjectionRunner(pool, list(PROJECTIONS.values())).catch_up()

    repository = Repository(EventStore(pool))  # a fresh fold of each provider's stream from the log
    folded: dict[str, ProviderState] = {p: (await repository.load(provider_stream(p)))[1] for p in run.providers}
    link_state = (await repository.load(link_stream(run.link_id)))[1]
    rules = link_rules(link_state)
    instants = {clock.now, clock.now + timedelta(minutes=7), T0 - timedelta(days=1)}
    instants |= {T0 + timedelta(minutes=m) for m in later}
    for instant in sorted(instants):
        await agree(pool, folded, rules, run.providers, int(instant.timestamp()))


def upcoming(starts: list[int], now: int) -> list[int]:
    return sorted(s for s in starts if s >= now)


async def agree(pool: asyncpg.Pool, folded: dict[str, ProviderState], rules: LinkRules, providers: list[str],
                now: int) -> None:
    """At `now`, both sides give each provider the same busy time, booking starts, busy times and slots."""
    start, end = now + 60, now + 60 + 6 * 86_400  # a day back from `now`, as the command side reads it
    command_side = [folded[p].host_calendar(now) for p in providers]
    read_side = await host_calendars(pool, providers, now, start, end)
    assert [h.provider_id for h in read_side] == providers
    for command_host, read_host in zip(command_side, read_side, strict=True):
        assert sorted(command_host.busy) == sorted(read_host.busy), (command_host.provider_id, now)
        # the read side holds the starts of bookings in its window, the command side a day more of history
        assert upcoming(command_host.booking_starts, now) == upcoming(read_host.booking_starts, now)
        calendar = folded[command_host.provider_id].calendar
        week = (now, now + 7 * 86_400)
        assert as_rows(occupants(calendar.reservations.values(), calendar.external, now, during=week)) == \
            as_rows(await busy_times(pool, command_host.provider_id, now, *week))
    assert link_slots(rules, command_side, now, start, end) == link_slots(rules, read_side, now, start, end)
