"""The golden event log still decodes, keeps its payloads, and folds into the same states and resources."""

from __future__ import annotations

import json
import typing

import msgspec

from shared.messages.events import DomainEvent, decode_event, encode_event, event_type
from tests.fixtures.golden import (
    FOLDED_PATH,
    FOLDED_V2_PATH,
    LOG_V2_PATH,
    V2_EVENT_TYPES,
    Envelope,
    fold_log,
    fold_v2,
    read_log,
)

EVERY_EVENT_TYPE = frozenset(t.__struct_config__.tag for t in typing.get_args(DomainEvent))


def test_the_log_holds_every_event_type_of_the_union() -> None:
    # v1 holds every type of the union but those added after it, which v2 holds: together, all of them.
    assert {envelope.type for envelope in read_log()} == EVERY_EVENT_TYPE - V2_EVENT_TYPES
    v2_types = {envelope.type for envelope in read_log(LOG_V2_PATH)}
    assert V2_EVENT_TYPES <= v2_types
    assert {envelope.type for envelope in read_log() + read_log(LOG_V2_PATH)} == EVERY_EVENT_TYPE


def test_every_line_decodes_to_its_type_and_keeps_every_stored_field() -> None:
    _decodes_and_keeps_every_stored_field(read_log())


def test_every_v2_line_decodes_to_its_type_and_keeps_every_stored_field() -> None:
    _decodes_and_keeps_every_stored_field(read_log(LOG_V2_PATH))


def _decodes_and_keeps_every_stored_field(envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        stored = msgspec.json.decode(envelope.data)
        event = decode_event(bytes(envelope.data))
        assert event_type(event) == envelope.type == stored["type"]
        # A new field may appear (with its default), but no stored field is renamed, dropped or retyped.
        reencoded = msgspec.json.decode(encode_event(event))
        assert {k: reencoded.get(k) for k in stored} == stored, envelope.id


def test_stream_versions_run_one_by_one() -> None:
    versions: dict[str, int] = {}
    for envelope in read_log() + read_log(LOG_V2_PATH):  # v2 continues v1's streams
        assert envelope.version == versions.get(envelope.stream_id, 0) + 1, envelope.id
        versions[envelope.stream_id] = envelope.version


def test_every_stream_folds_into_the_expected_state_and_resource() -> None:
    expected = json.loads(FOLDED_PATH.read_text())
    folded = fold_log(read_log())
    assert set(folded["streams"]) == set(expected["streams"])
    for stream_id, want in expected["streams"].items():
        assert folded["streams"][stream_id] == want, stream_id
    assert folded == expected


def test_v2_folds_over_v1_into_the_expected_states_and_resources() -> None:
    expected = json.loads(FOLDED_V2_PATH.read_text())
    folded = fold_v2(read_log(LOG_V2_PATH))
    assert set(folded["streams"]) == set(expected["streams"])
    for stream_id, want in expected["streams"].items():
        assert folded["streams"][stream_id] == want, stream_id
    assert folded == expected
    assert len({e.id for e in read_log() + read_log(LOG_V2_PATH)}) == len(read_log()) + len(read_log(LOG_V2_PATH))
