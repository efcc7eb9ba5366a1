"""The webhook dispatcher: SCHED_EVENTS -> an outbox in Postgres -> signed HTTP POSTs, in order per webhook."""
