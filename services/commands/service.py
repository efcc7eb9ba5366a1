"""Executing one command: decode, idempotency, decide on fresh state, append, retry on conflict."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from services.commands.handlers import CONTENTION_KEYS, HANDLERS, Handler
from services.commands.repository import Repository, UnitOfWork
from shared.catalogue import CATALOGUE
from shared.catalogue.replies import check_reply
from shared.domain.core import Decision, Env
from shared.envelope import decode_request, internal_error_reply, ok_reply
from shared.errors import Conflict, DomainError, ValidationFailed, VersionConflict
from shared.eventstore import DuplicateCommand, EventStore
from shared.ids import new_id

log = logging.getLogger("sched.commands")

MAX_ATTEMPTS = 30
# What a Postgres restart looks like to a client; a transaction that fails so is tried again.
CONNECTION_ERRORS = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, asyncpg.AdminShutdownError,
                     asyncpg.CannotConnectNowError, asyncpg.ConnectionFailureError, asyncpg.InternalClientError,
                     OSError)
RETRY_CONNECTION_FOR = 6.0  # seconds: the gateway's callers wait at most 10 s in all
_encoder = msgspec.json.Encoder()


class CommandService:
    """Runs commands against one event store; stateless apart from a cache, so any number can run."""

    def __init__(self, store: EventStore, public_url: str = "http://127.0.0.1:8000/book",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 webhook_allow_loopback: bool = False, check_replies: bool = False,
                 signing_secret: str = "") -> None:
        self.store = store
        self.check_replies = check_replies
        self.repository = Repository(store)
        self.public_url = public_url
        self.clock = clock
        self.webhook_allow_loopback = webhook_allow_loopback
        self.signing_secret = signing_secret
        self._locks: dict[str, asyncio.Lock] = {}

    async def execute(self, name: str, body: bytes) -> bytes:
        """The JSON reply to one command body (never raises for anything a client can send)."""
        try:
            reply = await self.run(name, body)
            if self.check_replies:
                check_reply(CATALOGUE[name], reply["result"])
        except DomainError as exc:
            reply = exc.to_reply()
        except Exception:  # a bug or an outage: log it, tell the caller without a traceback
            log.exception("command %s failed", name)
            reply = internal_error_reply()
        return _encoder.encode(reply)

    async def run(self, name: str, body: bytes) -> dict[str, Any]:
        """The reply to one command body, or the DomainError refusing it (a repeat gets its stored reply)."""
        operation = CATALOGUE.get(name)
        if operation is None or operation.kind != "command":
            raise ValidationFailed.on("command", f"unknown command {name!r}")
        command = decode_request(body, operation.request)
        if not command.command_id or len(command.command_id) > 200:
            raise ValidationFailed.on("command_id", "must be a non-empty string of at most 200 characters")
        try:
            return await self._through_restarts(name, command)
        except DomainError:
            # A repeat of a command that already took effect may now be refused (its own first run
            # took the slot): the stored reply wins. Looked up only here, off the fast path.
            replayed = await self._replayed(name, command)
            if replayed is not None:
                return replayed
            raise

    async def _through_restarts(self, name: str, command: Any) -> dict[str, Any]:
        """Decide and append, again after a lost connection; a commit whose outcome is unknown is looked up.

        A connection that breaks during COMMIT leaves us not knowing whether it took effect, so before
        each new attempt the command id is looked up: a stored reply means it did, and is the answer.
        """
        deadline = time.monotonic() + RETRY_CONNECTION_FOR
        pause = 0.1
        while True:
            try:
                return await self._decide_and_append(name, HANDLERS[name], command)
            except CONNECTION_ERRORS as exc:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("command %s: %s; retrying with the same command id", name, type(exc).__name__)
            while True:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                try:
                    replayed = await self._replayed(name, command)
                    break
                except CONNECTION_ERRORS:
                    if time.monotonic() + pause > deadline:
                        raise
            if replayed is not None:
                return replayed

    async def _decide_and_append(self, name: str, handler: Handler, command: Any) -> dict[str, Any]:
        key = CONTENTION_KEYS.get(name)
        contended: str | None = key(command) if key else None
        for attempt in range(MAX_ATTEMPTS):
            try:
                if contended is None:
                    return await self._attempt(name, handler, command)
                # After a conflict, queue behind the other commands of this process on that stream
                # rather than colliding with them again; other streams stay fully concurrent.
                async with self._stream_lock(contended):
                    return await self._attempt(name, handler, command)
            except VersionConflict as conflict:
                # Someone appended first: re-decide on the fresh state (it may now be a rejection).
                contended = conflict.stream_id or contended
                if attempt >= 3:
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))
            except DuplicateCommand:
                replayed = await self._replayed(name, command)
                if replayed is not None:
                    return replayed
        raise Conflict("too much contention on this resource; try again")

    async def _attempt(self, name: str, handler: Handler, command: Any) -> dict[str, Any]:
        uow = UnitOfWork(self.repository)
        env = Env(now=self.clock(), public_url=self.public_url, webhook_allow_loopback=self.webhook_allow_loopback,
                  signing_secret=self.signing_secret)
        return await self._commit(name, command, uow, await handler(command, uow, env))

    def _stream_lock(self, stream_id: str) -> asyncio.Lock:
        lock = self._locks.get(stream_id)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[stream_id] = asyncio.Lock()
        return lock

    async def _commit(self, name: str, command: Any, uow: UnitOfWork, decision: Decision) -> dict[str, Any]:
        appends = uow.appends(decision, lambda: new_id("evt"))
        event_ids = [e.id for a in appends for e in a.events]
        stored = ok_reply(decision.stored_result or decision.result, event_ids, 0)
        account_id = command.account_id or str(decision.result.get("account_id", ""))
        position = await self.store.append(
            appends, command_id=command.command_id, command_name=name, account_id=account_id,
            reply=_encoder.encode(stored),
        )
        for append, (_, events) in zip(appends, [c for c in decision.changes if c[1]]):
            self.repository.appended(append.stream_id, append.expected_version, events)
        return ok_reply(decision.result, event_ids, position)

    async def _replayed(self, name: str, command: Any) -> dict[str, Any] | None:
        """The stored reply when this command id already took effect."""
        stored = await self.store.stored_reply(command.command_id)
        if stored is None:
            return None
        if stored.command_name != name or (command.account_id and stored.account_id != command.account_id):
            raise Conflict("command_id was already used for a different command")
        reply: dict[str, Any] = msgspec.json.decode(stored.reply)
        reply["position"] = stored.position
        return reply

