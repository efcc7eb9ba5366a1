"""NATS request/reply for the command and query services: one wildcard subscriber per service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsBroker, NatsMessage

Execute = Callable[[str, bytes], Awaitable[bytes]]


async def subject_and_body(message: NatsMessage) -> tuple[str, bytes]:
    """faststream decoder: the subject and the raw body. The service decodes the body itself (typed,
    with field errors), and taking no NatsMessage parameter keeps dependency injection off the hot path."""
    return message.raw_message.subject, message.body


def answer_requests(broker: NatsBroker, prefix: str, queue: str, workers: int, execute: Execute) -> None:
    """Subscribe `<prefix>.*` in queue group `queue`: each request's reply is `execute(name, body)`."""
    start = len(prefix) + 1

    @broker.subscriber(f"{prefix}.*", queue=queue, max_workers=workers, decoder=subject_and_body)
    async def handle(request: Any) -> bytes:
        subject, body = request
        return await execute(subject[start:], body)
