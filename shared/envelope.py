"""The reply envelope every command and query service answers with.

A success is `{"ok": true, "result": …, "events": [ids], "position": N}` for a command and the bare
result for a query; a failure is `{"ok": false, "error": {"code", "message", "fields"}}` for both.
"""

from __future__ import annotations

from typing import Any

from shared.decoding import decode_request
from shared.errors import internal_error_reply

__all__ = ["decode_request", "internal_error_reply", "ok_reply"]


def ok_reply(result: Any, event_ids: list[str], position: int) -> dict[str, Any]:
    """A command's success reply."""
    return {"ok": True, "result": result, "events": event_ids, "position": position}
