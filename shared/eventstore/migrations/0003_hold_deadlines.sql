-- Holds that are still active, by when they expire: what the sweeper reads to append ExpireHold.
create table hold_deadlines (
    booking_intent_id text primary key,
    account_id        text not null,
    expires_at        timestamptz not null
);
create index hold_deadlines_due on hold_deadlines (expires_at);
