"""Webhooks end to end: commands -> log -> relay -> SCHED_EVENTS -> dispatcher -> a real HTTP receiver.

Every test runs the real pieces (Postgres, NATS JetStream, the command and query services, the
relay, the dispatcher in-process or as a killed-and-restarted process) against a receiver listening
on 127.0.0.1, with a short retry schedule so that retries, dead deliveries and timeouts take seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest

from services.commands.app import bootstrap as command_bootstrap
from services.relay.app import bootstrap as relay_bootstrap
from services.relay.relay import Relay
from services.webhooks.app import bootstrap as dispatcher_bootstrap
from services.webhooks.dispatcher import Dispatcher
from shared.eventstore import EventStore
from shared.servers import free_port
from shared.settings import Settings
from tests.integration.gateway_process import gateway_client
from tests.integration.messaging import new_account, send
from tests.integration.webhook_receiver import Received, Receiver, Reply, eventually
from tests.unit.test_webhook_signing import readme_verifier

pytestmark = pytest.mark.integration

SCHEDULE = (1.0, 0.3, 0.3)  # 4 attempts; the first retry leaves time to start a receiver
TIMEOUT = 0.5
LINK_EVENTS = ["link.created", "link.updated", "link.deleted"]
verify_webhook = readme_verifier()


# --- the system under test ------------------------------------------------------------------------

@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhook_allow_loopback=True, webhook_retry_schedule=SCHEDULE,
                                   webhook_timeout=TIMEOUT)


@pytest.fixture
def hook_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "SCHED_WEBHOOK_ALLOW_LOOPBACK": "1", "SCHED_WEBHOOK_TIMEOUT": str(TIMEOUT),
            "SCHED_WEBHOOK_RETRY_SCHEDULE": ",".join(map(str, SCHEDULE))}


@pytest.fixture
async def commands(hook_settings: Settings) -> AsyncIterator[object]:
    """A command service that accepts loopback webhook URLs (the receivers live on 127.0.0.1)."""
    async with command_bootstrap(hook_settings) as app:
        yield app


@pytest.fixture
async def relay(hook_settings: Settings) -> AsyncIterator[Relay]:
    """The relay publishing this test's log, through its own bootstrap."""
    async with relay_bootstrap(hook_settings) as relay:
        yield relay


@pytest.fixture
async def dispatcher(hook_settings: Settings, relay: Relay) -> AsyncIterator[Dispatcher]:
    async with dispatcher_bootstrap(hook_settings) as dispatcher:
        await eventually(dispatcher.leading.is_set, what="the dispatcher to lead")
        yield dispatcher


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def start_receiver(receivers: list[Receiver], **kwargs: Any) -> Receiver:
    receiver = Receiver(**kwargs).start()
    receivers.append(receiver)
    return receiver


async def ok(nc: nats.NATS, settings: Settings, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A command that must succeed; the whole reply (result, events, position)."""
    reply = await send(nc, settings, name, body)
    assert reply["ok"], reply
    return reply  # type: ignore[no-any-return]


async def query(nc: nats.NATS, settings: Settings, name: str, body: dict[str, Any]) -> Any:
    """A query that must succeed; a query carries the account but no user."""
    body = {k: v for k, v in body.items() if k != "user_id"}
    reply = msgspec.json.decode((await nc.request(f"{settings.query_subject_prefix}.{name}",
                                                  msgspec.json.encode(body), timeout=10)).data)
    assert not (isinstance(reply, dict) and reply.get("ok") is False), reply
    return reply


async def account_ids(nc: nats.NATS, settings: Settings) -> dict[str, str]:
    account = await new_account(nc, settings)
    return {"account_id": account["account_id"], "user_id": account["user_id"]}


async def subscribe(nc: nats.NATS, settings: Settings, ids: dict[str, str], url: str,
                    events: list[str] = LINK_EVENTS) -> dict[str, Any]:
    return (await ok(nc, settings, "create_webhook", {**ids, "url": url, "events": events}))["result"]


def event_id(reply: dict[str, Any], position: int = 0) -> str:
    """The id of the command's first (or `position`-th) event: what a webhook body's `id` repeats."""
    return reply["events"][position]  # type: ignore[no-any-return]


def assert_signed(request: Received, webhook_id: str, *secrets: str) -> None:
    """Both signature headers check out as README.md tells receivers, under every given secret."""
    assert request.headers["x-savvycal-webhook-id"] == webhook_id
    assert request.headers["content-type"] == "application/json"
    for secret in secrets:
        assert verify_webhook(secret, request.body, request.headers), request.headers


# --- delivery ---------------------------------------------------------------------------------------

async def test_deliveries_arrive_signed_in_order_with_the_resource_the_api_returns(
    nc: nats.NATS, hook_settings: Settings, commands, query_service, projector, dispatcher, receivers
):
    receiver = start_receiver(receivers)
    stranger = start_receiver(receivers)
    ids = await account_ids(nc, hook_settings)
    before = await ok(nc, hook_settings, "create_link", {**ids, "name": "Before"})  # older than the webhook
    hook = await subscribe(nc, hook_settings, ids, receiver.url)
    other = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, other, stranger.url)  # another account's webhook sees none of it

    created = await ok(nc, hook_settings, "create_link", {**ids, "name": "Intro", "durations": [30, 60]})
    link_id = created["result"]["id"]
    updated = await ok(nc, hook_settings, "update_link", {**ids, "link_id": link_id, "description": "Say hi"})
    toggled = await ok(nc, hook_settings, "toggle_link", {**ids, "link_id": link_id})
    deleted = await ok(nc, hook_settings, "delete_link", {**ids, "link_id": link_id})
    await ok(nc, hook_settings, "update_link", {**ids, "link_id": before["result"]["id"], "name": "Still before"})

    await eventually(lambda: len(receiver.delivered()) == 5, what="five deliveries")
    bodies = [r.json for r in receiver.delivered()]
    assert [b["type"] for b in bodies] == ["link.created", "link.updated", "link.updated", "link.deleted",
                                           "link.updated"]
    assert [b["payload"] for b in bodies[:4]] == [r["result"] for r in (created, updated, toggled, deleted)]
    assert [b["id"] for b in bodies[:4]] == [event_id(r) for r in (created, updated, toggled, deleted)]
    assert [b["version"] for b in bodies] == [1, 2, 3, 4, 2]
    assert all(set(b) == {"type", "id", "version", "occurred_at", "payload"} for b in bodies)
    for request in receiver.delivered():
        assert_signed(request, hook["id"], hook["secret"])
        assert not verify_webhook("whsec_someone_else", request.body, request.headers)
        assert request.headers["x-sched-signature"].count("v1=") == 1
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 5 and stranger.received == []

    log = await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"],
                                                                 "min_position": deleted["position"]})
    assert [e["event_id"] for e in reversed(log["entries"])] == [b["id"] for b in bodies]  # newest first
    first = log["entries"][-1]
    assert first["state"] == "delivered" and first["type"] == "link.created" and first["attempt_count"] == 1
    assert [(a["attempt"], a["status_code"], a["error"]) for a in first["attempts"]] == [(1, 200, None)]
    assert first["attempts"][0]["duration_ms"] >= 0 and first["attempts"][0]["attempted_at"].endswith("Z")
    listed = await query(nc, hook_settings, "webhooks_list", {**ids, "min_position": deleted["position"]})
    assert [(w["id"], w["state"]) for w in listed["entries"]] == [(hook["id"], "active")]
    assert "secret" not in listed["entries"][0]

    # The log pages with cursors: `after` on to older deliveries, `before` back, no gaps or repeats.
    newest_first = [e["id"] for e in log["entries"]]
    pages, cursor = [], None
    while True:
        page = await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"], "limit": 2,
                                                                      **({"after": cursor} if cursor else {})})
        pages.append(page)
        cursor = page["metadata"]["after"]
        if cursor is None:
            break
    assert [e["id"] for p in pages for e in p["entries"]] == newest_first and len(pages) == 3
    back = await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"], "limit": 2,
                                                                  "before": pages[-1]["metadata"]["before"]})
    assert [e["id"] for e in back["entries"]] == newest_first[2:4]


async def test_failed_attempts_are_retried_and_every_attempt_is_logged(
    nc: nats.NATS, hook_settings: Settings, commands, query_service, projector, dispatcher, receivers
):
    port = free_port()  # nothing listens yet: the first attempt is refused
    ids = await account_ids(nc, hook_settings)
    hook = await subscribe(nc, hook_settings, ids, f"http://127.0.0.1:{port}/hooks", ["link.created"])
    created = await ok(nc, hook_settings, "create_link", {**ids, "name": "Retry me"})

    async def attempts() -> list[dict[str, Any]]:
        log = await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"],
                                                                     "min_position": created["position"]})
        return log["entries"][0]["attempts"] if log["entries"] else []

    async def attempted(n: int) -> bool:
        return len(await attempts()) >= n

    await eventually(lambda: attempted(1), what="the refused first attempt")
    plan = [Reply(500), Reply(504, delay=TIMEOUT * 3), Reply(200)]  # 500, then a timeout, then success
    receiver = start_receiver(receivers, port=port, plan=lambda n, _: plan[min(n, 2)])
    await eventually(lambda: len(receiver.delivered()) == 1, what="the delivery after three failures")

    await eventually(lambda: attempted(4), what="four recorded attempts")
    log = (await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"]}))["entries"]
    assert len(log) == 1 and log[0]["state"] == "delivered" and log[0]["attempt_count"] == 4
    tried = log[0]["attempts"]
    assert [a["status_code"] for a in tried] == [None, 500, None, 200]
    assert "connect" in tried[0]["error"].lower() and tried[1]["error"] is None
    assert tried[2]["error"] == f"timed out after {TIMEOUT:g} s" and tried[2]["duration_ms"] >= TIMEOUT * 1000 * 0.9
    assert tried[0]["attempted_at"] < tried[1]["attempted_at"] < tried[2]["attempted_at"] < tried[3]["attempted_at"]
    requests = receiver.snapshot()
    assert len(requests) == 3 and len({r.json["id"] for r in requests}) == 1  # a retry repeats the same id
    assert requests[0].json["id"] == event_id(created)
    for request in requests:
        assert_signed(request, hook["id"], hook["secret"])


async def test_a_later_event_waits_while_an_earlier_one_is_retried(
    nc: nats.NATS, hook_settings: Settings, commands, dispatcher, receivers
):
    receiver = start_receiver(receivers, plan=lambda n, _: Reply(500) if n < 2 else Reply(200))
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    replies = [await ok(nc, hook_settings, "create_link", {**ids, "name": "Ordered"})]
    link_id = replies[0]["result"]["id"]
    for n in range(5):
        replies.append(await ok(nc, hook_settings, "update_link", {**ids, "link_id": link_id,
                                                                   "description": f"v{n}"}))
    expected = [event_id(r) for r in replies]
    await eventually(lambda: len(receiver.delivered()) == len(expected), what="every delivery")
    requests = receiver.snapshot()
    assert [(r.json["id"], r.status) for r in requests[:3]] == [(expected[0], 500), (expected[0], 500),
                                                                (expected[0], 200)]
    assert receiver.delivered_ids() == expected
    assert [r.json["payload"]["description"] for r in receiver.delivered()[1:]] == [f"v{n}" for n in range(5)]


async def test_a_dead_delivery_marks_the_webhook_failing_and_the_backlog_goes_on(
    nc: nats.NATS, hook_settings: Settings, commands, query_service, projector, dispatcher, receivers
):
    attempts = len(SCHEDULE) + 1
    receiver = start_receiver(receivers, plan=lambda n, _: Reply(500) if n <= attempts else Reply(200))
    ids = await account_ids(nc, hook_settings)
    hook = await subscribe(nc, hook_settings, ids, receiver.url, ["link.created"])
    first = await ok(nc, hook_settings, "create_link", {**ids, "name": "Doomed"})
    second = await ok(nc, hook_settings, "create_link", {**ids, "name": "Survivor"})

    async def state() -> str:
        listed = await query(nc, hook_settings, "webhooks_list", {**ids, "min_position": second["position"]})
        return listed["entries"][0]["state"]  # type: ignore[no-any-return]

    await eventually(lambda: _equals(state(), "failing"), what="the webhook to be failing")
    await eventually(lambda: len(receiver.delivered()) == 1, what="the next delivery")
    assert receiver.delivered_ids() == [event_id(second)]
    await eventually(lambda: _equals(state(), "active"), what="the webhook to be active again")
    log = (await query(nc, hook_settings, "webhook_deliveries", {**ids, "webhook_id": hook["id"]}))["entries"]
    assert [(e["event_id"], e["state"], e["attempt_count"]) for e in log] == [
        (event_id(second), "delivered", 2), (event_id(first), "dead", attempts)]
    assert [a["status_code"] for a in log[1]["attempts"]] == [500] * attempts


async def _equals(value: Any, expected: Any) -> bool:
    return await value == expected  # type: ignore[no-any-return]


async def test_rotating_the_secret_signs_with_both_during_the_grace_period(
    nc: nats.NATS, hook_settings: Settings, commands, dispatcher, receivers
):
    receiver = start_receiver(receivers)
    ids = await account_ids(nc, hook_settings)
    hook = await subscribe(nc, hook_settings, ids, receiver.url, ["link.created"])
    rotated = (await ok(nc, hook_settings, "rotate_webhook_secret", {**ids, "webhook_id": hook["id"],
                                                                     "grace_period_seconds": 2}))["result"]
    assert rotated["secret"] != hook["secret"] and rotated["previous_secret_expires_at"]
    await ok(nc, hook_settings, "create_link", {**ids, "name": "During grace"})
    await eventually(lambda: len(receiver.delivered()) == 1, what="the delivery during the grace period")
    during = receiver.delivered()[0]
    assert during.headers["x-sched-signature"].count("v1=") == 2
    assert during.headers["x-savvycal-signature"].count("sha256=") == 2
    assert_signed(during, hook["id"], rotated["secret"], hook["secret"])

    await asyncio.sleep(2.2)  # the grace period is over
    await ok(nc, hook_settings, "create_link", {**ids, "name": "After grace"})
    await eventually(lambda: len(receiver.delivered()) == 2, what="the delivery after the grace period")
    after = receiver.delivered()[1]
    assert after.headers["x-sched-signature"].count("v1=") == 1
    assert_signed(after, hook["id"], rotated["secret"])
    assert not verify_webhook(hook["secret"], after.body, after.headers)


# --- a dispatcher killed mid-delivery --------------------------------------------------------------

def start_dispatcher(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.webhooks"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def test_a_dispatcher_killed_mid_delivery_delivers_everything_in_order_after_a_restart(
    nc: nats.NATS, hook_settings: Settings, hook_env: dict[str, str], commands, relay, receivers, tmp_path: Path
):
    hold = threading.Event()
    held_at = 6
    receiver = start_receiver(receivers, plan=lambda n, _: Reply(200, hold=hold) if n == held_at
                              else Reply(200, delay=0.005))
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    replies = [await ok(nc, hook_settings, "create_link", {**ids, "name": "Crash"})]
    link_id = replies[0]["result"]["id"]
    for n in range(19):
        replies.append(await ok(nc, hook_settings, "update_link", {**ids, "link_id": link_id, "description": f"{n}"}))

    log = tmp_path / "webhooks.log"
    proc = start_dispatcher(hook_env, log)
    try:
        await eventually(lambda: len(receiver.snapshot()) > held_at, timeout=30, what="the held delivery")
        os.kill(proc.pid, signal.SIGKILL)  # while request #7 is in flight
        proc.wait()
        hold.set()
        for n in range(19, 29):  # the log keeps growing while the dispatcher is down
            replies.append(await ok(nc, hook_settings, "update_link", {**ids, "link_id": link_id,
                                                                       "description": f"{n}"}))
        proc = start_dispatcher(hook_env, log)
        expected = [event_id(r) for r in replies]
        await eventually(lambda: set(receiver.delivered_ids()) >= set(expected), timeout=30,
                         what=f"every delivery after the restart; log:\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.3)  # time for a stray duplicate to show up
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    seen = [r.json["id"] for r in receiver.snapshot()]
    highest = -1
    for request_id in seen:  # each request repeats the latest event or brings the next one: never skips ahead
        index = expected.index(request_id)
        assert index in (highest, highest + 1), (index, highest, seen)
        highest = max(highest, index)
    assert list(dict.fromkeys(seen)) == expected
    assert seen.count(expected[held_at]) == 2  # the interrupted delivery was sent again after the restart
    assert len(seen) <= len(expected) + 2
    assert "webhooks ready" in log.read_text()


# --- over HTTP --------------------------------------------------------------------------------------

@pytest.fixture
async def http(settings: Settings, settings_env: dict[str, str], query_service, projector,
               tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway in front of a command service with the default setting: loopback refused."""
    strict = msgspec.structs.replace(settings, webhook_allow_loopback=False)
    async with command_bootstrap(strict), gateway_client(settings_env, tmp_path) as client:
        yield client


async def test_refused_urls_and_unknown_event_types_are_422(http: httpx.AsyncClient, nc: nats.NATS,
                                                             settings: Settings):
    auth = {"Authorization": f"Bearer {(await new_account(nc, settings))['token']}"}
    for url in ("ftp://example.com/hooks", "http://10.0.0.1/hooks", "http://169.254.169.254/latest/meta-data",
                "http://127.0.0.1:8080/hooks", "http://localhost/hooks", "not a url"):
        response = await http.post("/v1/webhooks", headers=auth, json={"url": url, "events": ["event.created"]})
        assert response.status_code == 422 and list(response.json()["errors"]) == ["url"], (url, response.text)
    unknown = await http.post("/v1/webhooks", headers=auth,
                              json={"url": "https://example.com/hooks", "events": ["event.created", "event.lost"]})
    assert unknown.status_code == 422 and list(unknown.json()["errors"]) == ["events"]
    missing = await http.post("/v1/webhooks", headers=auth, json={"events": ["event.created"]})
    assert missing.status_code == 422 and "url" in missing.json()["errors"]
    assert (await http.get("/v1/webhooks", headers=auth)).json()["entries"] == []


async def test_managing_webhooks_over_http_and_deliveries_of_a_deleted_one_are_404(
    http: httpx.AsyncClient, nc: nats.NATS, settings: Settings
):
    auth = {"Authorization": f"Bearer {(await new_account(nc, settings))['token']}"}
    stranger = {"Authorization": f"Bearer {(await new_account(nc, settings))['token']}"}
    body = {"url": "https://hooks.example.com/sched", "events": ["event.created", "appointment.canceled"]}
    created = await http.post("/v1/webhooks", headers={**auth, "Idempotency-Key": "whk-1"}, json=body)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["state"] == "active" and hook["events"] == body["events"]
    again = await http.post("/v1/webhooks", headers={**auth, "Idempotency-Key": "whk-1"}, json=body)
    assert again.json()["id"] == hook["id"] and again.json()["secret"] is None  # the secret is shown once

    listed = (await http.get("/v1/webhooks", headers=auth)).json()
    assert [w["id"] for w in listed["entries"]] == [hook["id"]] and "secret" not in listed["entries"][0]
    assert (await http.get(f"/v1/webhooks/{hook['id']}", headers=auth)).json()["url"] == body["url"]
    rotated = await http.post(f"/v1/webhooks/{hook['id']}/rotate_secret", headers=auth)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, hook["secret"])
    deliveries = await http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=auth)
    assert deliveries.status_code == 200
    assert deliveries.json() == {"entries": [], "metadata": {"before": None, "after": None, "limit": 20}}
    assert (await http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=stranger)).status_code == 404
    assert (await http.delete(f"/v1/webhooks/{hook['id']}", headers=stranger)).status_code == 404

    deleted = await http.delete(f"/v1/webhooks/{hook['id']}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["state"] == "deleted" and "secret" not in deleted.json()
    assert (await http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=auth)).status_code == 404
    assert (await http.get(f"/v1/webhooks/{hook['id']}", headers=auth)).status_code == 404
    assert (await http.delete(f"/v1/webhooks/{hook['id']}", headers=auth)).status_code == 404
    assert (await http.post(f"/v1/webhooks/{hook['id']}/rotate_secret", headers=auth)).status_code == 404
    assert (await http.get("/v1/webhooks", headers=auth)).json()["entries"] == []
    assert "/v1/webhooks/{webhook_id}/deliveries" in (await http.get("/openapi.json")).json()["paths"]


# --- the log is the truth: a feed that lost messages, or the whole stream, is rebuilt -----------------

async def test_webhooks_get_each_event_once_after_messages_and_then_the_stream_are_deleted(
    nc: nats.NATS, hook_settings: Settings, store: EventStore, commands, query_service, projector, relay,
    dispatcher, receivers,
) -> None:
    """The relay restores the feed; the intake reads the republished events and sends none of them twice."""
    from shared.eventstore import LogCursor
    from tests.integration.test_feed_repair import PATIENCE, stream_ids
    from tests.integration.test_relay import wait_for
    js = nc.jetstream()
    receiver = start_receiver(receivers)
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    created = [await ok(nc, hook_settings, "create_link", {**ids, "name": f"Link {n}"}) for n in range(4)]
    await eventually(lambda: len(receiver.delivered()) == 4, what="four deliveries")

    info = await js.stream_info(hook_settings.events_stream)
    for sequence in range(info.state.last_seq - 2, info.state.last_seq + 1):  # the last three, delivered already
        await js.delete_msg(hook_settings.events_stream, sequence)
    relay.request_check()
    created += [await ok(nc, hook_settings, "create_link", {**ids, "name": f"Link {n}"}) for n in range(4, 6)]
    await eventually(lambda: len(receiver.delivered()) == 6, what="six deliveries")

    await js.delete_stream(hook_settings.events_stream)
    created += [await ok(nc, hook_settings, "create_link", {**ids, "name": f"Link {n}"}) for n in range(6, 8)]
    await eventually(lambda: len(receiver.delivered()) == 8, what="eight deliveries", timeout=PATIENCE)

    async def feed_is_log() -> bool:
        return await stream_ids(js, hook_settings) == [e.id for e in await store.read_all(LogCursor(), limit=10_000)]

    await wait_for(feed_is_log, timeout=PATIENCE)
    await asyncio.sleep(1)  # room for a second copy to arrive, were one sent
    assert [r.json["id"] for r in receiver.received] == [event_id(r) for r in created]  # once each, in order


async def test_an_intake_whose_restart_failed_half_way_starts_again_and_delivers_on(
    nc: nats.NATS, hook_settings: Settings, commands, query_service, projector, relay, dispatcher, receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart that dropped the old subscription and then could not make its consumer (NATS timing out, as
    after a node was killed) must not leave the intake reading a dead subscription for ever: it starts again."""
    from services.webhooks import intake as intake_module
    receiver = start_receiver(receivers)
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    created = [await ok(nc, hook_settings, "create_link", {**ids, "name": "Link 0"})]
    await eventually(lambda: len(receiver.delivered()) == 1, what="the first delivery")

    real = intake_module.term_consumer
    failures = [nats.errors.TimeoutError()]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(intake_module, "term_consumer", flaky)
    with pytest.raises(nats.errors.TimeoutError):
        await dispatcher.intake.start()  # the old subscription is gone; no new consumer was made
    assert not failures
    created += [await ok(nc, hook_settings, "create_link", {**ids, "name": f"Link {n}"}) for n in (1, 2)]
    await eventually(lambda: len(receiver.delivered()) == 3, what="the deliveries after the failed restart")
    assert [r.json["id"] for r in receiver.delivered()] == [event_id(r) for r in created]


# --- single-active: a standby takes over from a paused dispatcher, which then sends nothing -----------

async def _lease_holder(pool: asyncpg.Pool, name: str) -> tuple[str, int] | None:
    row = await pool.fetchrow("select holder, token from leases where name = $1 and expires_at > now()", name)
    return (row["holder"], row["token"]) if row else None


async def test_a_standby_dispatcher_takes_over_from_a_sigstopped_one_which_sends_nothing_when_it_resumes(
    nc: nats.NATS, pool: asyncpg.Pool, hook_settings: Settings, hook_env: dict[str, str], commands, relay,
    receivers, tmp_path: Path,
):
    """A's first attempt fails and its retry is due while it is paused; B sends it; A, resumed, sends nothing."""
    receiver = start_receiver(receivers, plan=lambda n, _: Reply(500 if n == 0 else 200))
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    replies = [await ok(nc, hook_settings, "create_link", {**ids, "name": "Paused"})]
    env = {**hook_env, "SCHED_WEBHOOK_RETRY_SCHEDULE": "3,0.3,0.3"}  # A's retry: due while it is paused
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_dispatcher({**env, "SCHED_INSTANCE": "1"}, logs[0])
    procs = [a]
    try:
        await eventually(lambda: _holder_is(pool, a.pid), timeout=30, what="A to lead")
        b = start_dispatcher({**env, "SCHED_INSTANCE": "2"}, logs[1])
        procs.append(b)
        await eventually(lambda: [r.status for r in receiver.snapshot()] == [500], timeout=30,
                         what="A's first, failed attempt")
        os.kill(a.pid, signal.SIGSTOP)
        try:
            await eventually(lambda: _holder_is(pool, b.pid), timeout=30, what="B to take over")
            for n in range(3):
                replies.append(await ok(nc, hook_settings, "update_link", {
                    **ids, "link_id": replies[0]["result"]["id"], "description": f"{n}"}))
            await eventually(lambda: len(receiver.delivered()) == 4, timeout=30, what="B's deliveries")
        finally:
            os.kill(a.pid, signal.SIGCONT)
        await eventually(lambda: "lost its lease" in logs[0].read_text(), timeout=30, what="A to stand down")
        replies.append(await ok(nc, hook_settings, "update_link", {**ids, "link_id": replies[0]["result"]["id"],
                                                                   "description": "after"}))
        await eventually(lambda: len(receiver.delivered()) == 5, timeout=30, what="the last delivery")
        await asyncio.sleep(1)  # room for a stale send to show up, were there one
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    expected = [event_id(r) for r in replies]
    assert [r.json["id"] for r in receiver.snapshot()] == expected[:1] + expected  # the failed try, then each once


async def _holder_is(pool: asyncpg.Pool, pid: int) -> bool:
    holder = await _lease_holder(pool, "webhooks")
    return holder is not None and f":{pid}:" in holder[0]


async def test_an_event_the_stream_lost_is_delivered_in_its_place_and_its_republished_copy_is_skipped(
    nc: nats.NATS, hook_settings: Settings, store: EventStore, commands, relay, receivers,
) -> None:
    """Event 2 of 5 vanishes from the stream before the intake reads it: the receiver still gets 1..5 in order, once."""
    from shared.eventstore import LogCursor
    from tests.integration.test_feed_repair import PATIENCE, stream_ids
    from tests.integration.test_relay import wait_for
    js = nc.jetstream()
    receiver = start_receiver(receivers)
    ids = await account_ids(nc, hook_settings)
    await subscribe(nc, hook_settings, ids, receiver.url)
    created = [await ok(nc, hook_settings, "create_link", {**ids, "name": f"Link {n}"}) for n in range(5)]
    expected = [event_id(r) for r in created]

    async def feed_is_log() -> bool:
        return await stream_ids(js, hook_settings) == [e.id for e in await store.read_all(LogCursor(), limit=10_000)]

    await wait_for(feed_is_log, timeout=PATIENCE)
    lost = (await stream_ids(js, hook_settings)).index(expected[1]) + 1  # its stream sequence (nothing deleted yet)
    await js.delete_msg(hook_settings.events_stream, lost)
    async with dispatcher_bootstrap(hook_settings) as dispatcher:  # reads 1, 3, 4, 5 from the stream
        await eventually(lambda: len(receiver.delivered()) == 5, what="five deliveries")
        assert dispatcher.intake.filled == 1
        relay.request_check()  # the relay republishes 2..5 after 1
        await wait_for(feed_is_log, timeout=PATIENCE)
        await eventually(lambda: dispatcher.intake.skipped >= 4, what="the republished copies, read and skipped")
        await asyncio.sleep(0.5)  # room for a late copy to be sent, were one queued
    assert [r.json["id"] for r in receiver.snapshot()] == expected  # in log order, each once


async def test_a_sender_past_its_lease_posts_nothing_and_a_stale_outcome_is_not_recorded(
    pool: asyncpg.Pool, hook_settings: Settings, receivers,
) -> None:
    """The check right before the POST, and the fence on the outcome's write, each on its own."""
    import random
    import ssl
    from datetime import UTC, datetime

    from services.webhooks import outbox
    from services.webhooks.senders import WebhookSender
    from services.webhooks.transport import AttemptOutcome
    from shared.lease import Lease, LeaseLost

    receiver = start_receiver(receivers)
    stale, current = Lease(pool, "webhooks", ttl=1.0, holder="stale"), Lease(pool, "webhooks", ttl=1.0, holder="new")
    assert await stale.try_acquire()
    sender = WebhookSender("whk_x", pool, hook_settings, asyncio.Semaphore(1), random.Random(),
                           ssl.create_default_context(), lease=stale)
    sender.subscription = outbox.Subscription("whk_x", receiver.url, "sec_x", None, None, "active")
    sender.secrets = {"sec_x": "whsec_test"}
    delivery = outbox.Delivery(1, "whk_x", b'{"id": "evt_x"}', 0, datetime.now(UTC), "link.updated")
    stale.valid_until = 0.0  # resumed from a pause longer than its lease: its own clock tells it
    async with httpx.AsyncClient() as client:
        with pytest.raises(LeaseLost):
            await sender._attempt(client, delivery)
    assert receiver.snapshot() == []  # nothing posted

    await eventually(current.try_acquire, what="the new holder")  # the stale lease ran out; taken over
    stale.token, stale.valid_until = 1, float("inf")  # a stale holder whose clock has not noticed
    with pytest.raises(LeaseLost):
        await outbox.record_attempt(pool, delivery, datetime.now(UTC), AttemptOutcome(200, None, 1.0), None, stale)
