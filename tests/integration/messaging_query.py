"""Sending queries over real NATS."""

from __future__ import annotations

from typing import Any

import msgspec
import nats

from shared.settings import Settings


async def query(nc: nats.NATS, settings: Settings, name: str, body: dict[str, Any], timeout: float = 10) -> Any:
    reply = await nc.request(f"{settings.query_subject_prefix}.{name}", msgspec.json.encode(body), timeout=timeout)
    return msgspec.json.decode(reply.data)
