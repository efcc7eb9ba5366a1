"""The reply envelope every command and query service answers with.

A success is `{"ok": true, "result": …, "events": [ids], "position": N}` for a command and the bare
result for a query; a failure is `{"ok": false, "error": {"code", "message", "fields"}}` for both.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from shared.decoding import decode_request
from shared.errors import internal_error_reply

__all__ = ["ErrorReply", "decode_request", "internal_error_reply", "ok_reply"]


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong: a stable code, a sentence, and the fields at fault with their messages."""

    code: Literal["validation_failed", "invalid", "not_found", "unauthorized", "conflict", "internal",
                  "unavailable"]
    message: str
    fields: dict[str, list[str]]


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True):
    """The reply of a refused command or query (shared/errors.py builds it)."""

    ok: Literal[False]
    error: ErrorBody


def ok_reply(result: Any, event_ids: list[str], position: int) -> dict[str, Any]:
    """A command's success reply."""
    return {"ok": True, "result": result, "events": event_ids, "position": position}
