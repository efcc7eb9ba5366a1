"""Every rule of a link's settings: a create breaking one rule is rejected naming that field.

Each story: given Ann's account and provider, when she creates a link that is valid but for one
value, then ValidationFailed names exactly the field at fault (and nothing else).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.availability.model import AvailabilityRule
from shared.domain import links, providers
from shared.domain.core import Decision
from shared.messages.commands import CreateLink
from shared.messages.events import LinkSettings

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN,
    ANN_PROVIDER,
    BOB_PROVIDER,
    LINK_SLUG,
    OTHER_PROVIDER,
    ROOM_PROVIDER,
    acme_with_ann_and_bob,
    ann_provider,
    bob_provider,
    fixed_env,
    other_account_provider,
    provider_created,
    provider_given,
    rejected,
    room_provider,
)


def create_with(host_states: dict[str, providers.ProviderState] | None = None, **fields: Any) -> Decision:
    body = {"command_id": "cmd_l", "account_id": ACCOUNT_ID, "user_id": ANN, "name": "Intro call", **fields}
    return links.create_link(CreateLink(**body), acme_with_ann_and_bob(), ann_provider(), host_states or {},
                             LINK_SLUG, links.SlugState(), fixed_env())


def availability(day: str = "monday", start: str = "09:00", end: str = "12:00", rank: int = 1) -> AvailabilityRule:
    return AvailabilityRule(day_of_week=day, start_time=start, end_time=end, rank=rank)


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # name, private_name, description
    ("name missing", {"name": ""}, "name"),
    ("name blank", {"name": "  \t"}, "name"),
    ("name too long", {"name": "n" * 256}, "name"),
    ("private name too long", {"private_name": "p" * 256}, "private_name"),
    ("description too long", {"description": "d" * 5001}, "description"),
    # enums
    ("type unknown", {"type": "weekly"}, "type"),
    ("type wrong case", {"type": "Recurring"}, "type"),
    ("state unknown", {"state": "paused"}, "state"),
    ("host_mode unknown", {"host_mode": "round_robin"}, "host_mode"),
    # durations and default_duration
    ("durations empty", {"durations": []}, "durations"),
    ("duration zero", {"durations": [0]}, "durations"),
    ("duration negative", {"durations": [30, -15]}, "durations"),
    ("duration over a day", {"durations": [1441]}, "durations"),
    ("durations repeated", {"durations": [30, 60, 30]}, "durations"),
    ("default not among durations", {"durations": [30, 60], "default_duration": 45}, "default_duration"),
    ("default not among default durations", {"default_duration": 45}, "default_duration"),
    # ranges
    ("increment zero", {"increment": 0}, "increment"),
    ("increment over a day", {"increment": 1441}, "increment"),
    ("buffer_before negative", {"buffer_before": -1}, "buffer_before"),
    ("buffer_before over a day", {"buffer_before": 1441}, "buffer_before"),
    ("buffer_after negative", {"buffer_after": -1}, "buffer_after"),
    ("buffer_after over a day", {"buffer_after": 1441}, "buffer_after"),
    ("notice negative", {"minimum_notice": -1}, "minimum_notice"),
    ("notice over a year", {"minimum_notice": 525_601}, "minimum_notice"),
    ("horizon zero", {"maximum_days_ahead": 0}, "maximum_days_ahead"),
    ("horizon over ten years", {"maximum_days_ahead": 3651}, "maximum_days_ahead"),
    # zone
    ("zone unknown", {"time_zone": "Europe/Atlantis"}, "time_zone"),
    ("zone empty", {"time_zone": ""}, "time_zone"),
    ("zone padded", {"time_zone": "Europe/Berlin "}, "time_zone"),
    # availability rules
    ("rule day unknown", {"availability": [availability(day="Monday")]}, "availability[0].day_of_week"),
    ("rule start malformed", {"availability": [availability(start="9:00")]}, "availability[0].start_time"),
    ("rule start past midnight", {"availability": [availability(start="25:00")]}, "availability[0].start_time"),
    ("rule end malformed", {"availability": [availability(end="12:75")]}, "availability[0].end_time"),
    ("rule end before start", {"availability": [availability(start="12:00", end="09:00")]},
     "availability[0].end_time"),
    ("rule empty", {"availability": [availability(start="12:00", end="12:00")]}, "availability[0].end_time"),
    ("rule rank zero", {"availability": [availability(rank=0)]}, "availability[0].rank"),
    ("rule rank over 100", {"availability": [availability(rank=101)]}, "availability[0].rank"),
    ("second rule at fault", {"availability": [availability(), availability(day="caturday")]},
     "availability[1].day_of_week"),
    # hosts
    ("hosts empty", {"hosts": []}, "hosts"),
    ("host unknown", {"hosts": ["prov_ghost"]}, "hosts"),
    ("host repeated", {"hosts": [ANN_PROVIDER, ANN_PROVIDER]}, "hosts"),
    ("host of another account", {"hosts": [ANN_PROVIDER, OTHER_PROVIDER]}, "hosts"),
    ("host never created", {"hosts": [ROOM_PROVIDER]}, "hosts"),
    ("more than 50 hosts", {"hosts": [ANN_PROVIDER] + [f"prov_{n}" for n in range(50)]}, "hosts"),
]


@pytest.mark.parametrize(("fields", "bad_field"), [pytest.param(f, b, id=i) for i, f, b in INVALID])
def test_a_value_breaking_a_rule_is_rejected_naming_its_field(fields: dict[str, Any], bad_field: str) -> None:
    # given the providers a create may name: Bob's, another account's, and a room that was never created
    host_states = {BOB_PROVIDER: bob_provider(), OTHER_PROVIDER: other_account_provider(),
                   ROOM_PROVIDER: providers.ProviderState()}

    with rejected(bad_field):
        create_with(host_states, **fields)


VALID_EDGES: list[tuple[str, dict[str, Any]]] = [
    ("shortest and longest durations", {"durations": [1, 1440]}),
    ("increment bounds", {"increment": 1}),
    ("increment of a day", {"increment": 1440}),
    ("no buffers, full-day buffers", {"buffer_before": 1440, "buffer_after": 1440}),
    ("notice of a year", {"minimum_notice": 525_600}),
    ("horizon of one day", {"maximum_days_ahead": 1}),
    ("horizon of ten years", {"maximum_days_ahead": 3650}),
    ("single type, disabled, all hosts", {"type": "single", "state": "disabled", "host_mode": "all"}),
    ("rule to midnight, ranks 1 and 100", {"availability": [availability(end="24:00"),
                                                            availability(day="sunday", rank=100)]}),
    ("name of 255 characters", {"name": "n" * 255}),
    ("private name and description cleared", {"private_name": None, "description": None}),
    ("another user's provider as a second host", {"hosts": [ANN_PROVIDER, BOB_PROVIDER]}),
]


@pytest.mark.parametrize("fields", [pytest.param(f, id=i) for i, f in VALID_EDGES])
def test_a_value_at_the_edge_of_a_rule_is_accepted(fields: dict[str, Any]) -> None:
    decision = create_with({BOB_PROVIDER: bob_provider()}, **fields)

    assert {name: decision.result[name] for name in fields} == msgspec.to_builtins(fields)


def test_every_broken_rule_is_reported_at_once() -> None:
    with rejected("name", "type", "durations", "increment", "time_zone", "availability[0].rank", "hosts"):
        create_with(name="", type="x", durations=[], increment=0, time_zone="Nowhere",
                    availability=[availability(rank=0)], hosts=[])


def test_fifty_hosts_of_the_account_are_accepted_and_fifty_one_are_not() -> None:
    ids = [f"prov_{n:02d}" for n in range(51)]
    states = {i: provider_given(provider_created(i, user_id=None, display_name=i, email=None)) for i in ids}
    settings = LinkSettings(name="Big", slug="big", hosts=ids[:50])

    links.validate_settings(settings, states, ACCOUNT_ID)  # no error
    with rejected("hosts"):
        links.validate_settings(LinkSettings(name="Big", slug="big", hosts=ids), states, ACCOUNT_ID)


def test_hosts_are_checked_against_the_account_of_the_link() -> None:
    settings = LinkSettings(name="Intro call", slug=LINK_SLUG, hosts=[ROOM_PROVIDER])

    links.validate_settings(settings, {ROOM_PROVIDER: room_provider()}, ACCOUNT_ID)  # no error
    with rejected("hosts"):
        links.validate_settings(settings, {ROOM_PROVIDER: room_provider()}, "acct_someone_else")


def test_an_availability_time_with_a_trailing_newline_is_rejected() -> None:
    # `$` in the HH:MM pattern matches before a final "\n"; the engine's parse_hhmm then raises on it
    with rejected("availability[0].end_time"):
        create_with(availability=[availability(end="12:00\n")])

