"""Service stories (seed 003): services and their providers, blocks, external busy times, appointments
and service holds.

Each story: given the events on the service, provider, location, block, appointment and hold streams,
when one command is decided at a fixed `now` (Monday 2026-03-02 08:00 UTC), then the events per stream
and the result, or the field error. Unless a story says otherwise the "Consultation" service lasts 30
minutes with slots starting every 30 minutes Monday-Friday 08:00-18:00 Etc/UTC, and its providers
Ann and Bob work Monday-Friday 09:00-17:00 Etc/UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared.availability.model import ProviderSchedule, PublicBookings, SlotRule
from shared.domain import appointments, blocks, busy_times, holds, service_catalogue
from shared.domain.core import (
    Decision,
    appointment_stream,
    block_stream,
    hold_stream,
    link_stream,
    location_stream,
    provider_stream,
    service_provider_stream,
    service_stream,
)
from shared.manage import manage_urls
from shared.messages.commands import (
    AddServiceProvider,
    BusyTime,
    CancelAppointment,
    CreateAppointment,
    CreateBlock,
    CreateService,
    DeleteBlock,
    HoldSlot,
    RemoveServiceProvider,
    RescheduleAppointment,
    SyncExternalBusyTimes,
)
from shared.messages.events import (
    AppointmentCanceled,
    AppointmentCreated,
    AppointmentRescheduled,
    BlockAdded,
    BlockCreated,
    BlockDeleted,
    BlockRemoved,
    BusyInterval,
    Client,
    ExternalBusyTimesSynced,
    HoldCompleted,
    LocationReferenced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    ServiceCreated,
    ServiceProviderAdded,
    ServiceProviderRemoved,
    SlotHeld,
    TimeReleased,
)

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN_PROVIDER,
    BOB_PROVIDER,
    EARLIER_ISO,
    LINK_ID,
    OTHER_ACCOUNT_ID,
    OTHER_PROVIDER,
    account_given,
    acme_with_ann,
    events_on,
    link_created,
    not_found,
    provider_created,
    rejected,
    streams_of,
)
from .test_domain_link_bookings import (
    NOW,
    NOW_ISO,
    PUBLIC_URL,
    SIGNING_SECRET,
    World,
    after,
    create_event,
    external_busy,
    link_settings,
    mon,
    reserved,
    sat,
    tue,
    utc_provider,
)

SERVICE_ID = "srv_consult"
SP_ANN = "sp_ann"
SP_BOB = "sp_bob"
LOCATION_ID = "loc_berlin"
LOCATION_STREAM = location_stream(ACCOUNT_ID, LOCATION_ID)
SERVICE_STREAM = service_stream(SERVICE_ID)

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def weekday_rule(**changes: Any) -> SlotRule:
    base: dict[str, Any] = {"days_of_week": WEEKDAYS, "start_time": "08:00", "end_time": "18:00",
                            "interval": 30}
    return SlotRule(**{**base, **changes})


def service_created(location_id: str | None = None, **changes: Any) -> ServiceCreated:
    base: dict[str, Any] = {
        "service_id": SERVICE_ID, "account_id": ACCOUNT_ID, "name": "Consultation", "duration": 30,
        "time_zone": "Etc/UTC", "slot_rules": [weekday_rule()], "location_id": location_id,
        "created_at": EARLIER_ISO,
    }
    return ServiceCreated(**{**base, **changes})


def offered_by(service_provider_id: str, provider_id: str, display_name: str) -> ServiceProviderAdded:
    return ServiceProviderAdded(service_id=SERVICE_ID, service_provider_id=service_provider_id,
                                provider_id=provider_id, display_name=display_name)


def consultation(*, providers: tuple[str, ...] = (ANN_PROVIDER, BOB_PROVIDER), location_id: str | None = None,
                 **changes: Any) -> World:
    """The Consultation service offered by `providers` (Ann as sp_ann, Bob as sp_bob)."""
    world = World()
    world.given(SERVICE_STREAM, service_created(location_id, **changes))
    for provider_id in providers:
        sp_id, name = (SP_ANN, "Ann Lee") if provider_id == ANN_PROVIDER else (SP_BOB, "Bob Stone")
        added = offered_by(sp_id, provider_id, name)
        world.given(provider_stream(provider_id), *utc_provider(provider_id))
        world.given(SERVICE_STREAM, added).given(service_provider_stream(sp_id), added)
    if location_id is not None:
        world.given(location_stream(ACCOUNT_ID, location_id),
                    LocationReferenced(account_id=ACCOUNT_ID, location_id=location_id))
    return world


def other_account_provider_created() -> ProviderCreated:
    """Eve's provider, in another account."""
    return provider_created(OTHER_PROVIDER, account_id=OTHER_ACCOUNT_ID, user_id="user_eve",
                            display_name="Eve", email="eve@example.org")


# --- reading the world -----------------------------------------------------------------------------

def location_of(world: World, location_id: str | None) -> service_catalogue.LocationState:
    if location_id is None:
        return service_catalogue.LocationState()
    return world.state(location_stream(ACCOUNT_ID, location_id))  # type: ignore[no-any-return]


def service_of(world: World) -> service_catalogue.ServiceState:
    return world.state(SERVICE_STREAM)  # type: ignore[no-any-return]


def service_context(world: World) -> tuple[service_catalogue.ServiceState, dict[str, Any], service_catalogue.LocationState]:
    """What a handler loads for a service: the service, its providers, its location's blocks."""
    service = service_of(world)
    assert service.created is not None
    location = location_of(world, service.created.location_id)
    return service, world.providers_of([sp.provider_id for sp in service.ordered_providers()]), location


# --- commands ----------------------------------------------------------------------------------------

def create_service(world: World | None = None, account: Any = None, **fields: Any) -> Decision:
    world = world or World()
    body: dict[str, Any] = {"command_id": "cmd_s", "account_id": ACCOUNT_ID, "name": "Consultation",
                            "duration": 30, "time_zone": "Europe/Berlin", "slot_rules": [weekday_rule()],
                            **fields}
    location = location_of(world, body.get("location_id") or None)
    return world.apply(service_catalogue.create_service(CreateService(**body), account or acme_with_ann(), location,
                                               world.env))


def add_provider(world: World, provider_id: str, account_id: str = ACCOUNT_ID) -> Decision:
    command = AddServiceProvider(command_id="cmd_a", account_id=account_id, service_id=SERVICE_ID,
                                 provider_id=provider_id)
    return world.apply(service_catalogue.add_service_provider(command, service_of(world), world.provider(provider_id),
                                                     world.env))


def remove_provider(world: World, **which: str) -> Decision:
    command = RemoveServiceProvider(command_id="cmd_rm", account_id=ACCOUNT_ID, service_id=SERVICE_ID,
                                    **which)
    return world.apply(service_catalogue.remove_service_provider(command, service_of(world), world.env))


def create_appointment(world: World, start: str, *, now: datetime = NOW, **fields: Any) -> Decision:
    """When Sam Doe books the Consultation at `start`."""
    body: dict[str, Any] = {"command_id": "cmd_ap", "account_id": ACCOUNT_ID, "service_id": SERVICE_ID,
                            "start_at": start, "display_name": "Sam Doe", "email": "sam@example.com",
                            "time_zone": "America/Chicago", **fields}
    return world.apply(appointments.create_appointment(CreateAppointment(**body), *service_context(world),
                                                   world.at(now)))


def cancel_appointment(world: World, appointment_id: str, account_id: str = ACCOUNT_ID) -> Decision:
    command = CancelAppointment(command_id="cmd_ca", account_id=account_id, appointment_id=appointment_id,
                                cancel_reason="Sick")
    return world.apply(appointments.cancel_appointment(command, world.state(appointment_stream(appointment_id)),
                                                   world.at(after(60))))


def reschedule_appointment(world: World, appointment_id: str, start: str, account_id: str = ACCOUNT_ID,
                           reason: str | None = "Clash") -> Decision:
    """When the appointment is moved to `start`, an hour after NOW; loaded as the handler loads it."""
    command = RescheduleAppointment(command_id="cmd_ra", account_id=account_id, appointment_id=appointment_id,
                                    start_at=start, reschedule_reason=reason)
    state = world.state(appointment_stream(appointment_id))
    service, providers_, location = service_context(world)
    own = {p: providers_[p] for p in ([state.created.provider_id] if state.created else []) if p in providers_}
    return world.apply(appointments.reschedule_appointment(command, state, service, own, location,
                                                           world.at(after(60))))


def attachment(world: World, attachment_type: str, attachment_id: str) -> tuple[Any, str]:
    """The state and stream a block attaches to, found as the command handler finds them."""
    stream = {
        "provider": provider_stream(attachment_id),
        "service": service_stream(attachment_id),
        "location": location_stream(ACCOUNT_ID, attachment_id),
    }.get(attachment_type, "")
    if attachment_type == "service_provider":
        sp = world.state(service_provider_stream(attachment_id))
        stream = service_stream(sp.added.service_id) if sp.added is not None and not sp.removed else ""
    return (world.state(stream) if stream else None), stream


def create_block(world: World, attachment_type: str, attachment_id: str, start: str = mon("10:00"),
                 end: str = mon("11:00"), **fields: Any) -> Decision:
    command = CreateBlock(command_id="cmd_b", account_id=fields.pop("account_id", ACCOUNT_ID),
                          attachment_type=attachment_type, attachment_id=attachment_id, start_at=start,
                          end_at=end, **fields)
    target, stream = attachment(world, attachment_type, attachment_id)
    return world.apply(blocks.create_block(command, target, stream, world.env))


def delete_block(world: World, block_id: str) -> Decision:
    command = DeleteBlock(command_id="cmd_db", account_id=ACCOUNT_ID, block_id=block_id)
    return world.apply(blocks.delete_block(command, world.state(block_stream(block_id)), world.env))


def sync_busy(world: World, from_: str, until: str, *busy: tuple[str, str], provider_id: str = ANN_PROVIDER,
              account_id: str = ACCOUNT_ID) -> Decision:
    command = SyncExternalBusyTimes(command_id="cmd_sync", account_id=account_id, provider_id=provider_id,
                                    from_=from_, until=until,
                                    busy_times=[BusyTime(start_at=s, end_at=e) for s, e in busy])
    return world.apply(busy_times.sync_external_busy_times(command, world.provider(provider_id), world.env))


def hold_service_slot(world: World, start: str, *, now: datetime = NOW, **fields: Any) -> Decision:
    command = HoldSlot(command_id="cmd_h", account_id=ACCOUNT_ID, service_id=SERVICE_ID, start_at=start,
                       **fields)
    return world.apply(holds.hold_service_slot(command, *service_context(world), world.at(now)))


def complete_service_hold(world: World, hold_id: str, *, now: datetime = NOW, email: str = "sam@example.com"
                          ) -> Decision:
    client = Client(display_name="Sam Doe", email=email, time_zone="America/Chicago")
    return world.apply(holds.complete_service_hold(world.hold(hold_id), *service_context(world),
                                                      world.at(now), client=client))


def booked_provider(decision: Decision) -> str:
    return decision.result["provider_id"]  # type: ignore[no-any-return]


# --- create_service --------------------------------------------------------------------------------

class TestCreateService:
    def test_a_service_is_created_on_its_stream(self) -> None:
        decision = create_service()

        service_id = decision.result["id"]
        assert service_id.startswith("srv_")
        assert streams_of(decision) == [service_stream(service_id)]
        assert events_on(decision, service_stream(service_id)) == [ServiceCreated(
            service_id=service_id, account_id=ACCOUNT_ID, name="Consultation", duration=30,
            time_zone="Europe/Berlin", slot_rules=[weekday_rule()], location_id=None, created_at=NOW_ISO)]
        assert decision.result == {
            "object": "service", "id": service_id, "name": "Consultation", "duration": 30,
            "time_zone": "Europe/Berlin",
            "slot_rules": [{"days_of_week": WEEKDAYS, "start_time": "08:00", "end_time": "18:00",
                            "interval": 30, "starts_on": None, "ends_on": None}],
            "location_id": None, "created_at": NOW_ISO, "providers": [],
        }

    def test_a_first_service_at_a_location_references_the_location(self) -> None:
        decision = create_service(location_id=LOCATION_ID)

        assert events_on(decision, LOCATION_STREAM) == [
            LocationReferenced(account_id=ACCOUNT_ID, location_id=LOCATION_ID)]
        assert decision.result["location_id"] == LOCATION_ID

    def test_a_location_already_referenced_is_not_referenced_again(self) -> None:
        world = World().given(LOCATION_STREAM,
                              LocationReferenced(account_id=ACCOUNT_ID, location_id=LOCATION_ID))

        decision = create_service(world, location_id=LOCATION_ID)

        assert LOCATION_STREAM not in streams_of(decision)

    @pytest.mark.parametrize(("fields", "field"), [
        ({"duration": 0}, "duration"),
        ({"duration": 1441}, "duration"),
        ({"name": " "}, "name"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"location_id": ""}, "location_id"),
        ({"slot_rules": [weekday_rule(days_of_week=[])]}, "slot_rules[0].days_of_week"),
        ({"slot_rules": [weekday_rule(days_of_week=["monday", "Funday"])]}, "slot_rules[0].days_of_week"),
        ({"slot_rules": [weekday_rule(start_time="8:00")]}, "slot_rules[0].start_time"),
        ({"slot_rules": [weekday_rule(end_time="24:30")]}, "slot_rules[0].end_time"),
        ({"slot_rules": [weekday_rule(start_time="12:00", end_time="12:00")]}, "slot_rules[0].end_time"),
        ({"slot_rules": [weekday_rule(), weekday_rule(interval=0)]}, "slot_rules[1].interval"),
        ({"slot_rules": [weekday_rule(interval=1441)]}, "slot_rules[0].interval"),
        ({"slot_rules": [weekday_rule(starts_on="2026-02-30")]}, "slot_rules[0].starts_on"),
        ({"slot_rules": [weekday_rule(ends_on="03/31/2026")]}, "slot_rules[0].ends_on"),
        ({"slot_rules": [weekday_rule(starts_on="2026-04-01", ends_on="2026-03-31")]},
         "slot_rules[0].ends_on"),
    ])
    def test_fields_and_slot_rules_are_validated(self, fields: dict[str, Any], field: str) -> None:
        with rejected(field):
            create_service(**fields)

    def test_edge_values_are_accepted(self) -> None:
        rule = weekday_rule(days_of_week=["sunday"], start_time="00:00", end_time="24:00", interval=1440,
                            starts_on="2026-03-01", ends_on="2026-03-01")

        decision = create_service(duration=1440, slot_rules=[rule])

        assert decision.result["duration"] == 1440

    def test_a_missing_account_is_not_found(self) -> None:
        with not_found():
            create_service(account=account_given())


# --- service providers -----------------------------------------------------------------------------

class TestServiceProviders:
    def test_adding_a_provider_creates_a_service_provider(self) -> None:
        world = consultation(providers=()).given(provider_stream(ANN_PROVIDER), *utc_provider(ANN_PROVIDER))

        decision = add_provider(world, ANN_PROVIDER)

        sp_id = decision.result["id"]
        assert sp_id.startswith("sp_")
        added = ServiceProviderAdded(service_id=SERVICE_ID, service_provider_id=sp_id,
                                     provider_id=ANN_PROVIDER, display_name="Ann Lee")
        assert decision.changes == [(SERVICE_STREAM, [added]), (service_provider_stream(sp_id), [added])]
        assert decision.result == {
            "object": "service_provider", "id": sp_id, "service_id": SERVICE_ID,
            "provider": {"object": "provider", "id": ANN_PROVIDER, "display_name": "Ann Lee"}}
        assert service_of(world).by_provider(ANN_PROVIDER) is not None

    def test_adding_the_same_provider_twice_is_rejected(self) -> None:
        world = consultation(providers=()).given(provider_stream(ANN_PROVIDER), *utc_provider(ANN_PROVIDER))
        add_provider(world, ANN_PROVIDER)

        with rejected("provider_id"):
            add_provider(world, ANN_PROVIDER)

    @pytest.mark.parametrize("provider_id", ["prov_ghost", OTHER_PROVIDER])
    def test_an_unknown_or_foreign_provider_is_rejected(self, provider_id: str) -> None:
        world = consultation(providers=()).given(provider_stream(OTHER_PROVIDER),
                                                 other_account_provider_created())

        with rejected("provider_id"):
            add_provider(world, provider_id)

    def test_a_removed_provider_takes_no_more_appointments(self) -> None:
        world = consultation()

        decision = remove_provider(world, provider_id=ANN_PROVIDER)

        removed = ServiceProviderRemoved(service_id=SERVICE_ID, service_provider_id=SP_ANN,
                                         provider_id=ANN_PROVIDER)
        assert decision.changes == [(SERVICE_STREAM, [removed]), (service_provider_stream(SP_ANN), [removed])]
        assert booked_provider(create_appointment(world, mon("10:00"))) == BOB_PROVIDER
        with rejected("provider_id"):
            create_appointment(world, mon("11:00"), provider_id=ANN_PROVIDER)

    def test_a_provider_can_be_removed_by_service_provider_id_and_added_again(self) -> None:
        world = consultation()
        remove_provider(world, service_provider_id=SP_BOB)

        decision = add_provider(world, BOB_PROVIDER)

        assert decision.result["id"] != SP_BOB

    def test_removing_an_unknown_service_provider_is_not_found(self) -> None:
        with not_found():
            remove_provider(consultation(), service_provider_id="sp_ghost")


# --- appointments ----------------------------------------------------------------------------------

class TestCreateAppointment:
    def test_an_appointment_takes_the_time_of_a_free_provider(self) -> None:
        world = consultation()

        decision = create_appointment(world, mon("10:00"))

        appointment_id = decision.result["id"]
        assert appointment_id.startswith("appt_")
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), appointment_stream(appointment_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            reserved(ANN_PROVIDER, appointment_id, "appointment", mon("10:00"), mon("10:30"))]
        client = Client(display_name="Sam Doe", email="sam@example.com", time_zone="America/Chicago")
        assert events_on(decision, appointment_stream(appointment_id)) == [AppointmentCreated(
            appointment_id=appointment_id, account_id=ACCOUNT_ID, service_id=SERVICE_ID,
            provider_id=ANN_PROVIDER, service_provider_id=SP_ANN, start_at=mon("10:00"), end_at=mon("10:30"),
            duration=30, client=client, created_at=NOW_ISO)]
        assert decision.result == {
            "object": "appointment", "id": appointment_id, "state": "confirmed", "service_id": SERVICE_ID,
            "provider_id": ANN_PROVIDER, "service_provider_id": SP_ANN, "start_at": mon("10:00"),
            "end_at": mon("10:30"), "duration": 30,
            "client": {"display_name": "Sam Doe", "email": "sam@example.com", "time_zone": "America/Chicago"},
            "booking_intent_id": None, "created_at": NOW_ISO, "canceled_at": None, "cancel_reason": None,
            **manage_urls(PUBLIC_URL, SIGNING_SECRET, appointment_id, mon("10:00")),
        }

    def test_the_service_stream_is_guarded(self) -> None:
        decision = create_appointment(consultation(), mon("10:00"))

        assert decision.guards == (SERVICE_STREAM,)

    def test_the_service_and_its_location_are_guarded(self) -> None:
        decision = create_appointment(consultation(location_id=LOCATION_ID), mon("10:00"))

        assert decision.guards == (SERVICE_STREAM, LOCATION_STREAM)

    def test_the_second_booking_of_a_time_goes_to_the_other_provider_and_a_third_fails(self) -> None:
        world = consultation()

        first = create_appointment(world, mon("10:00"))
        second = create_appointment(world, mon("10:00"))

        assert (booked_provider(first), booked_provider(second)) == (ANN_PROVIDER, BOB_PROVIDER)
        assert second.result["service_provider_id"] == SP_BOB
        with rejected("start_at"):
            create_appointment(world, mon("10:00"))

    def test_the_provider_with_fewest_bookings_that_day_is_chosen(self) -> None:
        world = consultation()
        create_appointment(world, mon("09:00"))  # Ann (tie, smallest id)

        assert booked_provider(create_appointment(world, mon("15:00"))) == BOB_PROVIDER
        assert booked_provider(create_appointment(world, tue("15:00"))) == ANN_PROVIDER

    def test_a_named_provider_is_booked(self) -> None:
        decision = create_appointment(consultation(), mon("10:00"), provider_id=BOB_PROVIDER)

        assert (booked_provider(decision), decision.result["service_provider_id"]) == (BOB_PROVIDER, SP_BOB)

    def test_a_provider_not_offering_the_service_is_rejected(self) -> None:
        with rejected("provider_id"):
            create_appointment(consultation(providers=(ANN_PROVIDER,)), mon("10:00"),
                               provider_id=BOB_PROVIDER)

    @pytest.mark.parametrize("start", [
        mon("10:10"),   # not a start of the slot rules
        mon("08:00"),   # a slot rule start, but before the providers' working hours
        mon("16:45"),   # not a start (every 30 minutes)
        mon("17:00"),   # a start, but the slot ends after working hours
        sat("10:00"),   # no slot rule on Saturdays
        "2026-03-02T10:00:00",
    ])
    def test_only_a_slot_of_the_service_can_be_booked(self, start: str) -> None:
        with rejected("start_at"):
            create_appointment(consultation(), start)

    def test_a_slot_already_begun_cannot_be_booked(self) -> None:
        with rejected("start_at"):
            create_appointment(consultation(), mon("10:00"), now=after(125))

    def test_a_slot_rule_outside_its_dates_gives_no_slot(self) -> None:
        world = consultation(slot_rules=[weekday_rule(starts_on="2026-03-03")])

        with rejected("start_at"):
            create_appointment(world, mon("10:00"))
        assert create_appointment(world, tue("10:30")).result["start_at"] == tue("10:30")

    @pytest.mark.parametrize(("fields", "field"), [
        ({"email": "sam"}, "email"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"display_name": ""}, "display_name"),
    ])
    def test_the_client_is_validated(self, fields: dict[str, Any], field: str) -> None:
        with rejected(field):
            create_appointment(consultation(), mon("10:00"), **fields)

    def test_another_accounts_service_is_not_found(self) -> None:
        with not_found():
            create_appointment(consultation(), mon("10:00"), account_id=OTHER_ACCOUNT_ID)

    @pytest.mark.parametrize("busy", [
        reserved(ANN_PROVIDER, "event_link", "event", mon("10:15"), mon("10:45")),
        reserved(ANN_PROVIDER, "bi_link", "hold", mon("09:45"), mon("10:15"), expires_at=mon("08:05")),
        reserved(ANN_PROVIDER, "blk_ann", "block", mon("10:00"), mon("12:00")),
        external_busy(ANN_PROVIDER, mon("10:29"), mon("10:30")),
    ], ids=["link event", "active hold", "provider block", "external busy time"])
    def test_whatever_occupies_the_provider_removes_the_slot(self, busy: Any) -> None:
        world = consultation(providers=(ANN_PROVIDER,)).given(provider_stream(ANN_PROVIDER), busy)

        with rejected("start_at"):
            create_appointment(world, mon("10:00"))

    def test_buffers_of_a_link_event_keep_the_service_slot_out(self) -> None:
        # a link event 10:30-11:00 with 15 minutes before it occupies 10:15-10:30 as well
        world = consultation(providers=(ANN_PROVIDER,)).given(provider_stream(ANN_PROVIDER), reserved(
            ANN_PROVIDER, "event_link", "event", mon("10:30"), mon("11:00"), buffer_before=15))

        with rejected("start_at"):
            create_appointment(world, mon("10:00"))

    def test_an_expired_hold_does_not_occupy_the_provider(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,)).given(provider_stream(ANN_PROVIDER), reserved(
            ANN_PROVIDER, "bi_old", "hold", mon("10:00"), mon("10:30"), expires_at=mon("07:59")))

        assert create_appointment(world, mon("10:00")).result["start_at"] == mon("10:00")


class TestPublicBookings:
    """The public service page books with `public: true`: only providers whose schedule takes public bookings."""

    @staticmethod
    def public(world: World, provider_id: str) -> World:
        schedule = ProviderSchedule(time_zone="Etc/UTC", public_bookings=PublicBookings(enabled=True))
        return world.given(provider_stream(provider_id), ProviderScheduleSet(provider_id=provider_id,
                                                                             schedule=schedule))

    def test_a_private_provider_cannot_be_booked_through_the_public_page(self) -> None:
        world = consultation()  # neither Ann nor Bob takes public bookings

        with rejected("start_at"):
            create_appointment(world, mon("10:00"), public=True)
        with rejected("provider_id"):
            create_appointment(world, mon("10:00"), public=True, provider_id=ANN_PROVIDER)

    def test_the_public_page_books_only_the_public_provider(self) -> None:
        world = self.public(consultation(), BOB_PROVIDER)

        assert booked_provider(create_appointment(world, mon("10:00"), public=True)) == BOB_PROVIDER
        with rejected("start_at"):  # Ann is free at 10:00 but private
            create_appointment(world, mon("10:00"), public=True)
        assert booked_provider(create_appointment(world, mon("10:00"))) == ANN_PROVIDER  # the API books anyone


class TestCancelAppointment:
    def test_cancel_releases_the_time_and_the_slot_is_bookable_again(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        decision = cancel_appointment(world, appointment_id)

        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), appointment_stream(appointment_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            TimeReleased(provider_id=ANN_PROVIDER, reservation_id=appointment_id)]
        assert events_on(decision, appointment_stream(appointment_id)) == [AppointmentCanceled(
            appointment_id=appointment_id, canceled_at="2026-03-02T09:00:00Z", cancel_reason="Sick")]
        result = decision.result
        assert (result["state"], result["canceled_at"], result["cancel_reason"]) == (
            "canceled", "2026-03-02T09:00:00Z", "Sick")
        assert create_appointment(world, mon("10:00")).result["provider_id"] == ANN_PROVIDER

    def test_canceling_twice_is_rejected(self) -> None:
        world = consultation()
        appointment_id = create_appointment(world, mon("10:00")).result["id"]
        cancel_appointment(world, appointment_id)

        with rejected("appointment_id"):
            cancel_appointment(world, appointment_id)

    @pytest.mark.parametrize("account_id", [OTHER_ACCOUNT_ID, ACCOUNT_ID])
    def test_an_unknown_or_foreign_appointment_is_not_found(self, account_id: str) -> None:
        world = consultation()
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        with not_found():
            cancel_appointment(world, appointment_id if account_id == OTHER_ACCOUNT_ID else "appt_ghost",
                               account_id=account_id)


class TestRescheduleAppointment:
    def test_a_move_to_a_free_slot_moves_the_reservation_and_the_appointment(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        decision = reschedule_appointment(world, appointment_id, mon("11:00"))

        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), appointment_stream(appointment_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [ReservationMoved(
            provider_id=ANN_PROVIDER, reservation_id=appointment_id, start_at=mon("11:00"), end_at=mon("11:30"))]
        assert events_on(decision, appointment_stream(appointment_id)) == [AppointmentRescheduled(
            appointment_id=appointment_id, start_at=mon("11:00"), end_at=mon("11:30"),
            rescheduled_at="2026-03-02T09:00:00Z", reschedule_reason="Clash")]
        result = decision.result
        assert (result["state"], result["start_at"], result["end_at"], result["provider_id"]) == (
            "confirmed", mon("11:00"), mon("11:30"), ANN_PROVIDER)
        assert (result["rescheduled_at"], result["reschedule_reason"], result["original_start_at"],
                result["original_end_at"]) == ("2026-03-02T09:00:00Z", "Clash", mon("10:00"), mon("10:30"))
        assert result["reschedule_url"] == manage_urls(PUBLIC_URL, SIGNING_SECRET, appointment_id,
                                                       mon("11:00"))["reschedule_url"]
        assert decision.guards == (SERVICE_STREAM,)
        # the old time is free again, the new one taken
        assert create_appointment(world, mon("10:00")).result["provider_id"] == ANN_PROVIDER
        with rejected("start_at"):
            create_appointment(world, mon("11:00"))

    def test_a_second_move_keeps_the_original_time(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]
        reschedule_appointment(world, appointment_id, mon("11:00"))

        result = reschedule_appointment(world, appointment_id, mon("12:00"), reason=None).result

        assert (result["start_at"], result["original_start_at"], result["reschedule_reason"]) == (
            mon("12:00"), mon("10:00"), None)

    def test_a_move_to_a_taken_slot_is_rejected_on_start_at(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]
        create_appointment(world, mon("11:00"))

        with rejected("start_at"):
            reschedule_appointment(world, appointment_id, mon("11:00"))

    def test_it_stays_with_its_provider_even_when_another_is_free(self) -> None:
        world = consultation()
        appointment_id = create_appointment(world, mon("10:00"), provider_id=ANN_PROVIDER).result["id"]
        create_appointment(world, mon("11:00"), provider_id=ANN_PROVIDER)

        with rejected("start_at"):  # Bob is free at 11:00, but the appointment is Ann's
            reschedule_appointment(world, appointment_id, mon("11:00"))

    def test_its_own_time_does_not_count_as_busy(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        decision = reschedule_appointment(world, appointment_id, mon("10:00"))

        assert decision.result["start_at"] == mon("10:00")
        assert decision.result["original_start_at"] == mon("10:00")

    @pytest.mark.parametrize("start", ["", "tomorrow", mon("07:00"), "2026-03-01T10:00:00Z"])
    def test_only_a_slot_of_the_service_is_accepted(self, start: str) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        with rejected("start_at"):
            reschedule_appointment(world, appointment_id, start)

    def test_a_canceled_appointment_cannot_be_rescheduled(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        appointment_id = create_appointment(world, mon("10:00")).result["id"]
        cancel_appointment(world, appointment_id)

        with rejected("appointment_id"):
            reschedule_appointment(world, appointment_id, mon("11:00"))

    @pytest.mark.parametrize("account_id", [OTHER_ACCOUNT_ID, ACCOUNT_ID])
    def test_an_unknown_or_foreign_appointment_is_not_found(self, account_id: str) -> None:
        world = consultation()
        appointment_id = create_appointment(world, mon("10:00")).result["id"]

        with not_found():
            reschedule_appointment(world, appointment_id if account_id == OTHER_ACCOUNT_ID else "appt_ghost",
                                   mon("11:00"), account_id=account_id)


# --- blocks ----------------------------------------------------------------------------------------

class TestBlocks:
    def test_a_provider_block_is_time_reserved_on_the_provider(self) -> None:
        world = consultation()

        decision = create_block(world, "provider", ANN_PROVIDER, mon("10:00"), mon("11:00"), reason="Dentist")

        block_id = decision.result["id"]
        assert block_id.startswith("blk_")
        assert streams_of(decision) == [block_stream(block_id), provider_stream(ANN_PROVIDER)]
        assert events_on(decision, block_stream(block_id)) == [BlockCreated(
            block_id=block_id, account_id=ACCOUNT_ID, attachment_type="provider", attachment_id=ANN_PROVIDER,
            attachment_stream=provider_stream(ANN_PROVIDER), start_at=mon("10:00"), end_at=mon("11:00"),
            reason="Dentist", created_at=NOW_ISO)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            reserved(ANN_PROVIDER, block_id, "block", mon("10:00"), mon("11:00"))]
        assert decision.result == {
            "object": "block", "id": block_id, "attachment_type": "provider", "attachment_id": ANN_PROVIDER,
            "start_at": mon("10:00"), "end_at": mon("11:00"), "reason": "Dentist", "created_at": NOW_ISO,
            "deleted": False}

    @pytest.mark.parametrize(("attachment_type", "attachment_id", "stream"), [
        ("service", SERVICE_ID, SERVICE_STREAM),
        ("service_provider", SP_ANN, SERVICE_STREAM),
        ("location", LOCATION_ID, LOCATION_STREAM),
    ])
    def test_other_blocks_are_added_to_the_attachments_stream(self, attachment_type: str, attachment_id: str,
                                                              stream: str) -> None:
        world = consultation(location_id=LOCATION_ID)

        decision = create_block(world, attachment_type, attachment_id, "2026-03-02T11:00:00+01:00",
                                mon("11:00"))

        block_id = decision.result["id"]
        assert streams_of(decision) == [block_stream(block_id), stream]
        assert events_on(decision, stream) == [BlockAdded(
            block_id=block_id, attachment_type=attachment_type, attachment_id=attachment_id,
            start_at=mon("10:00"), end_at=mon("11:00"))]
        (created,) = events_on(decision, block_stream(block_id))
        assert isinstance(created, BlockCreated) and created.attachment_stream == stream

    @pytest.mark.parametrize(("attachment_type", "attachment_id"), [
        ("provider", ANN_PROVIDER), ("service", SERVICE_ID), ("location", LOCATION_ID),
    ])
    def test_a_block_on_the_provider_service_or_location_removes_the_slot(self, attachment_type: str,
                                                                          attachment_id: str) -> None:
        world = consultation(providers=(ANN_PROVIDER,), location_id=LOCATION_ID)
        create_block(world, attachment_type, attachment_id, mon("10:15"), mon("10:20"))

        with rejected("start_at"):
            create_appointment(world, mon("10:00"))
        assert create_appointment(world, mon("10:30")).result["start_at"] == mon("10:30")

    def test_a_service_block_removes_the_slot_for_every_provider(self) -> None:
        world = consultation()
        create_block(world, "service", SERVICE_ID)

        with rejected("start_at"):
            create_appointment(world, mon("10:00"))

    @pytest.mark.parametrize(("attachment_type", "attachment_id"), [
        ("provider", ANN_PROVIDER), ("service_provider", SP_ANN),
    ])
    def test_a_block_on_one_provider_sends_the_booking_to_the_other(self, attachment_type: str,
                                                                    attachment_id: str) -> None:
        world = consultation()
        create_block(world, attachment_type, attachment_id)

        assert booked_provider(create_appointment(world, mon("10:00"))) == BOB_PROVIDER
        with rejected("start_at"):
            create_appointment(world, mon("10:30"), provider_id=ANN_PROVIDER)

    def test_a_location_block_does_not_touch_a_service_elsewhere(self) -> None:
        world = consultation()  # no location
        world.given(LOCATION_STREAM, LocationReferenced(account_id=ACCOUNT_ID, location_id=LOCATION_ID))
        create_block(world, "location", LOCATION_ID)

        assert create_appointment(world, mon("10:00")).result["start_at"] == mon("10:00")

    @pytest.mark.parametrize(("attachment_type", "attachment_id"), [
        ("provider", ANN_PROVIDER), ("service", SERVICE_ID), ("service_provider", SP_ANN),
        ("location", LOCATION_ID),
    ])
    def test_deleting_a_block_frees_its_time(self, attachment_type: str, attachment_id: str) -> None:
        world = consultation(providers=(ANN_PROVIDER,), location_id=LOCATION_ID)
        block_id = create_block(world, attachment_type, attachment_id).result["id"]
        _, stream = attachment(world, attachment_type, attachment_id)

        decision = delete_block(world, block_id)

        assert events_on(decision, block_stream(block_id)) == [
            BlockDeleted(block_id=block_id, deleted_at=NOW_ISO)]
        removal = (TimeReleased(provider_id=ANN_PROVIDER, reservation_id=block_id)
                   if attachment_type == "provider" else BlockRemoved(block_id=block_id))
        assert events_on(decision, stream) == [removal]
        assert decision.result["deleted"] is True
        assert create_appointment(world, mon("10:00")).result["start_at"] == mon("10:00")

    def test_a_deleted_block_cannot_be_deleted_again(self) -> None:
        world = consultation()
        block_id = create_block(world, "service", SERVICE_ID).result["id"]
        delete_block(world, block_id)

        with not_found():
            delete_block(world, block_id)

    @pytest.mark.parametrize(("attachment_type", "attachment_id"), [
        ("provider", "prov_ghost"),
        ("provider", OTHER_PROVIDER),
        ("service", "srv_ghost"),
        ("service_provider", "sp_ghost"),
        ("location", "loc_never_used"),
    ])
    def test_an_unknown_attachment_is_rejected(self, attachment_type: str, attachment_id: str) -> None:
        world = consultation().given(provider_stream(OTHER_PROVIDER), other_account_provider_created())

        with rejected("attachment_id"):
            create_block(world, attachment_type, attachment_id)

    def test_another_accounts_service_cannot_be_blocked(self) -> None:
        with rejected("attachment_id"):
            create_block(consultation(), "service", SERVICE_ID, account_id=OTHER_ACCOUNT_ID)

    @pytest.mark.parametrize(("fields", "field"), [
        ({"attachment_type": "room"}, "attachment_type"),
        ({"end": mon("10:00")}, "end_at"),
        ({"end": mon("09:00")}, "end_at"),
        ({"start": "tomorrow"}, "start_at"),
        ({"end": "2026-03-02T11:00:00"}, "end_at"),
        ({"reason": "r" * 1001}, "reason"),
    ])
    def test_the_block_is_validated(self, fields: dict[str, Any], field: str) -> None:
        body: dict[str, Any] = {"attachment_type": "service", "attachment_id": SERVICE_ID, **fields}

        with rejected(field):
            create_block(consultation(), body.pop("attachment_type"), body.pop("attachment_id"), **body)


# --- external busy times ---------------------------------------------------------------------------

class TestSyncExternalBusyTimes:
    def test_the_busy_times_are_recorded_on_the_provider_stream(self) -> None:
        world = consultation()

        decision = sync_busy(world, "2026-03-02T01:00:00+01:00", tue("00:00"),
                             ("2026-03-02T11:00:00+01:00", mon("11:00")))

        assert decision.changes == [(provider_stream(ANN_PROVIDER), [ExternalBusyTimesSynced(
            provider_id=ANN_PROVIDER, from_at=mon("00:00"), until_at=tue("00:00"),
            busy_times=[BusyInterval(start_at=mon("10:00"), end_at=mon("11:00"))])])]
        assert decision.result == {"provider_id": ANN_PROVIDER, "from": mon("00:00"), "until": tue("00:00"),
                                   "busy_times": [{"start_at": mon("10:00"), "end_at": mon("11:00")}]}
        with rejected("start_at"):
            create_appointment(world, mon("10:30"), provider_id=ANN_PROVIDER)

    def test_a_sync_replaces_only_inside_its_window(self) -> None:
        # given Ann's calendar is busy 10:00-11:00 on Monday and on Tuesday
        world = consultation(providers=(ANN_PROVIDER,))
        sync_busy(world, mon("00:00"), "2026-03-04T00:00:00Z", (mon("10:00"), mon("11:00")),
                  (tue("10:00"), tue("11:00")))

        # when Monday alone is synced again, now busy 14:00-15:00
        sync_busy(world, mon("00:00"), tue("00:00"), (mon("14:00"), mon("15:00")))

        # then Monday 10:00 is free, Monday 14:00 busy, and Tuesday untouched
        assert create_appointment(world, mon("10:00")).result["start_at"] == mon("10:00")
        with rejected("start_at"):
            create_appointment(world, mon("14:30"))
        with rejected("start_at"):
            create_appointment(world, tue("10:00"))

    def test_an_old_busy_time_across_the_window_edge_is_cut_there(self) -> None:
        # given busy from Monday 16:00 to Tuesday 10:00 (across midnight)
        world = consultation(providers=(ANN_PROVIDER,))
        sync_busy(world, mon("00:00"), "2026-03-04T00:00:00Z", (mon("16:00"), tue("10:00")))

        # when Tuesday is synced with nothing busy
        sync_busy(world, tue("00:00"), "2026-03-04T00:00:00Z")

        # then Tuesday 09:00 is free, Monday 16:00 still busy
        assert create_appointment(world, tue("09:00")).result["start_at"] == tue("09:00")
        with rejected("start_at"):
            create_appointment(world, mon("16:00"))

    def test_a_new_busy_time_counts_only_inside_the_window(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))

        sync_busy(world, mon("00:00"), tue("00:00"), (mon("16:00"), tue("12:00")))

        with rejected("start_at"):
            create_appointment(world, mon("16:30"))
        assert create_appointment(world, tue("10:00")).result["start_at"] == tue("10:00")

    @pytest.mark.parametrize(("window", "busy", "field"), [
        (("", tue("00:00")), [], "from"),
        (("monday", tue("00:00")), [], "from"),
        ((mon("00:00"), "2026-03-02T23:00:00"), [], "until"),
        ((mon("00:00"), mon("00:00")), [], "until"),
        ((tue("00:00"), mon("00:00")), [], "until"),
        ((mon("00:00"), "2027-04-07T00:00:00Z"), [], "until"),  # more than 400 days
        ((mon("00:00"), tue("00:00")), [(mon("11:00"), mon("10:00"))], "busy_times[0].end_at"),
        ((mon("00:00"), tue("00:00")), [(mon("09:00"), mon("10:00")), (mon("10:00"), mon("10:00"))],
         "busy_times[1].end_at"),
        ((mon("00:00"), tue("00:00")), [("10am", mon("10:00"))], "busy_times[0].start_at"),
        ((mon("00:00"), tue("00:00")), [(mon("10:00"), "")], "busy_times[0].end_at"),
    ])
    def test_the_window_and_busy_times_are_validated(self, window: tuple[str, str],
                                                     busy: list[tuple[str, str]], field: str) -> None:
        with rejected(field):
            sync_busy(consultation(), window[0], window[1], *busy)

    def test_another_accounts_provider_is_not_found(self) -> None:
        with not_found():
            sync_busy(consultation(), mon("00:00"), tue("00:00"), account_id=OTHER_ACCOUNT_ID)


# --- service holds ---------------------------------------------------------------------------------

class TestServiceHolds:
    def test_a_hold_reserves_the_slot_with_one_provider_until_it_expires(self) -> None:
        world = consultation(location_id=LOCATION_ID)

        decision = hold_service_slot(world, mon("10:00"), hold_minutes=15)

        hold_id = decision.result["id"]
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER), hold_stream(hold_id)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            reserved(ANN_PROVIDER, hold_id, "hold", mon("10:00"), mon("10:30"), expires_at=mon("08:15"))]
        assert events_on(decision, hold_stream(hold_id)) == [SlotHeld(
            booking_intent_id=hold_id, account_id=ACCOUNT_ID, service_id=SERVICE_ID,
            provider_ids=[ANN_PROVIDER], start_at=mon("10:00"), end_at=mon("10:30"), duration=30,
            expires_at=mon("08:15"), created_at=NOW_ISO)]
        assert (decision.result["state"], decision.result["service_id"], decision.result["provider_id"]) == (
            "active", SERVICE_ID, ANN_PROVIDER)
        assert decision.guards == (SERVICE_STREAM, LOCATION_STREAM)

    def test_the_default_hold_lasts_ten_minutes(self) -> None:
        decision = hold_service_slot(consultation(), mon("10:00"))

        assert decision.result["expires_at"] == mon("08:10")

    def test_a_held_slot_goes_to_another_provider_or_is_refused(self) -> None:
        world = consultation()
        hold_service_slot(world, mon("10:00"))

        assert booked_provider(create_appointment(world, mon("10:00"))) == BOB_PROVIDER
        with rejected("start_at"):
            create_appointment(world, mon("10:00"))
        with rejected("start_at"):
            hold_service_slot(world, mon("10:00"))

    def test_once_expired_the_held_slot_is_free_again(self) -> None:
        world = consultation(providers=(ANN_PROVIDER,))
        hold_service_slot(world, mon("10:00"))

        assert create_appointment(world, mon("10:00"), now=after(10)).result["provider_id"] == ANN_PROVIDER

    @pytest.mark.parametrize(("fields", "field"), [
        ({"duration": 60}, "duration"),
        ({"hold_minutes": 0}, "hold_minutes"),
        ({"provider_id": "prov_ghost"}, "provider_id"),
    ])
    def test_the_hold_is_validated(self, fields: dict[str, Any], field: str) -> None:
        with rejected(field):
            hold_service_slot(consultation(), mon("10:00"), **fields)

    def test_only_a_slot_can_be_held(self) -> None:
        with rejected("start_at"):
            hold_service_slot(consultation(), mon("10:15"))

    def test_completing_the_hold_books_the_appointment_in_one_decision(self) -> None:
        world = consultation(location_id=LOCATION_ID)
        hold_id = hold_service_slot(world, mon("10:00"), provider_id=BOB_PROVIDER).result["id"]

        decision = complete_service_hold(world, hold_id, now=after(3))

        appointment_id = decision.result["id"]
        assert streams_of(decision) == [provider_stream(BOB_PROVIDER), appointment_stream(appointment_id),
                                        hold_stream(hold_id)]
        assert events_on(decision, provider_stream(BOB_PROVIDER)) == [
            TimeReleased(provider_id=BOB_PROVIDER, reservation_id=hold_id),
            reserved(BOB_PROVIDER, appointment_id, "appointment", mon("10:00"), mon("10:30"))]
        assert events_on(decision, hold_stream(hold_id)) == [HoldCompleted(
            booking_intent_id=hold_id, completed_at="2026-03-02T08:03:00Z", appointment_id=appointment_id)]
        assert (decision.result["booking_intent_id"], decision.result["provider_id"],
                decision.result["service_provider_id"]) == (hold_id, BOB_PROVIDER, SP_BOB)
        assert decision.result["created_at"] == "2026-03-02T08:03:00Z"
        assert decision.guards == (SERVICE_STREAM, LOCATION_STREAM)
        assert world.hold(hold_id).state == "completed"
        assert list(world.provider(BOB_PROVIDER).calendar.reservations) == [appointment_id]

    def test_an_expired_hold_cannot_be_completed(self) -> None:
        world = consultation()
        hold_id = hold_service_slot(world, mon("10:00")).result["id"]

        with rejected("booking_intent_id"):
            complete_service_hold(world, hold_id, now=after(10))

    def test_a_completed_hold_cannot_be_completed_again(self) -> None:
        world = consultation()
        hold_id = hold_service_slot(world, mon("10:00")).result["id"]
        complete_service_hold(world, hold_id)

        with rejected("booking_intent_id"):
            complete_service_hold(world, hold_id)

    def test_the_client_of_a_completion_is_validated(self) -> None:
        world = consultation()
        hold_id = hold_service_slot(world, mon("10:00")).result["id"]

        with rejected("email"):
            complete_service_hold(world, hold_id, email="sam at example")


def test_a_link_event_and_a_service_appointment_share_one_calendar() -> None:
    # given Ann hosts the intro link and offers the Consultation; Sam books the link at 10:00
    world = consultation(providers=(ANN_PROVIDER,))
    world.given(link_stream(LINK_ID), link_created(settings=link_settings()))
    create_event(world, mon("10:00"))

    # then the Consultation cannot take Ann at 10:00, nor the link 11:00 once an appointment holds it
    with rejected("start_at"):
        create_appointment(world, mon("10:00"))
    create_appointment(world, mon("11:00"))
    with rejected("start_at"):
        create_event(world, mon("11:00"))
