"""Scheduling link stories: create, update (PATCH), toggle, duplicate, delete, and evolve."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.availability.model import AvailabilityRule, ProviderSchedule
from shared.domain import accounts, links, providers
from shared.domain.core import Decision, link_slug_stream, link_stream
from shared.ids import has_prefix
from shared.messages.commands import CreateLink, DeleteLink, DuplicateLink, ToggleLink, UpdateLink
from shared.messages.events import (
    Event,
    LinkCreated,
    LinkDeleted,
    LinkSettings,
    LinkSlugClaimed,
    LinkSlugReleased,
    LinkToggled,
    LinkUpdated,
    ProviderScheduleSet,
    ScopeRef,
)

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN,
    ANN_PROVIDER,
    ANN_SCOPE,
    ANN_SCOPE_REF,
    ANN_SCOPE_SLUG,
    ANN_ZONE,
    BOB,
    BOB_PROVIDER,
    EARLIER_ISO,
    LINK_ID,
    LINK_SLUG,
    NOW_ISO,
    OTHER_ACCOUNT_ID,
    PUBLIC_URL,
    ROOM_PROVIDER,
    TEAM_SCOPE,
    TEAM_SLUG,
    acme_with_ann_and_bob,
    ann_provider,
    bob_provider,
    events_on,
    fixed_env,
    fold,
    intro_settings,
    link_created,
    link_deleted,
    link_given,
    not_found,
    provider_created,
    provider_given,
    rejected,
    room_provider,
    slug_given,
    streams_of,
)


def create(account: accounts.AccountState | None = None, creator: providers.ProviderState | None = None,
           host_states: dict[str, providers.ProviderState] | None = None, slug: str = LINK_SLUG,
           slug_state: links.SlugState | None = None, **fields: Any) -> Decision:
    """When Ann (unless `user_id` says otherwise) creates a link named "Intro call" with `fields`.

    `host_states` are the loaded providers the command's `hosts` name (the creator is always known).
    """
    body = {"command_id": "cmd_l", "account_id": ACCOUNT_ID, "user_id": ANN, "name": "Intro call", **fields}
    return links.create_link(CreateLink(**body), account or acme_with_ann_and_bob(), creator or ann_provider(),
                             host_states or {}, slug, slug_state or links.SlugState(), fixed_env())


def update(link: links.LinkState, host_states: dict[str, providers.ProviderState] | None = None,
           **fields: Any) -> Decision:
    """When Ann patches the intro link with `fields`; `host_states` are the loaded host providers."""
    command = UpdateLink(command_id="cmd_u", account_id=fields.pop("account_id", ACCOUNT_ID), user_id=ANN,
                         link_id=LINK_ID, **fields)
    return links.update_link(command, link, {ANN_PROVIDER: ann_provider()} if host_states is None else host_states,
                             fixed_env())


def toggle(state: links.LinkState, account_id: str = ACCOUNT_ID) -> Decision:
    return links.toggle_link(ToggleLink(command_id="cmd_t", account_id=account_id, user_id=ANN, link_id=LINK_ID),
                             state, fixed_env())


def duplicate(state: links.LinkState, slug: str = "intro-call-copy", slug_state: links.SlugState | None = None,
              account_id: str = ACCOUNT_ID) -> Decision:
    return links.duplicate_link(DuplicateLink(command_id="cmd_d", account_id=account_id, user_id=ANN,
                                              link_id=LINK_ID), state, slug, slug_state or links.SlugState(),
                                fixed_env())


def delete(state: links.LinkState, account_id: str = ACCOUNT_ID) -> Decision:
    return links.delete_link(DeleteLink(command_id="cmd_x", account_id=account_id, user_id=ANN, link_id=LINK_ID),
                             state, fixed_env())


def the_link_event(decision: Decision, link_id: str) -> Event:
    (event,) = events_on(decision, link_stream(link_id))
    return event


# --- create_link ---------------------------------------------------------------------------------

class TestCreateLink:
    def test_a_link_with_only_a_name_gets_every_default_of_the_design(self) -> None:
        # given Ann's account and her provider in Europe/Berlin
        # when she creates a link giving only its name
        decision = create()

        # then the link has DESIGN.md section 6's defaults, in her personal scope
        link_id = decision.result["id"]
        assert has_prefix(link_id, "link")
        assert decision.result == {
            "id": link_id,
            "name": "Intro call",
            "slug": LINK_SLUG,
            "private_name": None,
            "description": None,
            "type": "recurring",
            "state": "active",
            "durations": [30],
            "default_duration": 30,
            "increment": 15,
            "buffer_before": 0,
            "buffer_after": 0,
            "minimum_notice": 0,
            "maximum_days_ahead": 60,
            "time_zone": ANN_ZONE,
            "availability": [],
            "hosts": [ANN_PROVIDER],
            "host_mode": "any",
            "scope": {"id": ANN_SCOPE, "name": "Ann Lee", "slug": ANN_SCOPE_SLUG},
            "created_at": NOW_ISO,
            "updated_at": NOW_ISO,
            "url": f"{PUBLIC_URL}/{ANN_SCOPE_SLUG}/{LINK_SLUG}",
        }

    def test_the_link_is_created_on_its_stream_and_its_slug_claimed_on_the_slug_stream(self) -> None:
        decision = create()

        link_id = decision.result["id"]
        assert streams_of(decision) == [link_stream(link_id), link_slug_stream(ACCOUNT_ID, LINK_SLUG)]
        assert events_on(decision, link_stream(link_id)) == [LinkCreated(
            link_id=link_id, account_id=ACCOUNT_ID, scope=ANN_SCOPE_REF,
            settings=LinkSettings(name="Intro call", slug=LINK_SLUG, time_zone=ANN_ZONE, hosts=[ANN_PROVIDER]),
            created_at=NOW_ISO)]
        assert events_on(decision, link_slug_stream(ACCOUNT_ID, LINK_SLUG)) == [
            LinkSlugClaimed(link_id=link_id, slug=LINK_SLUG)]

    def test_the_time_zone_follows_the_creators_current_schedule_zone(self) -> None:
        creator = provider_given(provider_created(), ProviderScheduleSet(
            provider_id=ANN_PROVIDER, schedule=ProviderSchedule(time_zone="Asia/Tokyo")))

        decision = create(creator=creator)

        assert decision.result["time_zone"] == "Asia/Tokyo"

    def test_the_default_duration_is_the_first_of_the_given_durations(self) -> None:
        decision = create(durations=[45, 15, 90])

        assert decision.result["durations"] == [45, 15, 90]
        assert decision.result["default_duration"] == 45

    def test_a_given_default_duration_is_kept(self) -> None:
        decision = create(durations=[45, 15, 90], default_duration=15)

        assert decision.result["default_duration"] == 15

    def test_every_given_field_is_used(self) -> None:
        given: dict[str, Any] = {
            "name": "Team sync", "private_name": "sync (internal)", "description": "Weekly", "type": "single",
            "state": "disabled", "durations": [25, 50], "default_duration": 50, "increment": 5, "buffer_before": 10,
            "buffer_after": 15, "minimum_notice": 240, "maximum_days_ahead": 14, "time_zone": "America/Chicago",
            "availability": [AvailabilityRule(day_of_week="monday", start_time="09:00", end_time="12:00", rank=1),
                          AvailabilityRule(day_of_week="friday", start_time="13:00", end_time="24:00", rank=2)],
            "hosts": [BOB_PROVIDER, ROOM_PROVIDER], "host_mode": "all",
        }

        decision = create(host_states={BOB_PROVIDER: bob_provider(), ROOM_PROVIDER: room_provider()}, **given)

        assert {k: decision.result[k] for k in given} == msgspec.to_builtins(given)
        assert decision.result["slug"] == LINK_SLUG

    def test_hosts_may_be_any_providers_of_the_account_and_the_zone_stays_the_creators(self) -> None:
        decision = create(host_states={BOB_PROVIDER: bob_provider(), ROOM_PROVIDER: room_provider()},
                          hosts=[BOB_PROVIDER, ROOM_PROVIDER])

        assert decision.result["hosts"] == [BOB_PROVIDER, ROOM_PROVIDER]
        assert decision.result["time_zone"] == ANN_ZONE

    def test_team_slug_puts_the_link_in_that_team_scope_for_a_member(self) -> None:
        decision = create(team_slug=TEAM_SLUG)

        assert decision.result["scope"] == {"id": TEAM_SCOPE, "name": "Sales", "slug": TEAM_SLUG}
        assert decision.result["url"] == f"{PUBLIC_URL}/{TEAM_SLUG}/{LINK_SLUG}"
        (created,) = events_on(decision, link_stream(decision.result["id"]))
        assert isinstance(created, LinkCreated)
        assert created.scope == ScopeRef(id=TEAM_SCOPE, name="Sales", slug=TEAM_SLUG)

    def test_a_team_the_user_is_not_a_member_of_is_not_found(self) -> None:
        # Bob is a user of the account but not a member of "sales"
        with not_found():
            create(user_id=BOB, creator=bob_provider(), team_slug=TEAM_SLUG)

    @pytest.mark.parametrize("team_slug", ["marketing", ANN_SCOPE_SLUG])
    def test_an_unknown_team_slug_or_a_personal_scope_slug_is_not_found(self, team_slug: str) -> None:
        with not_found():
            create(team_slug=team_slug)

    def test_a_slug_already_held_by_another_link_is_rejected(self) -> None:
        held = slug_given(LinkSlugClaimed(link_id="link_older", slug=LINK_SLUG))

        with rejected("name"):
            create(slug_state=held)

    def test_a_released_slug_can_be_claimed_again(self) -> None:
        released = slug_given(LinkSlugClaimed(link_id="link_older", slug=LINK_SLUG),
                              LinkSlugReleased(link_id="link_older", slug=LINK_SLUG))

        decision = create(slug_state=released)

        assert events_on(decision, link_slug_stream(ACCOUNT_ID, LINK_SLUG)) == [
            LinkSlugClaimed(link_id=decision.result["id"], slug=LINK_SLUG)]

    @pytest.mark.parametrize("account_id", [ACCOUNT_ID, None])
    def test_a_missing_account_is_not_found(self, account_id: str | None) -> None:
        with not_found():
            create(account=accounts.AccountState(), account_id=account_id)

    def test_an_acting_user_outside_the_account_is_rejected(self) -> None:
        with rejected("user_id"):
            create(user_id="user_ghost")


# --- update_link ---------------------------------------------------------------------------------

UPDATES: dict[str, Any] = {
    "name": "Deep dive",
    "private_name": None,
    "description": "Bring questions",
    "type": "single",
    "state": "disabled",
    "durations": [40, 20],
    "default_duration": 20,
    "increment": 30,
    "buffer_before": 0,
    "buffer_after": 25,
    "minimum_notice": 0,
    "maximum_days_ahead": 365,
    "time_zone": "Australia/Sydney",
    "availability": [AvailabilityRule(day_of_week="wednesday", start_time="10:00", end_time="16:00", rank=3)],
    "hosts": [ANN_PROVIDER, BOB_PROVIDER],
    "host_mode": "all",
}


class TestUpdateLink:
    @pytest.mark.parametrize("field", list(UPDATES))
    def test_a_patch_changes_only_the_given_field(self, field: str) -> None:
        # given the intro link (every setting away from its default)
        link = link_given(link_created())
        before = link.settings
        assert before is not None and getattr(before, field) != UPDATES[field]

        # when one field is given
        decision = update(link, host_states={ANN_PROVIDER: ann_provider(), BOB_PROVIDER: bob_provider()},
                          **{field: UPDATES[field]})

        # then only that field changes, and the slug stays
        event = the_link_event(decision, LINK_ID)
        expected = msgspec.structs.replace(before, **{field: UPDATES[field]})
        assert event == LinkUpdated(link_id=LINK_ID, settings=expected, updated_at=NOW_ISO)
        assert decision.result["slug"] == LINK_SLUG

    def test_the_result_keeps_created_at_and_moves_updated_at(self) -> None:
        decision = update(link_given(link_created()), name="Deep dive")

        assert decision.result["created_at"] == EARLIER_ISO
        assert decision.result["updated_at"] == NOW_ISO
        assert decision.result["name"] == "Deep dive"
        assert decision.result["url"] == f"{PUBLIC_URL}/{ANN_SCOPE_SLUG}/{LINK_SLUG}"
        assert streams_of(decision) == [link_stream(LINK_ID)]

    def test_the_default_duration_follows_durations_that_no_longer_hold_it(self) -> None:
        link = link_given(link_created())  # durations [20, 40], default 40

        decision = update(link, durations=[45, 90])

        assert decision.result["durations"] == [45, 90]
        assert decision.result["default_duration"] == 45

    def test_the_default_duration_stays_when_the_new_durations_still_hold_it(self) -> None:
        link = link_given(link_created())  # durations [20, 40], default 40

        decision = update(link, durations=[60, 40])

        assert decision.result["default_duration"] == 40

    def test_a_default_duration_outside_the_durations_is_rejected(self) -> None:
        with rejected("default_duration"):
            update(link_given(link_created()), default_duration=30)

    def test_durations_and_default_duration_given_together(self) -> None:
        decision = update(link_given(link_created()), durations=[15, 30], default_duration=30)

        assert (decision.result["durations"], decision.result["default_duration"]) == ([15, 30], 30)

    def test_an_empty_patch_changes_no_setting(self) -> None:
        link = link_given(link_created())

        decision = update(link)

        assert the_link_event(decision, LINK_ID) == LinkUpdated(link_id=LINK_ID, settings=intro_settings(),
                                                                updated_at=NOW_ISO)

    @pytest.mark.parametrize(("fields", "bad_field"), [
        ({"name": ""}, "name"),
        ({"increment": 0}, "increment"),
        ({"durations": []}, "durations"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"hosts": [ANN_PROVIDER, "prov_ghost"]}, "hosts"),
        ({"state": "paused"}, "state"),
    ])
    def test_the_patched_settings_are_validated(self, fields: dict[str, Any], bad_field: str) -> None:
        with rejected(bad_field):
            update(link_given(link_created()), **fields)

    def test_a_deleted_link_is_not_found(self) -> None:
        with not_found():
            update(link_given(link_created(), link_deleted()), name="Deep dive")

    def test_another_accounts_link_is_not_found(self) -> None:
        with not_found():
            update(link_given(link_created()), account_id=OTHER_ACCOUNT_ID, name="Deep dive")

    def test_a_missing_link_is_not_found(self) -> None:
        with not_found():
            update(links.LinkState(), name="Deep dive")


# --- toggle_link ---------------------------------------------------------------------------------

class TestToggleLink:
    def test_an_active_link_becomes_disabled(self) -> None:
        decision = toggle(link_given(link_created()))

        assert streams_of(decision) == [link_stream(LINK_ID)]
        assert the_link_event(decision, LINK_ID) == LinkToggled(link_id=LINK_ID, state="disabled", updated_at=NOW_ISO)
        assert decision.result["state"] == "disabled"
        assert decision.result["updated_at"] == NOW_ISO

    def test_a_disabled_link_becomes_active(self) -> None:
        link = link_given(link_created(settings=intro_settings(state="disabled")))

        decision = toggle(link)

        assert the_link_event(decision, LINK_ID) == LinkToggled(link_id=LINK_ID, state="active", updated_at=NOW_ISO)
        assert decision.result["state"] == "active"

    def test_toggling_twice_gives_back_the_first_state(self) -> None:
        link = link_given(link_created())
        first = toggle(link)
        link = fold(links.evolve, link, events_on(first, link_stream(LINK_ID)))

        second = toggle(link)

        assert second.result["state"] == "active"
        assert {k: v for k, v in second.result.items() if k != "updated_at"} == \
            {k: v for k, v in links.link_resource(link_given(link_created()), PUBLIC_URL).items() if k != "updated_at"}

    def test_a_deleted_link_is_not_found(self) -> None:
        with not_found():
            toggle(link_given(link_created(), link_deleted()))

    def test_another_accounts_link_is_not_found(self) -> None:
        with not_found():
            toggle(link_given(link_created()), account_id=OTHER_ACCOUNT_ID)


# --- duplicate_link ------------------------------------------------------------------------------

class TestDuplicateLink:
    def test_the_copy_has_every_setting_a_copy_name_and_the_new_slug(self) -> None:
        # given a link with every setting away from its default, in a team scope
        rules = [AvailabilityRule(day_of_week="tuesday", start_time="09:00", end_time="11:00", rank=2)]
        original = intro_settings(state="disabled", type="single", availability=rules,
                                  hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all")
        team = ScopeRef(id=TEAM_SCOPE, name="Sales", slug=TEAM_SLUG)
        link = link_given(link_created(settings=original, scope=team))

        # when
        decision = duplicate(link, slug="intro-call-copy")

        # then
        copy_id = decision.result["id"]
        assert has_prefix(copy_id, "link") and copy_id != LINK_ID
        assert streams_of(decision) == [link_stream(copy_id), link_slug_stream(ACCOUNT_ID, "intro-call-copy")]
        assert events_on(decision, link_stream(copy_id)) == [LinkCreated(
            link_id=copy_id, account_id=ACCOUNT_ID, scope=team,
            settings=msgspec.structs.replace(original, name="Intro call (copy)", slug="intro-call-copy"),
            created_at=NOW_ISO)]
        assert events_on(decision, link_slug_stream(ACCOUNT_ID, "intro-call-copy")) == [
            LinkSlugClaimed(link_id=copy_id, slug="intro-call-copy")]
        assert decision.result["name"] == "Intro call (copy)"
        assert decision.result["url"] == f"{PUBLIC_URL}/{TEAM_SLUG}/intro-call-copy"
        assert decision.result["created_at"] == NOW_ISO

    def test_the_original_link_is_left_alone(self) -> None:
        decision = duplicate(link_given(link_created()))

        assert link_stream(LINK_ID) not in streams_of(decision)
        assert link_slug_stream(ACCOUNT_ID, LINK_SLUG) not in streams_of(decision)

    def test_a_new_slug_already_held_is_rejected(self) -> None:
        held = slug_given(LinkSlugClaimed(link_id="link_other", slug="intro-call-copy"))

        with rejected("name"):
            duplicate(link_given(link_created()), slug_state=held)

    def test_a_deleted_link_is_not_found(self) -> None:
        with not_found():
            duplicate(link_given(link_created(), link_deleted()))

    def test_another_accounts_link_is_not_found(self) -> None:
        with not_found():
            duplicate(link_given(link_created()), account_id=OTHER_ACCOUNT_ID)


# --- delete_link ---------------------------------------------------------------------------------

class TestDeleteLink:
    def test_deletes_the_link_releases_its_slug_and_returns_the_resource(self) -> None:
        link = link_given(link_created())

        decision = delete(link)

        assert streams_of(decision) == [link_stream(LINK_ID), link_slug_stream(ACCOUNT_ID, LINK_SLUG)]
        assert events_on(decision, link_stream(LINK_ID)) == [LinkDeleted(link_id=LINK_ID, deleted_at=NOW_ISO)]
        assert events_on(decision, link_slug_stream(ACCOUNT_ID, LINK_SLUG)) == [
            LinkSlugReleased(link_id=LINK_ID, slug=LINK_SLUG)]
        assert decision.result == links.link_resource(link, PUBLIC_URL)
        assert decision.result["id"] == LINK_ID and decision.result["name"] == "Intro call"

    def test_after_the_events_the_link_is_gone_and_its_slug_free(self) -> None:
        link = link_given(link_created())
        slug = slug_given(LinkSlugClaimed(link_id=LINK_ID, slug=LINK_SLUG))

        decision = delete(link)

        assert not fold(links.evolve, link, events_on(decision, link_stream(LINK_ID))).exists
        assert fold(links.evolve_slug, slug,
                    events_on(decision, link_slug_stream(ACCOUNT_ID, LINK_SLUG))).link_id is None

    def test_a_deleted_link_is_not_found(self) -> None:
        with not_found():
            delete(link_given(link_created(), link_deleted()))

    def test_another_accounts_link_is_not_found(self) -> None:
        with not_found():
            delete(link_given(link_created()), account_id=OTHER_ACCOUNT_ID)

    def test_a_missing_link_is_not_found(self) -> None:
        with not_found():
            delete(links.LinkState())


# --- evolve agrees with the results --------------------------------------------------------------

class TestEvolveMatchesTheResult:
    def test_create(self) -> None:
        decision = create(durations=[15, 45], availability=[
            AvailabilityRule(day_of_week="monday", start_time="08:00", end_time="10:00")])

        state = fold(links.evolve, links.LinkState(), events_on(decision, link_stream(decision.result["id"])))

        assert state.exists and state.account_id == ACCOUNT_ID
        assert links.link_resource(state, PUBLIC_URL) == decision.result

    def test_update(self) -> None:
        link = link_given(link_created())

        decision = update(link, name="Deep dive", durations=[90], increment=45)

        state = fold(links.evolve, link, events_on(decision, link_stream(LINK_ID)))
        assert links.link_resource(state, PUBLIC_URL) == decision.result
        assert state.created_at == EARLIER_ISO and state.updated_at == NOW_ISO

    @pytest.mark.parametrize("start", ["active", "disabled"])
    def test_toggle(self, start: str) -> None:
        link = link_given(link_created(settings=intro_settings(state=start)))

        decision = toggle(link)

        state = fold(links.evolve, link, events_on(decision, link_stream(LINK_ID)))
        assert links.link_resource(state, PUBLIC_URL) == decision.result
        assert state.settings is not None and state.settings.state != start

    def test_duplicate(self) -> None:
        decision = duplicate(link_given(link_created()))

        state = fold(links.evolve, links.LinkState(), events_on(decision, link_stream(decision.result["id"])))
        assert links.link_resource(state, PUBLIC_URL) == decision.result

    def test_a_created_link_survives_the_event_round_trip(self) -> None:
        from shared.messages.events import decode_event, encode_event

        decision = create(durations=[15, 45])
        events = events_on(decision, link_stream(decision.result["id"]))

        state = fold(links.evolve, links.LinkState(), [decode_event(encode_event(e)) for e in events])
        assert links.link_resource(state, PUBLIC_URL) == decision.result

    def test_slug_claims_and_releases(self) -> None:
        assert slug_given().link_id is None
        assert slug_given(LinkSlugClaimed(link_id=LINK_ID, slug=LINK_SLUG)).link_id == LINK_ID
        assert slug_given(LinkSlugClaimed(link_id=LINK_ID, slug=LINK_SLUG),
                          LinkSlugReleased(link_id=LINK_ID, slug=LINK_SLUG)).link_id is None
