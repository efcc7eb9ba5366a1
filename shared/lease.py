"""Leases for single-active roles: one holder at a time, a standby takes over, a stale holder is fenced.

A lease is a row in `leases` with an expiry and a token that grows with each new holder. The holder
renews it every `ttl / 5` seconds; a standby takes it once it has expired, so a dead (or paused)
holder is replaced within `ttl` plus one retry. Two guards stop a holder that was paused past its
lease from acting on it when it resumes:

- `held()` trusts the lease only until `ttl * 0.8` after the renewal was *sent* (a local monotonic
  clock, so it errs towards "lost"); callers check it before each side effect (a publish, a send).
- `fence(conn)` in the caller's transaction first takes the lease's advisory lock in shared mode
  (`pg_advisory_xact_lock_shared`), then re-reads the row with the holder's token: a new holder's
  token, or an expiry in the past, raises `LeaseLost`, so a stale checkpoint never commits; and while
  the shared lock is held no standby can take the lease over mid-transaction (a takeover first takes
  the same advisory lock exclusively, and the row `for update`). So that a holder paused *inside*
  such a transaction cannot block its standby for ever, the transaction gets
  `idle_in_transaction_session_timeout` of one lease length: Postgres ends the paused session, its
  locks go, and the standby takes over.

Why an advisory lock and not a row lock on the lease: the holder's own renewal (an UPDATE of
`expires_at`) takes no advisory lock, so it never queues behind the holder's own fenced transaction,
and a batch longer than the lease no longer lets the lease expire under a live holder. And an
advisory lock needs no transaction id, where a row lock (even `for key share`) assigns one at once:
a fenced transaction that holds an xid from its first statement would hide every later commit from
the gap-safe log readers (they read below the oldest running xid) for as long as it runs. A fenced
write that is a single statement may lock the row `for key share` instead (the takeover's
`for update` waits for it, the renewal does not): it writes anyway, so it has its xid anyway.

Lease names are fixed per role (`relay`, `webhooks`, `projection:calendars#2/4`, ...), never per
process: the table holds one row per role and partition however often processes restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("sched.lease")

DEFAULT_TTL = 5.0
LOCK_CLASS = 7_310  # the first key of every lease's advisory lock (the second: hashtext of its name)


class LeaseLost(RuntimeError):
    """The lease is no longer ours: stop acting as the active instance."""


def holder_name() -> str:
    """Who we are, for the `holder` column: host, pid and SCHED_INSTANCE."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.environ.get('SCHED_INSTANCE', '1')}"


class Lease:
    """One named lease, acquired and renewed by `keep` in the background."""

    def __init__(self, pool: asyncpg.Pool, name: str, ttl: float = DEFAULT_TTL, holder: str | None = None) -> None:
        self.pool = pool
        self.name = name
        self.ttl = ttl
        self.holder = holder or holder_name()
        self.token: int | None = None
        self.valid_until = 0.0
        self.acquired = asyncio.Event()

    def held(self) -> bool:
        """Whether we may act now: we hold the lease and our last renewal is recent enough."""
        return self.token is not None and time.monotonic() < self.valid_until

    async def try_acquire(self) -> bool:
        """Take the lease if it is free or expired (or renew it if ours); True when we hold it."""
        sent = time.monotonic()
        if await self.pool.fetchval("select expires_at > clock_timestamp() from leases where name = $1", self.name):
            return False  # held by someone: no need to queue behind a holder's fenced transaction
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("set local lock_timeout = 500")  # a holder mid-transaction: try again later
                # Paused (SIGSTOP) inside this transaction, we would hold the exclusive lock and the row
                # for ever: Postgres ends such a session after one lease length, as for `fence`.
                await conn.execute(f"set local idle_in_transaction_session_timeout = {int(self.ttl * 1000)}")
                # Wait for every fenced transaction of the live holder: the advisory lock for `fence`, the
                # row lock for one-statement fenced writes (`for key share`, which the upsert alone would
                # not wait for, as it changes no key column).
                await conn.execute("select pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, self.name)
                await conn.execute("select 1 from leases where name = $1 for update", self.name)
                token = await conn.fetchval(
                    "insert into leases (name, holder, token, expires_at)"
                    " values ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))"
                    " on conflict (name) do update set holder = excluded.holder, token = leases.token + 1,"
                    "  expires_at = excluded.expires_at"
                    " where leases.expires_at < clock_timestamp()"
                    " returning token", self.name, self.holder, self.ttl)
        except asyncpg.LockNotAvailableError:
            await self._end_stuck_holders()
            return False
        if token is None:
            return False
        self.token, self.valid_until = int(token), sent + self.ttl * 0.8
        log.info("lease %s acquired by %s (token %s)", self.name, self.holder, token)
        self.acquired.set()
        return True

    async def _end_stuck_holders(self) -> None:
        """Terminate the sessions still holding the lease's lock one lease length after it expired.

        The idle-in-transaction timeout only ends a session Postgres waits on for a command; a holder
        paused while Postgres was still sending it a result leaves its backend "active" (ClientWrite),
        which no timeout ends. Its lease is long expired, so it can commit nothing anyway: end it.
        """
        ended = await self.pool.fetchval(
            "select count(pg_terminate_backend(l.pid)) from pg_locks l"
            " where l.locktype = 'advisory' and l.granted and l.classid = $1::bigint::text::oid"
            "  and l.objid = (hashtext($2)::bigint & 4294967295)::text::oid and l.objsubid = 2"
            "  and l.pid <> pg_backend_pid()"
            "  and exists (select 1 from leases where name = $2"
            "   and expires_at < clock_timestamp() - make_interval(secs => $3))",
            LOCK_CLASS, self.name, self.ttl)
        if ended:
            log.warning("lease %s: ended %d stuck session(s) of a past holder", self.name, ended)

    async def renew(self) -> bool:
        """Extend our lease; False (and no longer held) when someone else took it meanwhile."""
        sent = time.monotonic()
        renewed = await self.pool.fetchval(
            "update leases set expires_at = clock_timestamp() + make_interval(secs => $3)"
            " where name = $1 and token = $2 and expires_at > clock_timestamp() returning token",
            self.name, self.token, self.ttl)
        if renewed is None:
            self.lose()
            return False
        self.valid_until = sent + self.ttl * 0.8
        return True

    def lose(self) -> None:
        """Forget the lease (it expired or was taken): we are a standby again."""
        if self.token is not None:
            log.warning("lease %s lost by %s (token %s)", self.name, self.holder, self.token)
        self.token = None
        self.valid_until = 0.0
        self.acquired.clear()

    async def fence(self, conn: asyncpg.Connection) -> None:
        """Inside the caller's transaction: raise LeaseLost unless our token still holds an unexpired lease."""
        if self.token is None or not self.held():
            self.lose()
            raise LeaseLost(self.name)
        # The lock first, then the check in a statement of its own: its snapshot is taken after any
        # takeover that held the lock has committed.
        await conn.execute("select pg_advisory_xact_lock_shared($1, hashtext($2)),"
                           " set_config('idle_in_transaction_session_timeout', $3, true)",
                           LOCK_CLASS, self.name, str(int(self.ttl * 1000)))
        ok = await conn.fetchval("select true from leases where name = $1 and token = $2"
                                 " and expires_at > clock_timestamp()", self.name, self.token)
        if not ok:
            self.lose()
            raise LeaseLost(self.name)

    async def execute(self, pool: asyncpg.Pool, sql: str, *args: object) -> str:
        """Run one write in its own transaction fenced by this lease (LeaseLost when it is not ours)."""
        async with pool.acquire() as conn, conn.transaction():
            await self.fence(conn)
            return str(await conn.execute(sql, *args))

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait for it to expire."""
        if self.token is not None:
            with contextlib.suppress(Exception):
                await self.pool.execute("update leases set expires_at = clock_timestamp() - interval '1 second'"
                                        " where name = $1 and token = $2", self.name, self.token)
        self.lose()

    async def keep(self, stop: asyncio.Event) -> None:
        """Until `stop`: renew while we hold the lease, try to take it while we do not; release it at the end."""
        while not stop.is_set():
            try:
                if self.token is not None:
                    if not self.held():  # we were paused past our lease: it is not ours to renew
                        self.lose()
                    else:
                        await self.renew()
                if self.token is None:
                    await self.try_acquire()
            except Exception as exc:  # noqa: BLE001 - the database away, or anything else: never stop trying
                log.warning("lease %s: %s: %s", self.name, type(exc).__name__, exc)
                if not self.held():
                    self.lose()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.ttl / 5)
        await self.release()


async def serve_terms(lease: Lease, stop: asyncio.Event, lead: Callable[[asyncio.Event], Awaitable[None]],
                      role: str, poll: float = 0.2) -> None:
    """Keep `lease` until `stop`, and run `lead(stop)` for every term we hold it (a standby waits; a term
    that fails is logged and, while the lease is still ours, begun again a second later)."""
    keeping = asyncio.create_task(lease.keep(stop))
    try:
        while not stop.is_set():
            if not lease.held():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)
                continue
            try:
                await lead(stop)
            except Exception:
                log.exception("%s term failed; trying again", role)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await keeping
