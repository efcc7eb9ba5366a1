"""Queries: msgspec Structs, one per NATS subject `sched.query.<name>`.

A query's body is the HTTP endpoint's parameters plus `account_id` (the gateway fills it in from
the caller), and `min_position` to read one's own writes.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# A global log position (Postgres bigint): what `min_position` waits for.
Position = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# A parameter the handler requires: optional to the decoder, so that a missing one is named together
# with every other fault of the request, and documented as required.
RequiredText = Annotated[str | None, msgspec.Meta(extra={"required": True})]


def _one_of(*values: str) -> msgspec.Meta:
    """Document a text parameter's allowed values (the handler names a wrong one with the others)."""
    return msgspec.Meta(extra_json_schema={"enum": list(values)})


class Query(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every account-scoped query."""

    account_id: str
    min_position: Position | None = None


class LinkSlots(Query, frozen=True, kw_only=True):
    """A link's bookable slots in [from, until) (ISO-8601 datetimes; default now and 7 days on)."""

    link_id: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str | None = None


class ServiceSlots(Query, frozen=True, kw_only=True):
    """A service's slots by local date in `time_zone`; `until` (inclusive) or `limit` is required."""

    service_id: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str | None = None
    limit: int | None = None
    time_zone: str = "Etc/UTC"
    provider_ids: str | None = None


class EarliestSlot(Query, frozen=True, kw_only=True):
    """The first public slot of a service from now, within 366 days."""

    service_id: str
    time_zone: str = "Etc/UTC"
    provider_ids: str | None = None


class ListQuery(Query, frozen=True, kw_only=True):
    """One page of a list: opaque `before`/`after` cursors, `limit` 1 to 100."""

    before: str | None = None
    after: str | None = None
    limit: int = 20


class EventsList(ListQuery, frozen=True, kw_only=True):
    """Events filtered by `state` (confirmed, canceled, all) and `period` (past, upcoming, all)."""

    state: Annotated[str, _one_of("confirmed", "canceled", "all")] = "confirmed"
    period: Annotated[str, _one_of("past", "upcoming", "all")] = "upcoming"


class GetById(Query, frozen=True, kw_only=True):
    """One resource of the account by its id."""

    id: str


class WebhookDeliveries(ListQuery, frozen=True, kw_only=True):
    """One page of a webhook's delivery log, newest first."""

    webhook_id: str


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The account and user of an API token, by the token's SHA-256."""

    token_hash: str
    min_position: Position | None = None


class PublicAccount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whether an account exists (the public endpoints' `X-SavvyCal-Account`)."""

    account_id: str
    min_position: Position | None = None


class PublicLinkPage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An active link by its booking page address (`…/book/<scope slug>/<link slug>`); no token."""

    scope_slug: str
    link_slug: str
    min_position: Position | None = None


class BookingPageSlots(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An active link's slots for its booking page; a valid reschedule token frees its booking's own time."""

    link_id: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str | None = None
    reschedule_token: str | None = None
    min_position: Position | None = None


class AppointmentRescheduleSlots(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The slots an appointment's reschedule token may move it to: its service's, with its own provider, its
    own time free; `from` and `until` are local dates (inclusive) in `time_zone`."""

    reschedule_token: str
    from_: str | None = msgspec.field(default=None, name="from")
    until: str
    time_zone: str = "Etc/UTC"
    min_position: Position | None = None


class ManageBooking(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The booking a signed manage token names, for one action (`reschedule`, `cancel`, `view`)."""

    token: str
    action: str
    min_position: Position | None = None


class ProviderFeed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A provider's upcoming bookings as an iCalendar feed, by the feed's secret token."""

    token: str
    min_position: Position | None = None


class CalendlyQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every Calendly read: resource URIs are built from `base_url` (the caller's `…/calendly`)."""

    account_id: str
    base_url: str
    user_id: str | None = None
    min_position: Position | None = None


class CalendlyUsersMeQuery(CalendlyQuery, frozen=True, kw_only=True):
    """The user behind the token."""


class CalendlyGetQuery(CalendlyQuery, frozen=True, kw_only=True):
    """One Calendly resource by the uuid at the end of its URI."""

    uuid: str


class CalendlyInviteeGetQuery(CalendlyQuery, frozen=True, kw_only=True):
    """One invitee of a scheduled event."""

    event_uuid: str
    invitee_uuid: str


class CalendlyPageQuery(CalendlyQuery, frozen=True, kw_only=True):
    """Calendly's page parameters: `count` (1 to 100) and an opaque `page_token`."""

    count: int = 20
    page_token: str | None = None


class CalendlyEventTypesQuery(CalendlyPageQuery, frozen=True, kw_only=True):
    """The event types (links) a `user` hosts, or an `organization`'s, one page."""

    user: str | None = None
    organization: str | None = None
    active: bool | None = None
    admin_managed: bool | None = None
    user_availability_schedule: str | None = None
    sort: str | None = None


class CalendlyAvailableTimesQuery(CalendlyQuery, frozen=True, kw_only=True):
    """An `event_type`'s available start times in [start_time, end_time)."""

    event_type: RequiredText = None
    start_time: RequiredText = None
    end_time: RequiredText = None


class CalendlyMembershipsQuery(CalendlyPageQuery, frozen=True, kw_only=True):
    """The memberships of an `organization`, or of one `user`, optionally by `email` and `role`."""

    organization: str | None = None
    user: str | None = None
    email: str | None = None
    role: str | None = None


class CalendlyAvailabilitySchedulesQuery(CalendlyQuery, frozen=True, kw_only=True):
    """A `user`'s availability schedules."""

    user: RequiredText = None


class CalendlyBusyTimesQuery(CalendlyQuery, frozen=True, kw_only=True):
    """A `user`'s busy times in [start_time, end_time)."""

    user: RequiredText = None
    start_time: RequiredText = None
    end_time: RequiredText = None


class CalendlyScheduledEventsQuery(CalendlyPageQuery, frozen=True, kw_only=True):
    """The scheduled events of a `user` or an `organization`, filtered, one page."""

    user: str | None = None
    organization: str | None = None
    group: str | None = None
    invitee_email: str | None = None
    status: str | None = None
    min_start_time: str | None = None
    max_start_time: str | None = None
    sort: str | None = None


class CalendlyInviteesQuery(CalendlyPageQuery, frozen=True, kw_only=True):
    """The invitees of one scheduled event, optionally by `status` and `email`."""

    uuid: str
    status: str | None = None
    email: str | None = None
    sort: str | None = None


class CalendlyWebhookSubscriptionsQuery(CalendlyPageQuery, frozen=True, kw_only=True):
    """The webhook subscriptions of an `organization` (with `scope`, and `user` for scope user)."""

    organization: str | None = None
    scope: str | None = None
    user: str | None = None
    group: str | None = None
    sort: str | None = None
