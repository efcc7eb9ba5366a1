"""Projector of resources: folds each event into its aggregate's row with the domain's own evolvers."""

from __future__ import annotations

from datetime import UTC, datetime
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
    """An aggregate's state as stored in its resources row (one cached decoder per state type)."""
    decoder = _decoders.get(kind.state_type)
    if decoder is None:
        decoder = _decoders[kind.state_type] = msgspec.json.Decoder(kind.state_type)
    return decoder.decode(data)


def _at(text: str | None) -> datetime | None:
    return datetime.fromtimestamp(parse_instant(text), UTC) if text else None


def columns(kind: str, state: Any) -> tuple[str | None, datetime | None, bool]:
    """(status, sort_at, deleted) of a resource: what lists filter and order by."""
    match kind:
        case "link":
            return (state.settings.state if state.settings else None), _at(state.created_at), state.deleted
        case "event":
            return state.state, _at(state.start_at), False
        case "appointment":
            return state.state, _at(state.start_at or None), False
        case "booking_intent":
            return state.state, _at(state.held.start_at if state.held else None), False
        case "block":
            return None, _at(state.created.start_at if state.created else None), state.deleted
        case "webhook":
            return None, _at(state.created_at), state.deleted
    return None, None, False


_UPSERT = (
    "insert into rm_resources values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (kind, id) do update set"
    " version = excluded.version, state = excluded.state, status = excluded.status,"
    " sort_at = excluded.sort_at, deleted = excluded.deleted"
)


async def apply(conn: asyncpg.Connection, batch: list[tuple[RecordedEvent, Event]]) -> None:
    """Fold a batch into its resources: one read of the current states, one pipelined write back."""
    grouped: dict[tuple[str, str], list[tuple[RecordedEvent, Event]]] = {}
    for recorded, event in batch:
        kind = stream_kind(recorded.stream_id)
        if kind.kind in KINDS:
            grouped.setdefault((kind.kind, recorded.stream_id[len(kind.prefix):]), []).append((recorded, event))
    if not grouped:
        return
    keys = list(grouped)
    rows = await conn.fetch(
        "select r.kind, r.id, r.version, r.state from rm_resources r"
        " join unnest($1::text[], $2::text[]) as k(kind, id) on r.kind = k.kind and r.id = k.id",
        [k for k, _ in keys], [i for _, i in keys])
    current = {(r["kind"], r["id"]): r for r in rows}
    writes, tokens = [], []
    for (kind_name, resource_id), items in grouped.items():
        kind = stream_kind(items[0][0].stream_id)
        row = current.get((kind_name, resource_id))
        applied = row["version"] if row else 0
        fresh = [(recorded, event) for recorded, event in items if recorded.version > applied]
        if not fresh:
            continue  # already applied: replaying events changes nothing
        state = kind.fold(decode_state(kind, row["state"]) if row else kind.state_type(), [e for _, e in fresh])
        status, sort_at, deleted = columns(kind_name, state)
        last = fresh[-1][0]
        writes.append((kind_name, resource_id, last.account_id, last.version, msgspec.json.encode(state), status,
                       sort_at, deleted))
        tokens += [(e.token_hash, r.account_id, e.user_id) for r, e in fresh if isinstance(e, ApiTokenIssued)]
    if writes:
        await conn.executemany(_UPSERT, writes)
    if tokens:
        await conn.executemany("insert into rm_tokens values ($1, $2, $3) on conflict do nothing", tokens)


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
        "appointment_created", "appointment_canceled", "appointment_rescheduled",
        "webhook_created", "webhook_secret_rotated", "webhook_deleted",
    )),
    apply=apply,
    kinds=frozenset(KINDS),  # every event of these streams is folded, none ignored; other kinds have no resource
)
