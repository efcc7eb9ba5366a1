"""Blocks (stream blk-<blk>): blocked time on a provider, a service, a service_provider or a location.

A provider block reserves time on the provider's calendar (reservations.reserve); any other block
is a BlockAdded on the service or location stream it is attached to, where bookings read it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability import iso_utc
from shared.domain.core import Decision, Env, EventTypes, block_stream, unchanged
from shared.domain.providers import ProviderState
from shared.domain.reservations import reserve
from shared.domain.service_catalogue import LocationState, ServiceState
from shared.domain.validation import Problems, check_text, instant
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import CreateBlock, DeleteBlock
from shared.messages.events import BlockAdded, BlockCreated, BlockDeleted, BlockRemoved, Event, TimeReleased

ATTACHMENT_TYPES = ("provider", "service", "service_provider", "location")


class BlockState(msgspec.Struct, frozen=True):
    """A block as folded from its stream."""

    created: BlockCreated | None = None
    deleted: bool = False


# What a blk-<id> stream holds: every type is folded, none is ignored.
BLOCK_STREAM_EVENTS = EventTypes(handles=frozenset({BlockCreated, BlockDeleted}))


def evolve_block(state: BlockState, event: Event) -> BlockState:
    """The block after one more event."""
    match event:
        case BlockCreated():
            return BlockState(created=event)
        case BlockDeleted():
            return msgspec.structs.replace(state, deleted=True)
    return unchanged(state, event, BLOCK_STREAM_EVENTS)


def block_resource(created: BlockCreated, deleted: bool = False) -> dict[str, Any]:
    """The block as the HTTP API returns it."""
    return {"object": "block", "id": created.block_id, "attachment_type": created.attachment_type,
            "attachment_id": created.attachment_id, "start_at": created.start_at, "end_at": created.end_at,
            "reason": created.reason, "created_at": created.created_at, "deleted": deleted}



def create_block(command: CreateBlock, target: ProviderState | ServiceState | LocationState | None,
                 attachment_stream: str, env: Env) -> Decision:
    """Block time on a provider, a service, a service_provider or a location."""
    problems = Problems()
    problems.check(command.attachment_type in ATTACHMENT_TYPES, "attachment_type",
                   "must be one of: provider, service, service_provider, location")
    start = instant(problems, "start_at", command.start_at)
    end = instant(problems, "end_at", command.end_at)
    if start is not None and end is not None:
        problems.check(end > start, "end_at", "must be after start_at")
    check_text(problems, "reason", command.reason, required=False, max_length=1000, multiline=True)
    problems.raise_if_any()
    assert start is not None and end is not None
    account_id = command.account_id or ""
    found = (
        (isinstance(target, ProviderState) and target.exists and target.account_id == account_id)
        or (isinstance(target, ServiceState) and target.created is not None
            and target.created.account_id == account_id
            and (command.attachment_type == "service" or command.attachment_id in target.providers))
        or (isinstance(target, LocationState) and target.account_id == account_id)
    )
    if not found:
        raise ValidationFailed.on("attachment_id", f"is not a known {command.attachment_type} of this account")
    block_id = env.new_id("blk")
    created = BlockCreated(block_id=block_id, account_id=account_id, attachment_type=command.attachment_type,
                           attachment_id=command.attachment_id, attachment_stream=attachment_stream,
                           start_at=iso_utc(start), end_at=iso_utc(end), reason=command.reason,
                           created_at=env.now_iso)
    changes: list[tuple[str, list[Event]]] = [(block_stream(block_id), [created])]
    if isinstance(target, ProviderState):
        changes += reserve([target.provider_id], block_id, "block", start, end)
    else:
        changes.append((attachment_stream, [BlockAdded(block_id=block_id, attachment_type=command.attachment_type,
                                                       attachment_id=command.attachment_id,
                                                       start_at=created.start_at, end_at=created.end_at)]))
    return Decision(changes, block_resource(created))


def delete_block(command: DeleteBlock, state: BlockState, env: Env) -> Decision:
    """Delete a block: its home stream records it, its attachment frees the time."""
    created = state.created
    if created is None or state.deleted or created.account_id != command.account_id:
        raise NotFound("block")
    removal: Event = (TimeReleased(provider_id=created.attachment_id, reservation_id=created.block_id)
                      if created.attachment_type == "provider" else BlockRemoved(block_id=created.block_id))
    return Decision([(block_stream(created.block_id), [BlockDeleted(block_id=created.block_id,
                                                                    deleted_at=env.now_iso)]),
                     (created.attachment_stream, [removal])], block_resource(created, deleted=True))
