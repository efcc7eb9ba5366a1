"""The reply envelope every command and query service answers with, and its decoding of requests.

A success is `{"ok": true, "result": …, "events": [ids], "position": N}` for a command and the bare
result for a query; a failure is `{"ok": false, "error": {"code", "message", "fields"}}` for both.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, TypeVar

import msgspec

from shared.errors import ValidationFailed, internal_error_reply

__all__ = ["decode_request", "internal_error_reply", "ok_reply"]

T = TypeVar("T")
_PATH = re.compile(r"at `\$\.?([^`]*)`")


def ok_reply(result: Any, event_ids: list[str], position: int) -> dict[str, Any]:
    """A command's success reply."""
    return {"ok": True, "result": result, "events": event_ids, "position": position}


@lru_cache(maxsize=256)
def _decoder(type_: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def decode_request(body: bytes, type_: type[T]) -> T:
    """The typed request in `body`, or a ValidationFailed naming the fields at fault."""
    try:
        return _decoder(type_).decode(body)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None


def decode_error(exc: msgspec.DecodeError) -> ValidationFailed:
    """A msgspec decode failure as a field error: `Expected int, got str - at $.durations[0]` -> durations[0]."""
    text = str(exc)
    match = _PATH.search(text)
    message = _PATH.sub("", text).rstrip(" -")
    if isinstance(exc, msgspec.ValidationError):
        if text.startswith("Object missing required field"):
            field = text.split("`")[1]
            prefix = match.group(1) + "." if match and match.group(1) else ""
            return ValidationFailed(f"{prefix}{field}: is required", {f"{prefix}{field}": ["is required"]})
        if text.startswith("Object contains unknown field"):
            field = text.split("`")[1]
            return ValidationFailed(f"{field}: is not a known field", {field: ["is not a known field"]})
        field = match.group(1) if match and match.group(1) else "body"
        return ValidationFailed(f"{field}: {message}", {field: [message]})
    return ValidationFailed(f"body: is not valid JSON ({message})", {"body": ["is not valid JSON"]})
