"""NATS request/reply for the command and query services: one wildcard subscriber per service."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as RequestTimeout

from shared.errors import internal_error_reply

_encoder = msgspec.json.Encoder()
log = logging.getLogger("sched.rpc")
Execute = Callable[[str, bytes], Awaitable[bytes]]
# One message as nats-py's parser read it: subject, reply subject, payload, header block (None without headers).
Direct = Callable[[bytes, bytes, bytes, bytes | None], None]


class LeanClient(NatsClient):
    """nats-py's client, with the messages of chosen subscriptions handed straight to a function.

    For every message nats-py builds a `Msg`, puts it on the subscription's queue and wakes the
    subscription's task, which then calls the callback: at thousands of requests a second that is a large
    share of a gateway's time. A subscription made with `direct` skips all three: the read loop hands its
    messages to the function as the parser read them. The function runs on the read loop and must not
    block (set a future's result, start a task); one that raises is logged. Everything else (reconnects, which subscribe again with the
    same sid, JetStream, other subscriptions) is nats-py's own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, Direct] = {}

    async def direct(self, subject: str, handler: Direct, queue: str = "") -> Any:
        """Subscribe `subject` (in `queue`, if given); its messages go to `handler`. Returns the subscription."""
        subscription = await self.subscribe(subject, queue=queue)
        self._direct[subscription._id] = handler
        return subscription

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,  # type: ignore[override]
                           headers: bytes | None) -> None:
        handler = self._direct.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]
            return
        try:
            handler(subject, reply, data, headers)
        except Exception:  # raised into nats-py's read loop, it would end it and the connection would go deaf
            log.exception("direct handler for %s failed", subject)


async def lean_connect(servers: list[str] | str, **options: Any) -> LeanClient:
    """`nats.connect` returning a LeanClient."""
    nc = LeanClient()
    await nc.connect(servers, **options)
    return nc


async def subscribed(nc: NatsClient) -> None:
    """Return once the server has every subscription `nc` made. nats-py's `flush` puts its PING ahead of
    commands still waiting to be written, so one flush can come back before a SUB just made reaches the
    server (a request then finds "no responders"); the second flush's PING goes out after it."""
    await nc.flush()
    await nc.flush()


def _time_out(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(RequestTimeout())


class Requests:
    """Request/reply over a LeanClient: one reply subscription, a counter for reply tokens, one timer each.

    nats-py's `request` draws random bytes from the OS, wraps its future in `wait_for` and takes each reply
    through a Msg and a queue; this keeps the same protocol (a reply inbox per request under one wildcard
    subscription, the server's 503 status for "no responders") without those costs. Raises nats-py's
    TimeoutError and NoRespondersError, as `request` does.
    """

    def __init__(self, nc: LeanClient) -> None:
        self.nc = nc
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self.tokens = itertools.count(1)
        self.prefix = ""
        self.dropped = 0  # replies that came after their request gave up

    async def start(self) -> None:
        """Subscribe to this client's reply inboxes."""
        self.prefix = self.nc.new_inbox() + "."
        cut = len(self.prefix)
        waiting = self.waiting

        def on_reply(subject: bytes, _reply: bytes, data: bytes, headers: bytes | None) -> None:
            future = waiting.pop(subject[cut:], None)
            if future is None or future.done():
                self.dropped += 1  # a reply after its request gave up
                return
            if headers is not None and headers[9:12] == b"503":  # `NATS/1.0 503`: nobody subscribes the subject
                future.set_exception(NoRespondersError())
            else:
                future.set_result(data)

        await self.nc.direct(self.prefix + "*", on_reply)

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """The reply's payload to `payload` sent on `subject`, within `timeout` seconds."""
        token = str(next(self.tokens))
        key = token.encode()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self.waiting[key] = future
        timer = loop.call_later(timeout, _time_out, future)
        try:
            await self.nc.publish(subject, payload, reply=self.prefix + token)
            return await future
        finally:
            timer.cancel()
            self.waiting.pop(key, None)


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

    async def answer(name: str, data: bytes, reply: str) -> None:
        async with running:
            try:
                answer = await execute(name, data)
            except Exception:  # a bug in a handler: its caller still gets a typed error, not a timeout
                log.exception("request on %s.%s failed", prefix, name)
                answer = failed
        if reply:
            await nc.publish(reply, answer)

    async def refuse(reply: str) -> None:
        await nc.publish(reply, overloaded)

    def take(subject: str, data: bytes, reply: str) -> None:
        if len(answering.tasks) >= limit:
            task = asyncio.create_task(refuse(reply)) if reply else None
        else:
            task = asyncio.create_task(answer(subject[start:], data, reply))
        if task is not None:
            answering.tasks.add(task)
            task.add_done_callback(answering.tasks.discard)

    subject = f"{prefix}.*"
    if isinstance(nc, LeanClient):  # each request straight from the read loop to its task
        def on_request(subject: bytes, reply: bytes, data: bytes, _headers: bytes | None) -> None:
            take(subject.decode(), data, reply.decode())
        answering.subscription = await nc.direct(subject, on_request, queue=queue)
    else:
        async def on_message(message: Msg) -> None:
            take(message.subject, message.data, message.reply)
        answering.subscription = await nc.subscribe(subject, queue=queue, cb=on_message)
    return answering
