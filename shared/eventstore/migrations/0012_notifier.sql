-- The notifier's tables (issue 12): the mail outbox and how far it has read SCHED_EVENTS.
-- One row per (domain event, recipient) with the exact message to send; the sender sends pending rows
-- in seq order and records each attempt's outcome on the row.
create table mail_outbox (
    seq             bigint generated always as identity primary key,
    event_id        text not null,
    recipient       text not null,
    kind            text not null,                       -- confirmation | reschedule | cancellation
    message         bytea not null,                      -- the RFC 5322 message, Message-ID fixed
    state           text not null default 'pending',     -- pending | sent | dead
    attempt_count   integer not null default 0,
    last_error      text,
    next_attempt_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    unique (event_id, recipient)
);
create index mail_outbox_pending on mail_outbox (seq) where state = 'pending';

create table mail_intake (
    stream   text primary key,
    sequence bigint not null
);
