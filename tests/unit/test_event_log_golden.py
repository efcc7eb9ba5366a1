"""The golden event log still decodes, keeps its payloads, and folds into the same states and resources."""

from __future__ import annotations

import json
import typing

import msgspec

from shared.messages.events import DomainEvent, decode_event, encode_event, event_type
from tests.fixtures.golden import FOLDED_PATH, fold_log, read_log

EVERY_EVENT_TYPE = frozenset(t.__struct_config__.tag for t in typing.get_args(DomainEvent))


def test_the_log_holds_every_event_type_of_the_union() -> None:
    assert {envelope.type for envelope in read_log()} == EVERY_EVENT_TYPE


def test_every_line_decodes_to_its_type_and_keeps_every_stored_field() -> None:
    for envelope in read_log():
        stored = msgspec.json.decode(envelope.data)
        event = decode_event(bytes(envelope.data))
        assert event_type(event) == envelope.type == stored["type"]
        # A new field may appear (with its default), but no stored field is renamed, dropped or retyped.
        reencoded = msgspec.json.decode(encode_event(event))
        assert {k: reencoded.get(k) for k in stored} == stored, envelope.id


def test_stream_versions_run_one_by_one() -> None:
    versions: dict[str, int] = {}
    for envelope in read_log():
        assert envelope.version == versions.get(envelope.stream_id, 0) + 1, envelope.id
        versions[envelope.stream_id] = envelope.version


def test_every_stream_folds_into_the_expected_state_and_resource() -> None:
    expected = json.loads(FOLDED_PATH.read_text())
    folded = fold_log(read_log())
    assert set(folded["streams"]) == set(expected["streams"])
    for stream_id, want in expected["streams"].items():
        assert folded["streams"][stream_id] == want, stream_id
    assert folded == expected
