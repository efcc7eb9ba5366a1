"""The AsyncAPI 3 document of the NATS side, generated from the catalogue and the event union.

Every `sched.cmd.*` and `sched.query.*` subject is a request/reply operation with its request
and reply schemas; every event type is a channel of the JetStream stream SCHED_EVENTS, whose
message is the envelope with that event's `data`.
"""

from __future__ import annotations

from typing import Any, get_args

from shared.catalogue.model import Operation
from shared.catalogue.operations import OPERATIONS
from shared.catalogue.schemas import components, response_schemas
from shared.domain.registry import STREAM_KINDS
from shared.envelope import ErrorReply
from shared.messages.events import DomainEvent

ERROR_REPLY = {"$ref": "#/components/schemas/ErrorReply"}
def aggregates_of(event: type[Any]) -> list[str]:
    """The stream prefixes (`sched.events.<aggregate>.…`) whose streams hold this event type."""
    return [kind.prefix.rstrip("-") for kind in STREAM_KINDS if event in kind.events.declared]


def _envelope(data_ref: dict[str, Any]) -> dict[str, Any]:
    """The SCHED_EVENTS envelope (DESIGN.md section 4) carrying one event type's data."""
    return {"type": "object",
            "required": ["id", "type", "stream_id", "version", "position", "occurred_at", "account_id", "data"],
            "properties": {"id": {"type": "string", "description": "the event id, also the Nats-Msg-Id"},
                           "type": {"type": "string"}, "stream_id": {"type": "string"},
                           "version": {"type": "integer"}, "position": {"type": "integer"},
                           "occurred_at": {"type": "string", "format": "date-time"},
                           "account_id": {"type": "string"}, "data": data_ref}}


def _reply(operation: Operation, result_ref: dict[str, Any]) -> dict[str, Any]:
    if operation.kind == "query":
        return {"oneOf": [result_ref, ERROR_REPLY]}
    success = {"type": "object", "required": ["ok", "result", "events", "position"], "properties": {
        "ok": {"const": True}, "result": result_ref, "events": {"type": "array", "items": {"type": "string"}},
        "position": {"type": "integer"}}}
    return {"oneOf": [success, ERROR_REPLY]}


def asyncapi_document(prefix: str = "sched", stream: str = "SCHED_EVENTS") -> dict[str, Any]:
    """The AsyncAPI 3.0 document: every command and query subject, and every event of the feed."""
    request_refs, named = components([op.request for op in OPERATIONS])
    responses, more = response_schemas(OPERATIONS)
    named.update(more)
    _, more = components([ErrorReply])
    named.update(more)
    events = list(get_args(DomainEvent))
    event_refs, more = components(events)
    named.update(more)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for op, request_ref, result_ref in zip(OPERATIONS, request_refs, responses, strict=True):
        messages[f"{op.name}_request"] = {"name": f"{op.name}_request", "payload": request_ref}
        messages[f"{op.name}_reply"] = {"name": f"{op.name}_reply", "payload": _reply(op, result_ref)}
        channels[op.name] = {"address": op.subject(prefix), "description": op.summary,
                             "messages": {"request": {"$ref": f"#/components/messages/{op.name}_request"}}}
        channels[f"{op.name}_reply"] = {"address": None, "description": "the request's reply inbox",
                                        "messages": {"reply": {"$ref": f"#/components/messages/{op.name}_reply"}}}
        operations[op.name] = {
            "action": "receive", "summary": op.summary, "channel": {"$ref": f"#/channels/{op.name}"},
            "messages": [{"$ref": f"#/channels/{op.name}/messages/request"}],
            # No `address`: NATS sends the reply to the request's own reply inbox, not to a fixed subject.
            "reply": {"channel": {"$ref": f"#/channels/{op.name}_reply"},
                      "messages": [{"$ref": f"#/channels/{op.name}_reply/messages/reply"}]}}
    for event, event_ref in zip(events, event_refs, strict=True):
        tag = str(event.__struct_config__.tag)
        messages[f"event_{tag}"] = {"name": tag, "payload": _envelope(event_ref),
                                    "headers": {"type": "object", "properties": {"Nats-Msg-Id": {"type": "string"}}}}
        channels[f"events_{tag}"] = {
            "address": f"{prefix}.events.{{aggregate}}.{tag}",
            "description": f"`{tag}` events on the JetStream stream {stream}",
            "parameters": {"aggregate": {"enum": aggregates_of(event), "description": "the stream id's prefix"}},
            "messages": {"event": {"$ref": f"#/components/messages/event_{tag}"}}}
        operations[f"publish_{tag}"] = {"action": "send", "channel": {"$ref": f"#/channels/events_{tag}"},
                                        "messages": [{"$ref": f"#/channels/events_{tag}/messages/event"}]}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "sched over NATS", "version": "0.1.0",
                 "description": "Commands and queries by request/reply; events on JetStream."},
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": named, "messages": messages},
    }
