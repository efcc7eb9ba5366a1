"""Half-open [start, end) interval arithmetic on sorted lists of integer instants."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

Interval = tuple[int, int]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of intervals; empty ones vanish, touching or overlapping ones join."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(windows: Sequence[Interval], start: int, end: int) -> list[Interval]:
    """The parts of merged windows inside [start, end)."""
    clipped: list[Interval] = []
    for window_start, window_end in windows:
        low, high = max(window_start, start), min(window_end, end)
        if low < high:
            clipped.append((low, high))
    return clipped


def subtract(windows: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """Merged windows minus merged holes, by one sweep over both sorted lists."""
    free: list[Interval] = []
    hole_index, hole_count = 0, len(holes)
    for window_start, window_end in windows:
        # Holes ending before this window cannot touch it or any later window.
        while hole_index < hole_count and holes[hole_index][1] <= window_start:
            hole_index += 1
        cursor, index = window_start, hole_index
        while index < hole_count and holes[index][0] < window_end:
            hole_start, hole_end = holes[index]
            if hole_start > cursor:
                free.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
            index += 1
        if cursor < window_end:
            free.append((cursor, window_end))
    return free


def fitting_starts(
    starts: Sequence[int], windows: Sequence[Interval], length: int, earliest: int, latest: int
) -> list[int]:
    """Sorted starts s with earliest <= s <= latest and [s, s + length) inside one window."""
    found: list[int] = []
    for window_start, window_end in windows:
        low, high = max(window_start, earliest), min(window_end - length, latest)
        if low <= high:
            found.extend(starts[bisect_left(starts, low) : bisect_right(starts, high)])
    return found
