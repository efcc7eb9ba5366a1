"""Resource ids: a prefix plus a ULID (DESIGN.md section 2)."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    """A fresh id such as `link_01HZX...`; sortable by creation time."""
    return f"{prefix}_{ULID()}"


def has_prefix(value: object, prefix: str) -> bool:
    """Whether `value` looks like an id of the given kind."""
    return isinstance(value, str) and value.startswith(prefix + "_") and len(value) > len(prefix) + 1
