"""Scheduling links (stream link-<id>) and their slug reservations (stream linkslug-<acct>-<slug>)."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from shared.availability import LinkRules
from shared.domain.accounts import AccountState, ScopeInfo, require_account, require_user
from shared.domain.core import Decision, Env, EventTypes, link_slug_stream, link_stream, unchanged
from shared.domain.providers import ProviderState
from shared.domain.validation import (
    Problems,
    check_day,
    check_text,
    check_time_range,
    check_zone,
)
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import CreateLink, DeleteLink, DuplicateLink, LinkFields, ToggleLink, UpdateLink
from shared.messages.events import (
    Event,
    LinkCreated,
    LinkDeleted,
    LinkSettings,
    LinkSlugClaimed,
    LinkSlugReleased,
    LinkToggled,
    LinkUpdated,
    ScopeRef,
)

LINK_TYPES = ("recurring", "single")
LINK_STATES = ("active", "disabled")
HOST_MODES = ("any", "all")
_SETTING_NAMES = tuple(f for f in LinkSettings.__struct_fields__ if f != "slug")


class LinkState(msgspec.Struct, frozen=True):
    """A scheduling link as folded from its stream."""

    link_id: str = ""
    account_id: str = ""
    scope: ScopeRef | None = None
    settings: LinkSettings | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted: bool = False

    @property
    def exists(self) -> bool:
        """Whether the link was created and not deleted since."""
        return bool(self.link_id) and not self.deleted


class SlugState(msgspec.Struct, frozen=True):
    """Who holds a link slug in an account; None when free."""

    link_id: str | None = None


# What a link-<id> stream holds: every type is folded, none is ignored.
LINK_STREAM_EVENTS = EventTypes(handles=frozenset({LinkCreated, LinkUpdated, LinkToggled, LinkDeleted}))


def evolve(state: LinkState, event: Event) -> LinkState:
    """The link after one more event."""
    match event:
        case LinkCreated():
            return LinkState(link_id=event.link_id, account_id=event.account_id, scope=event.scope,
                             settings=event.settings, created_at=event.created_at, updated_at=event.created_at)
        case LinkUpdated():
            return msgspec.structs.replace(state, settings=event.settings, updated_at=event.updated_at)
        case LinkToggled():
            assert state.settings is not None
            settings = msgspec.structs.replace(state.settings, state=event.state)
            return msgspec.structs.replace(state, settings=settings, updated_at=event.updated_at)
        case LinkDeleted():
            return msgspec.structs.replace(state, deleted=True, updated_at=event.deleted_at)
    return unchanged(state, event, LINK_STREAM_EVENTS)


# What a linkslug-<acct>-<slug> stream holds: every type is folded, none is ignored.
SLUG_STREAM_EVENTS = EventTypes(handles=frozenset({LinkSlugClaimed, LinkSlugReleased}))


def evolve_slug(state: SlugState, event: Event) -> SlugState:
    """The slug reservation after one more event."""
    match event:
        case LinkSlugClaimed():
            return SlugState(link_id=event.link_id)
        case LinkSlugReleased():
            return SlugState(link_id=None)
    return unchanged(state, event, SLUG_STREAM_EVENTS)


def link_resource(state: LinkState, public_url: str) -> dict[str, Any]:
    """The link as the HTTP API returns it."""
    assert state.settings is not None and state.scope is not None
    body: dict[str, Any] = {"id": state.link_id}
    body.update(msgspec.to_builtins(state.settings))
    body["scope"] = msgspec.to_builtins(state.scope)
    body["created_at"] = state.created_at
    body["updated_at"] = state.updated_at
    body["url"] = f"{public_url}/{state.scope.slug}/{state.settings.slug}"
    return body


def require_link(state: LinkState, account_id: str | None) -> LinkState:
    """The link, which must exist in the acting account (another account's is "not found")."""
    if not state.exists or state.account_id != account_id:
        raise NotFound("link")
    return state


def require_active_link(state: LinkState, account_id: str | None) -> LinkState:
    """The link, which must exist in the acting account and be active to take a booking."""
    require_link(state, account_id)
    assert state.settings is not None
    if state.settings.state != "active":
        raise ValidationFailed.on("link_id", "the link is disabled")
    return state


def link_rules(link: LinkState) -> LinkRules:
    """The link's settings as the availability engine reads them."""
    settings = link.settings
    assert settings is not None
    return LinkRules(
        time_zone=settings.time_zone, durations=settings.durations, increment=settings.increment,
        buffer_before=settings.buffer_before, buffer_after=settings.buffer_after,
        minimum_notice=settings.minimum_notice, maximum_days_ahead=settings.maximum_days_ahead,
        availability=settings.availability, host_mode=settings.host_mode,
    )


def on_hosts(link: LinkState, provider_ids: list[str], host_mode: str) -> LinkState:
    """The link as if these were its hosts (a booking that must stay on given providers)."""
    assert link.settings is not None
    return msgspec.structs.replace(
        link, settings=msgspec.structs.replace(link.settings, hosts=provider_ids, host_mode=host_mode))


def validate_settings(settings: LinkSettings, hosts: dict[str, ProviderState], account_id: str) -> None:
    """Every field within its range; hosts are providers of the account; a field error names the field."""
    problems = Problems()
    check_text(problems, "name", settings.name, required=True)
    check_text(problems, "private_name", settings.private_name, required=False)
    check_text(problems, "description", settings.description, required=False, max_length=5000,
               multiline=True)
    problems.check(settings.type in LINK_TYPES, "type", "must be one of: recurring, single")
    problems.check(settings.state in LINK_STATES, "state", "must be one of: active, disabled")
    problems.check(settings.host_mode in HOST_MODES, "host_mode", "must be one of: any, all")
    if problems.check(bool(settings.durations), "durations", "must list at least one duration"):
        problems.check(all(1 <= d <= 1440 for d in settings.durations), "durations",
                       "each duration must be 1 to 1440 minutes")
        problems.check(len(set(settings.durations)) == len(settings.durations), "durations", "must not repeat")
        problems.check(settings.default_duration in settings.durations, "default_duration",
                       "must be one of durations")
    problems.check(1 <= settings.increment <= 1440, "increment", "must be 1 to 1440 minutes")
    problems.check(0 <= settings.buffer_before <= 1440, "buffer_before", "must be 0 to 1440 minutes")
    problems.check(0 <= settings.buffer_after <= 1440, "buffer_after", "must be 0 to 1440 minutes")
    problems.check(0 <= settings.minimum_notice <= 525_600, "minimum_notice", "must be 0 to 525600 minutes")
    problems.check(1 <= settings.maximum_days_ahead <= 3650, "maximum_days_ahead", "must be 1 to 3650 days")
    check_zone(problems, "time_zone", settings.time_zone)
    for i, rule in enumerate(settings.availability):
        check_day(problems, f"availability[{i}].day_of_week", rule.day_of_week)
        check_time_range(problems, f"availability[{i}]", rule.start_time, rule.end_time)
        problems.check(1 <= rule.rank <= 100, f"availability[{i}].rank", "must be 1 to 100")
    if problems.check(bool(settings.hosts), "hosts", "must list at least one provider"):
        problems.check(len(set(settings.hosts)) == len(settings.hosts), "hosts", "must not repeat")
        problems.check(len(settings.hosts) <= 50, "hosts", "must list at most 50 providers")
        unknown = [h for h in settings.hosts if not (h in hosts and hosts[h].exists
                                                      and hosts[h].account_id == account_id)]
        problems.check(not unknown, "hosts", f"unknown providers: {', '.join(unknown)}")
    problems.raise_if_any()


def apply_fields(base: LinkSettings, fields: LinkFields) -> LinkSettings:
    """`base` with every field the command gives; the default duration follows the durations."""
    given = {name: getattr(fields, name) for name in _SETTING_NAMES if getattr(fields, name) is not UNSET}
    merged = msgspec.structs.replace(base, **given)
    if "default_duration" not in given and merged.durations and merged.default_duration not in merged.durations:
        merged = msgspec.structs.replace(merged, default_duration=merged.durations[0])
    return merged


def choose_scope(command: CreateLink, account: AccountState) -> ScopeInfo:
    """The personal scope of the acting user, or the team scope `team_slug` if the user is a member."""
    user = require_user(account, command.user_id)
    if command.team_slug is None:
        return account.scopes[user.personal_scope_id]
    scope = account.scope_by_slug(command.team_slug)
    if scope is None or scope.kind != "team" or user.user_id not in scope.member_user_ids:
        raise NotFound("scope")
    return scope


def create_link(command: CreateLink, account: AccountState, creator: ProviderState,
                hosts: dict[str, ProviderState], slug: str, slug_state: SlugState, env: Env) -> Decision:
    """A new link with DESIGN.md's defaults: 30 minutes, the creator's zone, the creator as host."""
    require_account(account, command.account_id)
    scope = choose_scope(command, account)
    if slug_state.link_id is not None:
        raise ValidationFailed.on("name", "gives a slug that is already taken")  # the handler retries with a suffix
    defaults = LinkSettings(name="", slug=slug, time_zone=creator.time_zone or "Etc/UTC", hosts=[creator.provider_id])
    settings = apply_fields(defaults, command)
    if command.durations is not UNSET and command.default_duration is UNSET and settings.durations:
        settings = msgspec.structs.replace(settings, default_duration=settings.durations[0])
    validate_settings(settings, {creator.provider_id: creator, **hosts}, account.account_id)
    return _new_link(account.account_id, ScopeRef(id=scope.scope_id, name=scope.name, slug=scope.slug), settings, env)


def _new_link(account_id: str, scope: ScopeRef, settings: LinkSettings, env: Env) -> Decision:
    link_id = env.new_id("link")
    created = LinkCreated(link_id=link_id, account_id=account_id, scope=scope, settings=settings,
                          created_at=env.now_iso)
    claim = LinkSlugClaimed(link_id=link_id, slug=settings.slug)
    state = evolve(LinkState(), created)
    return Decision(
        [(link_stream(link_id), [created]), (link_slug_stream(account_id, settings.slug), [claim])],
        link_resource(state, env.public_url),
    )


def update_link(command: UpdateLink, state: LinkState, hosts: dict[str, ProviderState], env: Env) -> Decision:
    """Change the given fields (PATCH); the slug stays as created."""
    require_link(state, command.account_id)
    assert state.settings is not None
    settings = apply_fields(state.settings, command)
    validate_settings(settings, hosts, state.account_id)
    event = LinkUpdated(link_id=state.link_id, settings=settings, updated_at=env.now_iso)
    return Decision([(link_stream(state.link_id), [event])], link_resource(evolve(state, event), env.public_url))


def toggle_link(command: ToggleLink, state: LinkState, env: Env) -> Decision:
    """Active becomes disabled and disabled becomes active."""
    require_link(state, command.account_id)
    assert state.settings is not None
    new_state = "disabled" if state.settings.state == "active" else "active"
    event = LinkToggled(link_id=state.link_id, state=new_state, updated_at=env.now_iso)
    return Decision([(link_stream(state.link_id), [event])], link_resource(evolve(state, event), env.public_url))


def duplicate_link(command: DuplicateLink, state: LinkState, slug: str, slug_state: SlugState,
                   env: Env) -> Decision:
    """A copy of every setting, named "<name> (copy)", with a new slug."""
    require_link(state, command.account_id)
    assert state.settings is not None and state.scope is not None
    if slug_state.link_id is not None:
        raise ValidationFailed.on("name", "gives a slug that is already taken")
    name = f"{state.settings.name} (copy)"[:255]
    settings = msgspec.structs.replace(state.settings, name=name, slug=slug)
    return _new_link(state.account_id, state.scope, settings, env)


def delete_link(command: DeleteLink, state: LinkState, env: Env) -> Decision:
    """Delete the link and free its slug; the result is the deleted resource."""
    require_link(state, command.account_id)
    assert state.settings is not None
    deleted = LinkDeleted(link_id=state.link_id, deleted_at=env.now_iso)
    release = LinkSlugReleased(link_id=state.link_id, slug=state.settings.slug)
    return Decision(
        [(link_stream(state.link_id), [deleted]), (link_slug_stream(state.account_id, state.settings.slug), [release])],
        link_resource(state, env.public_url),
    )
