"""The query service's answer cache holds one second's answers at most, and keeps derived data across seconds."""

from __future__ import annotations

from typing import Any

from services.query.slots import MAX_ANSWERS, _keep


class FakeReads:
    """Only what `_keep` touches."""

    def __init__(self) -> None:
        self.answers: dict[tuple[Any, ...], Any] = {}


def test_answers_of_a_past_second_go_when_a_later_second_is_kept() -> None:
    reads = FakeReads()
    _keep(reads, ("link", 1, (3,), 100, 0, 1), ["a"], 100)  # type: ignore[arg-type]
    _keep(reads, ("link", 2, (3,), 100, 0, 1), ["c"], 100)  # type: ignore[arg-type]
    _keep(reads, ("service providers", (1,)), ([], {}))  # type: ignore[arg-type]
    assert len([k for k in reads.answers if k[0] == "link"]) == 2
    _keep(reads, ("link", 1, (3,), 101, 0, 1), ["b"], 101)  # type: ignore[arg-type]
    per_second = [k for k in reads.answers if k[0] == "link"]
    assert per_second == [("link", 1, (3,), 101, 0, 1)]
    assert ("service providers", (1,)) in reads.answers


def test_the_cache_never_holds_more_than_its_bound() -> None:
    reads = FakeReads()
    for n in range(MAX_ANSWERS + 50):
        _keep(reads, ("link", n, (), 7, 0, 1), [n], 7)  # type: ignore[arg-type]
    assert len(reads.answers) <= MAX_ANSWERS
