"""The lean request/reply path (shared.rpc.answer_requests_lean) over real NATS.

Stories: beyond its backlog a request is refused at once with the typed error the gateway turns into a
503, while the requests it took are still answered; malformed requests to the query service get typed
errors naming what is wrong; under many concurrent requests each reply reaches its own inbox; a
handler that fails still answers (a typed internal error), it never leaves its caller waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest

from services.gateway.errors import from_reply
from shared.rpc import answer_requests_lean
from shared.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[nats.NATS]:
    """A second connection for the answering side (requests and replies cross the server)."""
    connection = await nats.connect(settings.nats_servers)
    yield connection
    await connection.drain()


async def test_beyond_its_backlog_a_request_is_refused_at_once_with_a_typed_error(
    server: nats.NATS, nc: nats.NATS, settings: Settings
):
    release = asyncio.Event()

    async def slow(name: str, body: bytes) -> bytes:
        if name != "ready":
            await release.wait()
        return b'{"answer": ' + body + b"}"

    prefix = f"{settings.nats_prefix}.lean"
    answering = await answer_requests_lean(server, prefix, "lean", workers=1, execute=slow, backlog=2)
    await server.flush()
    assert (await nc.request(f"{prefix}.ready", b"-2", timeout=10)).data == b'{"answer": -2}'
    requests = [asyncio.ensure_future(nc.request(f"{prefix}.q", str(i).encode(), timeout=10)) for i in range(5)]
    refused = []
    for done in asyncio.as_completed(requests):  # the first three to come back come while two are still held
        refused.append(msgspec.json.decode((await done).data))
        if len(refused) == 3:
            break
    assert all(r["ok"] is False and r["error"]["code"] == "internal" for r in refused)
    assert from_reply(refused[0]["error"]).status == 503  # the gateway's answer: come back, with Retry-After
    release.set()
    answers = [msgspec.json.decode((await r).data).get("answer", -1) for r in requests]
    assert answers.count(-1) == 3 and sorted(a for a in answers if a != -1) == [0, 1]  # the first two were taken
    await answering.finish()


async def test_each_concurrent_request_gets_its_own_reply(server: nats.NATS, nc: nats.NATS, settings: Settings):
    rng = random.Random(5)

    async def echo(name: str, body: bytes) -> bytes:
        await asyncio.sleep(rng.random() / 100)  # replies finish out of order
        return msgspec.json.encode({"name": name, "body": body.decode()})

    prefix = f"{settings.nats_prefix}.echo"
    await answer_requests_lean(server, prefix, "echo", workers=8, execute=echo, backlog=1000)
    await server.flush()
    replies = await asyncio.gather(*[nc.request(f"{prefix}.n{i % 3}", f"request {i}".encode(), timeout=10)
                                     for i in range(300)])
    assert [msgspec.json.decode(r.data) for r in replies] == [
        {"name": f"n{i % 3}", "body": f"request {i}"} for i in range(300)]


async def test_a_failing_handler_still_answers_with_a_typed_error(server: nats.NATS, nc: nats.NATS,
                                                                  settings: Settings):
    async def broken(name: str, body: bytes) -> bytes:
        raise RuntimeError("a bug")

    prefix = f"{settings.nats_prefix}.broken"
    await answer_requests_lean(server, prefix, "broken", workers=2, execute=broken)
    await server.flush()
    reply = msgspec.json.decode((await nc.request(f"{prefix}.q", b"{}", timeout=5)).data)
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
