"""Calendly API v2 over real HTTP: every response decodes as Calendly's reference types it, pagination
walks both ways keeping filters, the Scheduling API books through the SavvyCal booking's command."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import nats
import pytest

from shared.calendly import calendly_iso
from shared.servers import free_port
from shared.settings import Settings
from tests.e2e import calendly_reference as ref
from tests.e2e.conftest import Site
from tests.e2e.test_calendly_api import calendly_account
from tests.integration.booking_setup import iso, weekday_at
from tests.integration.gateway_process import gateway_client
from tests.integration.messaging import send
from tests.integration.webhook_receiver import Receiver, eventually

pytestmark = pytest.mark.integration


def path_of(uri: str) -> str:
    """The path of a URI the API handed out, to GET it with the test client."""
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def get(http: httpx.AsyncClient, auth: dict[str, str], uri: str, type_: object, **params: object) -> object:
    reply = await http.get(path_of(uri) if uri.startswith("http") else uri, headers=auth, params=params or None)
    assert reply.status_code == 200, reply.text
    return ref.decode(reply.content, type_)


async def test_every_resource_decodes_as_calendlys_reference_types_it(http: httpx.AsyncClient, nc: nats.NATS,
                                                                      settings: Settings) -> None:
    _, auth = await calendly_account(nc, settings)
    me = await get(http, auth, "/calendly/users/me", ref.One[ref.User])
    assert await get(http, auth, me.resource.uri, ref.One[ref.User]) == me
    organization = me.resource.current_organization
    await get(http, auth, organization, ref.One[ref.Organization])
    members = await get(http, auth, "/calendly/organization_memberships", ref.Many[ref.Membership],
                        organization=organization, email=me.resource.email)
    assert [m.user.uri for m in members.collection] == [me.resource.uri]
    await get(http, auth, members.collection[0].uri, ref.One[ref.Membership])
    types = await get(http, auth, "/calendly/event_types", ref.Many[ref.EventType], user=me.resource.uri,
                      active="true", sort="name:asc")
    event_type = types.collection[0]
    assert event_type.kind_description == "One-on-One"
    await get(http, auth, event_type.uri, ref.One[ref.EventType])
    schedules = await get(http, auth, "/calendly/user_availability_schedules", ref.Plain[ref.Schedule],
                          user=me.resource.uri)
    await get(http, auth, schedules.collection[0].uri, ref.One[ref.Schedule])
    window = {"start_time": iso(weekday_at(2, 9)), "end_time": iso(weekday_at(2, 14))}
    times = await get(http, auth, "/calendly/event_type_available_times", ref.Plain[ref.AvailableTime],
                      event_type=event_type.uri, **window)
    start = times.collection[0].start_time

    booked = await http.post("/calendly/invitees", headers=auth, json={
        "event_type": event_type.uri, "start_time": start,
        "invitee": {"name": "Ada Lovelace", "email": "ada@example.com", "timezone": "Europe/London"}})
    assert booked.status_code == 201, booked.text
    invitee = ref.decode(booked.content, ref.One[ref.Invitee]).resource
    position = {"X-Sched-Position": booked.headers["x-sched-position"]}
    busy = await get(http, {**auth, **position}, "/calendly/user_busy_times", ref.Plain[ref.BusyTime],
                     user=me.resource.uri, **window)
    event_uri = next(b.event.uri for b in busy.collection if b.event is not None)
    assert event_uri == invitee.event
    event = await get(http, {**auth, **position}, event_uri, ref.One[ref.ScheduledEvent])
    assert event.resource.status == "active" and event.resource.start_time == start
    invitees = await get(http, {**auth, **position}, f"{event_uri}/invitees", ref.Many[ref.Invitee])
    assert [i.uri for i in invitees.collection] == [invitee.uri]
    await get(http, {**auth, **position}, invitee.uri, ref.One[ref.Invitee])
    listed = await get(http, {**auth, **position}, "/calendly/scheduled_events", ref.Many[ref.ScheduledEvent],
                       user=me.resource.uri, invitee_email="ada@example.com", status="active",
                       min_start_time=iso(weekday_at(2, 0)), sort="start_time:desc")
    assert [e.uri for e in listed.collection] == [event_uri]

    canceled = await http.post(path_of(f"{event_uri}/cancellation"), headers=auth, json={"reason": "moved"})
    assert canceled.status_code == 201, canceled.text
    assert ref.decode(canceled.content, ref.One[ref.Cancellation]).resource.reason == "moved"
    after = {"X-Sched-Position": canceled.headers["x-sched-position"]}
    gone = await get(http, {**auth, **after}, event_uri, ref.One[ref.ScheduledEvent])
    assert gone.resource.status == "canceled" and gone.resource.cancellation is not None
    link = await http.post("/calendly/scheduling_links", headers=auth, json={
        "max_event_count": 1, "owner": event_type.uri, "owner_type": "EventType"})
    assert link.status_code == 201 and link.json()["resource"]["booking_url"].startswith("http"), link.text


async def test_bad_parameters_are_named_at_once_and_unknown_ones_ignored(http: httpx.AsyncClient, nc: nats.NATS,
                                                                         settings: Settings) -> None:
    _, auth = await calendly_account(nc, settings)
    me = (await http.get("/calendly/users/me", headers=auth)).json()["resource"]
    bad = await http.get("/calendly/scheduled_events", headers=auth, params={
        "user": me["uri"], "status": "maybe", "count": "500", "sort": "name:up", "min_start_time": "soon"})
    assert bad.status_code == 400, bad.text
    error = ref.decode(bad.content, ref.Error)
    assert {d["parameter"] for d in error.details or []} == {"status", "count", "sort", "min_start_time"}
    fine = await http.get("/calendly/event_types", headers=auth, params={"user": me["uri"], "whatever": "1"})
    assert fine.status_code == 200, fine.text
    missing = await http.get("/calendly/scheduled_events/event_01NOPE", headers=auth)
    assert missing.status_code == 404 and ref.decode(missing.content, ref.Error).title == "Resource Not Found"


async def test_pagination_walks_forward_and_back_keeping_every_filter(http: httpx.AsyncClient, nc: nats.NATS,
                                                                      settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    for n in range(6):
        created = await send(nc, settings, "create_link", {**account.ids, "name": f"Type {n}", "durations": [30]})
        assert created["ok"], created
    last = await send(nc, settings, "create_link", {**account.ids, "name": "Off", "state": "disabled"})
    headers = {**auth, "X-Sched-Position": str(last["position"])}
    me = (await http.get("/calendly/users/me", headers=headers)).json()["resource"]
    # parameters as a JSON body on GET, as some Calendly clients send them
    first = await http.request("GET", "/calendly/event_types", headers=headers, json={
        "organization": me["current_organization"], "active": True, "count": 3, "sort": "name:desc"})
    assert first.status_code == 200, first.text
    pages = [ref.decode(first.content, ref.Many[ref.EventType])]
    while pages[-1].pagination.next_page:
        query = parse_qs(urlsplit(pages[-1].pagination.next_page).query)
        assert query["organization"] == [me["current_organization"]] and query["active"] == ["true"]
        assert query["sort"] == ["name:desc"] and query["count"] == ["3"]
        pages.append(await get(http, headers, pages[-1].pagination.next_page, ref.Many[ref.EventType]))
    forward = [t.name for page in pages for t in page.collection]
    assert forward == sorted(forward, reverse=True) and len(forward) == len(set(forward)) == 7
    assert "Off" not in forward
    back = [pages[-1]]
    while back[-1].pagination.previous_page:
        back.append(await get(http, headers, back[-1].pagination.previous_page, ref.Many[ref.EventType]))
    assert [t.name for page in reversed(back) for t in page.collection] == forward
    assert back[-1].pagination.previous_page_token is None


async def test_calendly_and_savvycal_bookings_of_one_slot_race_and_exactly_one_wins(
        http: httpx.AsyncClient, nc: nats.NATS, settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    start = weekday_at(3, 11)
    body = {"event_type": f"{base}/event_types/{account.link_id}", "start_time": iso(start),
            "invitee": {"name": "Racer", "email": "racer@example.com", "timezone": "Etc/UTC"}}
    calendly = [http.post("/calendly/invitees", headers=auth, json=body) for _ in range(8)]
    savvycal = [http.post(f"/v1/links/{account.link_id}/events", headers=auth, json={
        "display_name": "Sally", "email": "sally@example.com", "start_at": iso(start),
        "end_at": iso(start + timedelta(minutes=30)), "time_zone": "Etc/UTC"}) for _ in range(4)]
    replies = await asyncio.gather(*calendly, *savvycal)
    won = [r for r in replies if r.status_code in (200, 201)]
    assert len(won) == 1, [(r.status_code, r.text[:120]) for r in replies]
    losers = [r for r in replies[:8] if r.status_code not in (200, 201)]
    assert all(r.status_code == 400 and r.json()["details"][0]["parameter"] == "start_time" for r in losers)


async def book(http: httpx.AsyncClient, auth: dict[str, str], event_type: str, start: str,
               email: str = "ada@example.com") -> ref.Invitee:
    """POST /calendly/invitees, which must succeed."""
    booked = await http.post("/calendly/invitees", headers=auth, json={
        "event_type": event_type, "start_time": start,
        "invitee": {"name": "Ada Lovelace", "email": email, "timezone": "Europe/London"}})
    assert booked.status_code == 201, booked.text
    return ref.decode(booked.content, ref.One[ref.Invitee]).resource


async def test_event_types_carry_increment_and_buffers_and_leave_out_scheduling_links(
        http: httpx.AsyncClient, nc: nats.NATS, settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    updated = await send(nc, settings, "update_link", {**account.ids, "link_id": account.link_id, "increment": 15,
                                                      "buffer_before": 10, "buffer_after": 5})
    assert updated["ok"], updated
    event_type = f"{base}/event_types/{account.link_id}"
    link = await http.post("/calendly/scheduling_links", headers=auth, json={
        "max_event_count": 1, "owner": event_type, "owner_type": "EventType"})
    assert link.status_code == 201, link.text
    headers = {**auth, "X-Sched-Position": link.headers["x-sched-position"]}
    me = (await http.get("/calendly/users/me", headers=headers)).json()["resource"]
    for params in ({"user": me["uri"]}, {"organization": me["current_organization"]}):
        types = await get(http, headers, "/calendly/event_types", ref.Many[ref.EventType], **params)
        assert [t.uri for t in types.collection] == [event_type]  # not the single-use copy
        found = types.collection[0]
        assert (found.start_time_increment, found.before_buffer, found.after_buffer) == (15, 10, 5)
    schedule = f"{base}/user_availability_schedules/{account.provider_id}"
    mine = await get(http, headers, "/calendly/event_types", ref.Many[ref.EventType],
                     organization=me["current_organization"], user_availability_schedule=schedule)
    assert [t.uri for t in mine.collection] == [event_type]
    others = await get(http, headers, "/calendly/event_types", ref.Many[ref.EventType],
                       organization=me["current_organization"],
                       user_availability_schedule=f"{base}/user_availability_schedules/prov_01SOMEONEELSE")
    assert others.collection == []


async def test_an_invitees_cancel_and_reschedule_urls_are_the_events_manage_links(
        http: httpx.AsyncClient, nc: nats.NATS, settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    invitee = await book(http, auth, f"{base}/event_types/{account.link_id}", iso(weekday_at(2, 10)))
    event_id = invitee.event.rsplit("/", 1)[1]
    headers = {**auth, "X-Sched-Position": str((await send(nc, settings, "create_link", {
        **account.ids, "name": "Later"}))["position"])}
    savvycal = (await http.get(f"/v1/events/{event_id}", headers=headers)).json()
    assert (invitee.cancel_url, invitee.reschedule_url) == (savvycal["cancel_url"], savvycal["reschedule_url"])
    listed = await get(http, headers, f"{invitee.event}/invitees", ref.Many[ref.Invitee])
    assert listed.collection[0].cancel_url == savvycal["cancel_url"]
    # the links open real pages
    for url in (invitee.cancel_url, invitee.reschedule_url):
        page = await http.get(path_of(url))
        assert page.status_code == 200, (url, page.status_code)


async def test_errors_keep_their_status_with_calendlys_titles(http: httpx.AsyncClient, nc: nats.NATS,
                                                              settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    body = {"event_type": f"{base}/event_types/{account.link_id}", "start_time": iso(weekday_at(2, 10)),
            "invitee": {"name": "Ada", "email": "ada@example.com", "timezone": "Etc/UTC"}}
    keyed = {**auth, "Idempotency-Key": "calendly-409"}
    booked = await http.post("/calendly/invitees", headers=keyed, json=body)
    assert booked.status_code == 201, booked.text
    # the same Idempotency-Key on another command
    reused = await http.post(path_of(f"{booked.json()['resource']['event']}/cancellation"), headers=keyed,
                             json={"reason": "again"})
    assert reused.status_code == 409, reused.text
    assert ref.decode(reused.content, ref.Error).title == "Conflict"
    huge = await http.post("/calendly/invitees", headers={**auth, "Content-Type": "application/json"},
                           content=b'{"x": "' + b"a" * 1_100_000 + b'"}')
    assert huge.status_code == 413, huge.text
    assert ref.decode(huge.content, ref.Error).title == "Payload Too Large"
    invalid = await http.post("/calendly/invitees", headers=auth, json={**body, "start_time": "soon"})
    assert invalid.status_code == 400 and invalid.json()["details"][0]["parameter"] == "start_time"


async def test_crafted_page_tokens_are_400_and_scheduled_events_walk_back(
        http: httpx.AsyncClient, nc: nats.NATS, settings: Settings) -> None:
    account, auth = await calendly_account(nc, settings)
    base = str(http.base_url).rstrip("/") + "/calendly"
    event_type = f"{base}/event_types/{account.link_id}"
    for hour in range(9, 14):
        invitee = await book(http, auth, event_type, iso(weekday_at(2, hour)), email=f"e{hour}@example.com")
    headers = {**auth, "X-Sched-Position": str((await send(nc, settings, "create_link", {
        **account.ids, "name": "Later"}))["position"])}
    me = (await http.get("/calendly/users/me", headers=headers)).json()["resource"]
    filters = {"user": me["uri"], "status": "active", "sort": "start_time:desc", "count": "2"}
    pages = [await get(http, headers, "/calendly/scheduled_events", ref.Many[ref.ScheduledEvent], **filters)]
    while pages[-1].pagination.next_page:
        pages.append(await get(http, headers, pages[-1].pagination.next_page, ref.Many[ref.ScheduledEvent]))
    forward = [e.start_time for page in pages for e in page.collection]
    assert len(forward) == 5 and forward == sorted(forward, reverse=True)
    back = [pages[-1]]
    while back[-1].pagination.previous_page:
        query = parse_qs(urlsplit(back[-1].pagination.previous_page).query)
        assert query["user"] == [me["uri"]] and query["sort"] == ["start_time:desc"]
        back.append(await get(http, headers, back[-1].pagination.previous_page, ref.Many[ref.ScheduledEvent]))
    assert [e.start_time for page in reversed(back) for e in page.collection] == forward
    assert invitee.event in [e.uri for e in pages[0].collection]

    def token(value: object) -> str:
        return base64.urlsafe_b64encode(msgspec.msgpack.encode(value)).decode().rstrip("=")

    crafted = ["!!", token(7), token(["next", 7]), token(["next", [7]]), token(["previous", ["x"]]),
               token(["next", [None, None]]), token(["next", ["2020-01-01T00:00:00"]]), token({"next": 1, "a": 2})]
    cursor_of_list = parse_qs(urlsplit(pages[0].pagination.next_page or "").query)["page_token"][0]
    for bad in crafted:
        for path, params in (("/calendly/scheduled_events", {"user": me["uri"]}),
                             ("/calendly/event_types", {"user": me["uri"]}),
                             ("/calendly/organization_memberships", {"user": me["uri"]})):
            reply = await http.get(path, headers=headers, params={**params, "page_token": bad})
            assert reply.status_code == 400, (path, bad, reply.status_code, reply.text)
            assert [d["parameter"] for d in reply.json()["details"]] == ["page_token"]
    # a real token of one list is not a token of another
    reply = await http.get("/calendly/event_types", headers=headers,
                           params={"user": me["uri"], "page_token": cursor_of_list})
    assert reply.status_code == 400, reply.text


@pytest.fixture
async def hooked_site(settings: Settings, settings_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Site]:
    """The whole system, webhook dispatcher included, behind a gateway whose address is its public URL."""
    from projections.app import bootstrap as projections
    from services.commands.app import bootstrap as commands
    from services.query.app import bootstrap as queries
    from services.relay.app import bootstrap as relay
    from services.webhooks.app import bootstrap as dispatcher

    port = free_port()
    own = msgspec.structs.replace(settings, http_port=port, webhook_allow_loopback=True,
                                  webhook_retry_schedule=(0.3, 0.3), webhook_timeout=2.0)
    env = {**settings_env, "SCHED_HTTP_PORT": str(port)}
    async with commands(own), queries(own), projections(own), relay(own), dispatcher(own) as hooks, \
            gateway_client(env, tmp_path, port) as client:
        await eventually(hooks.leading.is_set, what="the dispatcher to lead")
        yield Site(own, f"http://127.0.0.1:{port}", client)


async def test_webhook_subscriptions_over_http_deliver_calendlys_payload_reschedules_included(
        hooked_site: Site, nc: nats.NATS) -> None:
    http, settings = hooked_site.http, hooked_site.settings
    account, auth = await calendly_account(nc, settings)
    receiver = Receiver().start()
    other = Receiver().start()
    try:
        me = (await http.get("/calendly/users/me", headers=auth)).json()["resource"]
        organization = me["current_organization"]
        created = await http.post("/calendly/webhook_subscriptions", headers=auth, json={
            "url": receiver.url, "events": ["invitee.created", "invitee.canceled"], "organization": organization,
            "user": me["uri"], "scope": "user", "signing_key": "calendly-key"})
        assert created.status_code == 201, created.text
        subscription = ref.decode(created.content, ref.One[ref.WebhookSubscription]).resource
        assert subscription.uri.startswith(hooked_site.base_url + "/calendly/webhook_subscriptions/")
        wide = await http.post("/calendly/webhook_subscriptions", headers=auth, json={
            "url": other.url, "events": ["invitee.created"], "organization": organization, "scope": "organization"})
        assert wide.status_code == 201, wide.text
        headers = {**auth, "X-Sched-Position": wide.headers["x-sched-position"]}
        users = await get(http, headers, "/calendly/webhook_subscriptions", ref.Many[ref.WebhookSubscription],
                          organization=organization, scope="user", user=me["uri"])
        assert [s.uri for s in users.collection] == [subscription.uri]
        orgs = await get(http, headers, "/calendly/webhook_subscriptions", ref.Many[ref.WebhookSubscription],
                         organization=organization, scope="organization")
        assert [s.callback_url for s in orgs.collection] == [other.url]
        assert (await get(http, headers, subscription.uri, ref.One[ref.WebhookSubscription])).resource == subscription

        event_type = f"{hooked_site.base_url}/calendly/event_types/{account.link_id}"
        invitee = await book(http, auth, event_type, iso(weekday_at(2, 10)))
        event_id = invitee.event.rsplit("/", 1)[1]
        later = weekday_at(2, 12)
        moved = await http.post(f"/v1/events/{event_id}/reschedule", headers=auth, json={
            "start_at": iso(later), "end_at": iso(later + timedelta(minutes=30)), "reschedule_reason": "clash"})
        assert moved.status_code in (200, 201), moved.text
        await eventually(lambda: len(receiver.delivered()) == 3, what="created, then the reschedule's two")
        bodies = [ref.decode(r.body, ref.WebhookPayload) for r in receiver.delivered()]
        for request in receiver.delivered():
            fields = dict(part.split("=", 1) for part in request.headers["calendly-webhook-signature"].split(","))
            expected = hmac.new(b"calendly-key", f"{fields['t']}.".encode() + request.body, hashlib.sha256)
            assert hmac.compare_digest(expected.hexdigest(), fields["v1"])
        assert [b.event for b in bodies] == ["invitee.created", "invitee.canceled", "invitee.created"]
        first, away, back = (b.payload for b in bodies)
        # every URI is the public one the HTTP API hands out, and resolves
        assert first.uri == invitee.uri and first.scheduled_event.uri == invitee.event
        assert (first.cancel_url, first.rescheduled, first.old_invitee) == (invitee.cancel_url, False, None)
        assert (await get(http, auth, first.uri, ref.One[ref.Invitee])).resource.uri == invitee.uri
        assert away.status == "canceled" and away.rescheduled and away.new_invitee == invitee.uri
        assert away.cancellation is not None and away.cancellation.reason == "clash"
        assert away.scheduled_event.status == "canceled" and away.scheduled_event.start_time == invitee_start(first)
        assert back.status == "active" and not back.rescheduled and back.old_invitee == invitee.uri
        assert back.scheduled_event.start_time == calendly_iso(iso(later)) and back.cancel_url != first.cancel_url
        assert bodies[0].created_by == me["uri"]
        await eventually(lambda: len(other.delivered()) == 2, what="the organization subscription's two")

        gone = await http.delete(path_of(subscription.uri), headers=auth)
        assert gone.status_code == 204, gone.text
        after = {**auth, "X-Sched-Position": gone.headers["x-sched-position"]}
        missing = await http.get(path_of(subscription.uri), headers=after)
        assert missing.status_code == 404 and ref.decode(missing.content, ref.Error).title == "Resource Not Found"
    finally:
        receiver.stop()
        other.stop()


def invitee_start(payload: ref.InviteePayload) -> str:
    """When the invitee's event started as that payload shows it."""
    return payload.scheduled_event.start_time
