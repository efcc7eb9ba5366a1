-- Webhooks: signing secrets (kept out of the event log), and the dispatcher's own tables: its view of
-- the subscriptions, the delivery outbox, every attempt, and how far it has read SCHED_EVENTS.

-- Written by the command service before it appends WebhookCreated / WebhookSecretRotated (which carry
-- only the secret_id); read by the dispatcher when it signs. A row whose event never committed (a
-- retried or lost command) is never referenced and is harmless.
create table webhook_secrets (
    secret_id  text primary key,
    webhook_id text not null,
    secret     text not null,
    created_at timestamptz not null default now()
);
create index webhook_secrets_by_webhook on webhook_secrets (webhook_id);

-- The dispatcher's view of each webhook, folded from the webhook events in SCHED_EVENTS order, so
-- an event is offered exactly to the webhooks that existed when it happened.
create table webhook_subscriptions (
    webhook_id          text primary key,
    account_id          text not null,
    url                 text not null,
    events              text[] not null,
    secret_id           text not null,
    previous_secret_id  text,
    previous_expires_at timestamptz,
    state               text not null default 'active',  -- active | failing | deleted
    version             integer not null,                -- of the whk- stream, makes replays no-ops
    updated_at          timestamptz not null default now()
);
create index webhook_subscriptions_by_account on webhook_subscriptions (account_id) where state <> 'deleted';

-- The outbox: one row per (webhook, domain event), in the order the events were read (seq). A
-- webhook's sender delivers its pending rows strictly in seq order.
create table webhook_deliveries (
    seq             bigint generated always as identity primary key,
    id              text not null unique,
    webhook_id      text not null,
    event_id        text not null,
    type            text not null,
    body            bytea not null,                      -- the exact JSON sent on every attempt
    state           text not null default 'pending',     -- pending | delivered | dead | canceled
    attempt_count   integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    finished_at     timestamptz,
    unique (webhook_id, event_id)
);
create index webhook_deliveries_pending on webhook_deliveries (webhook_id, seq) where state = 'pending';
create index webhook_deliveries_log on webhook_deliveries (webhook_id, created_at, seq);

create table webhook_attempts (
    delivery_seq bigint not null references webhook_deliveries (seq) on delete cascade,
    attempt      integer not null,
    attempted_at timestamptz not null,
    duration_ms  double precision not null,
    status_code  integer,
    error        text,
    primary key (delivery_seq, attempt)
);

-- The last SCHED_EVENTS sequence whose deliveries are committed, moved in the same transaction as
-- the outbox rows: the JetStream consumer restarts right after it.
create table webhook_intake (
    stream   text primary key,
    sequence bigint not null
);
