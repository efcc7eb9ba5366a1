"""Answering one query: decode by the catalogue's type, wait for `min_position`, run its handler.

Answers come from the read models and the pure engine only, never by replaying history. A query's
body is the HTTP endpoint's parameters plus `account_id`; its reply is the HTTP response body, or
`{"ok": false, "error": {...}}`.
"""

from __future__ import annotations

import logging

import msgspec

from services.query.handlers import HANDLERS
from services.query.reads import Reads
from shared.catalogue import CATALOGUE
from shared.catalogue.replies import check_reply
from shared.envelope import decode_request, internal_error_reply
from shared.errors import DomainError, ValidationFailed

log = logging.getLogger("sched.query")
_encoder = msgspec.json.Encoder()


class QueryService:
    """Stateless: any number of instances answer from the same read models."""

    def __init__(self, reads: Reads, check_replies: bool = False) -> None:
        self.reads = reads
        self.check_replies = check_replies

    async def execute(self, name: str, body: bytes) -> bytes:
        """The JSON reply to one query (never raises for anything a client can send)."""
        try:
            operation = CATALOGUE.get(name)
            if operation is None or operation.kind != "query":
                raise ValidationFailed.on("query", f"unknown query {name!r}")
            query = decode_request(body, operation.request)
            min_position = getattr(query, "min_position", None)
            if min_position:
                await self.reads.wait_for(min_position)
            result = await HANDLERS[name](self.reads, query)
            if self.check_replies:  # a reply assembled as JSON already (msgspec.Raw) is checked decoded
                check_reply(operation, msgspec.json.decode(result) if isinstance(result, msgspec.Raw) else result)
            return _encoder.encode(result)
        except DomainError as exc:
            return _encoder.encode(exc.to_reply())
        except Exception:
            log.exception("query %s failed", name)
            return _encoder.encode(internal_error_reply())
