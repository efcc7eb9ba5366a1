"""Which state a stream folds into, by the prefix of its id; shared by commands and projections."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import reduce
from typing import Any, NamedTuple

from shared.domain import accounts, bookings, links, providers, services, webhooks
from shared.messages.events import Event

Fold = Callable[[Any, Iterable[Event]], Any]


def folding(evolve: Callable[[Any, Event], Any]) -> Fold:
    """A fold that applies `evolve` event by event."""
    return lambda state, events: reduce(evolve, events, state)


class StreamKind(NamedTuple):
    prefix: str
    kind: str
    state_type: type
    fold: Fold


# "linkslug-" before "link-": the first matching prefix wins.
STREAM_KINDS: list[StreamKind] = [
    StreamKind("account-", "account", accounts.AccountState, folding(accounts.evolve)),
    StreamKind("provider-", "provider", providers.ProviderState, providers.fold),
    StreamKind("linkslug-", "link_slug", links.SlugState, folding(links.evolve_slug)),
    StreamKind("link-", "link", links.LinkState, folding(links.evolve)),
    StreamKind("event-", "event", bookings.BookedEventState, folding(bookings.evolve_event)),
    StreamKind("bi-", "booking_intent", bookings.HoldState, folding(bookings.evolve_hold)),
    StreamKind("service-", "service", services.ServiceState, folding(services.evolve_service)),
    StreamKind("sp-", "service_provider", services.ServiceProviderState,
               folding(services.evolve_service_provider)),
    StreamKind("location-", "location", services.LocationState, folding(services.evolve_location)),
    StreamKind("blk-", "block", services.BlockState, folding(services.evolve_block)),
    StreamKind("appt-", "appointment", services.AppointmentState, folding(services.evolve_appointment)),
    StreamKind("whk-", "webhook", webhooks.WebhookState, folding(webhooks.evolve)),
]


def stream_kind(stream_id: str) -> StreamKind:
    for kind in STREAM_KINDS:
        if stream_id.startswith(kind.prefix):
            return kind
    raise KeyError(f"no aggregate for stream {stream_id!r}")
