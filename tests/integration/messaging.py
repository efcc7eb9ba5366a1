"""Sending commands over real NATS, as another microservice would."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import nats

from shared.settings import Settings


async def send(nc: nats.NATS, settings: Settings, name: str, body: dict[str, Any], timeout: float = 10) -> Any:
    """Request/reply on `<prefix>.cmd.<name>`; a command id is added when the body has none."""
    payload = {"command_id": f"cmd-{uuid.uuid4().hex}", **body}
    reply = await nc.request(f"{settings.cmd_subject_prefix}.{name}", msgspec.json.encode(payload), timeout=timeout)
    return msgspec.json.decode(reply.data)


async def new_account(nc: nats.NATS, settings: Settings, name: str = "Ada Lovelace",
                      **extra: Any) -> dict[str, Any]:
    reply = await send(nc, settings, "create_account", {"name": name, "email": "ada@example.com", **extra})
    assert reply["ok"], reply
    return reply["result"]  # type: ignore[no-any-return]
