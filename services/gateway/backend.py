"""The gateway's NATS side: requests by catalogue name, the caller's identity, each account's last position."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

import asyncpg
import msgspec
import nats
from litestar import Request

from services.gateway.errors import HttpError, from_reply
from shared.catalogue import CATALOGUE
from shared.catalogue.model import Auth
from shared.lifecycle import health_subject
from shared.rpc import LeanClient, Requests, lean_connect
from shared.settings import Settings

# Identities are cached until the event feed says they changed; the TTL only bounds how long a missed
# message (a NATS reconnect also clears everything) could keep a stale entry alive.
AUTH_CACHE_SECONDS = 300.0
MAX_CACHED = 100_000
# Account-stream events that only add (an account, a user, a token, a team): no cached identity changes.
ADDITIVE_ACCOUNT_EVENTS = frozenset({"account_created", "user_created", "api_token_issued", "team_scope_created"})
SERVICE_ROLES = ("commands", "query", "projections", "relay", "webhooks", "notifier")
ROLL_CALL_SECONDS = 0.3
# A client never waits past 10 s: everything one HTTP request asks of NATS (the token lookup, the command or
# queries, every retry of them with the same command_id) shares one deadline 8 s after it arrived.
REQUEST_DEADLINE = 8.0
ATTEMPT_TIMEOUT = 4.0
_deadline: ContextVar[float | None] = ContextVar("sched_request_deadline", default=None)


@contextmanager
def request_deadline(seconds: float = REQUEST_DEADLINE) -> Iterator[float]:
    """Within this block (one HTTP request), every NATS request ends by one deadline `seconds` from now."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def set_deadline(seconds: float = REQUEST_DEADLINE) -> Token[float | None]:
    """`request_deadline` without the context manager (the gateway's per-request middleware): call
    `_deadline.reset` with the token it returns (`clear_deadline`)."""
    return _deadline.set(time.monotonic() + seconds)


def clear_deadline(token: Token[float | None]) -> None:
    """End what `set_deadline` began."""
    _deadline.reset(token)


def header(request: Request[Any, Any, Any], name: bytes) -> str | None:
    """A request header read straight from the ASGI scope (its names are lower-case), without building
    Litestar's Headers of the whole request on the hot path."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


MAX_POSITION = 2**63 - 1
_encoder = msgspec.json.Encoder()


class _AccountEvent(msgspec.Struct):
    type: str
    account_id: str = ""


_account_event = msgspec.json.Decoder(_AccountEvent)


class Backend:
    """Sends commands and queries; remembers tokens for a while and each account's last write."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nc: LeanClient | None = None
        self.requests: Requests | None = None
        self.pool: asyncpg.Pool | None = None
        self.positions: dict[str, int] = {}
        self.tokens: dict[str, tuple[float, dict[str, str]]] = {}
        self.accounts: dict[str, float] = {}  # public requests: accounts known to exist, until when

    async def connect(self, **options: Any) -> None:
        """Connect to NATS (a LeanClient, requests through `Requests`) and follow identities on the feed."""
        self.nc = await lean_connect(self.settings.nats_servers, max_reconnect_attempts=-1, **options)
        self.requests = Requests(self.nc)
        await self.requests.start()
        await self.watch_identities()

    async def request(self, kind: str, name: str, body: dict[str, Any]) -> Any:
        """The decoded reply of one command or query; an error reply raises its HttpError."""
        return msgspec.json.decode(await self.request_raw(kind, name, body))

    async def request_raw(self, kind: str, name: str, body: dict[str, Any]) -> bytes:
        """The JSON reply of one command or query as it came; an error reply raises its HttpError.

        A query's success reply is the HTTP response body already, so the gateway passes it on undecoded.
        """
        assert self.requests is not None
        subject = CATALOGUE[name].subject(self.settings.nats_prefix)
        payload = _encoder.encode(body)
        deadline = _deadline.get() or time.monotonic() + REQUEST_DEADLINE
        pause = 0.1
        behind: HttpError | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise behind or HttpError(503, {"errors": {"detail": [f"the {kind} service is not answering"]}})
            try:
                data = await self.requests.request(subject, payload, max(0.1, min(ATTEMPT_TIMEOUT, remaining)))
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.Error):
                # No responder (a service restarting), a lost reply or NATS reconnecting: ask again with the
                # same command_id, which the command service answers once, until the deadline.
                if time.monotonic() + pause >= deadline:
                    raise behind or HttpError(503, {"errors": {"detail": [f"the {kind} service is not answering"]}}) \
                        from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            if not data[:32].replace(b" ", b"").startswith(b'{"ok":false'):  # every error reply (shared.errors)
                return data
            decoded = msgspec.json.decode(data)
            if not isinstance(decoded, dict) or decoded.get("ok") is not False:
                return data
            error = from_reply(decoded["error"])
            if decoded["error"].get("code") != "unavailable" or time.monotonic() + pause >= deadline:
                raise error
            # The read models are behind (a projection runner's partitions between two holders, say): the
            # query service waited its share; ask again while this request's deadline allows.
            behind = error
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def caller(self, request: Request[Any, Any, Any], auth: Auth) -> dict[str, str]:
        """The account (and user) a request acts as, or a 401."""
        if auth == "none":
            return {}
        if auth == "account":
            account_id = header(request, b"x-savvycal-account") or ""
            if not account_id:
                raise HttpError(401, {"errors": {"detail": ["X-SavvyCal-Account header is required"]}})
            if self.accounts.get(account_id, 0.0) <= time.monotonic():
                await self.request("query", "account_exists", {"account_id": account_id})
                self._remember_account(account_id)
            return {"account_id": account_id}
        scheme, _, token = (header(request, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, {"errors": {"detail": ["a bearer token is required"]}})
        token_hash = hashlib.sha256(token.strip().encode()).hexdigest()
        cached = self.tokens.get(token_hash)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        ids = await self.request("query", "whoami", {"token_hash": token_hash})
        if len(self.tokens) >= MAX_CACHED:
            self.tokens.clear()
        self.tokens[token_hash] = (time.monotonic() + AUTH_CACHE_SECONDS, ids)
        return ids  # type: ignore[no-any-return]

    def _remember_account(self, account_id: str) -> None:
        if len(self.accounts) >= MAX_CACHED:
            self.accounts.clear()
        self.accounts[account_id] = time.monotonic() + AUTH_CACHE_SECONDS

    def forget_account(self, account_id: str) -> None:
        """Drop every cached identity of an account (its tokens and its existence)."""
        self.accounts.pop(account_id, None)
        for token_hash in [h for h, (_, ids) in self.tokens.items() if ids.get("account_id") == account_id]:
            del self.tokens[token_hash]

    def forget_all(self) -> None:
        """Drop every cached identity (after a NATS reconnect, invalidations may have been missed)."""
        self.tokens.clear()
        self.accounts.clear()

    async def on_account_event(self, message: Any) -> None:
        """The event feed's account-stream messages: a change that is not purely additive invalidates."""
        try:
            envelope = _account_event.decode(message.data)
        except msgspec.DecodeError:
            self.forget_all()
            return
        if envelope.type not in ADDITIVE_ACCOUNT_EVENTS:
            self.forget_account(envelope.account_id)

    async def watch_identities(self) -> None:
        """Subscribe to `<events>.account.>` on the feed: cached tokens follow the account's events."""
        assert self.nc is not None
        await self.nc.subscribe(f"{self.settings.events_subject_prefix}.account.>", cb=self.on_account_event)

    def remember(self, account_id: str, position: int) -> None:
        """Note an account's newest write, so its next read waits for it."""
        if position > self.positions.get(account_id, 0):
            self.positions[account_id] = position

    def last_position(self, account_id: str, header: str | None) -> int:
        """The position a read must reach: the account's last write here, or the client's `X-Sched-Position`."""
        given = int(header) if header and header.isdigit() else 0
        if given > MAX_POSITION:
            raise HttpError.on(422, "X-Sched-Position", "must be a position a command returned")
        return max(self.positions.get(account_id, 0), given)

    async def health(self) -> dict[str, str]:
        """"ok" or why not, for Postgres and NATS."""
        status = {"postgres": "ok", "nats": "ok"}
        try:
            assert self.pool is not None
            await self.pool.fetchval("select 1", timeout=2)
        except Exception as exc:  # noqa: BLE001 - a health probe reports any failure, never raises
            status["postgres"] = f"unreachable: {type(exc).__name__}"
        if self.nc is None or not self.nc.is_connected:
            status["nats"] = "unreachable"
            return status | {role: "unknown" for role in SERVICE_ROLES}
        return status | await self.roll_call()

    async def roll_call(self) -> dict[str, str]:
        """Each service role: "ok (N up)" from the processes that answer on the health subject, or "down"."""
        assert self.nc is not None
        inbox = self.nc.new_inbox()
        answers: list[dict[str, Any]] = []

        async def collect(msg: Any) -> None:
            answers.append(msgspec.json.decode(msg.data))

        subscription = await self.nc.subscribe(inbox, cb=collect)
        try:
            await self.nc.publish(health_subject(self.settings), b"", reply=inbox)
            await asyncio.sleep(ROLL_CALL_SECONDS)
        finally:
            await subscription.unsubscribe()
        counts = {role: 0 for role in SERVICE_ROLES}
        for answer in answers:
            counts[answer.get("role", "")] = counts.get(answer.get("role", ""), 0) + 1
        return {role: f"ok ({n} up)" if n else "down" for role, n in counts.items()}
