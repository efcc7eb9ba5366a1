"""The query service's kept answers: link slot answers of the current second and data derived from states.

Memory is bounded by bytes, not by the number of answers: a link slots answer over a 31-day window of a
link with a 1-minute increment and several durations is megabytes of JSON. Each kept value's size is
estimated (`value_size`); the oldest go first until the total is within the budget
(`Settings.query_answers_bytes`, DEFAULT_BUDGET = 32 MiB), and a value larger than the whole budget is
returned but not kept. Worst case: the budget, plus the answer being returned.

Answers computed for one second can never be hit once the clock moved on: they all go the first time an
answer of a later second is kept, so the cache holds at most one second's answers.
"""

from __future__ import annotations

from typing import Any

import msgspec

DEFAULT_BUDGET = 32 * 1024 * 1024  # bytes of kept answers
ENTRY_OVERHEAD = 256  # the key tuple, the dict's slot and the value's header
ITEM_OVERHEAD = 128  # per item of a derived value (a provider, a busy interval)
PER_SECOND = ("link",)  # first elements of the keys of answers valid for one second


def value_size(value: Any) -> int:
    """The estimated bytes a kept value holds: an answer's JSON, or items of derived data."""
    if isinstance(value, msgspec.Raw | bytes):
        return ENTRY_OVERHEAD + len(value)
    if isinstance(value, tuple | list):
        return ENTRY_OVERHEAD + sum(value_size(v) for v in value)
    if isinstance(value, dict):
        return ENTRY_OVERHEAD + sum(value_size(v) for v in value.values())
    return ITEM_OVERHEAD


class KeptAnswers:
    """Answers by key, the oldest first, within a budget of bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.kept: dict[tuple[Any, ...], tuple[Any, int]] = {}  # key -> (value, its size)
        self.kept_bytes = 0
        self.second: int | None = None  # the second of the per-second answers kept

    def get(self, key: tuple[Any, ...] | None) -> Any:
        """The value kept for `key`, or None."""
        found = self.kept.get(key) if key is not None else None
        return None if found is None else found[0]

    def keep(self, key: tuple[Any, ...], value: Any, second: int | None = None) -> None:
        """Keep a value for its key; `second`: an answer valid only for that second."""
        if second is not None and self.second != second:
            for stale in [k for k in self.kept if k and k[0] in PER_SECOND]:
                self.kept_bytes -= self.kept.pop(stale)[1]
            self.second = second
        old = self.kept.pop(key, None)
        if old is not None:
            self.kept_bytes -= old[1]
        size = value_size(value)
        if size > self.budget:
            return  # larger than everything kept may be: returned, not kept
        while self.kept and self.kept_bytes + size > self.budget:
            self.kept_bytes -= self.kept.pop(next(iter(self.kept)))[1]
        self.kept[key] = (value, size)
        self.kept_bytes += size

    def in_order(self) -> list[tuple[Any, ...]]:
        """The keys kept, the oldest first."""
        return list(self.kept)
