-- Single-active roles (the relay, ...): one row per role; whoever holds an unexpired lease is active.
-- `token` grows with every new holder: writes check it in their transaction (fencing).
create table leases (
    name       text primary key,
    holder     text not null,
    token      bigint not null,
    expires_at timestamptz not null
);

-- Which incarnation of SCHED_EVENTS the webhook intake's position counts in (the stream's creation
-- time): a stream deleted and rebuilt by the relay numbers its messages from 1 again.
alter table webhook_intake add column stream_created text;
