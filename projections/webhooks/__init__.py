"""The webhook dispatcher's delivery log, read for the API (its tables are written by services/webhooks)."""
