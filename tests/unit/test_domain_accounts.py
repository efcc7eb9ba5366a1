"""Account directory stories: accounts, users, API tokens and team scopes."""

from __future__ import annotations

import hashlib

import pytest

from shared.domain import accounts
from shared.domain.core import account_stream, provider_stream, scope_slug_stream
from shared.errors import ValidationFailed
from shared.ids import has_prefix
from shared.messages.commands import CreateAccount, CreateTeamScope, CreateUser, IssueApiToken
from shared.messages.events import (
    AccountCreated,
    ApiTokenIssued,
    LinkSlugClaimed,
    ProviderCreated,
    TeamScopeCreated,
    UserCreated,
    encode_event,
)

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN,
    ANN_SCOPE_SLUG,
    BOB,
    NOW_ISO,
    TEAM_SLUG,
    account_given,
    acme_with_ann,
    acme_with_ann_and_bob,
    all_events,
    events_on,
    fixed_env,
    fold,
    not_found,
    rejected,
    streams_of,
)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_account(**fields: object) -> CreateAccount:
    body = {"command_id": "cmd_1", "name": "Ann Lee", "email": "ann@example.com", "time_zone": "Europe/Berlin"}
    return CreateAccount(**{**body, **fields})  # type: ignore[arg-type]


# --- create_account ------------------------------------------------------------------------------

class TestCreateAccount:
    def test_appends_account_user_and_token_on_the_account_stream_and_the_provider_on_its_own(self) -> None:
        # when
        decision = accounts.create_account(new_account(), fixed_env())

        # then
        result = decision.result
        assert streams_of(decision) == [account_stream(result["account_id"]), provider_stream(result["provider_id"]),
                                        scope_slug_stream("ann-lee")]
        assert events_on(decision, scope_slug_stream("ann-lee")) == [
            LinkSlugClaimed(link_id=result["personal_scope_id"], slug="ann-lee")]
        account_events = events_on(decision, account_stream(result["account_id"]))
        assert [type(e) for e in account_events] == [AccountCreated, UserCreated, ApiTokenIssued]
        created, user, token = account_events
        assert isinstance(created, AccountCreated) and isinstance(user, UserCreated)
        assert isinstance(token, ApiTokenIssued)
        assert created == AccountCreated(account_id=result["account_id"], name="Ann Lee", created_at=NOW_ISO)
        assert user == UserCreated(user_id=result["user_id"], name="Ann Lee", email="ann@example.com",
                                   provider_id=result["provider_id"], personal_scope_id=result["personal_scope_id"],
                                   personal_scope_slug="ann-lee", created_at=NOW_ISO)
        assert token.user_id == result["user_id"] and token.created_at == NOW_ISO
        assert has_prefix(token.token_id, "tok")
        assert events_on(decision, provider_stream(result["provider_id"])) == [
            ProviderCreated(provider_id=result["provider_id"], account_id=result["account_id"],
                            display_name="Ann Lee", email="ann@example.com", time_zone="Europe/Berlin",
                            user_id=result["user_id"], created_at=NOW_ISO)
        ]

    def test_result_names_the_new_ids_and_carries_the_token_once(self) -> None:
        decision = accounts.create_account(new_account(), fixed_env())

        result = decision.result
        assert set(result) == {"account_id", "user_id", "provider_id", "personal_scope_id", "token"}
        assert has_prefix(result["account_id"], "acct")
        assert has_prefix(result["user_id"], "user")
        assert has_prefix(result["provider_id"], "prov")
        assert has_prefix(result["personal_scope_id"], "scope")
        assert result["token"] == "sched_test_secret_1"
        # the idempotency record keeps everything but the token
        assert decision.stored_result == {**result, "token": None}

    def test_the_token_is_stored_only_as_its_sha256_hash(self) -> None:
        decision = accounts.create_account(new_account(), fixed_env())

        token = decision.result["token"]
        issued = [e for e in all_events(decision) if isinstance(e, ApiTokenIssued)]
        assert [e.token_hash for e in issued] == [sha256_hex(token)]
        assert accounts.hash_token(token) == sha256_hex(token)
        for event in all_events(decision):
            assert token.encode() not in encode_event(event)

    def test_folding_the_events_gives_a_directory_with_the_user_their_scope_and_token(self) -> None:
        decision = accounts.create_account(new_account(), fixed_env())
        result = decision.result

        events = events_on(decision, account_stream(result["account_id"]))
        state = fold(accounts.evolve, accounts.AccountState(), events)

        assert state.exists and state.account_id == result["account_id"] and state.name == "Ann Lee"
        assert state.users[result["user_id"]] == accounts.UserInfo(
            result["user_id"], "Ann Lee", "ann@example.com", result["provider_id"], result["personal_scope_id"])
        assert state.scopes == {result["personal_scope_id"]: accounts.ScopeInfo(
            result["personal_scope_id"], "Ann Lee", "ann-lee", "personal", (result["user_id"],))}
        assert state.token_users == {sha256_hex(result["token"]): result["user_id"]}

    def test_team_slug_creates_a_team_scope_with_the_user_as_its_member(self) -> None:
        decision = accounts.create_account(new_account(team_slug="sales", team_name="Sales team"), fixed_env())

        result = decision.result
        team_events = [e for e in events_on(decision, account_stream(result["account_id"]))
                       if isinstance(e, TeamScopeCreated)]
        assert team_events == [TeamScopeCreated(scope_id=result["team_scope_id"], name="Sales team", slug="sales",
                                                member_user_ids=[result["user_id"]], created_at=NOW_ISO)]
        assert has_prefix(result["team_scope_id"], "scope")
        assert result["team_scope_id"] != result["personal_scope_id"]
        assert decision.stored_result == {**result, "token": None}

    def test_a_team_without_a_name_is_named_after_its_slug(self) -> None:
        decision = accounts.create_account(new_account(team_slug="sales"), fixed_env())

        team = [e for e in all_events(decision) if isinstance(e, TeamScopeCreated)]
        assert [(t.name, t.slug) for t in team] == [("sales", "sales")]

    def test_without_team_slug_there_is_no_team_scope(self) -> None:
        decision = accounts.create_account(new_account(), fixed_env())

        assert not any(isinstance(e, TeamScopeCreated) for e in all_events(decision))
        assert "team_scope_id" not in decision.result

    @pytest.mark.parametrize(("fields", "bad_field"), [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"email": ""}, "email"),
        ({"email": "ann.example.com"}, "email"),
        ({"email": "ann@example"}, "email"),
        ({"email": "ann lee@example.com"}, "email"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"time_zone": " Europe/Berlin"}, "time_zone"),
        ({"team_slug": "Sales"}, "team_slug"),
        ({"team_slug": "sales team"}, "team_slug"),
        ({"team_slug": "sales--team"}, "team_slug"),
        ({"team_slug": "-sales"}, "team_slug"),
        ({"team_slug": ""}, "team_slug"),
        ({"team_slug": "s" * 65}, "team_slug"),
    ])
    def test_a_bad_field_is_rejected_by_name(self, fields: dict[str, object], bad_field: str) -> None:
        with rejected(bad_field):
            accounts.create_account(new_account(**fields), fixed_env())

    def test_every_bad_field_is_reported_at_once(self) -> None:
        with rejected("name", "email", "time_zone", "team_slug"):
            accounts.create_account(new_account(name="", email="nope", time_zone="Nowhere/Town",
                                                team_slug="Not A Slug"), fixed_env())

    def test_an_email_with_a_trailing_newline_is_rejected(self) -> None:
        # `$` in the email pattern also matches before a final "\n"
        with rejected("email"):
            accounts.create_account(new_account(email="ann@example.com\n"), fixed_env())

    def test_a_team_slug_with_a_trailing_newline_is_rejected(self) -> None:
        # `$` in the slug pattern also matches before a final "\n"
        with rejected("team_slug"):
            accounts.create_account(new_account(team_slug="sales\n"), fixed_env())


# --- create_user ---------------------------------------------------------------------------------

class TestCreateUser:
    def test_adds_a_user_to_the_account_and_creates_their_provider(self) -> None:
        # given
        account = acme_with_ann()

        # when
        decision = accounts.create_user(
            CreateUser(command_id="cmd_2", account_id=ACCOUNT_ID, user_id=ANN, name="Bob Stone",
                       email="bob@example.com", time_zone="America/New_York"),
            account, fixed_env())

        # then
        result = decision.result
        assert result == {"id": result["id"], "name": "Bob Stone", "email": "bob@example.com",
                          "provider_id": result["provider_id"], "personal_scope_id": result["personal_scope_id"]}
        assert has_prefix(result["id"], "user") and has_prefix(result["provider_id"], "prov")
        assert streams_of(decision) == [account_stream(ACCOUNT_ID), provider_stream(result["provider_id"]),
                                        scope_slug_stream("bob-stone")]
        assert events_on(decision, account_stream(ACCOUNT_ID)) == [
            UserCreated(user_id=result["id"], name="Bob Stone", email="bob@example.com",
                        provider_id=result["provider_id"], personal_scope_id=result["personal_scope_id"],
                        personal_scope_slug="bob-stone", created_at=NOW_ISO)
        ]
        assert events_on(decision, provider_stream(result["provider_id"])) == [
            ProviderCreated(provider_id=result["provider_id"], account_id=ACCOUNT_ID, display_name="Bob Stone",
                            email="bob@example.com", time_zone="America/New_York", user_id=result["id"],
                            created_at=NOW_ISO)
        ]
        assert decision.stored_result is None

    def test_a_second_user_with_the_same_name_gets_a_distinct_personal_scope_slug(self) -> None:
        account = acme_with_ann()

        decision = accounts.create_user(
            CreateUser(command_id="cmd_2", account_id=ACCOUNT_ID, user_id=ANN, name="Ann Lee",
                       email="ann.lee@example.com"), account, fixed_env())

        (user,) = events_on(decision, account_stream(ACCOUNT_ID))
        assert isinstance(user, UserCreated)
        assert user.personal_scope_slug == f"{ANN_SCOPE_SLUG}-2"
        after = fold(accounts.evolve, account, [user])
        assert sorted(s.slug for s in after.scopes.values()) == [ANN_SCOPE_SLUG, f"{ANN_SCOPE_SLUG}-2"]

    @pytest.mark.parametrize(("fields", "bad_field"), [
        ({"name": ""}, "name"),
        ({"email": "bob"}, "email"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
    ])
    def test_a_bad_field_is_rejected_by_name(self, fields: dict[str, object], bad_field: str) -> None:
        body = {"command_id": "cmd_2", "account_id": ACCOUNT_ID, "user_id": ANN, "name": "Bob Stone",
                "email": "bob@example.com", **fields}
        with rejected(bad_field):
            accounts.create_user(CreateUser(**body), acme_with_ann(), fixed_env())  # type: ignore[arg-type]

    @pytest.mark.parametrize("account_id", [ACCOUNT_ID, None])
    def test_a_missing_account_is_not_found(self, account_id: str | None) -> None:
        with not_found():
            accounts.create_user(CreateUser(command_id="cmd_2", account_id=account_id, user_id=ANN,
                                            name="Bob Stone", email="bob@example.com"),
                                 accounts.AccountState(), fixed_env())


# --- issue_api_token -----------------------------------------------------------------------------

class TestIssueApiToken:
    def test_issues_a_token_for_the_acting_user_by_default(self) -> None:
        account = acme_with_ann()

        decision = accounts.issue_api_token(
            IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=ANN), account, fixed_env())

        result = decision.result
        assert result == {"id": result["id"], "user_id": ANN, "token": "sched_test_secret_1"}
        assert has_prefix(result["id"], "tok")
        assert events_on(decision, account_stream(ACCOUNT_ID)) == [
            ApiTokenIssued(token_id=result["id"], user_id=ANN, token_hash=sha256_hex("sched_test_secret_1"),
                           created_at=NOW_ISO)
        ]
        assert decision.stored_result == {**result, "token": None}

    def test_issues_a_token_for_another_user_of_the_account(self) -> None:
        account = acme_with_ann_and_bob()

        decision = accounts.issue_api_token(
            IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=ANN, for_user_id=BOB),
            account, fixed_env())

        assert decision.result["user_id"] == BOB
        (issued,) = events_on(decision, account_stream(ACCOUNT_ID))
        assert isinstance(issued, ApiTokenIssued) and issued.user_id == BOB
        after = fold(accounts.evolve, account, [issued])
        assert after.token_users == {sha256_hex(decision.result["token"]): BOB}

    def test_the_token_never_appears_in_the_events(self) -> None:
        decision = accounts.issue_api_token(
            IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=ANN), acme_with_ann(), fixed_env())

        token = decision.result["token"]
        assert all(token.encode() not in encode_event(e) for e in all_events(decision))

    def test_an_unknown_user_to_issue_for_is_rejected(self) -> None:
        with rejected("for_user_id"):
            accounts.issue_api_token(
                IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=ANN, for_user_id="user_ghost"),
                acme_with_ann(), fixed_env())

    @pytest.mark.parametrize("acting", ["user_ghost", None])
    def test_an_acting_user_outside_the_account_is_rejected(self, acting: str | None) -> None:
        with rejected("user_id"):
            accounts.issue_api_token(
                IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=acting), acme_with_ann(),
                fixed_env())

    def test_a_missing_account_is_not_found(self) -> None:
        with not_found():
            accounts.issue_api_token(IssueApiToken(command_id="cmd_3", account_id=ACCOUNT_ID, user_id=ANN),
                                     accounts.AccountState(), fixed_env())


# --- create_team_scope ---------------------------------------------------------------------------

def new_team(**fields: object) -> CreateTeamScope:
    body = {"command_id": "cmd_4", "account_id": ACCOUNT_ID, "user_id": ANN, "name": "Support", "slug": "support"}
    return CreateTeamScope(**{**body, **fields})  # type: ignore[arg-type]


class TestCreateTeamScope:
    def test_creates_a_team_scope_with_the_acting_user_first_among_its_members(self) -> None:
        account = acme_with_ann_and_bob()

        decision = accounts.create_team_scope(new_team(member_user_ids=[BOB]), account, fixed_env())

        result = decision.result
        assert result == {"id": result["id"], "name": "Support", "slug": "support", "member_user_ids": [ANN, BOB]}
        assert has_prefix(result["id"], "scope")
        assert events_on(decision, account_stream(ACCOUNT_ID)) == [
            TeamScopeCreated(scope_id=result["id"], name="Support", slug="support", member_user_ids=[ANN, BOB],
                             created_at=NOW_ISO)
        ]
        after = fold(accounts.evolve, account, all_events(decision))
        scope = after.scope_by_slug("support")
        assert scope is not None and scope.kind == "team" and scope.member_user_ids == (ANN, BOB)

    def test_the_acting_user_is_a_member_even_when_not_listed(self) -> None:
        decision = accounts.create_team_scope(new_team(), acme_with_ann_and_bob(), fixed_env())

        assert decision.result["member_user_ids"] == [ANN]

    def test_the_acting_user_listed_again_is_not_repeated(self) -> None:
        decision = accounts.create_team_scope(new_team(member_user_ids=[BOB, ANN, BOB]), acme_with_ann_and_bob(),
                                              fixed_env())

        assert decision.result["member_user_ids"] == [ANN, BOB]

    def test_a_slug_already_used_by_a_team_is_rejected(self) -> None:
        with rejected("slug"):
            accounts.create_team_scope(new_team(slug=TEAM_SLUG), acme_with_ann_and_bob(), fixed_env())

    def test_a_slug_already_used_by_a_personal_scope_is_rejected(self) -> None:
        with rejected("slug"):
            accounts.create_team_scope(new_team(slug=ANN_SCOPE_SLUG), acme_with_ann_and_bob(), fixed_env())

    @pytest.mark.parametrize("slug", ["Support", "support team", "support-", "", "s" * 65])
    def test_a_malformed_slug_is_rejected(self, slug: str) -> None:
        with rejected("slug"):
            accounts.create_team_scope(new_team(slug=slug), acme_with_ann_and_bob(), fixed_env())

    def test_a_slug_with_a_trailing_newline_is_rejected(self) -> None:
        # `$` in the slug pattern also matches before a final "\n"
        with rejected("slug"):
            accounts.create_team_scope(new_team(slug="support\n"), acme_with_ann_and_bob(), fixed_env())

    def test_a_missing_name_is_rejected(self) -> None:
        with rejected("name"):
            accounts.create_team_scope(new_team(name=" "), acme_with_ann_and_bob(), fixed_env())

    def test_unknown_members_are_rejected_and_named(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            accounts.create_team_scope(new_team(member_user_ids=[BOB, "user_ghost"]), acme_with_ann_and_bob(),
                                       fixed_env())

        assert set(caught.value.fields) == {"member_user_ids"}
        message = " ".join(caught.value.fields["member_user_ids"])
        assert "user_ghost" in message and BOB not in message

    def test_an_acting_user_outside_the_account_is_rejected(self) -> None:
        with rejected("user_id"):
            accounts.create_team_scope(new_team(user_id="user_ghost"), acme_with_ann_and_bob(), fixed_env())

    def test_a_missing_account_is_not_found(self) -> None:
        with not_found():
            accounts.create_team_scope(new_team(), accounts.AccountState(), fixed_env())


def test_events_of_another_kind_leave_the_directory_unchanged() -> None:
    from shared.messages.events import LinkToggled

    account = account_given()
    assert accounts.evolve(account, LinkToggled(link_id="link_x", state="active", updated_at=NOW_ISO)) is account


# --- scope slugs are unique across accounts (they name the booking page) -----------------------

class TestScopeSlugsAcrossAccounts:
    def test_a_personal_slug_another_account_holds_gets_a_suffix_from_the_user_id(self) -> None:
        decision = accounts.create_account(new_account(), fixed_env(), taken=frozenset({"ann-lee"}))

        user = next(e for e in events_on(decision, account_stream(decision.result["account_id"]))
                    if isinstance(e, UserCreated))
        assert user.personal_scope_slug == f"ann-lee-{user.user_id[-6:].lower()}"
        assert events_on(decision, scope_slug_stream(user.personal_scope_slug)) == [
            LinkSlugClaimed(link_id=user.personal_scope_id, slug=user.personal_scope_slug)]

    def test_a_team_slug_another_account_holds_is_refused_on_team_slug(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            accounts.create_account(new_account(team_slug="sales"), fixed_env(), taken=frozenset({"sales"}))
        assert refused.value.fields == {"team_slug": ["is already taken"]}

    def test_a_team_slug_is_reserved_with_the_account(self) -> None:
        decision = accounts.create_account(new_account(team_slug="sales"), fixed_env())
        assert events_on(decision, scope_slug_stream("sales")) == [
            LinkSlugClaimed(link_id=decision.result["team_scope_id"], slug="sales")]

    def test_a_team_scope_slug_another_account_holds_is_refused(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            accounts.create_team_scope(CreateTeamScope(command_id="c", account_id=ACCOUNT_ID, user_id=ANN,
                                                       name="Sales", slug="sales"),
                                       acme_with_ann(), fixed_env(), taken=frozenset({"sales"}))
        assert refused.value.fields == {"slug": ["is already taken"]}

    def test_a_new_users_personal_slug_another_account_holds_gets_a_suffix(self) -> None:
        decision = accounts.create_user(
            CreateUser(command_id="c", account_id=ACCOUNT_ID, user_id=ANN, name="Bob Stone", email="b@example.com"),
            acme_with_ann(), fixed_env(), taken=frozenset({"bob-stone"}))
        (user,) = events_on(decision, account_stream(ACCOUNT_ID))
        assert isinstance(user, UserCreated) and user.personal_scope_slug.startswith("bob-stone-")
        assert streams_of(decision)[-1] == scope_slug_stream(user.personal_scope_slug)
