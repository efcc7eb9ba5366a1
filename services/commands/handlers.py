"""Which handler takes which command: load the streams it needs, then call the pure decider."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from shared.domain import accounts, links, providers
from shared.domain.core import Decision, Env, account_stream, link_slug_stream, link_stream, provider_stream
from shared.domain.validation import slugify
from shared.errors import ValidationFailed
from shared.messages import commands as c
from services.commands.repository import UnitOfWork

Handler = Callable[[Any, UnitOfWork, Env], Awaitable[Decision]]


class Route(NamedTuple):
    command_type: type[c.Command]
    handler: Handler


async def create_account(cmd: c.CreateAccount, uow: UnitOfWork, env: Env) -> Decision:
    return accounts.create_account(cmd, env)


async def create_user(cmd: c.CreateUser, uow: UnitOfWork, env: Env) -> Decision:
    return accounts.create_user(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def issue_api_token(cmd: c.IssueApiToken, uow: UnitOfWork, env: Env) -> Decision:
    return accounts.issue_api_token(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def create_team_scope(cmd: c.CreateTeamScope, uow: UnitOfWork, env: Env) -> Decision:
    return accounts.create_team_scope(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def create_provider(cmd: c.CreateProvider, uow: UnitOfWork, env: Env) -> Decision:
    return providers.create_provider(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def set_provider_schedule(cmd: c.SetProviderSchedule, uow: UnitOfWork, env: Env) -> Decision:
    return providers.set_provider_schedule(cmd, await uow.load(provider_stream(cmd.provider_id)), env)


async def _load_hosts(uow: UnitOfWork, host_ids: list[str]) -> dict[str, providers.ProviderState]:
    if len(host_ids) > 50:
        raise ValidationFailed.on("hosts", "must list at most 50 providers")
    return {h: await uow.load(provider_stream(h)) for h in dict.fromkeys(host_ids) if h.startswith("prov_")}


async def _free_slug(uow: UnitOfWork, account_id: str, name: str) -> tuple[str, links.SlugState]:
    """The name's slug if free, else the slug with a short random suffix (reserved on append)."""
    base = slugify(name)
    state = await uow.load(link_slug_stream(account_id, base))
    if state.link_id is None:
        return base, state
    return f"{base}-{secrets.token_hex(3)}", links.SlugState()


async def create_link(cmd: c.CreateLink, uow: UnitOfWork, env: Env) -> Decision:
    account = accounts.require_account(await uow.load(account_stream(cmd.account_id or "")), cmd.account_id)
    user = accounts.require_user(account, cmd.user_id)
    creator = await uow.load(provider_stream(user.provider_id))
    hosts = await _load_hosts(uow, cmd.hosts if isinstance(cmd.hosts, list) else [])
    name = cmd.name if isinstance(cmd.name, str) else ""
    slug, slug_state = await _free_slug(uow, account.account_id, name)
    return links.create_link(cmd, account, creator, hosts, slug, slug_state, env)


async def update_link(cmd: c.UpdateLink, uow: UnitOfWork, env: Env) -> Decision:
    link = links.require_link(await uow.load(link_stream(cmd.link_id)), cmd.account_id)
    assert link.settings is not None
    hosts = await _load_hosts(uow, cmd.hosts if isinstance(cmd.hosts, list) else link.settings.hosts)
    return links.update_link(cmd, link, hosts, env)


async def toggle_link(cmd: c.ToggleLink, uow: UnitOfWork, env: Env) -> Decision:
    return links.toggle_link(cmd, await uow.load(link_stream(cmd.link_id)), env)


async def duplicate_link(cmd: c.DuplicateLink, uow: UnitOfWork, env: Env) -> Decision:
    link = links.require_link(await uow.load(link_stream(cmd.link_id)), cmd.account_id)
    assert link.settings is not None
    slug, slug_state = await _free_slug(uow, link.account_id, f"{link.settings.name} (copy)")
    return links.duplicate_link(cmd, link, slug, slug_state, env)


async def delete_link(cmd: c.DeleteLink, uow: UnitOfWork, env: Env) -> Decision:
    link = await uow.load(link_stream(cmd.link_id))
    if link.exists:
        assert link.settings is not None
        await uow.load(link_slug_stream(link.account_id, link.settings.slug))
    return links.delete_link(cmd, link, env)


# The one explicit table: subject name -> command type and handler.
ROUTES: dict[str, Route] = {
    "create_account": Route(c.CreateAccount, create_account),
    "create_user": Route(c.CreateUser, create_user),
    "issue_api_token": Route(c.IssueApiToken, issue_api_token),
    "create_team_scope": Route(c.CreateTeamScope, create_team_scope),
    "create_provider": Route(c.CreateProvider, create_provider),
    "set_provider_schedule": Route(c.SetProviderSchedule, set_provider_schedule),
    "create_link": Route(c.CreateLink, create_link),
    "update_link": Route(c.UpdateLink, update_link),
    "toggle_link": Route(c.ToggleLink, toggle_link),
    "duplicate_link": Route(c.DuplicateLink, duplicate_link),
    "delete_link": Route(c.DeleteLink, delete_link),
}
