"""Decoding request bodies: a valid body is exactly msgspec's decode; a bad one names every field at fault.

Given a JSON body and a real command (or query) Struct, when `decode_request` decodes it, then
either the Struct msgspec itself would give, or one ValidationFailed whose `fields` hold every
missing, mistyped and unknown field under its JSON name and nested path.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.decoding import _DECODERS, decode_request, field_problems, first_problem
from shared.errors import ValidationFailed
from shared.messages.commands import (
    CreateEvent,
    CreateLink,
    CreateService,
    SetProviderSchedule,
    SyncExternalBusyTimes,
)
from shared.messages.queries import ServiceSlots

BOOKER = {"display_name": "Sam Doe", "email": "sam@example.com", "start_at": "2026-03-02T10:00:00Z",
          "end_at": "2026-03-02T10:30:00Z", "time_zone": "America/Chicago"}
EVENT_IDS = {"command_id": "cmd_1", "account_id": "acct_1", "user_id": "user_1", "link_id": "link_1"}


class Span(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Struct with a rule across its fields, which only msgspec's own message can describe."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end must be after start")


class Spans(msgspec.Struct, frozen=True, kw_only=True):
    spans: list[Span]
    label: str


def refused(body: Any, type_: type[Any]) -> ValidationFailed:
    """The error decoding `body` (a value to encode, or raw bytes) raises."""
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    with pytest.raises(ValidationFailed) as caught:
        decode_request(raw, type_)
    return caught.value


class TestEveryFieldAtFault:
    def test_an_empty_booking_names_all_five_missing_fields(self) -> None:
        # POST /v1/links/:id/events with {}: the gateway adds the ids, the booker's five fields are missing
        error = refused(EVENT_IDS, CreateEvent)

        assert error.fields == {name: ["is required"] for name in
                                ("display_name", "email", "start_at", "end_at", "time_zone")}
        assert error.message == "display_name: is required"  # the first one, worded as before
        assert error.code == "validation_failed"

    def test_a_bare_object_names_every_required_field_including_the_ids(self) -> None:
        error = refused({}, CreateEvent)

        assert list(error.fields) == ["command_id", "link_id", "display_name", "email", "start_at", "end_at",
                                      "time_zone"]

    def test_two_wrong_types_and_an_unknown_field_are_all_named(self) -> None:
        error = refused({**EVENT_IDS, **BOOKER, "email": 42, "metadata": [1], "colour": "red"}, CreateEvent)

        assert error.fields == {"email": ["Expected `str`, got `int`"],
                                "metadata": ["Expected `object`, got `array`"],
                                "colour": ["is not a known field"]}

    def test_items_of_lists_are_named_by_index(self) -> None:
        error = refused({"command_id": "c", "name": "Intro", "durations": [30, "45", None]}, CreateLink)

        assert error.fields == {"durations[1]": ["Expected `int`, got `str`"],
                                "durations[2]": ["Expected `int`, got `null`"]}

    def test_fields_of_structs_inside_lists_are_named_by_path(self) -> None:
        availability = [{"day_of_week": "monday", "start_time": "09:00", "end_time": "12:00"},
                        {"day_of_week": 3, "rank": "first"}, "tuesday"]
        error = refused({"command_id": "c", "name": "Intro", "availability": availability, "hosts": "prov_1"},
                        CreateLink)

        assert error.fields == {
            "availability[1].day_of_week": ["Expected `str`, got `int`"],
            "availability[1].start_time": ["is required"],
            "availability[1].end_time": ["is required"],
            "availability[1].rank": ["Expected `int`, got `str`"],
            "availability[2]": ["Expected `object`, got `str`"],
            "hosts": ["Expected `array`, got `str`"],
        }

    def test_lists_inside_structs_inside_lists(self) -> None:
        rules = [{"days_of_week": ["monday", 2], "start_time": "09:00", "end_time": "12:00", "interval": "15"}]
        error = refused({"command_id": "c", "name": "Consultation", "duration": "30", "slot_rules": rules},
                        CreateService)

        assert error.fields == {"duration": ["Expected `int`, got `str`"],
                                "slot_rules[0].days_of_week[1]": ["Expected `str`, got `int`"],
                                "slot_rules[0].interval": ["Expected `int | null`, got `str`"]}

    def test_unknown_fields_inside_nested_structs_and_json_names(self) -> None:
        body = {"command_id": "c", "provider_id": "prov_1", "until": "2026-03-09T00:00:00Z",
                "busy_times": [{"start_at": "2026-03-02T10:00:00Z", "finish": "x"}]}
        error = refused(body, SyncExternalBusyTimes)

        # `from` is the JSON name of the Struct's `from_`
        assert error.fields == {"from": ["is required"], "busy_times[0].end_at": ["is required"],
                                "busy_times[0].finish": ["is not a known field"]}

    def test_nested_structs_and_nullable_fields(self) -> None:
        body = {"command_id": "c", "provider_id": "prov_1", "weekly_rules": [{"day_of_week": "monday"}],
                "effective_from": 20260301, "public_bookings": {"enabled": "yes"}}
        error = refused(body, SetProviderSchedule)

        assert error.fields == {"weekly_rules[0].start_time": ["is required"],
                                "weekly_rules[0].end_time": ["is required"],
                                "effective_from": ["Expected `str | null`, got `int`"],
                                "public_bookings.enabled": ["Expected `bool`, got `str`"]}

    def test_query_parameters_too(self) -> None:
        error = refused({"account_id": "acct_1", "service_id": "srv_1", "limit": "5", "page": 2}, ServiceSlots)

        assert error.fields == {"limit": ["Expected `int | null`, got `str`"], "page": ["is not a known field"]}


class TestBodiesThatAreNotObjects:
    @pytest.mark.parametrize("raw", [b"{not json", b"", b'{"command_id": "c",}', b'{"a": 1} trailing'])
    def test_invalid_json_is_a_body_error(self, raw: bytes) -> None:
        error = refused(raw, CreateEvent)

        assert error.fields == {"body": ["is not valid JSON"]}
        assert error.message.startswith("body: is not valid JSON (")

    @pytest.mark.parametrize(("raw", "got"), [(b"[1, 2]", "array"), (b'"hello"', "str"), (b"42", "int"),
                                              (b"null", "null")])
    def test_json_that_is_not_an_object_is_a_body_error(self, raw: bytes, got: str) -> None:
        error = refused(raw, CreateEvent)

        assert error.fields == {"body": [f"Expected `object`, got `{got}`"]}


class TestLikeMsgspec:
    @pytest.mark.parametrize(("body", "type_"), [
        ({**EVENT_IDS, **BOOKER}, CreateEvent),
        ({**EVENT_IDS, **BOOKER, "fields": [{"id": "f1", "value": "x"}], "metadata": {"crm": 1}}, CreateEvent),
        ({"command_id": "c", "name": "Intro", "durations": [15, 30], "private_name": None,
          "availability": [{"day_of_week": "monday", "start_time": "09:00", "end_time": "12:00", "rank": 2}]},
         CreateLink),
        ({"command_id": "c", "provider_id": "p", "from": "2026-03-02T00:00:00Z", "until": "2026-03-09T00:00:00Z",
          "busy_times": [{"start_at": "2026-03-02T10:00:00Z", "end_at": "2026-03-02T11:00:00Z"}]},
         SyncExternalBusyTimes),
        ({"command_id": "c", "provider_id": "p", "effective_until": None}, SetProviderSchedule),
    ])
    def test_a_valid_body_decodes_to_what_msgspec_gives(self, body: dict[str, Any], type_: type[Any]) -> None:
        raw = msgspec.json.encode(body)

        assert decode_request(raw, type_) == msgspec.json.decode(raw, type=type_)
        assert field_problems(body, type_) == {}
        assert type_ in _DECODERS  # the fast path: one typed decoder per type, kept


    @pytest.mark.parametrize(("body", "type_"), [
        ({**EVENT_IDS, **BOOKER, "email": None}, CreateEvent),
        ({k: v for k, v in {**EVENT_IDS, **BOOKER}.items() if k != "time_zone"}, CreateEvent),
        ({**EVENT_IDS, **BOOKER, "colour": "red"}, CreateEvent),
        ({"command_id": "c", "name": "Intro", "durations": [30, "45"]}, CreateLink),
        ({"command_id": "c", "name": "Intro", "availability": [{"start_time": "09:00", "end_time": "12:00"}]},
         CreateLink),
        ({"command_id": "c", "provider_id": "p", "until": "u", "busy_times": []}, SyncExternalBusyTimes),
        ([1], CreateLink),
    ])
    def test_one_problem_reads_exactly_as_the_command_service_always_said_it(
            self, body: Any, type_: type[Any]) -> None:
        raw = msgspec.json.encode(body)
        with pytest.raises(msgspec.ValidationError) as caught:
            msgspec.json.decode(raw, type=type_)
        before = first_problem(caught.value)

        error = refused(raw, type_)

        assert (error.message, error.fields) == (before.message, before.fields)

    def test_a_rule_across_fields_keeps_msgspecs_own_message(self) -> None:
        error = refused({"start": 5, "end": 1}, Span)

        assert error.fields == {"body": ["end must be after start"]}
        assert error.message == "body: end must be after start"

    def test_a_rule_inside_a_list_item_is_named_by_its_path(self) -> None:
        error = refused({"spans": [{"start": 1, "end": 2}, {"start": 5, "end": 1}], "label": 7}, Spans)

        assert error.fields == {"spans[1]": ["end must be after start"], "label": ["Expected `str`, got `int`"]}
