"""NATS request/reply for the command and query services: one wildcard subscriber per service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from shared.errors import internal_error_reply

_encoder = msgspec.json.Encoder()
log = logging.getLogger("sched.rpc")
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


class Answering:
    """A running request/reply subscription and the answers still being computed."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.subscription: Any = None

    async def finish(self, timeout: float = 10.0) -> None:
        """Wait (at most `timeout` s) for the answers in flight, after the connection stopped taking requests."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)


async def answer_requests_lean(nc: NatsClient, prefix: str, queue: str, workers: int, execute: Execute,
                               backlog: int | None = None) -> Answering:
    """`answer_requests` on a plain nats-py connection: the same subjects, queue group and bodies, without
    faststream's per-message layers (decoder, middlewares, dependency injection, logging). At most `workers`
    requests run at once and `backlog` (default 8 x workers) wait; beyond that a request is refused at once
    with a typed error (the gateway answers 503), so a burst never queues work whose caller gave up."""
    start = len(prefix) + 1
    running = asyncio.Semaphore(workers)
    limit = backlog if backlog is not None else 8 * workers
    answering = Answering()
    overloaded = _encoder.encode({"ok": False, "error": {"code": "internal", "message": "overloaded; try again",
                                                         "fields": {}}})
    failed = _encoder.encode(internal_error_reply())

    async def answer(message: Msg) -> None:
        async with running:
            try:
                reply = await execute(message.subject[start:], message.data)
            except Exception:  # a bug in a handler: its caller still gets a typed error, not a timeout
                log.exception("request on %s failed", message.subject)
                reply = failed
        if message.reply:
            await message.respond(reply)

    async def on_message(message: Msg) -> None:
        if len(answering.tasks) >= limit:
            if message.reply:
                await message.respond(overloaded)
            return
        task = asyncio.create_task(answer(message))
        answering.tasks.add(task)
        task.add_done_callback(answering.tasks.discard)

    answering.subscription = await nc.subscribe(f"{prefix}.*", queue=queue, cb=on_message)
    return answering
