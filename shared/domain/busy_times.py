"""External busy times: a calendar-sync service replaces a provider's connected-calendar busy intervals.

They land on the provider's stream (provider-<id>) and its calendar folds them (reservations.Calendar),
so a booking is decided against them like against any other reservation.
"""

from __future__ import annotations

import msgspec

from shared.availability import iso_utc, parse_instant
from shared.domain.core import Decision, Env, provider_stream
from shared.domain.providers import ProviderState, require_provider
from shared.domain.validation import Problems, instant
from shared.messages.commands import SyncExternalBusyTimes
from shared.messages.events import BusyInterval, ExternalBusyTimesSynced


def sync_external_busy_times(command: SyncExternalBusyTimes, provider: ProviderState, env: Env) -> Decision:
    """Replace the provider's connected-calendar busy times inside [from, until)."""
    require_provider(provider, command.account_id)
    problems = Problems()
    start = instant(problems, "from", command.from_)
    end = instant(problems, "until", command.until)
    if start is not None and end is not None:
        problems.check(end > start, "until", "must be after from")
        problems.check(end - start <= 400 * 86400, "until", "must be at most 400 days after from")
    problems.check(len(command.busy_times) <= 5000, "busy_times", "must list at most 5000 intervals")
    for i, busy in enumerate(command.busy_times):
        a = instant(problems, f"busy_times[{i}].start_at", busy.start_at)
        b = instant(problems, f"busy_times[{i}].end_at", busy.end_at)
        if a is not None and b is not None:
            problems.check(b > a, f"busy_times[{i}].end_at", "must be after start_at")
    problems.raise_if_any()
    assert start is not None and end is not None
    event = ExternalBusyTimesSynced(
        provider_id=provider.provider_id, from_at=iso_utc(start), until_at=iso_utc(end),
        busy_times=[BusyInterval(start_at=iso_utc(parse_instant(b.start_at)), end_at=iso_utc(parse_instant(b.end_at)))
                    for b in command.busy_times])
    inside = [b for b in event.busy_times if parse_instant(b.end_at) > start and parse_instant(b.start_at) < end]
    return Decision([(provider_stream(provider.provider_id), [event])],
                    {"provider_id": provider.provider_id, "from": event.from_at, "until": event.until_at,
                     "busy_times": msgspec.to_builtins(inside)})
