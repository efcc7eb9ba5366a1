"""End to end over real HTTP: uvicorn serving the gateway, command and query services and projections."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import nats
import pytest

from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import new_account

pytestmark = pytest.mark.integration

EVENT_FIELDS = {
    "id", "state", "summary", "description", "additional_info", "location", "conferencing", "created_at",
    "start_at", "end_at", "duration", "canceled_at", "cancel_reason", "rescheduled_at", "reschedule_reason",
    "original_start_at", "original_end_at", "link", "poll", "scope", "scheduler", "organizer", "attendees",
    "payment", "metadata", "url", "location_settings", "description_settings", "buffer_before", "buffer_after",
    "is_group_session", "maximum_group_size", "reschedule_url", "cancel_url",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_link_flow_booking_and_read_your_writes(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await new_account(nc, settings, team_slug="acme")
    auth = bearer(account["token"])
    assert (await http.get("/v1/me", headers=auth)).json()["id"] == account["user_id"]
    created = await http.post("/v1/links", headers=auth, json={"name": "Intro Call", "durations": [30, 60]})
    assert created.status_code == 201
    link = created.json()
    team = await http.post("/v1/scopes/acme/links", headers=auth, json={"name": "Team"})
    assert team.status_code == 201 and team.json()["scope"]["slug"] == "acme"
    assert (await http.post("/v1/scopes/nope/links", headers=auth, json={"name": "X"})).status_code == 404
    patched = await http.patch(f"/v1/links/{link['id']}", headers=auth, json={"description": "Say hi"})
    assert patched.status_code == 200 and patched.json()["description"] == "Say hi"
    assert (await http.post(f"/v1/links/{link['id']}/duplicate", headers=auth)).status_code == 200

    slots = (await http.get(f"/v1/links/{link['id']}/slots", headers=auth,
                            params={"from": iso(weekday_at(2, 0)), "until": iso(weekday_at(2, 0) + timedelta(days=1))}))
    assert slots.status_code == 200
    first = slots.json()[0]
    booked = await http.post(f"/v1/links/{link['id']}/events", headers=auth, json={
        "display_name": "Sally Scheduler", "email": "sally@example.com", "start_at": first["start_at"],
        "end_at": first["end_at"], "time_zone": "America/Chicago", "metadata": {"crm": 7}})
    assert booked.status_code == 200, booked.text
    event = booked.json()
    assert set(event) == EVENT_FIELDS and event["metadata"] == {"crm": 7}
    after = (await http.get(f"/v1/links/{link['id']}/slots", headers=auth,
                            params={"from": iso(weekday_at(2, 0)), "until": iso(weekday_at(2, 0) + timedelta(days=1))}))
    assert (first["start_at"], first["duration"]) not in [(s["start_at"], s["duration"]) for s in after.json()]
    listed = (await http.get("/v1/events", headers=auth)).json()
    assert [e["id"] for e in listed["entries"]] == [event["id"]] and listed["metadata"]["limit"] == 20
    canceled = await http.post(f"/v1/events/{event['id']}/cancel", headers=auth, json={"cancel_reason": "sick"})
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    again = await http.post(f"/v1/events/{event['id']}/cancel", headers=auth, json={})
    assert again.status_code == 422 and "event_id" in again.json()["errors"]
    deleted = await http.delete(f"/v1/links/{link['id']}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["id"] == link["id"]
    assert (await http.get(f"/v1/links/{link['id']}", headers=auth)).status_code == 404


async def test_errors_are_clear_4xx_never_5xx(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await new_account(nc, settings)
    auth = bearer(account["token"])
    assert (await http.get("/v1/links")).status_code == 401
    assert (await http.get("/v1/links", headers=bearer("wrong"))).status_code == 401
    bad_json = await http.post("/v1/links", headers={**auth, "Content-Type": "application/json"}, content=b"{nope")
    assert bad_json.status_code == 400
    wrong_type = await http.post("/v1/links", headers=auth, json={"name": "X", "durations": "thirty"})
    assert wrong_type.status_code == 422 and "durations" in wrong_type.json()["errors"]
    enum = await http.post("/v1/links", headers=auth, json={"name": "X", "host_mode": "most"})
    assert enum.status_code == 422 and "host_mode" in enum.json()["errors"]
    huge = await http.post("/v1/links", headers=auth, json={"name": "X", "description": "a" * 1_100_000})
    assert huge.status_code == 413
    cursor = await http.get("/v1/events", headers=auth, params={"after": "%%%"})
    assert cursor.status_code == 422 and "after" in cursor.json()["errors"]
    limit = await http.get("/v1/events", headers=auth, params={"limit": "500"})
    assert limit.status_code == 422 and "limit" in limit.json()["errors"]
    unknown = await http.get("/v1/events/event_01NOPE", headers=auth)
    assert unknown.status_code == 404
    public = await http.get("/v1/public/services/srv_x/earliest_slot")
    assert public.status_code == 401
    bad_date = await http.get("/v1/services/srv_x/slots", headers=auth, params={"from": "tomorrow"})
    assert bad_date.status_code in (404, 422)


async def test_the_gateway_serves_both_generated_documents(http: httpx.AsyncClient) -> None:
    openapi = (await http.get("/openapi.json")).json()
    asyncapi = (await http.get("/asyncapi.json")).json()
    assert openapi["openapi"].startswith("3.1") and "Idempotency-Key" in str(openapi["paths"]["/v1/links"]["post"])
    assert asyncapi["asyncapi"] == "3.0.0"
    assert {op for op in asyncapi["operations"] if not op.startswith("publish_")} >= {"create_event", "link_slots"}


async def test_idempotency_key_is_the_command_id(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await new_account(nc, settings)
    auth = {**bearer(account["token"]), "Idempotency-Key": "same-link"}
    first = await http.post("/v1/links", headers=auth, json={"name": "Once"})
    again = await http.post("/v1/links", headers=auth, json={"name": "Once"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    listed = (await http.get("/v1/links", headers=bearer(account["token"]))).json()["entries"]
    assert [link["name"] for link in listed].count("Once") == 1
    too_long = await http.post("/v1/links", headers={**auth, "Idempotency-Key": "k" * 201}, json={"name": "X"})
    assert too_long.status_code == 422 and "Idempotency-Key" in too_long.json()["errors"]


async def test_a_422_names_every_field_at_fault_at_once(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await new_account(nc, settings)
    auth = bearer(account["token"])
    link = (await http.post("/v1/links", headers=auth, json={"name": "Every fault"})).json()
    empty = await http.post(f"/v1/links/{link['id']}/events", headers=auth, json={})
    assert empty.status_code == 422
    assert set(empty.json()["errors"]) == {"display_name", "email", "start_at", "end_at", "time_zone"}
    mixed = await http.post("/v1/links", headers=auth, json={"name": 7, "durations": "thirty", "colour": "red"})
    assert mixed.status_code == 422
    assert {"name", "durations", "colour"} <= set(mixed.json()["errors"])
    window = await http.get(f"/v1/links/{link['id']}/slots", headers=auth, params={"from": "soon", "until": "later"})
    assert window.status_code == 422 and set(window.json()["errors"]) == {"from", "until"}
    numbers = await http.get("/v1/events", headers=auth, params={"limit": "many", "state": "x", "period": "y"})
    assert numbers.status_code == 422 and set(numbers.json()["errors"]) == {"limit", "state", "period"}
    hold = await http.post("/v1/booking_intents", headers=auth,
                           json={"link_id": link["id"], "start_at": "soon", "hold_minutes": 0})
    assert hold.status_code == 422 and set(hold.json()["errors"]) == {"start_at", "hold_minutes"}


async def test_thirty_concurrent_http_bookings_of_one_slot_give_one_event(
    http: httpx.AsyncClient, nc: nats.NATS, settings: Settings
):
    account = await bookable_account(nc, settings)
    token = (await new_account(nc, settings))["token"]  # another tenant, to check isolation too
    ours = (await http.get("/v1/me", headers=bearer(token))).json()
    assert ours["account_id"] != account.ids["account_id"]
    from tests.integration.messaging import send

    issued = await send(nc, settings, "issue_api_token", {**account.ids})
    auth = bearer(issued["result"]["token"])
    start = weekday_at(3, 10)
    body = {"display_name": "Racer", "email": "r@example.com", "start_at": iso(start),
            "end_at": iso(start + timedelta(minutes=30)), "time_zone": "Etc/UTC"}
    replies = await asyncio.gather(*[http.post(f"/v1/links/{account.link_id}/events", headers=auth, json=body)
                                     for _ in range(30)])
    codes = sorted(r.status_code for r in replies)
    assert codes.count(200) == 1 and codes.count(422) == 29, codes
    listed = (await http.get("/v1/events", headers=auth)).json()["entries"]
    assert [e["start_at"] for e in listed] == [iso(start)]
    # tenant isolation: the other account sees none of it
    for path in (f"/v1/links/{account.link_id}", f"/v1/events/{listed[0]['id']}",
                 f"/v1/services/{account.service_id}", f"/v1/providers/{account.provider_id}",
                 f"/v1/links/{account.link_id}/slots"):
        assert (await http.get(path, headers=bearer(token))).status_code == 404, path
    assert (await http.post(f"/v1/links/{account.link_id}/toggle", headers=bearer(token))).status_code == 404


async def test_services_appointments_and_public_slots(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await bookable_account(nc, settings)
    from tests.integration.messaging import send

    auth = bearer((await send(nc, settings, "issue_api_token", {**account.ids}))["result"]["token"])
    day = weekday_at(2, 0).date().isoformat()
    slots = await http.get(f"/v1/services/{account.service_id}/slots", headers=auth,
                           params={"from": day, "until": day, "time_zone": "Europe/Berlin"})
    assert slots.status_code == 200 and slots.json()["data"]["aggregated_slots"][0]["start_at"].endswith("+01:00")
    public = await http.get(f"/v1/public/services/{account.service_id}/slots",
                            headers={"X-SavvyCal-Account": account.ids["account_id"]}, params={"limit": "3"})
    assert public.status_code == 200 and len(public.json()["data"]) == 3
    earliest = await http.get(f"/v1/public/services/{account.service_id}/earliest_slot",
                              headers={"X-SavvyCal-Account": account.ids["account_id"]})
    assert earliest.status_code == 200 and earliest.json()["data"]["object"] == "slot"
    hold = await http.post("/v1/booking_intents", headers=auth, json={"service_id": account.service_id,
                                                                     "start_at": iso(weekday_at(2, 10))})
    assert hold.status_code == 201 and hold.json()["state"] == "active"
    done = await http.post(f"/v1/booking_intents/{hold.json()['id']}/complete", headers=auth, json={
        "display_name": "Cleo", "email": "cleo@example.com", "time_zone": "Etc/UTC"})
    assert done.status_code == 200 and done.json()["object"] == "appointment"
    fetched = await http.get(f"/v1/appointments/{done.json()['id']}", headers=auth)
    assert fetched.status_code == 200 and fetched.json()["booking_intent_id"] == hold.json()["id"]
    block = await http.post("/v1/blocks", headers=auth, json={
        "attachment_type": "provider", "attachment_id": account.provider_id, "start_at": iso(weekday_at(2, 12)),
        "end_at": iso(weekday_at(2, 13)), "reason": "lunch"})
    assert block.status_code == 201
    assert (await http.delete(f"/v1/blocks/{block.json()['id']}", headers=auth)).status_code == 200
    document = (await http.get("/openapi.json")).json()
    assert "/v1/links/{link_id}/events" in document["paths"] and "/v1/booking_intents" in document["paths"]
    metrics = (await http.get("/metrics")).text
    assert 'sched_http_requests_total{route="POST /v1/booking_intents",status="201"} 1' in metrics


async def test_an_appointment_is_rescheduled_over_http(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account = await bookable_account(nc, settings)
    from tests.integration.messaging import send

    auth = bearer((await send(nc, settings, "issue_api_token", {**account.ids}))["result"]["token"])
    client = {"display_name": "Cleo", "email": "cleo@example.com", "time_zone": "Etc/UTC"}
    ten, eleven = weekday_at(2, 10), weekday_at(2, 11)
    booked = await http.post("/v1/appointments", headers=auth,
                             json={"service_id": account.service_id, "start_at": iso(ten), **client})
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert "rescheduled_at" not in appointment  # the reschedule fields appear once it has moved

    async def starts() -> set[str]:
        day = ten.date().isoformat()
        reply = await http.get(f"/v1/services/{account.service_id}/slots", headers=auth,
                               params={"from": day, "until": day, "time_zone": "Etc/UTC"})
        assert reply.status_code == 200, reply.text
        return {s["start_at"][11:16] for s in reply.json()["data"]["aggregated_slots"]}

    assert "10:00" not in await starts() and "11:00" in await starts()
    # its own time does not count: 10:15 overlaps it and is accepted
    nudged = await http.post(f"/v1/appointments/{appointment['id']}/reschedule", headers=auth,
                             json={"start_at": iso(ten + timedelta(minutes=15))})
    assert nudged.status_code == 200, nudged.text
    moved = await http.post(f"/v1/appointments/{appointment['id']}/reschedule", headers=auth,
                            json={"start_at": iso(eleven), "reschedule_reason": "clash"})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["start_at"], body["end_at"], body["original_start_at"], body["reschedule_reason"]) == (
        iso(eleven), iso(eleven + timedelta(minutes=30)), iso(ten), "clash")
    assert body["reschedule_url"] != appointment["reschedule_url"]  # a move gives new manage links
    fetched = (await http.get(f"/v1/appointments/{appointment['id']}", headers=auth)).json()
    assert fetched["start_at"] == iso(eleven) and fetched["rescheduled_at"] == body["rescheduled_at"]
    free = await starts()
    assert "10:00" in free and not {"11:00", "11:15"} & free and "11:30" in free  # freed and taken
    taken = await http.post("/v1/appointments", headers=auth,
                            json={"service_id": account.service_id, "start_at": iso(eleven), **client})
    assert taken.status_code == 422 and set(taken.json()["errors"]) == {"start_at"}
    other = await http.post("/v1/appointments", headers=auth,
                            json={"service_id": account.service_id, "start_at": iso(ten), **client})
    assert other.status_code == 201, other.text
    onto = await http.post(f"/v1/appointments/{appointment['id']}/reschedule", headers=auth,
                           json={"start_at": iso(ten)})
    assert onto.status_code == 422 and set(onto.json()["errors"]) == {"start_at"}
    ics = await http.get(f"/v1/appointments/{appointment['id']}/ics", headers=auth)
    assert ics.status_code == 200 and "SEQUENCE:2" in ics.text and eleven.strftime("%Y%m%dT%H%M%S") in ics.text
    assert (await http.post(f"/v1/appointments/{appointment['id']}/cancel", headers=auth, json={})).status_code == 200
    canceled = await http.post(f"/v1/appointments/{appointment['id']}/reschedule", headers=auth,
                               json={"start_at": iso(weekday_at(2, 14))})
    assert canceled.status_code == 422 and set(canceled.json()["errors"]) == {"appointment_id"}
    missing = await http.post("/v1/appointments/appt_ghost/reschedule", headers=auth, json={"start_at": iso(eleven)})
    assert missing.status_code == 404
