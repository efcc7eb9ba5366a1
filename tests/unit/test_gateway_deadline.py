"""One deadline per HTTP request: a slow token lookup leaves the request only what remains of it."""

from __future__ import annotations

import asyncio

import nats
import pytest

from services.gateway.backend import Backend, request_deadline
from services.gateway.errors import HttpError
from shared.settings import Settings


class SlowNats:
    """In place of the gateway's `Requests`: answers the token lookup after `lookup` seconds; never answers anything else. Records each attempt's timeout."""

    def __init__(self, lookup: float) -> None:
        self.lookup = lookup
        self.timeouts: list[tuple[str, float]] = []

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        self.timeouts.append((subject, timeout))
        if subject.endswith(".whoami"):
            await asyncio.sleep(self.lookup)
            return b'{"account_id": "acct_1", "user_id": "user_1"}'
        await asyncio.sleep(timeout)
        raise nats.errors.TimeoutError


class _Request:
    def __init__(self, token: str) -> None:
        self.scope = {"headers": [(b"authorization", f"Bearer {token}".encode())]}


async def test_a_slow_token_lookup_and_a_silent_service_share_one_deadline() -> None:
    """Lookup takes 60% of the deadline; the query gets the remaining 40%, not a deadline of its own."""
    backend = Backend(Settings())
    fake = SlowNats(lookup=0.6)
    backend.requests = fake  # type: ignore[assignment]
    with request_deadline(1.0), pytest.raises(HttpError) as refused:
        ids = await backend.caller(_Request("secret"), "bearer")  # type: ignore[arg-type]
        await backend.request("query", "link_get", {**ids, "id": "link_1"})
    assert refused.value.status == 503 and refused.value.headers == {"retry-after": "1"}
    granted = sum(timeout for subject, timeout in fake.timeouts if not subject.endswith(".whoami"))
    assert 0 < granted <= 0.4 + 0.1  # what the lookup left, plus at most one minimal attempt
