"""Which state a stream folds into, by the prefix of its id; shared by commands and projections."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import reduce
from typing import Any, NamedTuple

from shared.domain import (
    accounts,
    appointments,
    blocks,
    holds,
    link_bookings,
    links,
    providers,
    service_catalogue,
    webhooks,
)
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
    StreamKind("event-", "event", link_bookings.BookedEventState, folding(link_bookings.evolve_event)),
    StreamKind("bi-", "booking_intent", holds.HoldState, folding(holds.evolve_hold)),
    StreamKind("service-", "service", service_catalogue.ServiceState,
               folding(service_catalogue.evolve_service)),
    StreamKind("sp-", "service_provider", service_catalogue.ServiceProviderState,
               folding(service_catalogue.evolve_service_provider)),
    StreamKind("location-", "location", service_catalogue.LocationState,
               folding(service_catalogue.evolve_location)),
    StreamKind("blk-", "block", blocks.BlockState, folding(blocks.evolve_block)),
    StreamKind("appt-", "appointment", appointments.AppointmentState,
               folding(appointments.evolve_appointment)),
    StreamKind("whk-", "webhook", webhooks.WebhookState, folding(webhooks.evolve)),
]


def stream_kind(stream_id: str) -> StreamKind:
    for kind in STREAM_KINDS:
        if stream_id.startswith(kind.prefix):
            return kind
    raise KeyError(f"no aggregate for stream {stream_id!r}")
