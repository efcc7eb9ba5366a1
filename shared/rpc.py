"""NATS request/reply for the command and query services: one wildcard subscriber per service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

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


async def answer_requests_lean(nc: NatsClient, prefix: str, queue: str, workers: int, execute: Execute) -> Any:
    """`answer_requests` on a plain nats-py connection: the same subjects, queue group and bodies, without
    faststream's per-message layers (decoder, middlewares, dependency injection, logging). At most `workers`
    requests run at once; the subscription is returned (unsubscribe or drain the connection to stop)."""
    start = len(prefix) + 1
    running = asyncio.Semaphore(workers)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(message: Msg) -> None:
        async with running:
            reply = await execute(message.subject[start:], message.data)
        if message.reply:
            await message.respond(reply)

    async def on_message(message: Msg) -> None:
        task = asyncio.create_task(answer(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return await nc.subscribe(f"{prefix}.*", queue=queue, cb=on_message)
