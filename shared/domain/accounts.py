"""Account directory (stream account-<id>): users, API tokens, personal and team scopes."""

from __future__ import annotations

import hashlib

import msgspec

from shared.domain.core import (
    Decision,
    Env,
    EventTypes,
    account_stream,
    provider_stream,
    scope_slug_stream,
    unchanged,
)
from shared.domain.validation import Problems, check_email, check_slug, check_text, check_zone, slugify
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import CreateAccount, CreateTeamScope, CreateUser, IssueApiToken
from shared.messages.events import (
    AccountCreated,
    ApiTokenIssued,
    Event,
    LinkSlugClaimed,
    ProviderCreated,
    TeamScopeCreated,
    UserCreated,
)


class UserInfo(msgspec.Struct, frozen=True):
    """A user of the account: who they are, their provider and their personal scope."""

    user_id: str
    name: str
    email: str
    provider_id: str
    personal_scope_id: str


class ScopeInfo(msgspec.Struct, frozen=True):
    """A personal or team scope: its name, slug and member users."""

    scope_id: str
    name: str
    slug: str
    kind: str  # "personal" | "team"
    member_user_ids: tuple[str, ...]


class AccountState(msgspec.Struct, frozen=True):
    """The account directory as folded from its stream: users, scopes and whose each token is."""

    account_id: str = ""
    name: str = ""
    created_at: str = ""
    users: dict[str, UserInfo] = {}
    scopes: dict[str, ScopeInfo] = {}
    token_users: dict[str, str] = {}  # token hash -> user id

    @property
    def exists(self) -> bool:
        """Whether the account was ever created."""
        return bool(self.account_id)

    def scope_by_slug(self, slug: str) -> ScopeInfo | None:
        """The account's scope (personal or team) with this slug, or None."""
        return next((s for s in self.scopes.values() if s.slug == slug), None)


# What a account-<id> stream holds: every type is folded, none is ignored.
ACCOUNT_STREAM_EVENTS = EventTypes(handles=frozenset({
    AccountCreated, UserCreated, ApiTokenIssued, TeamScopeCreated,
}))


def evolve(state: AccountState, event: Event) -> AccountState:
    """The account directory after one more event."""
    match event:
        case AccountCreated():
            return AccountState(account_id=event.account_id, name=event.name, created_at=event.created_at)
        case UserCreated():
            user = UserInfo(event.user_id, event.name, event.email, event.provider_id, event.personal_scope_id)
            scope = ScopeInfo(event.personal_scope_id, event.name, event.personal_scope_slug, "personal",
                              (event.user_id,))
            return msgspec.structs.replace(
                state, users={**state.users, event.user_id: user}, scopes={**state.scopes, scope.scope_id: scope}
            )
        case ApiTokenIssued():
            return msgspec.structs.replace(state, token_users={**state.token_users, event.token_hash: event.user_id})
        case TeamScopeCreated():
            scope = ScopeInfo(event.scope_id, event.name, event.slug, "team", tuple(event.member_user_ids))
            return msgspec.structs.replace(state, scopes={**state.scopes, scope.scope_id: scope})
    return unchanged(state, event, ACCOUNT_STREAM_EVENTS)


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def require_account(state: AccountState, account_id: str | None) -> AccountState:
    """The account directory, which must exist and be named by the command (else "not found")."""
    if not account_id or not state.exists:
        raise NotFound("account")
    return state


def require_user(state: AccountState, user_id: str | None) -> UserInfo:
    """The acting user, who must belong to the account."""
    if not user_id:
        raise ValidationFailed.on("user_id", "is required")
    user = state.users.get(user_id)
    if user is None:
        raise ValidationFailed.on("user_id", "is not a user of this account")
    return user


def _unique_scope_slug(state: AccountState, base: str, reserved: tuple[str, ...] = ()) -> str:
    taken = {scope.slug for scope in state.scopes.values()} | set(reserved)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def personal_slug_candidate(state: AccountState, name: str, reserved: tuple[str, ...] = ()) -> str:
    """The personal scope slug a new user named `name` gets unless another account holds it already."""
    return _unique_scope_slug(state, slugify(name), reserved)


def _id_suffix(user_id: str) -> str:
    """A short, slug-safe tail of a user id (the random end of its ULID)."""
    return user_id.rsplit("_", 1)[-1][-6:].lower()


def claim_scope_slug(scope_id: str, slug: str) -> tuple[str, list[Event]]:
    """The change that reserves a scope slug system-wide (a new stream: a second claim conflicts)."""
    return scope_slug_stream(slug), [LinkSlugClaimed(link_id=scope_id, slug=slug)]


def _new_user(state: AccountState, account_id: str, name: str, email: str, time_zone: str,
              env: Env, reserved_slugs: tuple[str, ...] = (),
              taken: frozenset[str] = frozenset()) -> tuple[list[Event], list[Event], UserInfo]:
    """Events of a user (account stream) and its provider (provider stream).

    `taken` are the scope slugs other accounts hold: page URLs must name one scope system-wide, so a
    personal slug another account holds gets a suffix from the user's id.
    """
    user_id, provider_id, scope_id = env.new_id("user"), env.new_id("prov"), env.new_id("scope")
    scope_slug = personal_slug_candidate(state, name, reserved_slugs)
    if scope_slug in taken:
        scope_slug = f"{scope_slug}-{_id_suffix(user_id)}"
    user = UserCreated(user_id=user_id, name=name, email=email, provider_id=provider_id,
                       personal_scope_id=scope_id, personal_scope_slug=scope_slug, created_at=env.now_iso)
    provider = ProviderCreated(provider_id=provider_id, account_id=account_id, display_name=name, email=email,
                               time_zone=time_zone, user_id=user_id, created_at=env.now_iso)
    return [user], [provider], UserInfo(user_id, name, email, provider_id, scope_id)


def _token_events(user_id: str, env: Env) -> tuple[ApiTokenIssued, str]:
    token = env.new_secret()
    return ApiTokenIssued(token_id=env.new_id("tok"), user_id=user_id, token_hash=hash_token(token),
                          created_at=env.now_iso), token


def _check_person(problems: Problems, name: str, email: str, time_zone: str) -> None:
    check_text(problems, "name", name, required=True)
    check_text(problems, "email", email, required=True, max_length=320)
    if email:
        check_email(problems, "email", email)
    check_zone(problems, "time_zone", time_zone)


def create_account(command: CreateAccount, env: Env, taken: frozenset[str] = frozenset()) -> Decision:
    """A new tenant with its first user, that user's provider and personal scope, and an API token.

    `taken`: the scope slugs (among the personal candidate and `team_slug`) that other accounts hold.
    """
    problems = Problems()
    _check_person(problems, command.name, command.email, command.time_zone)
    if command.team_slug is not None:
        check_slug(problems, "team_slug", command.team_slug)
        problems.check(command.team_slug not in taken, "team_slug", "is already taken")
    problems.raise_if_any()
    account_id = env.new_id("acct")
    created = AccountCreated(account_id=account_id, name=command.name, created_at=env.now_iso)
    state = evolve(AccountState(), created)
    # The team slug is the one the caller chose: the personal scope gives way to it.
    reserved = (command.team_slug,) if command.team_slug else ()
    user_events, provider_events, user = _new_user(state, account_id, command.name, command.email,
                                                   command.time_zone, env, reserved, taken)
    for event in user_events:
        state = evolve(state, event)
    token_event, token = _token_events(user.user_id, env)
    account_events: list[Event] = [created, *user_events, token_event]
    result = {"account_id": account_id, "user_id": user.user_id, "provider_id": user.provider_id,
              "personal_scope_id": user.personal_scope_id, "token": token}
    if command.team_slug is not None:
        if state.scope_by_slug(command.team_slug):
            raise ValidationFailed.on("team_slug", "is already taken in this account")
        team = TeamScopeCreated(scope_id=env.new_id("scope"), name=command.team_name or command.team_slug,
                                slug=command.team_slug, member_user_ids=[user.user_id], created_at=env.now_iso)
        account_events.append(team)
        result["team_scope_id"] = team.scope_id
    claims = [claim_scope_slug(scope.scope_id, scope.slug) for scope in state.scopes.values()]
    if command.team_slug is not None:
        claims.append(claim_scope_slug(result["team_scope_id"], command.team_slug))
    return Decision(
        [(account_stream(account_id), account_events), (provider_stream(user.provider_id), provider_events),
         *claims],
        result, stored_result={**result, "token": None},
    )


def create_user(command: CreateUser, state: AccountState, env: Env, taken: frozenset[str] = frozenset()) -> Decision:
    """Another user of the account; every user is also a provider with a calendar (`taken`: as create_account)."""
    require_account(state, command.account_id)
    problems = Problems()
    _check_person(problems, command.name, command.email, command.time_zone)
    problems.raise_if_any()
    user_events, provider_events, user = _new_user(state, state.account_id, command.name, command.email,
                                                   command.time_zone, env, taken=taken)
    scope_slug = next(e.personal_scope_slug for e in user_events if isinstance(e, UserCreated))
    return Decision(
        [(account_stream(state.account_id), list(user_events)), (provider_stream(user.provider_id), provider_events),
         claim_scope_slug(user.personal_scope_id, scope_slug)],
        {"id": user.user_id, "name": user.name, "email": user.email, "provider_id": user.provider_id,
         "personal_scope_id": user.personal_scope_id},
    )


def issue_api_token(command: IssueApiToken, state: AccountState, env: Env) -> Decision:
    """A new personal token; only its hash is stored, the token is in this one reply."""
    require_account(state, command.account_id)
    acting = require_user(state, command.user_id)
    user_id = command.for_user_id or acting.user_id
    if user_id not in state.users:
        raise ValidationFailed.on("for_user_id", "is not a user of this account")
    event, token = _token_events(user_id, env)
    result = {"id": event.token_id, "user_id": user_id, "token": token}
    return Decision([(account_stream(state.account_id), [event])], result, stored_result={**result, "token": None})


def create_team_scope(command: CreateTeamScope, state: AccountState, env: Env,
                      taken: frozenset[str] = frozenset()) -> Decision:
    """A team scope with a slug unique system-wide (`taken`: held by other accounts); the acting user is a member."""
    require_account(state, command.account_id)
    acting = require_user(state, command.user_id)
    problems = Problems()
    check_text(problems, "name", command.name, required=True)
    check_slug(problems, "slug", command.slug)
    if state.scope_by_slug(command.slug):
        problems.add("slug", "is already taken in this account")
    elif command.slug in taken:
        problems.add("slug", "is already taken")
    unknown = [u for u in command.member_user_ids if u not in state.users]
    problems.check(not unknown, "member_user_ids", f"unknown users: {', '.join(unknown)}")
    problems.raise_if_any()
    members = list(dict.fromkeys([acting.user_id, *command.member_user_ids]))
    event = TeamScopeCreated(scope_id=env.new_id("scope"), name=command.name, slug=command.slug,
                             member_user_ids=members, created_at=env.now_iso)
    return Decision([(account_stream(state.account_id), [event]), claim_scope_slug(event.scope_id, event.slug)],
                    {"id": event.scope_id, "name": event.name, "slug": event.slug, "member_user_ids": members})
