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
from shared.domain.core import EventTypes
from shared.messages.events import Event

Fold = Callable[[Any, Iterable[Event]], Any]


def folding(evolve: Callable[[Any, Event], Any]) -> Fold:
    """A fold that applies `evolve` event by event."""
    return lambda state, events: reduce(evolve, events, state)


class StreamKind(NamedTuple):
    """One aggregate's streams: id prefix, the state they fold into, and what the fold does with each type."""

    prefix: str
    kind: str
    state_type: type
    fold: Fold
    events: EventTypes


# "linkslug-" before "link-": the first matching prefix wins.
STREAM_KINDS: list[StreamKind] = [
    StreamKind("account-", "account", accounts.AccountState,
               folding(accounts.evolve), accounts.ACCOUNT_STREAM_EVENTS),
    StreamKind("provider-", "provider", providers.ProviderState,
               providers.fold, providers.PROVIDER_STREAM_EVENTS),
    StreamKind("linkslug-", "link_slug", links.SlugState,
               folding(links.evolve_slug), links.SLUG_STREAM_EVENTS),
    StreamKind("scopeslug-", "scope_slug", links.SlugState,
               folding(links.evolve_slug), links.SLUG_STREAM_EVENTS),
    StreamKind("link-", "link", links.LinkState,
               folding(links.evolve), links.LINK_STREAM_EVENTS),
    StreamKind("event-", "event", link_bookings.BookedEventState,
               folding(link_bookings.evolve_event), link_bookings.BOOKING_STREAM_EVENTS),
    StreamKind("bi-", "booking_intent", holds.HoldState,
               folding(holds.evolve_hold), holds.HOLD_STREAM_EVENTS),
    StreamKind("service-", "service", service_catalogue.ServiceState,
               folding(service_catalogue.evolve_service), service_catalogue.SERVICE_STREAM_EVENTS),
    StreamKind("sp-", "service_provider", service_catalogue.ServiceProviderState,
               folding(service_catalogue.evolve_service_provider), service_catalogue.SERVICE_PROVIDER_STREAM_EVENTS),
    StreamKind("location-", "location", service_catalogue.LocationState,
               folding(service_catalogue.evolve_location), service_catalogue.LOCATION_STREAM_EVENTS),
    StreamKind("blk-", "block", blocks.BlockState,
               folding(blocks.evolve_block), blocks.BLOCK_STREAM_EVENTS),
    StreamKind("appt-", "appointment", appointments.AppointmentState,
               folding(appointments.evolve_appointment), appointments.APPOINTMENT_STREAM_EVENTS),
    StreamKind("whk-", "webhook", webhooks.WebhookState,
               folding(webhooks.evolve), webhooks.WEBHOOK_STREAM_EVENTS),
]


def stream_kind(stream_id: str) -> StreamKind:
    """The aggregate a stream belongs to, by the prefix of its id."""
    for kind in STREAM_KINDS:
        if stream_id.startswith(kind.prefix):
            return kind
    raise KeyError(f"no aggregate for stream {stream_id!r}")
