"""Which domain events become which webhooks, and the payload each carries (the API's resource)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from services.webhooks.payloads import resource_payload, webhook_body, webhook_type
from shared.domain import appointments, link_bookings, links
from shared.domain.registry import stream_kind
from shared.domain.webhooks import WEBHOOK_EVENT_TYPES, WEBHOOK_TYPE_OF
from shared.messages.events import (
    AppointmentCanceled,
    AppointmentCreated,
    Attendee,
    Client,
    Event,
    EventCanceled,
    EventCreated,
    EventRescheduled,
    HoldExpired,
    LinkPreview,
    LinkToggled,
    LinkUpdated,
    ScopeRef,
    SlotHeld,
)

from .domain_fixtures import (
    EARLIER_ISO,
    LINK_ID,
    NOW_ISO,
    PUBLIC_URL,
    SIGNING_SECRET,
    intro_settings,
    link_created,
    link_deleted,
    provider_created,
)

OCCURRED = "2026-05-04T09:30:15.123456Z"


def payload_after(stream_id: str, events: list[Event]) -> dict[str, Any]:
    """The webhook payload of the last of `events`, the stream's history up to it."""
    kind = stream_kind(stream_id)
    return resource_payload(stream_id, kind.fold(kind.state_type(), events[:-1]), events[-1], OCCURRED, PUBLIC_URL,
                            SIGNING_SECRET)


def booked_event() -> EventCreated:
    person = Attendee(id="att_1", email="sally@example.com", display_name="Sally", time_zone="America/Chicago",
                      is_scheduler=True)
    host = Attendee(id="att_2", email="ann@example.com", display_name="Ann", time_zone="Europe/Berlin",
                    is_organizer=True)
    return EventCreated(event_id="event_1", account_id="acct_main",
                        link=LinkPreview(id=LINK_ID, name="Intro", private_name=None, slug="intro"),
                        scope=ScopeRef(id="scope_ann", name="Ann", slug="ann"), provider_ids=["prov_ann"],
                        organizer=host, scheduler=person, summary="Ann and Sally", start_at="2026-05-06T10:00:00Z",
                        end_at="2026-05-06T10:30:00Z", duration=30, created_at=EARLIER_ISO)


def appointment() -> AppointmentCreated:
    return AppointmentCreated(appointment_id="appt_1", account_id="acct_main", service_id="srv_1",
                              provider_id="prov_ann", service_provider_id="sp_1", start_at="2026-05-06T10:00:00Z",
                              end_at="2026-05-06T10:30:00Z", duration=30,
                              client=Client(display_name="Sally", email="sally@example.com", time_zone="Etc/UTC"),
                              created_at=EARLIER_ISO)


def hold() -> SlotHeld:
    return SlotHeld(booking_intent_id="bi_1", account_id="acct_main", service_id="srv_1", provider_ids=["prov_ann"],
                    start_at="2026-05-06T10:00:00Z", end_at="2026-05-06T10:30:00Z", duration=30,
                    expires_at="2026-05-04T09:20:00Z", created_at=EARLIER_ISO)


def test_every_webhook_type_has_a_source_and_nothing_else_is_delivered():
    assert set(WEBHOOK_TYPE_OF.values()) == set(WEBHOOK_EVENT_TYPES)
    assert webhook_type("link_toggled") == webhook_type("link_updated") == "link.updated"
    assert webhook_type("hold_expired") == "booking_intent.expired"
    for internal in ("time_reserved", "link_slug_claimed", "slot_held", "hold_completed", "webhook_created",
                     "provider_schedule_set", "block_created", "account_created"):
        assert webhook_type(internal) is None


def test_link_payloads_are_the_link_resource_as_each_event_left_it():
    created = link_created()
    updated = LinkUpdated(link_id=LINK_ID, settings=intro_settings(name="Renamed"), updated_at=NOW_ISO)
    toggled = LinkToggled(link_id=LINK_ID, state="disabled", updated_at=NOW_ISO)
    stream = f"link-{LINK_ID}"
    first = payload_after(stream, [created])
    assert first == links.link_resource(links.evolve(links.LinkState(), created), PUBLIC_URL)
    assert payload_after(stream, [created, updated])["name"] == "Renamed"
    assert payload_after(stream, [created, updated, toggled])["state"] == "disabled"


def test_a_deleted_link_is_shown_as_the_delete_endpoint_answers():
    created = link_created()
    payload = payload_after(f"link-{LINK_ID}", [created, link_deleted()])
    assert payload == payload_after(f"link-{LINK_ID}", [created])


def test_event_payloads_follow_cancel_and_reschedule():
    created = booked_event()
    moved = EventRescheduled(event_id="event_1", start_at="2026-05-07T10:00:00Z", end_at="2026-05-07T10:30:00Z",
                             rescheduled_at=NOW_ISO, reschedule_reason="clash")
    canceled = EventCanceled(event_id="event_1", canceled_at=NOW_ISO, cancel_reason="sick")
    payload = payload_after("event-event_1", [created, moved, canceled])
    expected = link_bookings.event_resource(
        link_bookings.evolve_event(link_bookings.evolve_event(link_bookings.evolve_event(link_bookings.BookedEventState(), created),
                                                    moved), canceled), PUBLIC_URL, SIGNING_SECRET)
    assert payload == expected
    assert (payload["state"], payload["start_at"], payload["original_start_at"]) == (
        "canceled", "2026-05-07T10:00:00Z", "2026-05-06T10:00:00Z")


def test_appointment_and_expired_hold_payloads():
    created = appointment()
    canceled = AppointmentCanceled(appointment_id="appt_1", canceled_at=NOW_ISO, cancel_reason="moved away")
    payload = payload_after("appt-appt_1", [created, canceled])
    assert payload == appointments.appointment_resource(appointments.AppointmentState(created=created, state="canceled",
                                                                              canceled_at=NOW_ISO,
                                                                              cancel_reason="moved away"),
                                                       PUBLIC_URL, SIGNING_SECRET)
    expired = payload_after("bi-bi_1", [hold(), HoldExpired(booking_intent_id="bi_1", expired_at=NOW_ISO)])
    assert expired["object"] == "booking_intent" and expired["state"] == "expired" and expired["id"] == "bi_1"


def test_a_stream_without_a_webhook_resource_is_an_error():
    with pytest.raises(ValueError):
        payload_after("provider-prov_1", [provider_created()])


def test_the_body_carries_the_event_id_version_and_time():
    body = msgspec.json.decode(webhook_body("link.created", "evt_01", 1, OCCURRED, {"id": LINK_ID}))
    assert body == {"type": "link.created", "id": "evt_01", "version": 1, "occurred_at": OCCURRED,
                    "payload": {"id": LINK_ID}}
