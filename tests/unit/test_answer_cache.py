"""The query service's answer cache holds one second's answers at most, keeps derived data across seconds, and
stays within its byte budget whatever the answers' sizes."""

from __future__ import annotations

import msgspec

from services.query.answers import ENTRY_OVERHEAD, KeptAnswers
from services.query.slots import _keep


class FakeReads:
    """Only what `_keep` touches."""

    def __init__(self, budget: int = 1 << 20) -> None:
        self.answers = KeptAnswers(budget)


def test_answers_of_a_past_second_go_when_a_later_second_is_kept() -> None:
    reads = FakeReads()
    _keep(reads, ("link", 1, (3,), 100, 0, 1), msgspec.Raw(b"[1]"), 100)  # type: ignore[arg-type]
    _keep(reads, ("link", 2, (3,), 100, 0, 1), msgspec.Raw(b"[2]"), 100)  # type: ignore[arg-type]
    _keep(reads, ("service providers", (1,)), ([], {}))  # type: ignore[arg-type]
    assert len([k for k in reads.answers.in_order() if k[0] == "link"]) == 2
    _keep(reads, ("link", 1, (3,), 101, 0, 1), msgspec.Raw(b"[3]"), 101)  # type: ignore[arg-type]
    per_second = [k for k in reads.answers.in_order() if k[0] == "link"]
    assert per_second == [("link", 1, (3,), 101, 0, 1)]
    assert reads.answers.get(("service providers", (1,))) == ([], {})
    assert reads.answers.kept_bytes == sum(size for _, size in reads.answers.kept.values())


def test_large_answers_are_bounded_by_bytes_not_by_count() -> None:
    budget = 1 << 20
    reads = FakeReads(budget)
    # A 31-day window of a 1-minute link with several durations: about 200 KiB of JSON per answer here.
    answer = msgspec.Raw(b"[" + b",".join([(b'{"start_at":"2026-10-31T08:00:00Z","end_at":"2026-10-31T09:00:00Z",'
                                            b'"duration":60,"rank":1}')] * 2200) + b"]")
    for n in range(40):
        _keep(reads, ("link", n, (), 7, 0, n), answer, 7)  # type: ignore[arg-type]
        assert reads.answers.kept_bytes <= budget
    kept = reads.answers.in_order()
    assert 0 < len(kept) == budget // (len(answer) + ENTRY_OVERHEAD)  # as many as fit, no more
    assert kept[-1] == ("link", 39, (), 7, 0, 39)  # the newest stay, the oldest went
    assert reads.answers.get(kept[-1]) is answer


def test_an_answer_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    reads = FakeReads(10_000)
    _keep(reads, ("link", 1, (), 7, 0, 1), msgspec.Raw(b"[1]"), 7)  # type: ignore[arg-type]
    _keep(reads, ("link", 2, (), 7, 0, 1), msgspec.Raw(b"[" + b"0," * 10_000 + b"0]"), 7)  # type: ignore[arg-type]
    assert reads.answers.get(("link", 2, (), 7, 0, 1)) is None
    assert reads.answers.get(("link", 1, (), 7, 0, 1)) == msgspec.Raw(b"[1]")
