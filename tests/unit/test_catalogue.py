"""The operation catalogue: every entry has a handler, every handler an entry, and the documents agree."""

from __future__ import annotations

import msgspec
import pytest

from services.commands.handlers import HANDLERS as COMMAND_HANDLERS
from services.query.handlers import HANDLERS as QUERY_HANDLERS
from shared.catalogue import CATALOGUE, FILLED_IN, commands, queries, routes
from shared.catalogue.asyncapi import asyncapi_document
from shared.catalogue.openapi import openapi_document
from shared.catalogue.schemas import takes_body
from shared.messages.events import DomainEvent


def test_every_command_entry_has_a_handler_and_every_handler_an_entry() -> None:
    declared = {op.name for op in commands()}
    assert declared - COMMAND_HANDLERS.keys() == set(), "catalogue commands without a handler"
    assert COMMAND_HANDLERS.keys() - declared == set(), "command handlers without a catalogue entry"


def test_every_query_entry_has_a_handler_and_every_handler_an_entry() -> None:
    declared = {op.name for op in queries()}
    assert declared - QUERY_HANDLERS.keys() == set(), "catalogue queries without a handler"
    assert QUERY_HANDLERS.keys() - declared == set(), "query handlers without a catalogue entry"


def test_routes_are_unique_and_their_path_parameters_are_request_fields() -> None:
    seen: set[tuple[str, str]] = set()
    for op, http in routes():
        key = (http.method, http.path)
        assert key not in seen, f"two operations on {key}"
        seen.add(key)
        fields = {f.encode_name for f in msgspec.structs.fields(op.request)}
        for parameter in http.path_parameters:
            assert http.request_field(parameter) in fields, f"{op.name}: {parameter} fills no request field"
        for field, _ in http.caller_fields:
            assert field in fields


def test_subjects_follow_the_design() -> None:
    assert CATALOGUE["create_event"].subject() == "sched.cmd.create_event"
    assert CATALOGUE["link_slots"].subject("t1") == "t1.query.link_slots"


def test_openapi_has_every_route_with_a_schema_for_each_answer() -> None:
    document = openapi_document()
    assert len([m for p in document["paths"].values() for m in p]) == len(routes())
    for op, http in routes():
        operation = document["paths"][http.path][http.method.lower()]
        responses = operation["responses"]
        assert str(http.status) in responses
        # a file route (text/calendar) answers its media type on success, JSON errors otherwise
        assert all("schema" in answer["content"][http.media_type if status == str(http.status) else "application/json"]
                   for status, answer in responses.items()
                   if status != "204")  # a 204 has no body
        names = {p["name"] for p in operation["parameters"]}
        assert not names & FILLED_IN, f"{op.name} documents a field the gateway fills in"
        if op.kind == "command":
            assert "Idempotency-Key" in names
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            assert not set(body.get("properties", {})) & FILLED_IN


@pytest.mark.parametrize("name", ["create_event", "link_slots", "webhooks_list", "webhook_deliveries"])
def test_openapi_describes_the_parameters_of(name: str) -> None:
    op = CATALOGUE[name]
    http = op.http[0]
    operation = openapi_document()["paths"][http.path][http.method.lower()]
    if takes_body(op, http):
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert {"display_name", "email", "start_at", "end_at", "time_zone"} <= set(schema["required"])
    else:
        assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} >= (
            {"from", "until"} if name == "link_slots" else {"limit", "before", "after"})


def test_asyncapi_lists_every_subject_and_every_event_type() -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    for op in CATALOGUE.values():
        assert op.subject() in addresses
        assert "reply" in document["operations"][op.name]
    for event in DomainEvent.__args__:  # type: ignore[attr-defined]
        tag = event.__struct_config__.tag
        assert f"sched.events.{{aggregate}}.{tag}" in addresses
        payload = document["components"]["messages"][f"event_{tag}"]["payload"]
        assert payload["properties"]["data"]["$ref"].endswith(event.__name__)


def test_every_operation_answers_a_struct() -> None:
    def structs(response: object) -> bool:
        members = response if isinstance(response, tuple) else (response,)
        return all(isinstance(m, type) and issubclass(m, msgspec.Struct)
                   or all(isinstance(a, type) and issubclass(a, msgspec.Struct) for a in getattr(m, "__args__", ()))
                   and getattr(m, "__args__", ()) for m in members)

    assert [op.name for op in CATALOGUE.values() if not structs(op.response)] == []


def test_a_reply_outside_its_declared_type_is_caught() -> None:
    from shared.catalogue.replies import ReplyMismatch, check_reply

    check_reply(CATALOGUE["whoami"], {"account_id": "acct_1", "user_id": "user_1"})
    with pytest.raises(ReplyMismatch, match="whoami"):
        check_reply(CATALOGUE["whoami"], {"account_id": "acct_1", "user_id": "user_1", "extra": 1})
    with pytest.raises(ReplyMismatch):
        check_reply(CATALOGUE["whoami"], {"account_id": "acct_1"})


def test_handler_tables_of_the_query_modules_do_not_overlap() -> None:
    from services.query.handlers import TABLES

    assert sum(len(t) for t in TABLES) == len(QUERY_HANDLERS)
