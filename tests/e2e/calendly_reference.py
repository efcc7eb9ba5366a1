"""Calendly's API v2 resources as its reference gives them, written independently of `shared/messages`.

Required fields have no default, enums are Literals, nullable fields are `X | None`; unknown keys
are allowed (Calendly adds fields over time). A response that decodes into these is what a client
generated from Calendly's OpenAPI document expects.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")


class Ref(msgspec.Struct, kw_only=True):
    """Base: keyword-only, unknown keys ignored."""


class Pagination(Ref, kw_only=True):
    count: int
    next_page: str | None
    previous_page: str | None
    next_page_token: str | None
    previous_page_token: str | None


class User(Ref, kw_only=True):
    uri: str
    name: str
    slug: str
    email: str
    scheduling_url: str
    timezone: str
    time_notation: Literal["12h", "24h"]
    avatar_url: str | None
    created_at: str
    updated_at: str
    current_organization: str
    resource_type: Literal["User"]
    locale: str


class Organization(Ref, kw_only=True):
    uri: str
    name: str
    slug: str
    status: str
    timezone: str
    created_at: str
    updated_at: str
    plan: Literal["basic", "essentials", "standard", "professional", "teams", "enterprise"]
    stage: Literal["trial", "free", "paid"]


class Membership(Ref, kw_only=True):
    uri: str
    role: Literal["user", "admin", "owner"]
    user: User
    organization: str
    created_at: str
    updated_at: str


class Profile(Ref, kw_only=True):
    type: Literal["User", "Team"]
    name: str
    owner: str


class EventType(Ref, kw_only=True):
    uri: str
    name: str
    active: bool
    booking_method: Literal["instant", "poll"]
    slug: str
    scheduling_url: str
    duration: int
    duration_options: list[int] | None
    kind: Literal["solo", "group"]
    pooling_type: Literal["round_robin", "collective", "multi_pool"] | None
    type: Literal["StandardEventType", "AdhocEventType"]
    color: str
    created_at: str
    updated_at: str
    internal_note: str
    description_plain: str
    description_html: str
    profile: Profile | None
    secret: bool
    deleted_at: str | None
    admin_managed: bool
    locations: list[dict[str, Any]] | None
    position: int
    custom_questions: list[dict[str, Any]]
    kind_description: Literal["Collective", "Group", "One-on-One", "Round Robin"]
    locale: str
    start_time_increment: int | None
    before_buffer: int
    after_buffer: int


class AvailableTime(Ref, kw_only=True):
    status: Literal["available"]
    invitees_remaining: int
    start_time: str
    scheduling_url: str


class BusyEvent(Ref, kw_only=True):
    uri: str


class BusyTime(Ref, kw_only=True):
    type: Literal["calendly", "external"]
    start_time: str
    end_time: str
    buffered_start_time: str | None = None
    buffered_end_time: str | None = None
    event: BusyEvent | None = None


class Interval(Ref, kw_only=True):
    from_: str = msgspec.field(name="from")
    to: str


class Rule(Ref, kw_only=True):
    type: Literal["wday", "date"]
    intervals: list[Interval]
    wday: Literal["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] | None = None
    date: str | None = None


class Schedule(Ref, kw_only=True):
    uri: str
    default: bool
    name: str
    user: str
    timezone: str
    rules: list[Rule]


class Counter(Ref, kw_only=True):
    total: int
    active: int
    limit: int


class EventMembership(Ref, kw_only=True):
    user: str


class Cancellation(Ref, kw_only=True):
    canceled_by: str
    reason: str | None
    canceler_type: Literal["host", "invitee"]


class ScheduledEvent(Ref, kw_only=True):
    uri: str
    name: str
    status: Literal["active", "canceled"]
    start_time: str
    end_time: str
    event_type: str
    location: dict[str, Any]
    invitees_counter: Counter
    created_at: str
    updated_at: str
    event_memberships: list[EventMembership]
    event_guests: list[dict[str, Any]]
    cancellation: Cancellation | None = None


class Tracking(Ref, kw_only=True):
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_content: str | None
    utm_term: str | None
    salesforce_uuid: str | None


class Invitee(Ref, kw_only=True):
    uri: str
    email: str
    first_name: str | None
    last_name: str | None
    name: str
    status: Literal["active", "canceled"]
    questions_and_answers: list[dict[str, Any]]
    timezone: str | None
    event: str
    created_at: str
    updated_at: str
    tracking: Tracking
    text_reminder_number: str | None
    rescheduled: bool
    old_invitee: str | None
    new_invitee: str | None
    cancel_url: str
    reschedule_url: str
    routing_form_submission: str | None
    payment: dict[str, Any] | None
    no_show: dict[str, Any] | None
    reconfirmation: dict[str, Any] | None
    cancellation: Cancellation | None = None


class WebhookSubscription(Ref, kw_only=True):
    uri: str
    callback_url: str
    created_at: str
    updated_at: str
    retry_started_at: str | None
    state: Literal["active", "disabled"]
    events: list[Literal["invitee.created", "invitee.canceled", "routing_form_submission.created"]]
    scope: Literal["user", "organization", "group"]
    organization: str
    user: str | None
    creator: str | None


class InviteePayload(Invitee, kw_only=True):
    """An `invitee.*` webhook's payload: the Invitee with its scheduled event in full."""

    scheduled_event: ScheduledEvent


class WebhookPayload(Ref, kw_only=True):
    """The body Calendly POSTs to a webhook subscription's callback URL."""

    event: Literal["invitee.created", "invitee.canceled"]
    created_at: str
    created_by: str
    payload: InviteePayload


class Error(Ref, kw_only=True):
    title: str
    message: str
    details: list[dict[str, str]] | None = None


class One(Ref, Generic[T], kw_only=True):
    resource: T


class Many(Ref, Generic[T], kw_only=True):
    collection: list[T]
    pagination: Pagination


class Plain(Ref, Generic[T], kw_only=True):
    collection: list[T]


def decode(body: bytes, type_: Any) -> Any:
    """The body as Calendly's reference types it (a DecodeError names the first field that breaks it)."""
    return msgspec.json.decode(body, type=type_)
