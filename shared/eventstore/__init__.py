"""Event store on Postgres: see store.py."""

from shared.eventstore.migrate import migrate
from shared.eventstore.store import (
    DuplicateCommand,
    EventStore,
    LogCursor,
    NewEvent,
    RecordedEvent,
    StoredReply,
    StreamAppend,
    create_pool,
    init_connection,
)

__all__ = [
    "DuplicateCommand", "EventStore", "LogCursor", "NewEvent", "RecordedEvent", "StoredReply", "StreamAppend",
    "create_pool", "init_connection", "migrate",
]
