"""The lean request/reply path (shared.rpc: answer_requests_lean, LeanClient, Requests) over real NATS.

Stories: beyond its backlog a request is refused at once with the typed error the gateway turns into a
503, while the requests it took are still answered; malformed requests to the query service get typed
errors naming what is wrong; under many concurrent requests each reply reaches its own inbox; a
handler that fails still answers (a typed internal error), it never leaves its caller waiting. Each
runs with the answering side on nats-py's own client and on the LeanClient (messages handed straight
from the read loop), and with the asking side on nats-py's `request` and on the gateway's `Requests`.
The gateway's `Requests` also times out, says when nobody answers, and drops a reply that comes late.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import nats
import pytest

from services.gateway.errors import from_reply
from shared.rpc import LeanClient, Requests, answer_requests_lean, lean_connect, subscribed
from shared.settings import Settings

pytestmark = pytest.mark.integration
Ask = Callable[[str, bytes, float], Awaitable[bytes]]


@pytest.fixture(params=["nats-py client", "lean client"])
async def server(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[nats.NATS]:
    """A second connection for the answering side (requests and replies cross the server)."""
    connect = nats.connect if request.param == "nats-py client" else lean_connect
    connection = await connect(settings.nats_servers)
    yield connection
    await connection.drain()


@pytest.fixture
async def requests(settings: Settings) -> AsyncIterator[Requests]:
    """The gateway's way of asking: `Requests` on a LeanClient of its own."""
    connection = await lean_connect(settings.nats_servers)
    asking = Requests(connection)
    await asking.start()
    yield asking
    await connection.drain()


@pytest.fixture(params=["nats-py request", "gateway Requests"])
async def ask(nc: nats.NATS, requests: Requests, request: pytest.FixtureRequest) -> Ask:
    """A request's reply payload, asked the one way or the other."""
    if request.param == "gateway Requests":
        return requests.request

    async def with_nats_py(subject: str, payload: bytes, timeout: float) -> bytes:
        return (await nc.request(subject, payload, timeout=timeout)).data

    return with_nats_py


async def test_beyond_its_backlog_a_request_is_refused_at_once_with_a_typed_error(
    server: nats.NATS, ask: Ask, settings: Settings
):
    release = asyncio.Event()

    async def slow(name: str, body: bytes) -> bytes:
        if name != "ready":
            await release.wait()
        return b'{"answer": ' + body + b"}"

    prefix = f"{settings.nats_prefix}.lean"
    answering = await answer_requests_lean(server, prefix, "lean", workers=1, execute=slow, backlog=2)
    await subscribed(server)
    assert await ask(f"{prefix}.ready", b"-2", 10) == b'{"answer": -2}'
    requests = [asyncio.ensure_future(ask(f"{prefix}.q", str(i).encode(), 10)) for i in range(5)]
    refused = []
    for done in asyncio.as_completed(requests):  # the first three to come back come while two are still held
        refused.append(msgspec.json.decode(await done))
        if len(refused) == 3:
            break
    assert all(r["ok"] is False and r["error"]["code"] == "internal" for r in refused)
    assert from_reply(refused[0]["error"]).status == 503  # the gateway's answer: come back, with Retry-After
    release.set()
    answers = [msgspec.json.decode(await r).get("answer", -1) for r in requests]
    assert answers.count(-1) == 3 and sorted(a for a in answers if a != -1) == [0, 1]  # the first two were taken
    await answering.finish()


async def test_each_concurrent_request_gets_its_own_reply(server: nats.NATS, ask: Ask, settings: Settings):
    rng = random.Random(5)

    async def echo(name: str, body: bytes) -> bytes:
        await asyncio.sleep(rng.random() / 100)  # replies finish out of order
        return msgspec.json.encode({"name": name, "body": body.decode()})

    prefix = f"{settings.nats_prefix}.echo"
    await answer_requests_lean(server, prefix, "echo", workers=8, execute=echo, backlog=1000)
    await subscribed(server)
    replies = await asyncio.gather(*[ask(f"{prefix}.n{i % 3}", f"request {i}".encode(), 10) for i in range(300)])
    assert [msgspec.json.decode(r) for r in replies] == [
        {"name": f"n{i % 3}", "body": f"request {i}"} for i in range(300)]


async def test_a_failing_handler_still_answers_with_a_typed_error(server: nats.NATS, ask: Ask, settings: Settings):
    async def broken(name: str, body: bytes) -> bytes:
        raise RuntimeError("a bug")

    prefix = f"{settings.nats_prefix}.broken"
    await answer_requests_lean(server, prefix, "broken", workers=2, execute=broken)
    await subscribed(server)
    reply = msgspec.json.decode(await ask(f"{prefix}.q", b"{}", 5))
    assert reply["ok"] is False and reply["error"]["code"] == "internal"


async def test_malformed_queries_get_typed_errors_naming_what_is_wrong(query_service, nc: nats.NATS,
                                                                       settings: Settings):
    async def ask(name: str, body: bytes) -> dict[str, object]:
        reply = await nc.request(f"{settings.query_subject_prefix}.{name}", body, timeout=5)
        return msgspec.json.decode(reply.data)  # type: ignore[no-any-return]

    not_json = await ask("link_slots", b"{not json")
    assert not_json["ok"] is False and not_json["error"]["code"] == "validation_failed"  # type: ignore[index]
    wrong = await ask("link_slots", b'{"account_id": 7, "link_id": ["x"], "colour": "red"}')
    assert wrong["ok"] is False
    assert set(wrong["error"]["fields"]) >= {"account_id", "link_id", "colour"}  # type: ignore[index]
    unknown = await ask("no_such_query", b"{}")
    assert unknown["ok"] is False and unknown["error"]["fields"] == {"query": [  # type: ignore[index]
        "unknown query 'no_such_query'"]}
    empty = await ask("earliest_slot", b"")
    assert empty["ok"] is False and empty["error"]["code"] == "validation_failed"  # type: ignore[index]


async def test_a_request_nobody_answers_in_time_times_out_and_its_late_reply_is_dropped(
    server: nats.NATS, requests: Requests, settings: Settings
):
    late = asyncio.Event()

    async def slow(name: str, body: bytes) -> bytes:
        if body == b'"first"':
            await asyncio.sleep(0.3)
            late.set()
        return body

    prefix = f"{settings.nats_prefix}.slow"
    answering = await answer_requests_lean(server, prefix, "slow", workers=2, execute=slow)
    await subscribed(server)
    with pytest.raises(nats.errors.TimeoutError):
        await requests.request(f"{prefix}.q", b'"first"', 0.1)
    assert requests.waiting == {}  # the timed-out request left nothing behind
    await late.wait()
    await answering.finish()  # the late reply went out
    for _ in range(500):  # and came back to nobody
        if requests.dropped:
            break
        await asyncio.sleep(0.01)
    assert requests.dropped == 1
    assert await requests.request(f"{prefix}.q", b'"second"', 5) == b'"second"'
    assert requests.waiting == {} and requests.dropped == 1


async def test_a_subject_nobody_subscribes_is_told_at_once(requests: Requests, settings: Settings):
    with pytest.raises(nats.errors.NoRespondersError):
        await requests.request(f"{settings.nats_prefix}.nobody.here", b"{}", 5)
    assert requests.waiting == {}


async def test_other_subscriptions_of_a_lean_client_still_get_their_messages(settings: Settings):
    connection = await lean_connect(settings.nats_servers)
    assert isinstance(connection, LeanClient)
    try:
        received: list[bytes] = []
        subscription = await connection.subscribe(f"{settings.nats_prefix}.plain")
        direct: list[bytes] = []
        await connection.direct(f"{settings.nats_prefix}.direct", lambda s, r, d, h: direct.append(d))
        await connection.publish(f"{settings.nats_prefix}.plain", b"one")
        await connection.publish(f"{settings.nats_prefix}.direct", b"two")
        await connection.flush()
        received.append((await subscription.next_msg(timeout=5)).data)
        for _ in range(100):
            if direct:
                break
            await asyncio.sleep(0.01)
        assert received == [b"one"] and direct == [b"two"]
    finally:
        await connection.drain()


async def test_a_direct_handler_that_raises_leaves_the_connection_reading(settings: Settings):
    connection = await lean_connect(settings.nats_servers)
    try:
        seen: list[bytes] = []

        def fragile(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
            seen.append(data)
            if data == b"bad":
                raise RuntimeError("a bug in a handler")

        await connection.direct(f"{settings.nats_prefix}.fragile", fragile)
        plain = await connection.subscribe(f"{settings.nats_prefix}.plain")
        await subscribed(connection)
        await connection.publish(f"{settings.nats_prefix}.fragile", b"bad")
        await connection.publish(f"{settings.nats_prefix}.fragile", b"good")
        await connection.publish(f"{settings.nats_prefix}.plain", b"still here")
        await connection.flush()
        assert (await plain.next_msg(timeout=5)).data == b"still here"  # nats-py's read loop did not end
        assert seen == [b"bad", b"good"]
    finally:
        await connection.drain()
