"""The /calendly endpoints over real HTTP: seed 004's resources, Calendly's shapes and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import nats
import pytest

from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send

pytestmark = pytest.mark.integration


async def calendly_account(nc: nats.NATS, settings: Settings):
    account = await bookable_account(nc, settings)
    token = (await send(nc, settings, "issue_api_token", {**account.ids}))["result"]["token"]
    return account, {"Authorization": f"Bearer {token}"}


async def test_users_memberships_event_types_and_schedules(http: httpx.AsyncClient, nc: nats.NATS,
                                                           settings: Settings):
    account, auth = await calendly_account(nc, settings)
    override = await send(nc, settings, "set_provider_schedule", {
        **account.ids, "provider_id": account.provider_id,
        "date_overrides": [{"date": "2030-01-01", "intervals": []}]})
    me = await http.get("/calendly/users/me", headers=auth, params={})
    assert me.status_code == 200
    user = me.json()["resource"]
    base = str(http.base_url).rstrip("/") + "/calendly"
    assert user["uri"] == f"{base}/users/{account.ids['user_id']}"
    assert user["current_organization"] == f"{base}/organizations/{account.ids['account_id']}"

    memberships = (await http.get("/calendly/organization_memberships", headers=auth,
                                  params={"organization": user["current_organization"]})).json()
    assert [m["user"]["uri"] for m in memberships["collection"]] == [user["uri"]]
    assert set(memberships["pagination"]) == {"count", "next_page", "previous_page", "next_page_token",
                                              "previous_page_token"}

    types = (await http.get("/calendly/event_types", headers=auth, params={"user": user["uri"]})).json()
    assert [t["uri"] for t in types["collection"]] == [f"{base}/event_types/{account.link_id}"]
    assert types["collection"][0]["duration"] == 30 and types["collection"][0]["active"] is True
    by_org = (await http.get("/calendly/event_types", headers=auth,
                             params={"organization": user["current_organization"]})).json()
    assert len(by_org["collection"]) == 1

    schedules = (await http.get("/calendly/user_availability_schedules", headers={
        **auth, "X-Sched-Position": str(override["position"])}, params={"user": user["uri"]})).json()
    rules = schedules["collection"][0]["rules"]
    assert [r["wday"] for r in rules if r["type"] == "wday"] == [
        "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    assert next(r for r in rules if r["wday"] == "sunday")["intervals"] == []
    assert next(r for r in rules if r["wday"] == "monday")["intervals"] == [{"from": "00:00", "to": "24:00"}]
    assert {"type": "date", "date": "2030-01-01", "wday": None, "intervals": []} in rules


async def test_available_times_and_busy_times(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account, auth = await calendly_account(nc, settings)
    booked = await send(nc, settings, "create_event", account.event_body(weekday_at(2, 10)))
    synced = await send(nc, settings, "sync_external_busy_times", {
        **account.ids, "provider_id": account.provider_id, "from": iso(weekday_at(2, 0)),
        "until": iso(weekday_at(2, 0) + timedelta(days=1)),
        "busy_times": [{"start_at": iso(weekday_at(2, 12)), "end_at": iso(weekday_at(2, 13))}]})
    base = str(http.base_url).rstrip("/") + "/calendly"
    window = {"start_time": iso(weekday_at(2, 9)), "end_time": iso(weekday_at(2, 14))}
    assert synced["position"] > booked["position"]
    headers = {**auth, "X-Sched-Position": str(synced["position"])}  # the reads wait for both commands
    times = (await http.get("/calendly/event_type_available_times", headers=headers,
                            params={**window, "event_type": f"{base}/event_types/{account.link_id}"})).json()
    starts = [t["start_time"] for t in times["collection"]]
    assert starts and all(t["status"] == "available" and t["invitees_remaining"] == 1 for t in times["collection"])
    booked_start = weekday_at(2, 10).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert booked_start not in starts and weekday_at(2, 9).strftime("%Y-%m-%dT%H:%M:%S.%fZ") in starts
    busy = (await http.get("/calendly/user_busy_times", headers=headers,
                           params={**window, "user": f"{base}/users/{account.ids['user_id']}"})).json()
    kinds = [(b["type"], b["start_time"]) for b in busy["collection"]]
    assert ("calendly", booked_start) in kinds
    assert ("external", weekday_at(2, 12).strftime("%Y-%m-%dT%H:%M:%S.%fZ")) in kinds
    assert all(set(b) >= {"type", "start_time", "end_time", "buffered_start_time", "buffered_end_time"}
               for b in busy["collection"])


async def test_calendly_errors_use_calendlys_format(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings):
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    event_type = f"{base}/event_types/{account.link_id}"
    past = datetime.now(UTC) - timedelta(days=1)
    for params, parameter in [
        ({"event_type": event_type, "start_time": iso(past), "end_time": iso(past + timedelta(hours=1))},
         "start_time"),
        ({"event_type": event_type, "start_time": iso(weekday_at(2, 0)),
          "end_time": iso(weekday_at(2, 0) + timedelta(days=8))}, "end_time"),
        ({"event_type": "not-a-uri", "start_time": iso(weekday_at(2, 0)), "end_time": iso(weekday_at(2, 5))},
         "event_type"),
        ({"event_type": event_type, "end_time": iso(weekday_at(2, 5))}, "start_time"),
    ]:
        reply = await http.get("/calendly/event_type_available_times", headers=auth, params=params)
        assert reply.status_code == 400, reply.text
        body = reply.json()
        assert set(body) == {"title", "message", "details"} and body["details"][0]["parameter"] == parameter
    assert (await http.get("/calendly/users/me")).status_code == 401
    missing = await http.get("/calendly/event_type_available_times", headers=auth, params={
        "event_type": f"{base}/event_types/link_01NOPE", "start_time": iso(weekday_at(2, 0)),
        "end_time": iso(weekday_at(2, 5))})
    assert missing.status_code == 404 and missing.json()["title"] == "Resource Not Found"
