"""The table of every operation: one entry per command or query, with its HTTP routes."""

from __future__ import annotations

from typing import Any

from shared.catalogue.model import HttpRoute, Operation
from shared.messages import commands as c
from shared.messages import queries as q
from shared.messages import resources as r

_LOOKUP = ("validation_failed", "not_found")
_CHANGE = ("validation_failed", "not_found", "conflict")  # conflict: a command id reused, endless contention


def _command(
    name: str,
    request: type[Any],
    response: Any,
    summary: str,
    *http: HttpRoute,
    errors: tuple[str, ...] = _CHANGE,
) -> Operation:
    return Operation(name, "command", request, response, summary, tuple(http), errors)


def _query(
    name: str,
    request: type[Any],
    response: Any,
    summary: str,
    *http: HttpRoute,
    errors: tuple[str, ...] = _LOOKUP,
) -> Operation:
    return Operation(name, "query", request, response, summary, tuple(http), errors)


def _get(path: str, id_parameter: str | None = None, **options: Any) -> HttpRoute:
    fields = ((id_parameter, "id"),) if id_parameter else ()
    return HttpRoute("GET", path, path_fields=fields, **options)


def _calendly(path: str, method: str = "GET", status: int = 200) -> HttpRoute:
    return HttpRoute(method, f"/calendly/{path}", status, facade="calendly")


OPERATIONS: list[Operation] = [
    # --- accounts and tokens (NATS and the CLI only) ---
    _command(
        "create_account",
        c.CreateAccount,
        r.NewAccount,
        "Create an account with its first user, provider, scope and token.",
    ),
    _command("create_user", c.CreateUser, r.User, "Add a user (and their provider) to an account."),
    _command("issue_api_token", c.IssueApiToken, r.ApiToken, "Issue a personal API token (shown once)."),
    _command(
        "create_team_scope", c.CreateTeamScope, r.TeamScope, "Create a team scope with a slug and members."
    ),
    _query("whoami", q.WhoAmI, r.Caller, "The account and user of an API token.", errors=("unauthorized",)),
    _query(
        "account_exists",
        q.PublicAccount,
        r.KnownAccount,
        "Whether an account exists (public endpoints).",
        errors=("unauthorized",),
    ),
    _query(
        "me",
        q.GetById,
        r.Me,
        "The user behind the token.",
        HttpRoute("GET", "/v1/me", caller_fields=(("id", "user_id"),)),
    ),
    # --- scheduling links (seed 000) ---
    _query(
        "links_list", q.ListQuery, r.LinkList, "The account's links, one page.", HttpRoute("GET", "/v1/links")
    ),
    _command(
        "create_link",
        c.CreateLink,
        r.Link,
        "Create a scheduling link in the caller's personal or a team scope.",
        HttpRoute("POST", "/v1/links", 201),
        HttpRoute("POST", "/v1/scopes/{team_slug}/links", 201),
    ),
    _query("link_get", q.GetById, r.Link, "One link.", _get("/v1/links/{link_id}", "link_id")),
    _command(
        "update_link",
        c.UpdateLink,
        r.Link,
        "Change a link's settings.",
        HttpRoute("PATCH", "/v1/links/{link_id}"),
    ),
    _command(
        "toggle_link",
        c.ToggleLink,
        r.Link,
        "Switch a link between active and disabled.",
        HttpRoute("POST", "/v1/links/{link_id}/toggle"),
    ),
    _command(
        "duplicate_link",
        c.DuplicateLink,
        r.Link,
        'Copy a link into a new one named "<name> (copy)".',
        HttpRoute("POST", "/v1/links/{link_id}/duplicate"),
    ),
    _command(
        "delete_link",
        c.DeleteLink,
        r.Link,
        "Delete a link; answers the deleted link.",
        HttpRoute("DELETE", "/v1/links/{link_id}"),
    ),
    _query(
        "link_slots",
        q.LinkSlots,
        list[r.LinkSlot],
        "A link's slots in a window of at most 31 days.",
        HttpRoute("GET", "/v1/links/{link_id}/slots"),
    ),
    # --- events on links (seeds 001, 002) ---
    _command(
        "create_event",
        c.CreateEvent,
        r.BookedEvent,
        "Book an event on one of the link's slots.",
        HttpRoute("POST", "/v1/links/{link_id}/events"),
    ),
    _query(
        "events_list",
        q.EventsList,
        r.EventList,
        "The account's events by state and period, one page.",
        HttpRoute("GET", "/v1/events"),
    ),
    _query("event_get", q.GetById, r.BookedEvent, "One event.", _get("/v1/events/{event_id}", "event_id")),
    _command(
        "cancel_event",
        c.CancelEvent,
        r.BookedEvent,
        "Cancel an event.",
        HttpRoute("POST", "/v1/events/{event_id}/cancel"),
    ),
    _command(
        "reschedule_event",
        c.RescheduleEvent,
        r.BookedEvent,
        "Move an event to another of the link's slots.",
        HttpRoute("POST", "/v1/events/{event_id}/reschedule"),
    ),
    # --- providers and their calendars (seed 003) ---
    _command(
        "create_provider",
        c.CreateProvider,
        r.Provider,
        "Create a bookable provider.",
        HttpRoute("POST", "/v1/providers", 201),
    ),
    _query(
        "provider_get",
        q.GetById,
        r.Provider,
        "One provider with its schedule.",
        _get("/v1/providers/{provider_id}", "provider_id"),
    ),
    _command(
        "set_provider_schedule",
        c.SetProviderSchedule,
        r.Provider,
        "Set a provider's working hours and overrides.",
        HttpRoute("PUT", "/v1/providers/{provider_id}/schedule"),
    ),
    _command(
        "sync_external_busy_times",
        c.SyncExternalBusyTimes,
        r.SyncedBusyTimes,
        "Replace a provider's external busy times inside [from, until).",
        HttpRoute("PUT", "/v1/providers/{provider_id}/busy_times"),
    ),
    # --- services, blocks, holds and appointments (seed 003) ---
    _command(
        "create_service",
        c.CreateService,
        r.Service,
        "Create a service with its slot rules.",
        HttpRoute("POST", "/v1/services", 201),
    ),
    _query(
        "service_get",
        q.GetById,
        r.Service,
        "One service with its providers.",
        _get("/v1/services/{service_id}", "service_id"),
    ),
    _command(
        "add_service_provider",
        c.AddServiceProvider,
        r.ServiceProvider,
        "Offer a service by a provider.",
        HttpRoute("POST", "/v1/services/{service_id}/providers", 201),
    ),
    _command(
        "remove_service_provider",
        c.RemoveServiceProvider,
        r.ServiceProvider,
        "Stop offering a service by a provider.",
    ),
    _query(
        "service_slots",
        q.ServiceSlots,
        r.ServiceSlotsReply,
        "A service's slots, aggregated and per provider.",
        HttpRoute("GET", "/v1/services/{service_id}/slots"),
    ),
    _query(
        "public_service_slots",
        q.ServiceSlots,
        r.PublicServiceSlotsReply,
        "A service's public slots (public-bookings providers).",
        HttpRoute("GET", "/v1/public/services/{service_id}/slots", auth="account"),
        errors=("validation_failed", "not_found", "unauthorized"),
    ),
    _query(
        "earliest_slot",
        q.EarliestSlot,
        r.EarliestSlotReply,
        "A service's first public slot from now, or null.",
        HttpRoute("GET", "/v1/public/services/{service_id}/earliest_slot", auth="account"),
        errors=("validation_failed", "not_found", "unauthorized"),
    ),
    _command(
        "create_block",
        c.CreateBlock,
        r.Block,
        "Block time on a provider, service, service provider or location.",
        HttpRoute("POST", "/v1/blocks", 201),
    ),
    _command(
        "delete_block",
        c.DeleteBlock,
        r.Block,
        "Remove a block; answers the deleted block.",
        HttpRoute("DELETE", "/v1/blocks/{block_id}"),
    ),
    _command(
        "hold_slot",
        c.HoldSlot,
        r.BookingIntent,
        "Hold a slot of a service or a link for a few minutes (a booking intent).",
        HttpRoute("POST", "/v1/booking_intents", 201),
    ),
    _query(
        "booking_intent_get",
        q.GetById,
        r.BookingIntent,
        "One booking intent.",
        _get("/v1/booking_intents/{id}"),
    ),
    _command(
        "complete_hold",
        c.CompleteHold,
        r.COMPLETE_HOLD_REPLIES,
        "Turn a hold into an appointment or an event.",
        HttpRoute("POST", "/v1/booking_intents/{booking_intent_id}/complete"),
    ),
    _command(
        "release_hold",
        c.ReleaseHold,
        r.BookingIntent,
        "Abandon a hold.",
        HttpRoute("POST", "/v1/booking_intents/{booking_intent_id}/abandon"),
    ),
    _command(
        "expire_hold",
        c.ExpireHold,
        r.BookingIntent,
        "Expire a hold past its expires_at (the hold sweeper sends it).",
    ),
    _command(
        "create_appointment",
        c.CreateAppointment,
        r.Appointment,
        "Book an appointment on one of the service's slots.",
        HttpRoute("POST", "/v1/appointments", 201),
    ),
    _query("appointment_get", q.GetById, r.Appointment, "One appointment.", _get("/v1/appointments/{id}")),
    _command(
        "cancel_appointment",
        c.CancelAppointment,
        r.Appointment,
        "Cancel an appointment.",
        HttpRoute("POST", "/v1/appointments/{appointment_id}/cancel"),
    ),
    _command(
        "reschedule_appointment",
        c.RescheduleAppointment,
        r.Appointment,
        "Move an appointment to another of its service's slots, with the same provider.",
        HttpRoute("POST", "/v1/appointments/{appointment_id}/reschedule"),
    ),
    # --- the invitee's side (DESIGN.md section 9) ---
    _query("event_ics", q.GetById, r.CalendarFile, "One event as an iCalendar file (REQUEST, or CANCEL once canceled).",
           _get("/v1/events/{event_id}/ics", "event_id", media_type="text/calendar")),
    _query("appointment_ics", q.GetById, r.CalendarFile, "One appointment as an iCalendar file.",
           _get("/v1/appointments/{id}/ics", media_type="text/calendar")),
    _query("provider_feed_url", q.GetById, r.FeedUrl, "A provider's secret iCalendar feed URL.",
           _get("/v1/providers/{provider_id}/ical_url", "provider_id")),
    _query("provider_feed", q.ProviderFeed, r.CalendarFile,
           "A provider's upcoming bookings (the booking page serves it at …/ical/<token>.ics).",
           errors=("validation_failed", "not_found")),
    _query("public_link_page", q.PublicLinkPage, r.PublicLinkPage,
           "An active link by scope and link slug, for its booking page (no token)."),
    _query("booking_page_slots", q.BookingPageSlots, list[r.LinkSlot],
           "An active link's slots for its booking page; a reschedule token frees its booking's own time."),
    _query("appointment_reschedule_slots", q.AppointmentRescheduleSlots, r.PublicServiceSlotsReply,
           "The slots an appointment's reschedule token may move it to: its service's, with its own provider,"
           " its own time free.", errors=("validation_failed", "not_found", "forbidden")),
    _query("manage_booking", q.ManageBooking, r.ManagedBooking,
           "The booking a signed manage token names; 404 forged, 403 used or expired.",
           errors=("validation_failed", "not_found", "forbidden")),
    # --- webhooks ---
    _command(
        "create_webhook",
        c.CreateWebhook,
        r.NewWebhook,
        "Subscribe a URL to event types; the secret is shown once.",
        HttpRoute("POST", "/v1/webhooks", 201),
    ),
    _query(
        "webhooks_list",
        q.ListQuery,
        r.WebhookList,
        "The account's webhooks, one page.",
        HttpRoute("GET", "/v1/webhooks"),
    ),
    _query(
        "webhook_get", q.GetById, r.Webhook, "One webhook.", _get("/v1/webhooks/{webhook_id}", "webhook_id")
    ),
    _command(
        "delete_webhook",
        c.DeleteWebhook,
        r.Webhook,
        "Delete a webhook and its secrets.",
        HttpRoute("DELETE", "/v1/webhooks/{webhook_id}"),
    ),
    _query(
        "webhook_deliveries",
        q.WebhookDeliveries,
        r.DeliveryList,
        "A webhook's deliveries and attempts, newest first.",
        HttpRoute("GET", "/v1/webhooks/{webhook_id}/deliveries"),
    ),
    _command(
        "rotate_webhook_secret",
        c.RotateWebhookSecret,
        r.RotatedWebhook,
        "A new signing secret; the old one signs for a grace period.",
        HttpRoute("POST", "/v1/webhooks/{webhook_id}/rotate_secret"),
    ),
    # --- Calendly's availability API (seed 004) ---
    _query(
        "calendly_users_me",
        q.CalendlyUsersMeQuery,
        r.CalendlyUserReply,
        "Calendly: the current user.",
        _calendly("users/me"),
    ),
    _query(
        "calendly_event_types",
        q.CalendlyEventTypesQuery,
        r.CalendlyEventTypes,
        "Calendly: a user's or an organization's event types.",
        _calendly("event_types"),
    ),
    _query(
        "calendly_event_type_available_times",
        q.CalendlyAvailableTimesQuery,
        r.CalendlyAvailableTimes,
        "Calendly: an event type's available times.",
        _calendly("event_type_available_times"),
    ),
    _query(
        "calendly_organization_memberships",
        q.CalendlyMembershipsQuery,
        r.CalendlyMemberships,
        "Calendly: an organization's memberships.",
        _calendly("organization_memberships"),
    ),
    _query(
        "calendly_user_availability_schedules",
        q.CalendlyAvailabilitySchedulesQuery,
        r.CalendlyAvailabilitySchedules,
        "Calendly: a user's availability schedules.",
        _calendly("user_availability_schedules"),
    ),
    _query(
        "calendly_user_busy_times",
        q.CalendlyBusyTimesQuery,
        r.CalendlyBusyTimes,
        "Calendly: a user's busy times.",
        _calendly("user_busy_times"),
    ),
    # --- Calendly: a GET for every URI it hands out, the scheduled events, the Scheduling API ---
    _query("calendly_user_get", q.CalendlyGetQuery, r.CalendlyUserReply, "Calendly: one user.",
           _calendly("users/{uuid}")),
    _query("calendly_organization_get", q.CalendlyGetQuery, r.CalendlyOrganizationReply,
           "Calendly: the organization (the account).", _calendly("organizations/{uuid}")),
    _query("calendly_organization_membership_get", q.CalendlyGetQuery, r.CalendlyMembershipReply,
           "Calendly: one organization membership.", _calendly("organization_memberships/{uuid}")),
    _query("calendly_event_type_get", q.CalendlyGetQuery, r.CalendlyEventTypeReply, "Calendly: one event type.",
           _calendly("event_types/{uuid}")),
    _query("calendly_user_availability_schedule_get", q.CalendlyGetQuery, r.CalendlyAvailabilityScheduleReply,
           "Calendly: one availability schedule.", _calendly("user_availability_schedules/{uuid}")),
    _query("calendly_scheduled_events", q.CalendlyScheduledEventsQuery, r.CalendlyScheduledEvents,
           "Calendly: a user's or an organization's scheduled events, filtered, one page.",
           _calendly("scheduled_events")),
    _query("calendly_scheduled_event_get", q.CalendlyGetQuery, r.CalendlyScheduledEventReply,
           "Calendly: one scheduled event.", _calendly("scheduled_events/{uuid}")),
    _query("calendly_event_invitees", q.CalendlyInviteesQuery, r.CalendlyInvitees,
           "Calendly: a scheduled event's invitees.", _calendly("scheduled_events/{uuid}/invitees")),
    _query("calendly_event_invitee_get", q.CalendlyInviteeGetQuery, r.CalendlyInviteeReply,
           "Calendly: one invitee of a scheduled event.",
           _calendly("scheduled_events/{event_uuid}/invitees/{invitee_uuid}")),
    _command("calendly_create_invitee", c.CalendlyCreateInvitee, r.CalendlyInviteeReply,
             "Calendly: book an invitee on an event type at a start time (the SavvyCal booking's command).",
             _calendly("invitees", "POST", 201)),
    _command("calendly_cancel_event", c.CalendlyCancelEvent, r.CalendlyCancellationReply,
             "Calendly: cancel a scheduled event.", _calendly("scheduled_events/{uuid}/cancellation", "POST", 201)),
    _command("calendly_create_scheduling_link", c.CalendlyCreateSchedulingLink, r.CalendlySchedulingLinkReply,
             "Calendly: a single-use booking link of an event type.", _calendly("scheduling_links", "POST", 201)),
    _command("calendly_create_webhook_subscription", c.CalendlyCreateWebhookSubscription,
             r.CalendlyWebhookSubscriptionReply, "Calendly: subscribe a URL to invitee.created / invitee.canceled.",
             _calendly("webhook_subscriptions", "POST", 201)),
    _query("calendly_webhook_subscriptions", q.CalendlyWebhookSubscriptionsQuery, r.CalendlyWebhookSubscriptions,
           "Calendly: the organization's (or a user's) webhook subscriptions.", _calendly("webhook_subscriptions")),
    _query("calendly_webhook_subscription_get", q.CalendlyGetQuery, r.CalendlyWebhookSubscriptionReply,
           "Calendly: one webhook subscription.", _calendly("webhook_subscriptions/{uuid}")),
    _command("calendly_delete_webhook_subscription", c.CalendlyDeleteWebhookSubscription, r.CalendlyNoContent,
             "Calendly: delete a webhook subscription (204).",
             _calendly("webhook_subscriptions/{uuid}", "DELETE", 204)),
]

CATALOGUE: dict[str, Operation] = {op.name: op for op in OPERATIONS}


def commands() -> list[Operation]:
    """Every command, in catalogue order."""
    return [op for op in OPERATIONS if op.kind == "command"]


def queries() -> list[Operation]:
    """Every query, in catalogue order."""
    return [op for op in OPERATIONS if op.kind == "query"]


def routes() -> list[tuple[Operation, HttpRoute]]:
    """Every HTTP route with its operation, in catalogue order."""
    return [(op, route) for op in OPERATIONS for route in op.http]
