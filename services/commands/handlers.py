"""Which handler takes which command: load the streams it needs, then call the pure decider."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from services.commands.repository import UnitOfWork
from shared import calendly
from shared.availability import parse_instant
from shared.domain import (
    accounts,
    appointments,
    blocks,
    busy_times,
    holds,
    link_bookings,
    links,
    providers,
    service_catalogue,
    webhooks,
)
from shared.domain.core import (
    Decision,
    Env,
    account_stream,
    appointment_stream,
    block_stream,
    event_stream,
    hold_stream,
    iso_z,
    link_slug_stream,
    link_stream,
    location_stream,
    provider_stream,
    scope_slug_stream,
    service_provider_stream,
    service_stream,
    webhook_stream,
)
from shared.domain.validation import slugify
from shared.errors import NotFound, ValidationFailed
from shared.messages import commands as c
from shared.messages.events import Client, EventCanceled, EventCreated, WebhookCreated
from shared.webhook_secrets import keep_secret

Handler = Callable[[Any, UnitOfWork, Env], Awaitable[Decision]]


def _booking_key(cmd: Any) -> str:
    return f"link-{cmd.link_id}" if getattr(cmd, "link_id", None) else f"service-{getattr(cmd, 'service_id', '')}"


async def _taken_scope_slugs(uow: UnitOfWork, *slugs: object) -> frozenset[str]:
    """Which of these scope slugs some scope holds already (their reservation streams are loaded, so guarded)."""
    taken = set()
    for slug in dict.fromkeys(s for s in slugs if isinstance(s, str) and s):
        if (await uow.load(scope_slug_stream(slug))).link_id is not None:
            taken.add(slug)
    return frozenset(taken)


async def create_account(cmd: c.CreateAccount, uow: UnitOfWork, env: Env) -> Decision:
    """A new tenant, decided on the reservations of its scope slugs (unique across accounts)."""
    name = cmd.name if isinstance(cmd.name, str) else ""
    team = cmd.team_slug if isinstance(cmd.team_slug, str) else None
    personal = accounts.personal_slug_candidate(accounts.AccountState(), name, (team,) if team else ())
    return accounts.create_account(cmd, env, await _taken_scope_slugs(uow, personal, team))


async def create_user(cmd: c.CreateUser, uow: UnitOfWork, env: Env) -> Decision:
    """Another user, decided on the account directory and the reservation of its personal scope slug."""
    account = await uow.load(account_stream(cmd.account_id or ""))
    name = cmd.name if isinstance(cmd.name, str) else ""
    personal = accounts.personal_slug_candidate(account, name)
    return accounts.create_user(cmd, account, env, await _taken_scope_slugs(uow, personal))


async def issue_api_token(cmd: c.IssueApiToken, uow: UnitOfWork, env: Env) -> Decision:
    """A token for a user, decided on the account directory."""
    return accounts.issue_api_token(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def create_team_scope(cmd: c.CreateTeamScope, uow: UnitOfWork, env: Env) -> Decision:
    """A team scope, decided on the account directory (slugs and members) and the slug's reservation."""
    account = await uow.load(account_stream(cmd.account_id or ""))
    return accounts.create_team_scope(cmd, account, env, await _taken_scope_slugs(uow, cmd.slug))


async def create_provider(cmd: c.CreateProvider, uow: UnitOfWork, env: Env) -> Decision:
    """A provider, decided on the account directory."""
    return providers.create_provider(cmd, await uow.load(account_stream(cmd.account_id or "")), env)


async def set_provider_schedule(cmd: c.SetProviderSchedule, uow: UnitOfWork, env: Env) -> Decision:
    """A provider's new schedule, decided on its stream."""
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
    """A link, decided on the account, the creator's provider, the hosts and the slug's reservation stream."""
    account = accounts.require_account(await uow.load(account_stream(cmd.account_id or "")), cmd.account_id)
    user = accounts.require_user(account, cmd.user_id)
    creator = await uow.load(provider_stream(user.provider_id))
    hosts = await _load_hosts(uow, cmd.hosts if isinstance(cmd.hosts, list) else [])
    name = cmd.name if isinstance(cmd.name, str) else ""
    slug, slug_state = await _free_slug(uow, account.account_id, name)
    return links.create_link(cmd, account, creator, hosts, slug, slug_state, env)


async def update_link(cmd: c.UpdateLink, uow: UnitOfWork, env: Env) -> Decision:
    """A link's changed fields, decided on the link and its (new or current) hosts."""
    link = links.require_link(await uow.load(link_stream(cmd.link_id)), cmd.account_id)
    assert link.settings is not None
    hosts = await _load_hosts(uow, cmd.hosts if isinstance(cmd.hosts, list) else link.settings.hosts)
    return links.update_link(cmd, link, hosts, env)


async def toggle_link(cmd: c.ToggleLink, uow: UnitOfWork, env: Env) -> Decision:
    """Switch a link between active and disabled, decided on its stream."""
    return links.toggle_link(cmd, await uow.load(link_stream(cmd.link_id)), env)


async def duplicate_link(cmd: c.DuplicateLink, uow: UnitOfWork, env: Env) -> Decision:
    """A copy of a link, decided on the link and the reservation stream of the copy's slug."""
    link = links.require_link(await uow.load(link_stream(cmd.link_id)), cmd.account_id)
    assert link.settings is not None
    slug, slug_state = await _free_slug(uow, link.account_id, f"{link.settings.name} (copy)")
    return links.duplicate_link(cmd, link, slug, slug_state, env)


async def delete_link(cmd: c.DeleteLink, uow: UnitOfWork, env: Env) -> Decision:
    """Delete a link, also loading its slug's reservation stream so that the slug is released."""
    link = await uow.load(link_stream(cmd.link_id))
    if link.exists:
        assert link.settings is not None
        await uow.load(link_slug_stream(link.account_id, link.settings.slug))
    return links.delete_link(cmd, link, env)


async def _link_and_hosts(uow: UnitOfWork, link_id: str | None) -> tuple[links.LinkState, dict[str, Any]]:
    link = await uow.load(link_stream(link_id or ""))
    hosts = await _load_hosts(uow, link.settings.hosts) if link.exists and link.settings else {}
    return link, hosts


async def create_event(cmd: c.CreateEvent, uow: UnitOfWork, env: Env) -> Decision:
    """Book an event, decided on the link and its hosts' calendars."""
    link, hosts = await _link_and_hosts(uow, cmd.link_id)
    return link_bookings.create_event(cmd, link, hosts, env)


async def cancel_event(cmd: c.CancelEvent, uow: UnitOfWork, env: Env) -> Decision:
    """Cancel an event, loading its hosts' calendars, where its time is freed."""
    event = link_bookings.require_event(await uow.load(event_stream(cmd.event_id)), cmd.account_id)
    assert event.created is not None
    await _load_hosts(uow, event.created.provider_ids)  # the streams whose time it frees
    return link_bookings.cancel_event(cmd, event, env)


async def reschedule_event(cmd: c.RescheduleEvent, uow: UnitOfWork, env: Env) -> Decision:
    """Move an event, decided on the event, its link and its hosts' calendars."""
    event = link_bookings.require_event(await uow.load(event_stream(cmd.event_id)), cmd.account_id)
    assert event.created is not None
    link = await uow.load(link_stream(event.created.link.id))
    hosts = await _load_hosts(uow, event.created.provider_ids)
    return link_bookings.reschedule_event(cmd, event, link, hosts, env)


async def _service_context(uow: UnitOfWork, service_id: str,
                           account_id: str | None) -> tuple[service_catalogue.ServiceState, dict[str, Any], Any]:
    """The service, its providers' calendars and its location's blocks."""
    service = service_catalogue.require_service(await uow.load(service_stream(service_id)), account_id)
    assert service.created is not None
    hosts = await _load_hosts(uow, [sp.provider_id for sp in service.ordered_providers()][:50])
    location = (await uow.load(location_stream(service.created.account_id, service.created.location_id))
                if service.created.location_id else service_catalogue.LocationState())
    return service, hosts, location


async def hold_slot(cmd: c.HoldSlot, uow: UnitOfWork, env: Env) -> Decision:
    """Hold a link slot or a service slot (exactly one of link_id, service_id) on the calendars involved."""
    if (cmd.service_id is None) == (cmd.link_id is None):
        raise ValidationFailed.on("service_id", "give exactly one of service_id and link_id")
    if cmd.link_id is not None:
        link, hosts = await _link_and_hosts(uow, cmd.link_id)
        return holds.hold_link_slot(cmd, link, hosts, env)
    service, hosts, location = await _service_context(uow, cmd.service_id or "", cmd.account_id)
    return holds.hold_service_slot(cmd, service, hosts, location, env)


async def release_hold(cmd: c.ReleaseHold, uow: UnitOfWork, env: Env) -> Decision:
    """Release a hold, loading its providers' calendars, where its time is freed."""
    hold = holds.require_hold(await uow.load(hold_stream(cmd.booking_intent_id)), cmd.account_id)
    assert hold.held is not None
    await _load_hosts(uow, hold.held.provider_ids)
    return holds.release_hold(cmd, hold, env)


async def expire_hold(cmd: c.ExpireHold, uow: UnitOfWork, env: Env) -> Decision:
    """Expire a hold (the sweeper's command), loading its providers' calendars."""
    hold = await uow.load(hold_stream(cmd.booking_intent_id))
    if hold.held is not None:
        if cmd.account_id is not None and hold.held.account_id != cmd.account_id:
            raise NotFound("booking_intent")
        await _load_hosts(uow, hold.held.provider_ids)
    return holds.expire_hold(hold, env)


async def complete_hold(cmd: c.CompleteHold, uow: UnitOfWork, env: Env) -> Decision:
    """Book a held slot: an event for a link hold, an appointment for a service hold."""
    hold = holds.require_hold(await uow.load(hold_stream(cmd.booking_intent_id)), cmd.account_id)
    held = hold.held
    assert held is not None
    if held.link_id is not None:
        link = await uow.load(link_stream(held.link_id))
        hosts = await _load_hosts(uow, held.provider_ids)
        return holds.complete_link_hold(hold, link, hosts, env, display_name=cmd.display_name,
                                           email=cmd.email, time_zone=cmd.time_zone)
    service, hosts, location = await _service_context(uow, held.service_id or "", cmd.account_id)
    return holds.complete_service_hold(hold, service, hosts, location, env, client=Client(
        display_name=cmd.display_name, email=cmd.email, time_zone=cmd.time_zone))


async def create_service(cmd: c.CreateService, uow: UnitOfWork, env: Env) -> Decision:
    """A service, decided on the account and, when it names one, its location."""
    account = await uow.load(account_stream(cmd.account_id or ""))
    location = (await uow.load(location_stream(cmd.account_id or "", cmd.location_id))
                if cmd.location_id and len(cmd.location_id) <= 100 else service_catalogue.LocationState())
    return service_catalogue.create_service(cmd, account, location, env)


async def add_service_provider(cmd: c.AddServiceProvider, uow: UnitOfWork, env: Env) -> Decision:
    """Add a provider to a service, decided on both streams."""
    service = await uow.load(service_stream(cmd.service_id))
    provider = await uow.load(provider_stream(cmd.provider_id))
    return service_catalogue.add_service_provider(cmd, service, provider, env)


async def remove_service_provider(cmd: c.RemoveServiceProvider, uow: UnitOfWork, env: Env) -> Decision:
    """Remove a provider from a service, decided on the service's stream."""
    return service_catalogue.remove_service_provider(cmd, await uow.load(service_stream(cmd.service_id)), env)


async def create_block(cmd: c.CreateBlock, uow: UnitOfWork, env: Env) -> Decision:
    """A block, decided on the stream of what it is attached to (a service_provider's is its service's)."""
    target: Any = None
    stream = ""
    if cmd.attachment_type == "provider":
        stream = provider_stream(cmd.attachment_id)
    elif cmd.attachment_type == "service":
        stream = service_stream(cmd.attachment_id)
    elif cmd.attachment_type == "service_provider":
        sp = await uow.load(service_provider_stream(cmd.attachment_id))
        if sp.added is not None and not sp.removed:
            stream = service_stream(sp.added.service_id)
    elif cmd.attachment_type == "location" and 0 < len(cmd.attachment_id) <= 100:
        stream = location_stream(cmd.account_id or "", cmd.attachment_id)
    if stream:
        target = await uow.load(stream)
    return blocks.create_block(cmd, target, stream, env)


async def delete_block(cmd: c.DeleteBlock, uow: UnitOfWork, env: Env) -> Decision:
    """Delete a block, loading its attachment's stream, where its time is freed."""
    block = await uow.load(block_stream(cmd.block_id))
    if block.created is not None:
        await uow.load(block.created.attachment_stream)
    return blocks.delete_block(cmd, block, env)


async def sync_external_busy_times(cmd: c.SyncExternalBusyTimes, uow: UnitOfWork, env: Env) -> Decision:
    """Replace a provider's external busy times, decided on its calendar."""
    return busy_times.sync_external_busy_times(cmd, await uow.load(provider_stream(cmd.provider_id)), env)


async def create_appointment(cmd: c.CreateAppointment, uow: UnitOfWork, env: Env) -> Decision:
    """Book an appointment, decided on the service, its providers' calendars and its location."""
    service, hosts, location = await _service_context(uow, cmd.service_id, cmd.account_id)
    return appointments.create_appointment(cmd, service, hosts, location, env)


async def cancel_appointment(cmd: c.CancelAppointment, uow: UnitOfWork, env: Env) -> Decision:
    """Cancel an appointment, loading its provider's calendar, where its time is freed."""
    appointment = await uow.load(appointment_stream(cmd.appointment_id))
    if appointment.created is not None:
        await uow.load(provider_stream(appointment.created.provider_id))
    return appointments.cancel_appointment(cmd, appointment, env)


async def reschedule_appointment(cmd: c.RescheduleAppointment, uow: UnitOfWork, env: Env) -> Decision:
    """Move an appointment, decided on it, its service, its provider's calendar and its location."""
    appointment = await uow.load(appointment_stream(cmd.appointment_id))
    created = appointment.created
    if created is None or created.account_id != cmd.account_id:
        raise NotFound("appointment")
    service = await uow.load(service_stream(created.service_id))
    hosts = await _load_hosts(uow, [created.provider_id])
    location = (await uow.load(location_stream(service.created.account_id, service.created.location_id))
                if service.created is not None and service.created.location_id
                else service_catalogue.LocationState())
    return appointments.reschedule_appointment(cmd, appointment, service, hosts, location, env)


async def _keep_new_secret(uow: UnitOfWork, decision: Decision) -> None:
    """Store a new webhook signing secret before its event is appended (it never enters the log)."""
    new_secret = webhooks.new_secret_of(decision)
    if new_secret is not None:
        await keep_secret(uow.repository.store.pool, *new_secret)


async def create_webhook(cmd: c.CreateWebhook, uow: UnitOfWork, env: Env) -> Decision:
    """A webhook, decided on the account; its signing secret is stored before the append."""
    decision = webhooks.create_webhook(cmd, await uow.load(account_stream(cmd.account_id or "")), env)
    await _keep_new_secret(uow, decision)
    return decision


async def rotate_webhook_secret(cmd: c.RotateWebhookSecret, uow: UnitOfWork, env: Env) -> Decision:
    """Rotate a webhook's signing secret; the new secret is stored before the append."""
    decision = webhooks.rotate_webhook_secret(cmd, await uow.load(webhook_stream(cmd.webhook_id)), env)
    await _keep_new_secret(uow, decision)
    return decision


async def delete_webhook(cmd: c.DeleteWebhook, uow: UnitOfWork, env: Env) -> Decision:
    """Delete a webhook, decided on its stream."""
    return webhooks.delete_webhook(cmd, await uow.load(webhook_stream(cmd.webhook_id)), env)


# --- Calendly's Scheduling API and webhook subscriptions: the same deciders as above -----------

# A SavvyCal field a decider names -> the Calendly parameter the client sent it as.
_CALENDLY_FIELDS = {"start_at": "start_time", "end_at": "start_time", "display_name": "invitee.name",
                    "email": "invitee.email", "time_zone": "invitee.timezone", "link_id": "event_type",
                    "event_id": "uuid", "cancel_reason": "reason", "url": "url", "events": "events"}


def _in_calendly_terms(error: ValidationFailed) -> ValidationFailed:
    """The same refusal naming Calendly's parameters instead of the SavvyCal fields."""
    fields: dict[str, list[str]] = {}
    for name, messages in error.fields.items():
        fields.setdefault(_CALENDLY_FIELDS.get(name, name), []).extend(messages)
    return ValidationFailed(error.message, fields)


async def _owners(uow: UnitOfWork, account_id: str | None) -> calendly.Owners:
    account = await uow.load(account_stream(account_id or ""))
    return {u.provider_id: (u.user_id, u.name, u.email) for u in account.users.values()}


def _booked(decision: Decision, state: link_bookings.BookedEventState) -> link_bookings.BookedEventState:
    """The event as the decision leaves it."""
    for _, events in decision.changes:
        for event in events:
            if isinstance(event, EventCreated | EventCanceled):
                state = link_bookings.evolve_event(state, event)
    return state


async def calendly_create_invitee(cmd: c.CalendlyCreateInvitee, uow: UnitOfWork, env: Env) -> Decision:
    """Calendly's POST /invitees: a CreateEvent of the event type's default duration at `start_time`."""
    link_id = calendly.id_from_uri(cmd.event_type, cmd.base_url, "event_types", "event_type")
    link, hosts = await _link_and_hosts(uow, link_id)
    settings = links.require_link(link, cmd.account_id).settings
    assert settings is not None
    try:
        start = parse_instant(cmd.start_time.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed.on("start_time", "must be an ISO-8601 datetime with a time zone") from None
    person = cmd.invitee
    name = person.name or " ".join(p for p in (person.first_name, person.last_name) if p)
    answers = [{"id": f"q{index}", "label": str(qa.get("question", "")), "type": "text",
                "value": str(qa.get("answer", ""))} for index, qa in enumerate(cmd.questions_and_answers)]
    booking = c.CreateEvent(command_id=cmd.command_id, account_id=cmd.account_id, user_id=cmd.user_id,
                            link_id=link_id, display_name=name, email=person.email, time_zone=person.timezone,
                            start_at=iso_z_seconds(start), end_at=iso_z_seconds(start + 60 * settings.default_duration),
                            fields=answers)
    try:
        decision = link_bookings.create_event(booking, link, hosts, env)
    except ValidationFailed as error:
        raise _in_calendly_terms(error) from None
    state = _booked(decision, link_bookings.BookedEventState())
    event = link_bookings.event_resource(state, env.public_url, env.signing_secret)
    return decision._replace(result={"resource": calendly.invitee(cmd.base_url, state, event)})


def iso_z_seconds(seconds: int) -> str:
    """An epoch second as the domain's ISO-8601 UTC text."""
    return iso_z(datetime.fromtimestamp(seconds, UTC))


async def calendly_cancel_event(cmd: c.CalendlyCancelEvent, uow: UnitOfWork, env: Env) -> Decision:
    """Calendly's POST /scheduled_events/:uuid/cancellation: a CancelEvent."""
    event = link_bookings.require_event(await uow.load(event_stream(cmd.uuid)), cmd.account_id)
    cancel = c.CancelEvent(command_id=cmd.command_id, account_id=cmd.account_id, user_id=cmd.user_id,
                           event_id=cmd.uuid, cancel_reason=cmd.reason)
    try:
        decision = await cancel_event(cancel, uow, env)
    except ValidationFailed as error:
        raise _in_calendly_terms(error) from None
    state = _booked(decision, event)
    return decision._replace(result={"resource": calendly.cancellation(state)})


async def calendly_create_scheduling_link(cmd: c.CalendlyCreateSchedulingLink, uow: UnitOfWork,
                                          env: Env) -> Decision:
    """Calendly's POST /scheduling_links: a single-use copy of the event type (a CreateLink of type single)."""
    problems: dict[str, list[str]] = {}
    if cmd.max_event_count != 1:
        problems["max_event_count"] = ["must be 1"]
    if cmd.owner_type != "EventType":
        problems["owner_type"] = ["must be EventType"]
    try:
        link_id = calendly.id_from_uri(cmd.owner, cmd.base_url, "event_types", "owner")
    except ValidationFailed as error:
        problems.update(error.fields)
        link_id = ""
    if problems:
        raise ValidationFailed("invalid scheduling link", problems)
    settings = links.require_link(await uow.load(link_stream(link_id)), cmd.account_id).settings
    assert settings is not None
    copied = {k: v for k, v in msgspec.to_builtins(settings).items()
              if k in c.LinkFields.__struct_fields__ and k not in ("type", "state")}
    create = msgspec.convert({**copied, "type": "single", "command_id": cmd.command_id,
                              "account_id": cmd.account_id, "user_id": cmd.user_id}, c.CreateLink)
    decision = await create_link(create, uow, env)
    return decision._replace(result={"resource": {"booking_url": decision.result["url"], "owner": cmd.owner,
                                                  "owner_type": "EventType"}})


async def calendly_create_webhook_subscription(cmd: c.CalendlyCreateWebhookSubscription, uow: UnitOfWork,
                                               env: Env) -> Decision:
    """Calendly's POST /webhook_subscriptions: a webhook for invitee.* of the organization or one user."""
    account = accounts.require_account(await uow.load(account_stream(cmd.account_id or "")), cmd.account_id)
    problems: dict[str, list[str]] = {}
    organization = ""
    try:
        organization = calendly.id_from_uri(cmd.organization, cmd.base_url, "organizations", "organization")
    except ValidationFailed as error:
        problems.update(error.fields)
    if cmd.scope not in ("user", "organization"):
        problems["scope"] = ["must be user or organization"]
    user = None
    if cmd.scope == "user":
        try:
            user_id = calendly.id_from_uri(cmd.user, cmd.base_url, "users", "user")
            user = account.users.get(user_id)
            if user is None:
                problems["user"] = ["is not a user of the organization"]
        except ValidationFailed as error:
            problems.update(error.fields)
    if problems:
        raise ValidationFailed("invalid webhook subscription", problems)
    if organization != account.account_id:
        raise NotFound("organization")
    decision = webhooks.create_calendly_subscription(
        cmd.url, cmd.events, cmd.scope, user.user_id if user else None, user.provider_id if user else None,
        cmd.signing_key, account, cmd.user_id, env)
    await _keep_new_secret(uow, decision)
    created = next(e for _, events in decision.changes for e in events if isinstance(e, WebhookCreated))
    resource = {"resource": calendly.webhook_subscription(cmd.base_url, webhooks.evolve(webhooks.WebhookState(),
                                                                                       created))}
    return decision._replace(result=resource, stored_result=None)


async def calendly_delete_webhook_subscription(cmd: c.CalendlyDeleteWebhookSubscription, uow: UnitOfWork,
                                               env: Env) -> Decision:
    """Calendly's DELETE /webhook_subscriptions/:uuid: a DeleteWebhook (204, no body)."""
    state = webhooks.require_webhook(await uow.load(webhook_stream(cmd.uuid)), cmd.account_id)
    if state.scope is None:
        raise NotFound("webhook_subscription")
    decision = webhooks.delete_webhook(c.DeleteWebhook(command_id=cmd.command_id, account_id=cmd.account_id,
                                                       user_id=cmd.user_id, webhook_id=cmd.uuid), state, env)
    return decision._replace(result={})


# The one explicit table: catalogue name -> handler (the catalogue gives the command type and subject).
HANDLERS: dict[str, Handler] = {
    "create_account": create_account,
    "create_user": create_user,
    "issue_api_token": issue_api_token,
    "create_team_scope": create_team_scope,
    "create_provider": create_provider,
    "set_provider_schedule": set_provider_schedule,
    "create_link": create_link,
    "update_link": update_link,
    "toggle_link": toggle_link,
    "duplicate_link": duplicate_link,
    "delete_link": delete_link,
    "create_event": create_event,
    "cancel_event": cancel_event,
    "reschedule_event": reschedule_event,
    "create_service": create_service,
    "add_service_provider": add_service_provider,
    "remove_service_provider": remove_service_provider,
    "create_block": create_block,
    "delete_block": delete_block,
    "sync_external_busy_times": sync_external_busy_times,
    "hold_slot": hold_slot,
    "release_hold": release_hold,
    "expire_hold": expire_hold,
    "complete_hold": complete_hold,
    "create_appointment": create_appointment,
    "cancel_appointment": cancel_appointment,
    "reschedule_appointment": reschedule_appointment,
    "create_webhook": create_webhook,
    "delete_webhook": delete_webhook,
    "rotate_webhook_secret": rotate_webhook_secret,
    "calendly_create_invitee": calendly_create_invitee,
    "calendly_cancel_event": calendly_cancel_event,
    "calendly_create_scheduling_link": calendly_create_scheduling_link,
    "calendly_create_webhook_subscription": calendly_create_webhook_subscription,
    "calendly_delete_webhook_subscription": calendly_delete_webhook_subscription,
}

# The stream a command most likely contends on, known before deciding: bookings of one link or
# service queue behind each other inside one process instead of colliding and re-deciding.
CONTENTION_KEYS: dict[str, Callable[[Any], str]] = {
    "create_event": _booking_key,
    "hold_slot": _booking_key,
    "create_appointment": _booking_key,
    "calendly_create_invitee": lambda cmd: f"link-{str(getattr(cmd, 'event_type', '')).rsplit('/', 1)[-1]}",
}
