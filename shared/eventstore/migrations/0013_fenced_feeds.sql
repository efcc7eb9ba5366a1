-- Runner membership leases are seats now (`projection-runner#k`), not one row per process.
delete from leases where name like 'projection-runner:%';

-- The notifier notices a recreated SCHED_EVENTS as the webhook intake does (the stream's creation time).
alter table mail_intake add column stream_created text;

-- The webhook intake's high-water mark in the log (commit order): the last event it handled. A message
-- at or below it is a republished copy (skipped); an event of the log between it and the next message
-- is one the stream lost (taken from the log, in its place). Null until the first batch.
alter table webhook_intake add column log_tx_id bigint, add column log_position bigint;
