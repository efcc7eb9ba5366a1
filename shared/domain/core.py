"""What every decider shares: the environment it may read and the decision it returns."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from shared.ids import new_id
from shared.messages.events import Event


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with `Z`, second precision, as the seeds print timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Env:
    """The only inputs a decider takes besides the command and state: time, ids and secrets.

    Passed in so that deciding stays pure and tests can fix every value.
    """

    now: datetime
    new_id: Callable[[str], str] = new_id
    new_secret: Callable[[], str] = field(default=lambda: "sched_" + secrets.token_urlsafe(32))
    public_url: str = "http://127.0.0.1:8000/book"
    webhook_allow_loopback: bool = False  # Settings.webhook_allow_loopback: loopback webhook URLs allowed
    signing_secret: str = ""  # Settings.signing_secret: signs the manage links

    @property
    def now_iso(self) -> str:
        """`now` as the ISO-8601 UTC text events carry."""
        return iso_z(self.now)


class Decision(NamedTuple):
    """The events to append, per stream, and the command's result (the resource the API returns).

    `stored_result` replaces `result` in the idempotency record when the result holds a secret
    that must not be kept (an API token is shown once).
    """

    changes: list[tuple[str, list[Event]]]
    result: dict[str, Any]
    stored_result: dict[str, Any] | None = None
    guards: tuple[str, ...] = ()  # streams read but not written whose version must not have moved


S = TypeVar("S")


class EventTypes(NamedTuple):
    """Which event types a fold or read model applies (`handles`) and which it leaves alone on purpose.

    Every event type that can appear on an aggregate's streams is in one of the two sets, for the
    command-side fold and for each read model of the aggregate (tests/unit/test_event_homes.py).
    """

    handles: frozenset[type[Event]]
    ignores: frozenset[type[Event]] = frozenset()

    @property
    def declared(self) -> frozenset[type[Event]]:
        """Handled or ignored: every type the fold knows what to do with."""
        return self.handles | self.ignores


class UnfoldedEvent(TypeError):
    """A fold declares it handles an event type, yet no case of it applied the event (a missing case)."""


def unchanged(state: S, event: Event, types: EventTypes) -> S:
    """`state` as it was: the event is one its fold ignores on purpose, or another aggregate's.

    Folds read one stream each, so another aggregate's event only gets here from a caller that
    asks on purpose (the account directory ignores a link's events). A type in `types.handles`
    must have had its case: reaching here with one is a bug, and raises.
    """
    if type(event) in types.handles:
        raise UnfoldedEvent(f"{type(event).__name__} is declared handled but no case folded it")
    return state


def account_stream(account_id: str) -> str:
    """The account directory's stream: users, API tokens, scopes."""
    return f"account-{account_id}"


def provider_stream(provider_id: str) -> str:
    """A provider's stream: its schedule and every reservation on its calendar (the booking boundary)."""
    return f"provider-{provider_id}"


def link_stream(link_id: str) -> str:
    """A link's stream: its settings and lifecycle."""
    return f"link-{link_id}"


def scope_slug_stream(slug: str) -> str:
    """The reservation stream that keeps a scope slug (personal or team) unique across every account.

    The booking page is `…/book/<scope slug>/<link slug>`, so a scope slug names one scope system-wide.
    It holds the reservation stream's event (`LinkSlugClaimed`, its `link_id` the scope's id).
    """
    return f"scopeslug-{slug}"


def link_slug_stream(account_id: str, slug: str) -> str:
    """The reservation stream that keeps a link slug unique in its account."""
    return f"linkslug-{account_id}-{slug}"


def event_stream(event_id: str) -> str:
    """A link event's stream: its booking, reschedules and cancellation."""
    return f"event-{event_id}"


def hold_stream(booking_intent_id: str) -> str:
    """A booking intent's stream: the hold and how it ended."""
    return f"bi-{booking_intent_id}"


def service_stream(service_id: str) -> str:
    """A service's stream: its settings, providers, and service and service_provider blocks."""
    return f"service-{service_id}"


def service_provider_stream(service_provider_id: str) -> str:
    """A service_provider's stream: which service and provider it joins."""
    return f"sp-{service_provider_id}"


def location_stream(account_id: str, location_id: str) -> str:
    """A location's stream: the blocks on it."""
    return f"location-{account_id}-{location_id}"


def block_stream(block_id: str) -> str:
    """A block's own stream: its creation and deletion."""
    return f"blk-{block_id}"


def appointment_stream(appointment_id: str) -> str:
    """An appointment's stream: its booking and cancellation."""
    return f"appt-{appointment_id}"


def webhook_stream(webhook_id: str) -> str:
    """A webhook subscription's stream: its creation, secret rotations and deletion."""
    return f"whk-{webhook_id}"
