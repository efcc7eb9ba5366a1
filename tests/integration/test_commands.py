"""The command service over real NATS and Postgres: replies, idempotency, typed errors."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from shared.eventstore import EventStore, LogCursor
from shared.settings import Settings
from tests.integration.messaging import new_account, send

pytestmark = pytest.mark.integration


async def count_events(store: EventStore) -> int:
    return len(await store.read_all(LogCursor(), limit=100_000))


async def test_create_link_replies_with_the_resource_and_defaults(command_service, nc, settings: Settings,
                                                                   store: EventStore):
    account = await new_account(nc, settings, time_zone="Europe/Berlin")
    reply = await send(nc, settings, "create_link", {
        "account_id": account["account_id"], "user_id": account["user_id"], "name": "Quick Chat!"})
    assert reply["ok"], reply
    link = reply["result"]
    assert link["id"].startswith("link_") and link["slug"] == "quick-chat"
    assert (link["durations"], link["default_duration"], link["increment"]) == ([30], 30, 15)
    assert (link["buffer_before"], link["buffer_after"], link["minimum_notice"], link["maximum_days_ahead"]) == (
        0, 0, 0, 60)
    assert link["time_zone"] == "Europe/Berlin"
    assert link["hosts"] == [account["provider_id"]] and link["host_mode"] == "any"
    assert link["scope"]["id"] == account["personal_scope_id"]
    assert reply["position"] > 0 and len(reply["events"]) == 2  # LinkCreated + slug claim
    second = await send(nc, settings, "create_link", {
        "account_id": account["account_id"], "user_id": account["user_id"], "name": "Quick Chat"})
    assert second["result"]["slug"] != "quick-chat" and second["result"]["slug"].startswith("quick-chat-")


async def test_same_command_id_sent_100_times_has_one_effect_and_one_reply(command_service, nc, settings: Settings,
                                                                          store: EventStore):
    account = await new_account(nc, settings)
    before = await count_events(store)
    body = {"command_id": "cmd-repeat-1", "account_id": account["account_id"], "user_id": account["user_id"],
            "name": "Repeat"}
    sequential = [await send(nc, settings, "create_link", body) for _ in range(50)]
    concurrent = await asyncio.gather(*[send(nc, settings, "create_link", body) for _ in range(50)])
    replies = sequential + list(concurrent)
    assert all(r == replies[0] for r in replies)
    assert replies[0]["ok"]
    assert await count_events(store) == before + 2

    body2 = {**body, "command_id": "cmd-repeat-2", "name": "Race"}
    raced = await asyncio.gather(*[send(nc, settings, "create_link", body2) for _ in range(100)])
    assert len({r["result"]["id"] for r in raced}) == 1
    assert await count_events(store) == before + 4


async def test_command_id_reused_for_another_command_is_refused(command_service, nc, settings: Settings):
    account = await new_account(nc, settings)
    ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
    first = await send(nc, settings, "create_link", {**ids, "command_id": "cmd-x", "name": "A"})
    assert first["ok"]
    other = await send(nc, settings, "create_provider", {**ids, "command_id": "cmd-x", "display_name": "Room"})
    assert other["ok"] is False and other["error"]["code"] == "conflict"


def bad_inputs(account: dict[str, Any], link_id: str) -> list[tuple[str, dict[str, Any], str]]:
    """(command, body, the field the error must name) for every command of this slice."""
    ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
    prov = account["provider_id"]
    return [
        ("create_account", {"name": "", "email": "x@example.com"}, "name"),
        ("create_account", {"name": "A", "email": "not-an-email"}, "email"),
        ("create_account", {"name": "A", "email": "a@example.com", "time_zone": "Mars/Olympus"}, "time_zone"),
        ("create_account", {"email": "a@example.com"}, "name"),
        ("create_user", {**ids, "name": "B", "email": "b@example.com", "time_zone": "Nowhere/Town"}, "time_zone"),
        ("create_user", {**ids, "name": 5, "email": "b@example.com"}, "name"),
        ("issue_api_token", {**ids, "for_user_id": "user_unknown"}, "for_user_id"),
        ("create_team_scope", {**ids, "name": "Team", "slug": "Bad Slug!"}, "slug"),
        ("create_provider", {**ids, "display_name": "", "time_zone": "Etc/UTC"}, "display_name"),
        ("create_provider", {**ids, "display_name": "Room", "time_zone": "Bad/Zone"}, "time_zone"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "time_zone": "Not/AZone"}, "time_zone"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "weekly_rules": [
            {"day_of_week": "monday", "start_time": "9:00", "end_time": "17:00"}]}, "weekly_rules[0].start_time"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "weekly_rules": [
            {"day_of_week": "monday", "start_time": "17:00", "end_time": "09:00"}]}, "weekly_rules[0].end_time"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "weekly_rules": [
            {"day_of_week": "funday", "start_time": "09:00", "end_time": "17:00"}]}, "weekly_rules[0].day_of_week"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "date_overrides": [
            {"date": "2026-02-30", "intervals": []}]}, "date_overrides[0].date"),
        ("set_provider_schedule", {**ids, "provider_id": prov, "effective_from": "2026-05-01",
                                   "effective_until": "2026-04-01"}, "effective_until"),
        ("create_link", {**ids, "name": ""}, "name"),
        ("create_link", {**ids, "name": "L", "durations": []}, "durations"),
        ("create_link", {**ids, "name": "L", "durations": ["thirty"]}, "durations[0]"),
        ("create_link", {**ids, "name": "L", "durations": [30], "default_duration": 45}, "default_duration"),
        ("create_link", {**ids, "name": "L", "increment": 0}, "increment"),
        ("create_link", {**ids, "name": "L", "host_mode": "some"}, "host_mode"),
        ("create_link", {**ids, "name": "L", "type": "weekly"}, "type"),
        ("create_link", {**ids, "name": "L", "time_zone": "Moon/Base"}, "time_zone"),
        ("create_link", {**ids, "name": "L", "hosts": ["prov_nobody"]}, "hosts"),
        ("create_link", {**ids, "name": "L", "availability": [
            {"day_of_week": "monday", "start_time": "10:00", "end_time": "09:00"}]}, "availability[0].end_time"),
        ("create_link", {**ids, "name": "L", "surprise": 1}, "surprise"),
        ("update_link", {**ids, "link_id": link_id, "durations": [0]}, "durations"),
        ("update_link", {**ids, "link_id": link_id, "maximum_days_ahead": -1}, "maximum_days_ahead"),
        ("toggle_link", {**ids}, "link_id"),
        ("duplicate_link", {**ids, "link_id": 12}, "link_id"),
        ("delete_link", {**ids, "link_id": None}, "link_id"),
    ]


async def test_bad_input_to_every_command_gets_a_typed_error_naming_the_field_and_appends_nothing(
    command_service, nc: nats.NATS, settings: Settings, store: EventStore
):
    account = await new_account(nc, settings)
    link = await send(nc, settings, "create_link", {
        "account_id": account["account_id"], "user_id": account["user_id"], "name": "Target"})
    before = await count_events(store)
    cases = bad_inputs(account, link["result"]["id"])
    assert {name for name, _, _ in cases} >= {
        "create_account", "create_user", "issue_api_token", "create_team_scope", "create_provider",
        "set_provider_schedule", "create_link", "update_link", "toggle_link", "duplicate_link", "delete_link"}
    for name, body, field in cases:
        reply = await send(nc, settings, name, body)
        assert reply["ok"] is False, (name, body, reply)
        assert reply["error"]["code"] == "validation_failed", (name, reply)
        assert field in reply["error"]["fields"], (name, field, reply)
    assert await count_events(store) == before


async def test_unknown_and_foreign_ids_are_not_found_and_malformed_json_is_typed(
    command_service, nc: nats.NATS, settings: Settings, store: EventStore
):
    ours = await new_account(nc, settings, name="Ours")
    theirs = await new_account(nc, settings, name="Theirs")
    their_link = await send(nc, settings, "create_link", {
        "account_id": theirs["account_id"], "user_id": theirs["user_id"], "name": "Secret"})
    before = await count_events(store)
    ids = {"account_id": ours["account_id"], "user_id": ours["user_id"]}
    for name, body in [
        ("toggle_link", {**ids, "link_id": their_link["result"]["id"]}),
        ("update_link", {**ids, "link_id": their_link["result"]["id"], "name": "Mine now"}),
        ("delete_link", {**ids, "link_id": "link_01NOTHERE"}),
        ("set_provider_schedule", {**ids, "provider_id": theirs["provider_id"], "time_zone": "Etc/UTC"}),
        ("create_link", {**ids, "name": "Team", "team_slug": "nope"}),
    ]:
        reply = await send(nc, settings, name, body)
        assert reply["ok"] is False and reply["error"]["code"] == "not_found", (name, reply)
        assert "Secret" not in str(reply)
    raw = await nc.request(f"{settings.cmd_subject_prefix}.create_link", b"{not json", timeout=5)
    assert b'"code":"validation_failed"' in raw.data and b'"body"' in raw.data
    unknown = await nc.request(f"{settings.cmd_subject_prefix}.launch_rocket", b"{}", timeout=5)
    assert b'"ok":false' in unknown.data
    assert await count_events(store) == before


async def test_link_lifecycle_update_toggle_duplicate_delete(command_service, nc, settings: Settings):
    account = await new_account(nc, settings, team_slug="acme")
    ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
    created = (await send(nc, settings, "create_link", {**ids, "name": "Team Sync", "team_slug": "acme",
                                                        "durations": [60, 30]}))["result"]
    assert created["scope"]["slug"] == "acme" and created["default_duration"] == 60
    updated = (await send(nc, settings, "update_link", {**ids, "link_id": created["id"], "durations": [15],
                                                        "private_name": "internal"}))["result"]
    assert (updated["durations"], updated["default_duration"], updated["private_name"]) == ([15], 15, "internal")
    assert updated["name"] == "Team Sync" and updated["slug"] == created["slug"]
    toggled = (await send(nc, settings, "toggle_link", {**ids, "link_id": created["id"]}))["result"]
    assert toggled["state"] == "disabled"
    copy = (await send(nc, settings, "duplicate_link", {**ids, "link_id": created["id"]}))["result"]
    assert copy["name"] == "Team Sync (copy)" and copy["id"] != created["id"] and copy["slug"] != created["slug"]
    assert {k: v for k, v in copy.items() if k not in ("id", "name", "slug", "url", "created_at", "updated_at")} == {
        k: v for k, v in toggled.items() if k not in ("id", "name", "slug", "url", "created_at", "updated_at")}
    deleted = await send(nc, settings, "delete_link", {**ids, "link_id": created["id"]})
    assert deleted["ok"] and deleted["result"]["id"] == created["id"]
    again = await send(nc, settings, "delete_link", {**ids, "link_id": created["id"]})
    assert again["error"]["code"] == "not_found"
    reuse = (await send(nc, settings, "create_link", {**ids, "name": "Team Sync"}))["result"]
    assert reuse["slug"] == created["slug"]  # the deleted link's slug is free again
