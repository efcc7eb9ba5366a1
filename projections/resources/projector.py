"""Projector of resources: folds each event into its aggregate's row with the domain's own evolvers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg
import msgspec

from projections.runner import Projection
from shared.availability import parse_instant
from shared.domain.registry import StreamKind, stream_kind
from shared.eventstore import RecordedEvent
from shared.messages.events import ApiTokenIssued, Event

KINDS = ("account", "link", "event", "booking_intent", "service", "location", "block", "appointment", "webhook")
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def decode_state(kind: StreamKind, data: bytes) -> Any:
    decoder = _decoders.get(kind.state_type)
    if decoder is None:
        decoder = _decoders[kind.state_type] = msgspec.json.Decoder(kind.state_type)
    return decoder.decode(data)


def _at(text: str | None) -> datetime | None:
    return datetime.fromtimestamp(parse_instant(text), timezone.utc) if text else None


def columns(kind: str, state: Any) -> tuple[str | None, datetime | None, bool]:
    """(status, sort_at, deleted) of a resource: what lists filter and order by."""
    match kind:
        case "link":
            return (state.settings.state if state.settings else None), _at(state.created_at), state.deleted
        case "event":
            return state.state, _at(state.start_at), False
        case "appointment":
            return state.state, _at(state.created.start_at if state.created else None), False
        case "booking_intent":
            return state.state, _at(state.held.start_at if state.held else None), False
        case "block":
            return None, _at(state.created.start_at if state.created else None), state.deleted
        case "webhook":
            return None, _at(state.created_at), state.deleted
    return None, None, False


async def apply(conn: asyncpg.Connection, recorded: RecordedEvent, event: Event) -> None:
    kind = stream_kind(recorded.stream_id)
    if kind.kind not in KINDS:
        return
    resource_id = recorded.stream_id[len(kind.prefix):]
    row = await conn.fetchrow("select version, state from rm_resources where kind = $1 and id = $2",
                              kind.kind, resource_id)
    if row is not None and row["version"] >= recorded.version:
        return  # already applied: replaying an event changes nothing
    state = decode_state(kind, row["state"]) if row else kind.state_type()
    state = kind.fold(state, [event])
    status, sort_at, deleted = columns(kind.kind, state)
    await conn.execute(
        "insert into rm_resources values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (kind, id) do update set"
        " version = excluded.version, state = excluded.state, status = excluded.status,"
        " sort_at = excluded.sort_at, deleted = excluded.deleted",
        kind.kind, resource_id, recorded.account_id, recorded.version, msgspec.json.encode(state), status, sort_at,
        deleted)
    if isinstance(event, ApiTokenIssued):
        await conn.execute("insert into rm_tokens values ($1, $2, $3) on conflict do nothing",
                           event.token_hash, recorded.account_id, event.user_id)


PROJECTION = Projection(
    name="resources",
    tables=("rm_resources", "rm_tokens"),
    event_types=frozenset(t for t in (
        "account_created", "user_created", "api_token_issued", "team_scope_created",
        "link_created", "link_updated", "link_toggled", "link_deleted",
        "event_created", "event_canceled", "event_rescheduled",
        "slot_held", "hold_released", "hold_completed", "hold_expired",
        "service_created", "service_provider_added", "service_provider_removed", "location_referenced",
        "block_added", "block_removed", "block_created", "block_deleted",
        "appointment_created", "appointment_canceled",
        "webhook_created", "webhook_secret_rotated", "webhook_deleted",
    )),
    apply=apply,
)
