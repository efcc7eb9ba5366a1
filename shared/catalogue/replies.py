"""Holding replies to their declared type: a result that is not the operation's response Struct is a bug.

The services check every reply when `Settings.check_replies` is on (the test suite turns it on), so
the dicts the resource functions build and the response Structs of the catalogue cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.catalogue.model import Operation


class ReplyMismatch(Exception):
    """A handler answered something its operation does not declare."""


def check_reply(operation: Operation, result: Any) -> None:
    """Raise ReplyMismatch unless `result` converts strictly into the operation's response type."""
    declared = operation.response if isinstance(operation.response, tuple) else (operation.response,)
    faults = []
    for response_type in declared:
        try:
            msgspec.convert(result, response_type, strict=True)
            return
        except msgspec.ValidationError as exc:
            faults.append(f"{getattr(response_type, '__name__', response_type)}: {exc}")
    raise ReplyMismatch(f"{operation.name} answered outside its declared type ({'; '.join(faults)})")
