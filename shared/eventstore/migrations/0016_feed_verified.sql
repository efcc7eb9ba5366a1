-- The relay's last verified point of the event feed: the stream held the log, in order and once, up to
-- its message `sequence` (the log event (tx_id, position), the `held`-th of the log). A check resumes
-- from there instead of reading the whole stream again; the point is trusted only while the stream's
-- message count and that message still agree with it, so a stale or lost point costs a full scan, never
-- a missed loss.
create table feed_verified (
    stream      text primary key,
    sequence    bigint not null,
    tx_id       xid8 not null,
    position    bigint not null,
    held        bigint not null,
    verified_at timestamptz not null default now()
);
