"""Booking stories on links: create, cancel and reschedule events; hold, release, expire and complete holds.

Each story: given the events already on the provider, link, event and hold streams (folded with the
deciders' own evolve functions), when one command is decided at a fixed `now`, then the decision's
events per stream and its result, or the field error. Unless a story says otherwise `now` is
Monday 2026-03-02 08:00 UTC, the hosts work Monday-Friday 09:00-17:00 Etc/UTC, and the link offers
30 and 60 minutes on a 15-minute grid in Etc/UTC with no buffers, notice or short horizon.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.availability import parse_instant
from shared.availability.model import AvailabilityRule
from shared.domain import appointments, blocks, holds, link_bookings, links, providers, service_catalogue
from shared.domain.core import Decision, Env, event_stream, hold_stream, link_stream, provider_stream
from shared.errors import ValidationFailed
from shared.messages.commands import CancelEvent, CreateEvent, HoldSlot, ReleaseHold, RescheduleEvent
from shared.messages.events import (
    BusyInterval,
    Event,
    EventCanceled,
    EventCreated,
    EventRescheduled,
    ExternalBusyTimesSynced,
    HoldCompleted,
    HoldExpired,
    HoldReleased,
    LinkToggled,
    ReservationMoved,
    SlotHeld,
    TimeReleased,
    TimeReserved,
)

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN_PROVIDER,
    ANN_SCOPE,
    ANN_SCOPE_SLUG,
    BOB,
    BOB_PROVIDER,
    LINK_ID,
    LINK_SLUG,
    OTHER_ACCOUNT_ID,
    PUBLIC_URL,
    SIGNING_SECRET,
    events_on,
    fixed_env,
    fold,
    intro_settings,
    link_created,
    link_deleted,
    not_found,
    provider_created,
    rejected,
    streams_of,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
NOW_ISO = "2026-03-02T08:00:00Z"

# Every property of the seed 002 Event resource.
SEED_002_EVENT_FIELDS = {
    "id", "state", "summary", "description", "additional_info", "location", "created_at", "start_at",
    "end_at", "duration", "canceled_at", "cancel_reason", "rescheduled_at", "reschedule_reason",
    "original_start_at", "original_end_at", "conferencing", "link", "poll", "scope", "scheduler", "organizer",
    "attendees", "payment", "metadata", "url", "location_settings", "description_settings", "buffer_before",
    "buffer_after", "is_group_session", "maximum_group_size",
    "reschedule_url", "cancel_url",  # DESIGN.md section 9: the invitee's signed manage links
}


# --- time ------------------------------------------------------------------------------------------

def mon(hhmm: str) -> str:
    """An instant on Monday 2026-03-02, UTC."""
    return f"2026-03-02T{hhmm}:00Z"


def tue(hhmm: str) -> str:
    return f"2026-03-03T{hhmm}:00Z"


def sat(hhmm: str) -> str:
    return f"2026-03-07T{hhmm}:00Z"


def plus(iso: str, minutes: int) -> str:
    """`iso` moved by `minutes`, as `...Z`."""
    moment = datetime.fromtimestamp(parse_instant(iso), UTC) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(iso: str) -> datetime:
    return datetime.fromtimestamp(parse_instant(iso), UTC)


# --- the world the deciders read -------------------------------------------------------------------

def _fold_provider(state: Any, events: list[Event]) -> Any:
    return providers.fold(state, events)


def _folder(evolve: Callable[[Any, Event], Any]) -> Callable[[Any, list[Event]], Any]:
    return lambda state, events: fold(evolve, state, events)


# Stream prefix -> (empty state, fold). Every stream a booking decision writes is here.
STREAM_KINDS: dict[str, tuple[Any, Callable[[Any, list[Event]], Any]]] = {
    "provider": (providers.ProviderState(), _fold_provider),
    "link": (links.LinkState(), _folder(links.evolve)),
    "event": (link_bookings.BookedEventState(), _folder(link_bookings.evolve_event)),
    "bi": (holds.HoldState(), _folder(holds.evolve_hold)),
    "service": (service_catalogue.ServiceState(), _folder(service_catalogue.evolve_service)),
    "sp": (service_catalogue.ServiceProviderState(), _folder(service_catalogue.evolve_service_provider)),
    "location": (service_catalogue.LocationState(), _folder(service_catalogue.evolve_location)),
    "blk": (blocks.BlockState(), _folder(blocks.evolve_block)),
    "appt": (appointments.AppointmentState(), _folder(appointments.evolve_appointment)),
}


class World:
    """Every stream's state, kept current by folding given events and each decision's changes.

    One id counter serves the whole story, so ids never repeat across decisions.
    """

    def __init__(self) -> None:
        self.env = fixed_env(NOW)
        self.states: dict[str, Any] = {}

    def at(self, now: datetime) -> Env:
        return dataclasses.replace(self.env, now=now)

    def given(self, stream_id: str, *events: Event) -> World:
        empty, folder = STREAM_KINDS[stream_id.split("-", 1)[0]]
        self.states[stream_id] = folder(self.states.get(stream_id, empty), list(events))
        return self

    def apply(self, decision: Decision) -> Decision:
        """The decision's events are appended: the world moves on. Returns the decision."""
        for stream_id, events in decision.changes:
            self.given(stream_id, *events)
        return decision

    def state(self, stream_id: str) -> Any:
        return self.states.get(stream_id, STREAM_KINDS[stream_id.split("-", 1)[0]][0])

    def provider(self, provider_id: str) -> providers.ProviderState:
        return self.state(provider_stream(provider_id))  # type: ignore[no-any-return]

    def link(self, link_id: str = LINK_ID) -> links.LinkState:
        return self.state(link_stream(link_id))  # type: ignore[no-any-return]

    def event(self, event_id: str) -> link_bookings.BookedEventState:
        return self.state(event_stream(event_id))  # type: ignore[no-any-return]

    def hold(self, booking_intent_id: str) -> holds.HoldState:
        return self.state(hold_stream(booking_intent_id))  # type: ignore[no-any-return]

    def providers_of(self, provider_ids: list[str]) -> dict[str, providers.ProviderState]:
        """The providers a handler would load: those whose streams exist."""
        return {p: self.provider(p) for p in provider_ids if self.provider(p).exists}

    def link_hosts(self, link_id: str = LINK_ID) -> dict[str, providers.ProviderState]:
        settings = self.link(link_id).settings
        return self.providers_of(settings.hosts if settings else [])


def utc_provider(provider_id: str = ANN_PROVIDER) -> list[Event]:
    """A provider working Monday-Friday 09:00-17:00 Etc/UTC (the default schedule)."""
    if provider_id == BOB_PROVIDER:
        return [provider_created(BOB_PROVIDER, time_zone="Etc/UTC", user_id=BOB, display_name="Bob Stone",
                                 email="bob@example.com")]
    return [provider_created(provider_id, time_zone="Etc/UTC")]


def link_settings(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "time_zone": "Etc/UTC", "durations": [30, 60], "default_duration": 30, "increment": 15,
        "buffer_before": 0, "buffer_after": 0, "minimum_notice": 0, "maximum_days_ahead": 30,
        "hosts": [ANN_PROVIDER], "host_mode": "any",
    }
    return intro_settings(**{**base, **changes})


def world_with_link(**changes: Any) -> World:
    """Ann (and Bob, when a host) working 09:00-17:00 UTC, and the intro link with `changes`."""
    world = World()
    settings = link_settings(**changes)
    for host in settings.hosts:
        world.given(provider_stream(host), *utc_provider(host))
    return world.given(link_stream(LINK_ID), link_created(settings=settings))


def reserved(provider_id: str, reservation_id: str, kind: str, start: str, end: str,
             **more: Any) -> TimeReserved:
    return TimeReserved(provider_id=provider_id, reservation_id=reservation_id, kind=kind, start_at=start,
                        end_at=end, **more)


def external_busy(provider_id: str, start: str, end: str, window: tuple[str, str] | None = None
                  ) -> ExternalBusyTimesSynced:
    from_at, until_at = window or (mon("00:00"), "2026-03-09T00:00:00Z")
    return ExternalBusyTimesSynced(provider_id=provider_id, from_at=from_at, until_at=until_at,
                                   busy_times=[BusyInterval(start_at=start, end_at=end)])


# --- commands ----------------------------------------------------------------------------------------

def create_event(world: World, start: str, end: str | None = None, *, now: datetime = NOW,
                 **fields: Any) -> Decision:
    """When Sam Doe books the intro link at [start, end) (30 minutes unless `end` says otherwise)."""
    body: dict[str, Any] = {
        "command_id": "cmd_e", "account_id": ACCOUNT_ID, "link_id": LINK_ID, "display_name": "Sam Doe",
        "email": "sam@example.com", "start_at": start, "end_at": end or plus(start, 30),
        "time_zone": "America/Chicago", **fields,
    }
    link_id = body["link_id"]
    return world.apply(link_bookings.create_event(CreateEvent(**body), world.link(link_id),
                                             world.link_hosts(link_id), world.at(now)))


def cancel_event(world: World, event_id: str, *, now: datetime = NOW, account_id: str = ACCOUNT_ID,
                 reason: str | None = "Conflict") -> Decision:
    command = CancelEvent(command_id="cmd_c", account_id=account_id, event_id=event_id, cancel_reason=reason)
    return world.apply(link_bookings.cancel_event(command, world.event(event_id), world.at(now)))


def reschedule_event(world: World, event_id: str, start: str, end: str | None = None, *, now: datetime = NOW,
                     reason: str | None = "Running late") -> Decision:
    command = RescheduleEvent(command_id="cmd_r", account_id=ACCOUNT_ID, event_id=event_id, start_at=start,
                              end_at=end or plus(start, 30), reschedule_reason=reason)
    state = world.event(event_id)
    assert state.created is not None
    hosts = world.providers_of(state.created.provider_ids)
    return world.apply(link_bookings.reschedule_event(command, state, world.link(state.created.link.id), hosts,
                                                 world.at(now)))


def hold_link_slot(world: World, start: str, *, now: datetime = NOW, **fields: Any) -> Decision:
    command = HoldSlot(command_id="cmd_h", account_id=ACCOUNT_ID, link_id=LINK_ID, start_at=start, **fields)
    return world.apply(holds.hold_link_slot(command, world.link(), world.link_hosts(), world.at(now)))


def release_hold(world: World, hold_id: str, *, now: datetime = NOW) -> Decision:
    command = ReleaseHold(command_id="cmd_rh", account_id=ACCOUNT_ID, booking_intent_id=hold_id)
    return world.apply(holds.release_hold(command, world.hold(hold_id), world.at(now)))


def expire_hold(world: World, hold_id: str, *, now: datetime) -> Decision:
    return world.apply(holds.expire_hold(world.hold(hold_id), world.at(now)))


def complete_link_hold(world: World, hold_id: str, *, now: datetime = NOW, display_name: str = "Sam Doe",
                       email: str = "sam@example.com", time_zone: str = "America/Chicago") -> Decision:
    hold = world.hold(hold_id)
    assert hold.held is not None and hold.held.link_id is not None
    return world.apply(holds.complete_link_hold(
        hold, world.link(hold.held.link_id), world.providers_of(hold.held.provider_ids), world.at(now),
        display_name=display_name, email=email, time_zone=time_zone))


def after(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def the_event_created(decision: Decision) -> EventCreated:
    (created,) = events_on(decision, event_stream(decision.result["id"]))
    assert isinstance(created, EventCreated)
    return created


# --- create_event ----------------------------------------------------------------------------------

class TestCreateEvent:
    def test_a_slot_is_booked_on_the_host_calendar_and_the_event_stream(self) -> None:
        # given Ann hosting a link with 5 minutes before and 10 after each meeting
        world = world_with_link(buffer_before=5, buffer_after=10)

        # when Sam books Monday 10:00-10:30
        decision = create_event(world, mon("10:00"))

        # then the time is reserved on Ann's calendar with the link's buffers, and the event is created
        event_id = decision.result["id"]
        assert event_id.startswith("event_")
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), event_stream(event_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [reserved(
            ANN_PROVIDER, event_id, "event", mon("10:00"), mon("10:30"), buffer_before=5, buffer_after=10)]
        created = the_event_created(decision)
        assert (created.event_id, created.account_id, created.provider_ids) == (
            event_id, ACCOUNT_ID, [ANN_PROVIDER])
        assert (created.start_at, created.end_at, created.duration) == (mon("10:00"), mon("10:30"), 30)
        assert (created.buffer_before, created.buffer_after, created.created_at) == (5, 10, NOW_ISO)
        assert created.booking_intent_id is None

    def test_the_result_is_the_seed_002_event_resource(self) -> None:
        world = world_with_link(buffer_before=5, buffer_after=10)
        answers = [{"id": "field_1", "type": "text", "label": "Topic", "value": "Pricing"}]

        decision = create_event(world, mon("10:00"), mon("11:00"), fields=answers, metadata={"crm_id": 42})

        event = decision.result
        assert set(event) == SEED_002_EVENT_FIELDS
        assert event["state"] == "confirmed"
        assert (event["start_at"], event["end_at"], event["duration"]) == (mon("10:00"), mon("11:00"), 60)
        assert event["summary"] == "Ann Lee and Sam Doe"
        assert event["description"] == "A first chat"
        assert event["created_at"] == NOW_ISO
        assert event["link"] == {"id": LINK_ID, "name": "Intro call", "private_name": "intro (internal)",
                                 "slug": LINK_SLUG}
        assert event["scope"] == {"id": ANN_SCOPE, "name": "Ann Lee", "slug": ANN_SCOPE_SLUG}
        assert event["metadata"] == {"crm_id": 42}
        assert event["url"] == f"{PUBLIC_URL}/events/{event['id']}"
        assert (event["buffer_before"], event["buffer_after"]) == (5, 10)
        assert {k: event[k] for k in ("canceled_at", "cancel_reason", "rescheduled_at", "reschedule_reason",
                                      "original_start_at", "original_end_at")} == dict.fromkeys(
            ("canceled_at", "cancel_reason", "rescheduled_at", "reschedule_reason", "original_start_at",
             "original_end_at"))
        organizer, scheduler = event["organizer"], event["scheduler"]
        assert {k: organizer[k] for k in ("email", "display_name", "first_name", "last_name", "time_zone",
                                          "is_organizer", "is_scheduler", "fields")} == {
            "email": "ann@example.com", "display_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee",
            "time_zone": "Etc/UTC", "is_organizer": True, "is_scheduler": False, "fields": []}
        assert {k: scheduler[k] for k in ("email", "display_name", "first_name", "last_name", "time_zone",
                                          "is_organizer", "is_scheduler", "fields")} == {
            "email": "sam@example.com", "display_name": "Sam Doe", "first_name": "Sam", "last_name": "Doe",
            "time_zone": "America/Chicago", "is_organizer": False, "is_scheduler": True, "fields": answers}
        assert organizer["id"].startswith("attendee_") and scheduler["id"].startswith("attendee_")
        assert organizer["id"] != scheduler["id"]
        assert event["attendees"] == [scheduler, organizer]

    def test_the_result_is_the_resource_of_the_folded_event(self) -> None:
        world = world_with_link()

        decision = create_event(world, mon("10:00"))

        assert decision.result == link_bookings.event_resource(world.event(decision.result["id"]), PUBLIC_URL,
                                                                     SIGNING_SECRET)

    def test_start_and_end_may_carry_any_offset_and_are_stored_in_utc(self) -> None:
        world = world_with_link()

        decision = create_event(world, "2026-03-02T11:00:00+01:00", "2026-03-02T11:30:00+01:00")

        assert (decision.result["start_at"], decision.result["end_at"]) == (mon("10:00"), mon("10:30"))

    @pytest.mark.parametrize(("start", "end", "field"), [
        (mon("10:00"), mon("09:30"), "end_at"),        # end before start
        (mon("10:00"), mon("10:00"), "end_at"),        # empty
        (mon("10:00"), mon("10:45"), "end_at"),        # 45 minutes: the link offers 30 and 60
        (mon("10:00"), "2026-03-02T10:30:30Z", "end_at"),  # not a whole number of minutes
        (mon("10:05"), mon("10:35"), "start_at"),      # off the 15-minute grid
        (mon("08:30"), mon("09:00"), "start_at"),      # before working hours
        (mon("16:45"), mon("17:15"), "start_at"),      # runs past working hours
        (sat("10:00"), sat("10:30"), "start_at"),      # a Saturday
        ("2026-03-02T10:00:00", mon("10:30"), "start_at"),  # no offset
        ("next monday", mon("10:30"), "start_at"),
    ])
    def test_only_a_slot_of_the_engine_can_be_booked(self, start: str, end: str, field: str) -> None:
        world = world_with_link()

        with rejected(field):
            create_event(world, start, end)

    @pytest.mark.parametrize(("fields", "field"), [
        ({"email": "sam-at-example.com"}, "email"),
        ({"email": ""}, "email"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"display_name": "  "}, "display_name"),
    ])
    def test_the_booker_is_validated(self, fields: dict[str, Any], field: str) -> None:
        world = world_with_link()

        with rejected(field):
            create_event(world, mon("10:00"), **fields)

    def test_candidate_starts_are_on_the_increment_grid_of_the_links_zone(self) -> None:
        # given a link in Asia/Kolkata (UTC+05:30) every 20 minutes: local 15:40 is on the grid, 15:30 is not
        world = world_with_link(time_zone="Asia/Kolkata", increment=20)

        with rejected("start_at"):
            create_event(world, mon("10:00"))  # 15:30 in Kolkata
        assert create_event(world, mon("10:10")).result["start_at"] == mon("10:10")  # 15:40 in Kolkata

    def test_the_links_availability_rules_replace_the_hosts_working_hours_at_every_rank(self) -> None:
        # given a link open Monday 18:00-19:00 (rank 1) and 19:00-20:00 (rank 2), after Ann's working hours
        world = world_with_link(availability=[
            AvailabilityRule(day_of_week="monday", start_time="18:00", end_time="19:00", rank=1),
            AvailabilityRule(day_of_week="monday", start_time="19:00", end_time="20:00", rank=2)])

        with rejected("start_at"):
            create_event(world, mon("10:00"))
        assert create_event(world, mon("18:30")).result["start_at"] == mon("18:30")
        assert create_event(world, mon("19:00"), mon("20:00")).result["duration"] == 60
        with rejected("start_at"):
            create_event(world, mon("19:30"), mon("20:30"))

    def test_a_disabled_link_takes_no_booking(self) -> None:
        world = world_with_link(state="disabled")

        with rejected("link_id"):
            create_event(world, mon("10:00"))

    def test_a_deleted_link_is_not_found(self) -> None:
        world = world_with_link().given(link_stream(LINK_ID), link_deleted())

        with not_found():
            create_event(world, mon("10:00"))

    def test_another_accounts_link_is_not_found(self) -> None:
        world = world_with_link()

        with not_found():
            create_event(world, mon("10:00"), account_id=OTHER_ACCOUNT_ID)

    @pytest.mark.parametrize("start", [mon("10:00"), mon("10:15"), mon("09:45")])
    def test_time_taken_by_another_event_cannot_be_booked(self, start: str) -> None:
        # given Sam's event at 10:00-10:30
        world = world_with_link()
        create_event(world, mon("10:00"))

        # when Kim asks for a time overlapping it
        with rejected("start_at"):
            create_event(world, start, display_name="Kim Roe", email="kim@example.com")

    def test_intervals_are_half_open_so_back_to_back_bookings_fit(self) -> None:
        world = world_with_link()
        create_event(world, mon("10:00"))

        before = create_event(world, mon("09:30"))
        after_ = create_event(world, mon("10:30"))

        assert (before.result["end_at"], after_.result["start_at"]) == (mon("10:00"), mon("10:30"))

    @pytest.mark.parametrize("taken_by", [
        reserved(ANN_PROVIDER, "bi_other", "hold", mon("10:00"), mon("10:30"), expires_at=mon("08:10")),
        reserved(ANN_PROVIDER, "blk_lunch", "block", mon("09:50"), mon("10:10")),
        reserved(ANN_PROVIDER, "appt_other", "appointment", mon("10:20"), mon("10:50")),
        external_busy(ANN_PROVIDER, mon("10:29"), mon("11:00")),
    ], ids=["active hold", "block", "appointment", "external busy time"])
    def test_time_taken_by_a_hold_block_appointment_or_external_busy_time_cannot_be_booked(
            self, taken_by: Event) -> None:
        world = world_with_link().given(provider_stream(ANN_PROVIDER), taken_by)

        with rejected("start_at"):
            create_event(world, mon("10:00"))

    def test_another_meetings_buffer_zone_cannot_be_booked(self) -> None:
        # given an event 10:00-10:30 booked with 15 minutes after it
        world = world_with_link(buffer_after=15)
        create_event(world, mon("10:00"))

        with rejected("start_at"):
            create_event(world, mon("10:30"))
        assert create_event(world, mon("10:45")).result["start_at"] == mon("10:45")

    def test_the_new_meetings_own_buffer_may_not_overlap_another_meeting(self) -> None:
        # given Ann is busy in her own calendar from 11:00, and the link keeps 15 minutes after a meeting
        world = world_with_link(buffer_after=15).given(
            provider_stream(ANN_PROVIDER), external_busy(ANN_PROVIDER, mon("11:00"), mon("12:00")))

        # then 10:30-11:00 is refused (its buffer 11:00-11:15 overlaps), 10:15-10:45 is fine
        with rejected("start_at"):
            create_event(world, mon("10:30"))
        assert create_event(world, mon("10:15")).result["end_at"] == mon("10:45")

    def test_minimum_notice_is_respected(self) -> None:
        # given now is 08:00 and the link needs 90 minutes of notice
        world = world_with_link(minimum_notice=90)

        with rejected("start_at"):
            create_event(world, mon("09:15"))
        assert create_event(world, mon("09:30")).result["start_at"] == mon("09:30")

    def test_maximum_days_ahead_is_respected(self) -> None:
        # given now is Monday 10:00 and the link books at most 1 day (24 hours) ahead
        world = world_with_link(maximum_days_ahead=1)
        monday_ten = moment(mon("10:00"))

        with rejected("start_at"):
            create_event(world, tue("10:15"), now=monday_ten)
        assert create_event(world, tue("10:00"), now=monday_ten).result["start_at"] == tue("10:00")

    def test_a_time_already_past_cannot_be_booked(self) -> None:
        world = world_with_link()

        with rejected("start_at"):
            create_event(world, mon("09:30"), now=moment(mon("10:00")))

    def test_any_mode_ties_go_to_the_smallest_provider_id(self) -> None:
        world = world_with_link(hosts=[BOB_PROVIDER, ANN_PROVIDER])

        decision = create_event(world, mon("11:00"))

        assert the_event_created(decision).provider_ids == [ANN_PROVIDER]
        assert streams_of(decision)[0] == provider_stream(ANN_PROVIDER)
        assert decision.result["organizer"]["display_name"] == "Ann Lee"

    def test_any_mode_picks_the_host_with_fewest_bookings_that_day(self) -> None:
        # given Ann already has a booking on Monday
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER]).given(
            provider_stream(ANN_PROVIDER),
            reserved(ANN_PROVIDER, "event_early", "event", mon("09:00"), mon("09:30")))

        decision = create_event(world, mon("15:00"))

        # then Bob, who has none that day, takes the new one
        assert the_event_created(decision).provider_ids == [BOB_PROVIDER]
        assert streams_of(decision) == [provider_stream(BOB_PROVIDER), event_stream(decision.result["id"])]
        assert decision.result["organizer"]["email"] == "bob@example.com"

    def test_any_mode_counts_bookings_by_local_date_of_the_links_zone(self) -> None:
        # given a link in Asia/Tokyo (UTC+9) and Ann's event Monday 16:00 UTC, i.e. Tuesday 01:00 in Tokyo
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], time_zone="Asia/Tokyo").given(
            provider_stream(ANN_PROVIDER),
            reserved(ANN_PROVIDER, "event_late", "event", mon("16:00"), mon("16:30")))

        # when booking Monday 14:00 UTC (Monday 23:00 in Tokyo): Ann has none that Tokyo day, the tie is Ann's
        monday = create_event(world, mon("14:00"))
        # and Tuesday 10:00 UTC (Tuesday 19:00 in Tokyo): Ann has one that Tokyo day, Bob none
        tuesday = create_event(world, tue("10:00"))

        assert the_event_created(monday).provider_ids == [ANN_PROVIDER]
        assert the_event_created(tuesday).provider_ids == [BOB_PROVIDER]

    @pytest.mark.parametrize("booking", [
        reserved(ANN_PROVIDER, "event_x", "event", mon("16:30"), mon("17:00")),
        reserved(ANN_PROVIDER, "appt_x", "appointment", mon("09:00"), mon("09:30")),
    ], ids=["an event", "an appointment"])
    def test_any_mode_counts_events_and_appointments(self, booking: Event) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])
        world.given(provider_stream(ANN_PROVIDER), booking)

        decision = create_event(world, mon("15:00"))

        assert the_event_created(decision).provider_ids == [BOB_PROVIDER]

    @pytest.mark.parametrize("elsewhere", [
        reserved(ANN_PROVIDER, "blk_x", "block", mon("09:00"), mon("09:30")),
        reserved(ANN_PROVIDER, "bi_x", "hold", mon("09:00"), mon("09:30"), expires_at=mon("08:10")),
        reserved(ANN_PROVIDER, "event_x", "event", tue("09:00"), tue("09:30")),
    ], ids=["a block", "a hold", "an event on another day"])
    def test_any_mode_counts_only_that_days_events_and_appointments(self, elsewhere: Event) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])
        world.given(provider_stream(ANN_PROVIDER), elsewhere)

        decision = create_event(world, mon("15:00"))

        assert the_event_created(decision).provider_ids == [ANN_PROVIDER]

    def test_any_mode_a_canceled_booking_no_longer_counts(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])
        first = create_event(world, mon("09:00"))
        cancel_event(world, first.result["id"])

        decision = create_event(world, mon("15:00"))

        assert the_event_created(decision).provider_ids == [ANN_PROVIDER]

    def test_any_mode_a_busy_host_is_skipped(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER]).given(
            provider_stream(ANN_PROVIDER),
            reserved(ANN_PROVIDER, "blk_x", "block", mon("11:00"), mon("12:00")))

        decision = create_event(world, mon("11:00"))

        assert the_event_created(decision).provider_ids == [BOB_PROVIDER]

    def test_any_mode_fails_only_when_every_host_is_busy(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])
        create_event(world, mon("11:00"))
        create_event(world, mon("11:00"))

        with rejected("start_at"):
            create_event(world, mon("11:00"))

    def test_all_mode_reserves_the_time_on_every_host(self) -> None:
        world = world_with_link(hosts=[BOB_PROVIDER, ANN_PROVIDER], host_mode="all", buffer_after=5)

        decision = create_event(world, mon("11:00"))

        event_id = decision.result["id"]
        assert streams_of(decision) == [provider_stream(BOB_PROVIDER), provider_stream(ANN_PROVIDER),
                                        event_stream(event_id)]
        for host in (BOB_PROVIDER, ANN_PROVIDER):
            assert events_on(decision, provider_stream(host)) == [
                reserved(host, event_id, "event", mon("11:00"), mon("11:30"), buffer_after=5)]
        assert the_event_created(decision).provider_ids == [BOB_PROVIDER, ANN_PROVIDER]
        assert decision.result["organizer"]["display_name"] == "Bob Stone"

    def test_all_mode_fails_when_one_host_is_busy(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all").given(
            provider_stream(BOB_PROVIDER), external_busy(BOB_PROVIDER, mon("11:15"), mon("11:45")))

        with rejected("start_at"):
            create_event(world, mon("11:00"))
        assert create_event(world, mon("11:45")).result["start_at"] == mon("11:45")

    def test_a_single_use_link_is_disabled_by_its_first_booking(self) -> None:
        world = world_with_link(type="single")

        decision = create_event(world, mon("10:00"))

        assert events_on(decision, link_stream(LINK_ID)) == [
            LinkToggled(link_id=LINK_ID, state="disabled", updated_at=NOW_ISO)]
        assert world.link().settings is not None and world.link().settings.state == "disabled"
        with rejected("link_id"):
            create_event(world, mon("14:00"))

    def test_a_recurring_link_stays_active(self) -> None:
        world = world_with_link(type="recurring")

        decision = create_event(world, mon("10:00"))

        assert link_stream(LINK_ID) not in streams_of(decision)


# --- cancel_event ----------------------------------------------------------------------------------

class TestCancelEvent:
    def test_cancel_releases_the_hosts_time_and_marks_the_event_canceled(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]

        decision = cancel_event(world, event_id, now=after(30), reason="Conflict")

        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), event_stream(event_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            TimeReleased(provider_id=ANN_PROVIDER, reservation_id=event_id)]
        assert events_on(decision, event_stream(event_id)) == [
            EventCanceled(event_id=event_id, canceled_at="2026-03-02T08:30:00Z", cancel_reason="Conflict")]
        assert decision.result["state"] == "canceled"
        assert (decision.result["canceled_at"], decision.result["cancel_reason"]) == (
            "2026-03-02T08:30:00Z", "Conflict")
        assert decision.result["start_at"] == mon("10:00")
        assert set(decision.result) == SEED_002_EVENT_FIELDS

    def test_a_canceled_events_time_can_be_booked_again(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]
        with rejected("start_at"):
            create_event(world, mon("10:00"))

        cancel_event(world, event_id)

        assert create_event(world, mon("10:00")).result["start_at"] == mon("10:00")

    def test_canceling_an_all_hosts_event_frees_every_host(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all")
        event_id = create_event(world, mon("10:00")).result["id"]

        decision = cancel_event(world, event_id)

        for host in (ANN_PROVIDER, BOB_PROVIDER):
            assert events_on(decision, provider_stream(host)) == [
                TimeReleased(provider_id=host, reservation_id=event_id)]
            assert world.provider(host).calendar.occupancy(int(NOW.timestamp())).busy == []

    def test_canceling_twice_is_rejected(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]
        cancel_event(world, event_id)

        with rejected("event_id"):
            cancel_event(world, event_id)

    def test_another_accounts_event_is_not_found(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]

        with not_found():
            cancel_event(world, event_id, account_id=OTHER_ACCOUNT_ID)

    def test_an_unknown_event_is_not_found(self) -> None:
        with not_found():
            cancel_event(World(), "event_ghost")


# --- reschedule_event ------------------------------------------------------------------------------

class TestRescheduleEvent:
    def test_moving_15_minutes_into_its_own_old_time_works(self) -> None:
        # given an event 10:00-10:30 on a link with buffers (its own time and buffers must not count)
        world = world_with_link(buffer_before=10, buffer_after=10)
        event_id = create_event(world, mon("10:00")).result["id"]

        # when it moves to 10:15
        decision = reschedule_event(world, event_id, mon("10:15"), now=after(5), reason="Running late")

        # then the reservation moves and the event says when and why
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), event_stream(event_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [ReservationMoved(
            provider_id=ANN_PROVIDER, reservation_id=event_id, start_at=mon("10:15"), end_at=mon("10:45"))]
        assert events_on(decision, event_stream(event_id)) == [EventRescheduled(
            event_id=event_id, start_at=mon("10:15"), end_at=mon("10:45"),
            rescheduled_at="2026-03-02T08:05:00Z", reschedule_reason="Running late")]
        result = decision.result
        assert (result["start_at"], result["end_at"], result["duration"]) == (mon("10:15"), mon("10:45"), 30)
        assert (result["rescheduled_at"], result["reschedule_reason"]) == (
            "2026-03-02T08:05:00Z", "Running late")
        assert (result["original_start_at"], result["original_end_at"]) == (mon("10:00"), mon("10:30"))
        assert result["state"] == "confirmed"

    def test_the_moved_event_keeps_its_buffers_on_the_calendar(self) -> None:
        world = world_with_link(buffer_after=15)
        event_id = create_event(world, mon("10:00")).result["id"]
        reschedule_event(world, event_id, mon("13:00"))

        with rejected("start_at"):
            create_event(world, mon("13:30"))
        assert create_event(world, mon("13:45")).result["start_at"] == mon("13:45")

    def test_the_old_time_is_free_after_a_move(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]

        reschedule_event(world, event_id, mon("14:00"))

        assert create_event(world, mon("10:00")).result["start_at"] == mon("10:00")
        with rejected("start_at"):
            create_event(world, mon("14:00"))

    def test_the_original_time_is_the_first_one_across_reschedules(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]
        reschedule_event(world, event_id, mon("11:00"))

        decision = reschedule_event(world, event_id, mon("12:00"), mon("13:00"), reason="Longer")

        assert (decision.result["start_at"], decision.result["end_at"], decision.result["duration"]) == (
            mon("12:00"), mon("13:00"), 60)
        assert (decision.result["original_start_at"], decision.result["original_end_at"]) == (
            mon("10:00"), mon("10:30"))
        assert decision.result["reschedule_reason"] == "Longer"

    def test_a_move_onto_a_busy_time_is_rejected(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]
        create_event(world, mon("11:00"), display_name="Kim Roe")

        with rejected("start_at"):
            reschedule_event(world, event_id, mon("10:45"))

    def test_an_all_hosts_event_moves_only_where_every_host_is_free(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all").given(
            provider_stream(BOB_PROVIDER),
            reserved(BOB_PROVIDER, "blk_b", "block", mon("14:00"), mon("15:00")))
        event_id = create_event(world, mon("10:00")).result["id"]

        with rejected("start_at"):
            reschedule_event(world, event_id, mon("14:00"))
        decision = reschedule_event(world, event_id, mon("15:00"))
        assert {s for s in streams_of(decision) if s.startswith("provider-")} == {
            provider_stream(ANN_PROVIDER), provider_stream(BOB_PROVIDER)}

    @pytest.mark.parametrize(("start", "end", "field"), [
        (mon("14:00"), mon("13:30"), "end_at"),
        (mon("14:00"), mon("14:45"), "end_at"),
        (mon("14:05"), mon("14:35"), "start_at"),
        (sat("14:00"), sat("14:30"), "start_at"),
        ("soon", mon("14:30"), "start_at"),
    ])
    def test_the_new_time_must_be_a_slot_of_the_link(self, start: str, end: str, field: str) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]

        with rejected(field):
            reschedule_event(world, event_id, start, end)

    def test_a_new_end_that_is_not_a_whole_number_of_minutes_is_rejected(self) -> None:
        # create_event refuses such an end_at; a reschedule must too, or the event lasts 30.5 minutes
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]

        with rejected("end_at"):
            reschedule_event(world, event_id, mon("14:00"), "2026-03-02T14:30:30Z")

    def test_a_canceled_event_cannot_be_rescheduled(self) -> None:
        world = world_with_link()
        event_id = create_event(world, mon("10:00")).result["id"]
        cancel_event(world, event_id)

        with rejected("event_id"):
            reschedule_event(world, event_id, mon("14:00"))


# --- holds on links --------------------------------------------------------------------------------

class TestHoldLinkSlot:
    def test_a_hold_reserves_the_time_until_ten_minutes_from_now(self) -> None:
        # given a link with buffers: a hold occupies only [start, start + duration)
        world = world_with_link(default_duration=60, buffer_before=5, buffer_after=5)

        decision = hold_link_slot(world, mon("10:00"))

        hold_id = decision.result["id"]
        assert hold_id.startswith("bi_")
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), hold_stream(hold_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [reserved(
            ANN_PROVIDER, hold_id, "hold", mon("10:00"), mon("11:00"), expires_at=mon("08:10"))]
        assert events_on(decision, hold_stream(hold_id)) == [SlotHeld(
            booking_intent_id=hold_id, account_id=ACCOUNT_ID, link_id=LINK_ID, provider_ids=[ANN_PROVIDER],
            start_at=mon("10:00"), end_at=mon("11:00"), duration=60, expires_at=mon("08:10"),
            created_at=NOW_ISO)]
        result = decision.result
        assert (result["state"], result["expires_at"], result["provider_id"]) == ("active", mon("08:10"),
                                                                                 ANN_PROVIDER)
        assert (result["start_at"], result["end_at"], result["duration"]) == (mon("10:00"), mon("11:00"), 60)

    def test_hold_minutes_sets_the_expiry(self) -> None:
        world = world_with_link()

        decision = hold_link_slot(world, mon("10:00"), hold_minutes=25, duration=30)

        assert decision.result["expires_at"] == mon("08:25")
        assert decision.result["end_at"] == mon("10:30")

    @pytest.mark.parametrize("minutes", [0, -5, 1441])
    def test_hold_minutes_out_of_range_is_rejected(self, minutes: int) -> None:
        with rejected("hold_minutes"):
            hold_link_slot(world_with_link(), mon("10:00"), hold_minutes=minutes)

    def test_a_duration_the_link_does_not_offer_is_rejected(self) -> None:
        with rejected("duration"):
            hold_link_slot(world_with_link(), mon("10:00"), duration=45)

    @pytest.mark.parametrize("start", [mon("10:05"), sat("10:00"), mon("07:00")])
    def test_only_a_slot_can_be_held(self, start: str) -> None:
        with rejected("start_at"):
            hold_link_slot(world_with_link(), start)

    def test_a_held_slot_cannot_be_booked_or_held_again(self) -> None:
        world = world_with_link()
        hold_link_slot(world, mon("10:00"))

        with rejected("start_at"):
            create_event(world, mon("10:00"), now=after(9))
        with rejected("start_at"):
            hold_link_slot(world, mon("10:15"), now=after(9))

    def test_once_expired_the_slot_is_free_without_an_expire_command(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        decision = create_event(world, mon("10:00"), now=after(11))

        assert decision.result["start_at"] == mon("10:00")
        assert holds.hold_resource(world.hold(hold_id), int(after(11).timestamp()))["state"] == "expired"

    def test_the_hold_is_still_active_at_its_last_minute(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        with rejected("start_at"):
            create_event(world, mon("10:00"), now=NOW + timedelta(minutes=9, seconds=59))
        assert holds.hold_resource(world.hold(hold_id), int(after(9).timestamp()))["state"] == "active"

    def test_a_named_provider_is_held_even_when_another_host_would_be_chosen(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])

        decision = hold_link_slot(world, mon("10:00"), provider_id=BOB_PROVIDER)

        assert decision.result["provider_id"] == BOB_PROVIDER
        assert streams_of(decision)[0] == provider_stream(BOB_PROVIDER)

    def test_a_provider_that_is_not_a_host_is_rejected(self) -> None:
        with rejected("provider_id"):
            hold_link_slot(world_with_link(), mon("10:00"), provider_id=BOB_PROVIDER)

    def test_a_hold_on_an_all_link_holds_every_host(self) -> None:
        world = world_with_link(hosts=[BOB_PROVIDER, ANN_PROVIDER], host_mode="all")

        decision = hold_link_slot(world, mon("10:00"))

        assert (decision.result["provider_id"], decision.result["provider_ids"]) == (
            BOB_PROVIDER, [BOB_PROVIDER, ANN_PROVIDER])
        for host in (BOB_PROVIDER, ANN_PROVIDER):
            (event,) = events_on(decision, provider_stream(host))
            assert isinstance(event, TimeReserved) and event.kind == "hold"

    def test_a_hold_without_a_provider_is_assigned_like_a_booking(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER])
        create_event(world, mon("09:00"))  # Ann's, so Ann has more bookings on Monday

        decision = hold_link_slot(world, mon("15:00"))

        assert (decision.result["provider_id"], decision.result["provider_ids"]) == (
            BOB_PROVIDER, [BOB_PROVIDER])

    def test_naming_one_host_of_an_all_link_does_not_hold_a_time_another_host_is_busy(self) -> None:
        # given an "all" link whose host Ann is busy at 10:00: 10:00 is not a slot of the link
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all").given(
            provider_stream(ANN_PROVIDER),
            reserved(ANN_PROVIDER, "blk_ann", "block", mon("10:00"), mon("11:00")))
        with rejected("start_at"):
            create_event(world, mon("10:00"))

        # when a hold names Bob alone, then it is refused like a booking (a hold on an "all" link holds
        # every host, and holds only a slot of the link; DESIGN.md section 3)
        with pytest.raises(ValidationFailed):
            hold_link_slot(world, mon("10:00"), provider_id=BOB_PROVIDER)

    def test_a_hold_on_a_disabled_link_is_rejected(self) -> None:
        with rejected("link_id"):
            hold_link_slot(world_with_link(state="disabled"), mon("10:00"))


class TestReleaseHold:
    def test_release_frees_the_time_at_once(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        decision = release_hold(world, hold_id, now=after(2))

        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), hold_stream(hold_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            TimeReleased(provider_id=ANN_PROVIDER, reservation_id=hold_id)]
        assert events_on(decision, hold_stream(hold_id)) == [
            HoldReleased(booking_intent_id=hold_id, released_at="2026-03-02T08:02:00Z")]
        assert decision.result["state"] == "abandoned"
        assert create_event(world, mon("10:00"), now=after(3)).result["start_at"] == mon("10:00")

    def test_a_released_hold_cannot_be_released_again(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]
        release_hold(world, hold_id)

        with rejected("booking_intent_id"):
            release_hold(world, hold_id)

    def test_an_expired_hold_cannot_be_released(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        with rejected("booking_intent_id"):
            release_hold(world, hold_id, now=after(10))

    def test_an_unknown_hold_is_not_found(self) -> None:
        with not_found():
            release_hold(World(), "bi_ghost")


class TestExpireHold:
    def test_a_hold_that_has_not_expired_yet_is_refused(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        with rejected("booking_intent_id"):
            expire_hold(world, hold_id, now=after(9))

    def test_a_hold_past_its_expiry_is_marked_expired_and_its_time_released(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        decision = expire_hold(world, hold_id, now=after(10))

        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            TimeReleased(provider_id=ANN_PROVIDER, reservation_id=hold_id)]
        assert events_on(decision, hold_stream(hold_id)) == [
            HoldExpired(booking_intent_id=hold_id, expired_at=mon("08:10"))]
        assert decision.result["state"] == "expired"
        assert world.provider(ANN_PROVIDER).calendar.reservations == {}

    def test_an_expired_or_released_hold_cannot_be_expired_again(self) -> None:
        world = world_with_link()
        expired = hold_link_slot(world, mon("10:00")).result["id"]
        expire_hold(world, expired, now=after(11))
        released = hold_link_slot(world, mon("11:00")).result["id"]
        release_hold(world, released)

        with rejected("booking_intent_id"):
            expire_hold(world, expired, now=after(20))
        with rejected("booking_intent_id"):
            expire_hold(world, released, now=after(20))

    def test_an_unknown_hold_is_not_found(self) -> None:
        with not_found():
            expire_hold(World(), "bi_ghost", now=NOW)


class TestCompleteLinkHold:
    def test_completing_turns_the_hold_into_the_event_in_one_decision(self) -> None:
        world = world_with_link(buffer_after=10)
        hold_id = hold_link_slot(world, mon("10:00"), duration=60).result["id"]

        decision = complete_link_hold(world, hold_id, now=after(4))

        event_id = decision.result["id"]
        # the hold's time is released and the event's reserved on Ann's stream, in one append
        assert streams_of(decision) == [
            provider_stream(ANN_PROVIDER), event_stream(event_id), hold_stream(hold_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            TimeReleased(provider_id=ANN_PROVIDER, reservation_id=hold_id),
            reserved(ANN_PROVIDER, event_id, "event", mon("10:00"), mon("11:00"), buffer_after=10)]
        created = the_event_created(decision)
        assert (created.booking_intent_id, created.provider_ids, created.duration) == (
            hold_id, [ANN_PROVIDER], 60)
        assert events_on(decision, hold_stream(hold_id)) == [HoldCompleted(
            booking_intent_id=hold_id, completed_at="2026-03-02T08:04:00Z", event_id=event_id)]
        assert set(decision.result) == SEED_002_EVENT_FIELDS
        assert (decision.result["state"], decision.result["start_at"]) == ("confirmed", mon("10:00"))
        assert world.hold(hold_id).state == "completed"
        assert list(world.provider(ANN_PROVIDER).calendar.reservations) == [event_id]
        intent = holds.hold_resource(world.hold(hold_id), int(after(30).timestamp()))
        assert (intent["state"], intent["event_id"]) == ("completed", event_id)

    def test_a_hold_on_an_all_link_completes_on_every_held_host(self) -> None:
        world = world_with_link(hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all")
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        decision = complete_link_hold(world, hold_id)

        assert the_event_created(decision).provider_ids == [ANN_PROVIDER, BOB_PROVIDER]
        for host in (ANN_PROVIDER, BOB_PROVIDER):
            released, reserved_event = events_on(decision, provider_stream(host))
            assert released == TimeReleased(provider_id=host, reservation_id=hold_id)
            assert isinstance(reserved_event, TimeReserved) and reserved_event.kind == "event"

    def test_completing_a_single_use_links_hold_disables_the_link(self) -> None:
        world = world_with_link(type="single")
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        decision = complete_link_hold(world, hold_id)

        assert events_on(decision, link_stream(LINK_ID)) == [
            LinkToggled(link_id=LINK_ID, state="disabled", updated_at=NOW_ISO)]

    def test_an_expired_hold_cannot_be_completed(self) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        with rejected("booking_intent_id"):
            complete_link_hold(world, hold_id, now=after(10))

    def test_a_completed_or_released_hold_cannot_be_completed(self) -> None:
        world = world_with_link()
        completed = hold_link_slot(world, mon("10:00")).result["id"]
        complete_link_hold(world, completed)
        released = hold_link_slot(world, mon("11:00")).result["id"]
        release_hold(world, released)

        with rejected("booking_intent_id"):
            complete_link_hold(world, completed)
        with rejected("booking_intent_id"):
            complete_link_hold(world, released)

    @pytest.mark.parametrize(("booker", "field"), [
        ({"email": "nope"}, "email"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"display_name": ""}, "display_name"),
    ])
    def test_the_booker_is_validated(self, booker: dict[str, str], field: str) -> None:
        world = world_with_link()
        hold_id = hold_link_slot(world, mon("10:00")).result["id"]

        with rejected(field):
            complete_link_hold(world, hold_id, **booker)
