"""Which handler answers which query: the one explicit table, by catalogue name.

Every handler takes the `Reads` (pool, clock, public URL) and the typed query, and returns the
HTTP response body. The catalogue (`shared.catalogue`) gives each query's request type and subject.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.query import auth, calendly, invitee, resources, slots, webhooks

Handler = Callable[[Any, Any], Awaitable[Any]]

# One table per concern; a name in two of them would be a bug (tests/unit/test_catalogue.py).
TABLES: tuple[dict[str, Handler], ...] = (auth.HANDLERS, slots.HANDLERS, resources.HANDLERS, webhooks.HANDLERS,
                                          calendly.HANDLERS, invitee.HANDLERS)
HANDLERS: dict[str, Handler] = {name: handler for table in TABLES for name, handler in table.items()}
