"""Every event type has a home: each fold and each read model of its aggregate handles it or ignores it on purpose.

The command-side folds declare what their streams hold in `registry.STREAM_KINDS` (`StreamKind.events`);
each read model declares the aggregates it reads (`Projection.kinds`) and, per event type, whether it
applies it (`event_types`) or leaves it alone (`ignores`). A new event type nobody lists fails here.
"""

from __future__ import annotations

import typing

import pytest

from projections import PROJECTIONS
from projections.runner import Projection
from shared.domain.core import EventTypes, UnfoldedEvent, unchanged
from shared.domain.registry import STREAM_KINDS, StreamKind, stream_kind
from shared.messages.events import DomainEvent, Event, LinkToggled
from tests.fixtures.golden import LOG_V2_PATH, read_log

EVERY_EVENT_CLASS: frozenset[type[Event]] = frozenset(typing.get_args(DomainEvent))
KINDS: dict[str, StreamKind] = {kind.kind: kind for kind in STREAM_KINDS}


def tag(event_class: type[Event]) -> str:
    """The stored type name of an event class."""
    return str(event_class.__struct_config__.tag)


def tags(event_classes: frozenset[type[Event]]) -> set[str]:
    return {tag(c) for c in event_classes}


def test_every_event_type_of_the_union_is_folded_by_some_aggregate() -> None:
    handled = frozenset().union(*(kind.events.handles for kind in STREAM_KINDS))
    homeless = EVERY_EVENT_CLASS - handled
    assert not homeless, f"no aggregate folds: {sorted(tags(homeless))}"
    assert handled <= EVERY_EVENT_CLASS, "a fold lists a class outside the Event union"


@pytest.mark.parametrize("kind", STREAM_KINDS, ids=lambda k: k.kind)
def test_a_fold_neither_handles_and_ignores_one_type_at_once(kind: StreamKind) -> None:
    assert not kind.events.handles & kind.events.ignores


def test_every_event_in_the_golden_log_is_declared_by_the_fold_of_its_stream() -> None:
    undeclared = {(stream_kind(e.stream_id).kind, e.type) for e in read_log() + read_log(LOG_V2_PATH)
                  if e.type not in tags(stream_kind(e.stream_id).events.declared)}
    assert not undeclared, f"(aggregate, event type) pairs its fold does not list: {sorted(undeclared)}"


@pytest.mark.parametrize("projection", PROJECTIONS.values(), ids=lambda p: p.name)
def test_each_read_model_handles_or_ignores_every_event_of_its_aggregates(projection: Projection) -> None:
    assert projection.kinds, f"{projection.name} names no aggregate it is a read model of"
    assert projection.kinds <= set(KINDS), f"unknown aggregates: {sorted(projection.kinds - set(KINDS))}"
    assert not projection.event_types & projection.ignores
    for kind_name in sorted(projection.kinds):
        on_its_streams = tags(KINDS[kind_name].events.declared)
        missing = on_its_streams - projection.event_types - projection.ignores
        assert not missing, f"{projection.name} neither applies nor ignores {kind_name} events {sorted(missing)}"


@pytest.mark.parametrize("projection", PROJECTIONS.values(), ids=lambda p: p.name)
def test_each_read_model_lists_only_events_of_its_aggregates(projection: Projection) -> None:
    of_its_aggregates = set().union(*(tags(KINDS[k].events.declared) for k in projection.kinds))
    stray = (projection.event_types | projection.ignores) - of_its_aggregates
    assert not stray, f"{projection.name} lists event types none of its aggregates hold: {sorted(stray)}"


def test_an_event_a_fold_ignores_or_does_not_own_leaves_the_state_as_it_was() -> None:
    toggled = LinkToggled(link_id="link_x", state="active", updated_at="2026-05-04T09:30:15Z")
    state = object()
    assert unchanged(state, toggled, EventTypes(handles=frozenset(), ignores=frozenset({LinkToggled}))) is state
    assert unchanged(state, toggled, EventTypes(handles=frozenset())) is state


def test_a_handled_event_without_its_case_is_a_bug_not_a_silent_drop() -> None:
    toggled = LinkToggled(link_id="link_x", state="active", updated_at="2026-05-04T09:30:15Z")
    with pytest.raises(UnfoldedEvent):
        unchanged(object(), toggled, EventTypes(handles=frozenset({LinkToggled})))
