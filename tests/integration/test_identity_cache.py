"""The gateway's identity cache (services.gateway.backend.Backend) over real NATS and the real query service.

Stories: an unknown token is refused and never remembered, so a token issued later works at once; a
token once looked up is answered from the cache; an event on the feed that changes its account (not
one that only adds, nor another account's) drops the account's cached tokens, so a token the read
model no longer knows stops working once that event reaches the gateway, while a valid one is looked up
again and works.

The domain has no command that revokes or rotates a token yet (account streams only add): the
revocation here is its two effects, the token's row gone from the read model and a non-additive
account event on the feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import asyncpg
import msgspec
import nats
import pytest

from services.gateway.backend import Backend
from services.gateway.errors import HttpError
from services.query.reads import Reads
from shared.rpc import subscribed
from shared.settings import Settings
from tests.integration.messaging import send

pytestmark = pytest.mark.integration


class _Request:
    """What Backend.caller reads of an HTTP request: its headers, in its ASGI scope."""

    def __init__(self, token: str) -> None:
        self.scope = {"headers": [(b"authorization", f"Bearer {token}".encode())]}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _account(nc: nats.NATS, settings: Settings, pool: asyncpg.Pool, name: str) -> dict[str, Any]:
    reply = await send(nc, settings, "create_account", {"name": name, "email": f"{name.lower()}@example.com"})
    assert reply["ok"], reply
    await Reads(pool).wait_for(reply["position"])
    return reply["result"]  # type: ignore[no-any-return]


async def _feed(nc: nats.NATS, settings: Settings, account_id: str, event_type: str) -> None:
    """An account-stream event's envelope on the feed, as the relay publishes it."""
    envelope = {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "stream_id": f"account-{account_id}",
                "version": 9, "position": 1, "occurred_at": "2026-12-06T08:00:00.000000Z", "account_id": account_id,
                "data": {}}
    await nc.publish(f"{settings.events_subject_prefix}.account.{event_type}", msgspec.json.encode(envelope))


async def _until_forgotten(backend: Backend, token: str) -> None:
    for _ in range(500):
        if _hash(token) not in backend.tokens:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the feed's event never reached the cache")


async def test_tokens_follow_their_accounts_events_on_the_feed(command_service, query_service, projector,
                                                               nc: nats.NATS, settings: Settings, pool: asyncpg.Pool):
    backend = Backend(settings)
    await backend.connect()
    assert backend.nc is not None
    try:
        await subscribed(backend.nc)
        ada, bob = await _account(nc, settings, pool, "Ada"), await _account(nc, settings, pool, "Bob")

        with pytest.raises(HttpError) as refused:
            await backend.caller(_Request("sched_not_issued_yet"), "bearer")  # type: ignore[arg-type]
        assert refused.value.status == 401 and _hash("sched_not_issued_yet") not in backend.tokens
        issued = await send(nc, settings, "issue_api_token", {"account_id": ada["account_id"], "user_id": ada["user_id"]})
        await Reads(pool).wait_for(issued["position"])
        second = issued["result"]["token"]
        expected = {"account_id": ada["account_id"], "user_id": ada["user_id"]}
        assert await backend.caller(_Request(second), "bearer") == expected  # type: ignore[arg-type]  # a new token
        assert await backend.caller(_Request(ada["token"]), "bearer") == expected  # type: ignore[arg-type]
        await backend.caller(_Request(bob["token"]), "bearer")  # type: ignore[arg-type]

        # The revocation's effect on the read model: the first token's row is gone. The cache still answers.
        await pool.execute("delete from rm_tokens where token_hash = $1", _hash(ada["token"]))
        assert await backend.caller(_Request(ada["token"]), "bearer") == expected  # type: ignore[arg-type]
        await _feed(backend.nc, settings, ada["account_id"], "api_token_issued")  # only adds: nothing to forget
        await _feed(backend.nc, settings, bob["account_id"], "api_token_revoked")  # another account's change
        await _until_forgotten(backend, bob["token"])
        assert _hash(ada["token"]) in backend.tokens and _hash(second) in backend.tokens

        await _feed(backend.nc, settings, ada["account_id"], "api_token_revoked")  # the event reaches the gateway
        await _until_forgotten(backend, ada["token"])
        with pytest.raises(HttpError) as revoked:
            await backend.caller(_Request(ada["token"]), "bearer")  # type: ignore[arg-type]
        assert revoked.value.status == 401
        assert await backend.caller(_Request(second), "bearer") == expected  # type: ignore[arg-type]  # looked up again
    finally:
        await backend.nc.close()
