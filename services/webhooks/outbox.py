"""The dispatcher's tables (migration 0004): subscriptions, the delivery outbox, attempts, the intake position.

Only the dispatcher writes them (the query service reads the log and the subscription state).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import asyncpg

from services.webhooks.transport import AttemptOutcome
from shared.eventstore import LogCursor
from shared.ids import new_id
from shared.lease import Lease, LeaseLost
from shared.messages.events import Event, WebhookCreated, WebhookDeleted, WebhookSecretRotated
from shared.webhook_secrets import forget_secrets


class Subscription(NamedTuple):
    """A webhook subscription as the senders need it: where to post, the secrets to sign with, its state."""

    webhook_id: str
    url: str
    secret_id: str
    previous_secret_id: str | None
    previous_expires_at: datetime | None
    state: str  # active | failing | deleted


class Delivery(NamedTuple):
    """One pending delivery: its outbox sequence, the body to post and its attempts so far."""

    seq: int
    webhook_id: str
    body: bytes
    attempt_count: int
    next_attempt_at: datetime
    type: str = ""  # the webhook event type (`invitee.*` deliveries are Calendly's)


async def _write(pool: asyncpg.Pool, lease: Lease | None, sql: str, *args: object) -> None:
    """One write, fenced by the dispatcher's lease when there is one."""
    if lease is None:
        await pool.execute(sql, *args)
    else:
        await lease.execute(pool, sql, *args)


# --- intake -------------------------------------------------------------------------------------

class IntakeState(NamedTuple):
    """Where the intake stands: the stream sequence read up to, in which incarnation, and its log high-water mark."""

    sequence: int = 0
    stream_created: str | None = None
    high_water: LogCursor | None = None  # the last log event handled (None before the first batch)


async def intake_state(db: asyncpg.Pool | asyncpg.Connection, stream: str) -> IntakeState:
    """The committed intake state for `stream` (zeros before the first batch)."""
    row = await db.fetchrow("select sequence, stream_created, log_tx_id, log_position from webhook_intake"
                            " where stream = $1", stream)
    if row is None:
        return IntakeState()
    high_water = None if row["log_tx_id"] is None else LogCursor(row["log_tx_id"], row["log_position"])
    return IntakeState(int(row["sequence"]), row["stream_created"], high_water)


async def save_intake_position(conn: asyncpg.Connection, stream: str, sequence: int, high_water: LogCursor) -> None:
    """Record `sequence` as the last SCHED_EVENTS message, and `high_water` the last log event, handled."""
    await conn.execute("insert into webhook_intake (stream, sequence, log_tx_id, log_position) values ($1, $2, $3, $4)"
                       " on conflict (stream) do update set sequence = excluded.sequence,"
                       " log_tx_id = excluded.log_tx_id, log_position = excluded.log_position",
                       stream, sequence, high_water.tx_id, high_water.position)


async def restart_intake(pool: asyncpg.Pool, stream: str, created: str, sequence: int,
                         lease: Lease | None = None) -> None:
    """Record a new incarnation of the stream and where in it the intake stands (the high-water mark stays)."""
    await _write(pool, lease, "insert into webhook_intake (stream, sequence, stream_created) values ($1, $2, $3)"
                 " on conflict (stream) do update set sequence = excluded.sequence,"
                 " stream_created = excluded.stream_created", stream, sequence, created)


async def apply_webhook_event(conn: asyncpg.Connection, version: int, event: Event) -> None:
    """Fold one webhook event into the subscriptions (a replayed event changes nothing)."""
    match event:
        case WebhookCreated():
            await conn.execute(
                "insert into webhook_subscriptions (webhook_id, account_id, url, events, secret_id, version)"
                " values ($1, $2, $3, $4, $5, $6) on conflict (webhook_id) do nothing",
                event.webhook_id, event.account_id, event.url, event.events, event.secret_id, version)
        case WebhookSecretRotated():
            await conn.execute(
                "update webhook_subscriptions set secret_id = $2, previous_secret_id = $3,"
                " previous_expires_at = $4, version = $5, updated_at = now() where webhook_id = $1 and version < $5",
                event.webhook_id, event.secret_id, event.previous_secret_id,
                datetime.fromisoformat(event.previous_expires_at), version)
        case WebhookDeleted():
            updated = await conn.execute(
                "update webhook_subscriptions set state = 'deleted', version = $2, updated_at = now()"
                " where webhook_id = $1 and version < $2", event.webhook_id, version)
            if updated != "UPDATE 0":
                await conn.execute("update webhook_deliveries set state = 'canceled', finished_at = now()"
                                   " where webhook_id = $1 and state = 'pending'", event.webhook_id)
                await forget_secrets(conn, event.webhook_id)


async def subscribers(conn: asyncpg.Connection, account_id: str, webhook_type: str) -> list[str]:
    """The account's live webhooks that asked for `webhook_type`."""
    rows = await conn.fetch("select webhook_id from webhook_subscriptions where account_id = $1"
                            " and state <> 'deleted' and $2 = any(events) order by webhook_id", account_id, webhook_type)
    return [row["webhook_id"] for row in rows]


async def enqueue(conn: asyncpg.Connection, webhook_ids: list[str], event_id: str, webhook_type: str,
                  body: bytes) -> None:
    """One pending delivery per webhook (once per event, however often the event is read)."""
    await conn.executemany(
        "insert into webhook_deliveries (id, webhook_id, event_id, type, body) values ($1, $2, $3, $4, $5)"
        " on conflict (webhook_id, event_id) do nothing",
        [(new_id("dlv"), webhook_id, event_id, webhook_type, body) for webhook_id in webhook_ids])


# --- senders ------------------------------------------------------------------------------------

async def webhooks_with_pending(pool: asyncpg.Pool) -> list[str]:
    """Every webhook with at least one pending delivery."""
    rows = await pool.fetch("select distinct webhook_id from webhook_deliveries where state = 'pending'")
    return [row["webhook_id"] for row in rows]


async def pending(pool: asyncpg.Pool, webhook_id: str, limit: int = 100) -> list[Delivery]:
    """The webhook's next pending deliveries, oldest first: the order they must arrive in."""
    rows = await pool.fetch("select seq, webhook_id, body, attempt_count, next_attempt_at, type from webhook_deliveries"
                            " where webhook_id = $1 and state = 'pending' order by seq limit $2", webhook_id, limit)
    return [Delivery(*row) for row in rows]


async def subscription(pool: asyncpg.Pool, webhook_id: str) -> Subscription | None:
    """The webhook's subscription, or None when the dispatcher has never seen it."""
    row = await pool.fetchrow("select webhook_id, url, secret_id, previous_secret_id, previous_expires_at, state"
                              " from webhook_subscriptions where webhook_id = $1", webhook_id)
    return Subscription(*row) if row else None


# One statement (one round trip, atomic): the attempt, the delivery's new state, the webhook's state.
_RECORD = """
with attempt as (
    insert into webhook_attempts values ($1, $2, $3, $4, $5, $6) on conflict do nothing
), delivery as (
    update webhook_deliveries set attempt_count = $2, state = $7, next_attempt_at = coalesce($8, next_attempt_at),
           finished_at = case when $7 = 'pending' then null else now() end
     where seq = $1 and state = 'pending'
)
update webhook_subscriptions set state = $9, updated_at = now() where webhook_id = $10 and state = $11
"""

# The same, fenced by the dispatcher's lease in the same statement (still one round trip): every write
# happens only if the lease row still carries our token unexpired, locked `for key share` so that no
# takeover (`for update`) commits meanwhile (shared/lease.py); the statement answers whether it did.
_RECORD_FENCED = """
with fence as (
    select true from leases where name = $12 and token = $13 and expires_at > clock_timestamp() for key share
), attempt as (
    insert into webhook_attempts
    select $1::bigint, $2::integer, $3::timestamptz, $4::double precision, $5::integer, $6::text from fence
    on conflict do nothing
), delivery as (
    update webhook_deliveries set attempt_count = $2, state = $7, next_attempt_at = coalesce($8, next_attempt_at),
           finished_at = case when $7 = 'pending' then null else now() end
     where seq = $1 and state = 'pending' and exists (select from fence)
), subscription as (
    update webhook_subscriptions set state = $9, updated_at = now()
     where webhook_id = $10 and state = $11 and exists (select from fence)
)
select exists (select from fence)
"""


async def record_attempt(pool: asyncpg.Pool, delivery: Delivery, attempted_at: datetime, outcome: AttemptOutcome,
                         retry_at: datetime | None, lease: Lease | None = None) -> Delivery | None:
    """Record one attempt and its consequence, atomically; return the delivery if it is still pending.

    A success delivers it (and a failing webhook is active again); a failure either schedules the
    next attempt at `retry_at` or, when there is none, kills the delivery and marks the webhook failing.
    """
    attempt = delivery.attempt_count + 1
    if outcome.ok:
        state, webhook_from, webhook_to = "delivered", "failing", "active"
    elif retry_at is None:
        state, webhook_from, webhook_to = "dead", "active", "failing"
    else:
        state, webhook_from, webhook_to = "pending", "", ""  # the webhook's state stays as it is
    args = (delivery.seq, attempt, attempted_at, outcome.duration_ms, outcome.status_code, outcome.error, state,
            retry_at, webhook_to, delivery.webhook_id, webhook_from)
    if lease is None:
        await pool.execute(_RECORD, *args)
    elif lease.token is None or not lease.held() or not await pool.fetchval(_RECORD_FENCED, *args, lease.name,
                                                                          lease.token):
        lease.lose()
        raise LeaseLost(lease.name)
    if state != "pending":
        return None
    assert retry_at is not None
    return delivery._replace(attempt_count=attempt, next_attempt_at=retry_at)


async def cancel_pending(pool: asyncpg.Pool, webhook_id: str, lease: Lease | None = None) -> None:
    """Cancel every pending delivery of the webhook."""
    await _write(pool, lease, "update webhook_deliveries set state = 'canceled', finished_at = now()"
                       " where webhook_id = $1 and state = 'pending'", webhook_id)
