"""JSON Schemas of the catalogue's message types, shared by the OpenAPI and AsyncAPI documents."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect

from shared.catalogue.model import FILLED_IN, HttpRoute, Operation

REF = "#/components/schemas/{name}"


def components(types: list[Any], ref_template: str = REF) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each type's schema (a `$ref` for Structs) and the named schemas they refer to, without titles."""
    schemas, named = msgspec.json.schema_components(types, ref_template=ref_template)
    untitled = {name: {k: v for k, v in schema.items() if k != "title"} for name, schema in named.items()}
    return list(schemas), untitled


def response_schemas(operations: list[Operation]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each operation's response schema (`oneOf` where it answers one of several types) and the named schemas."""
    flat = [t for op in operations for t in _alternatives(op.response)]
    refs, named = components(flat)
    found = iter(refs)
    schemas = []
    for op in operations:
        alternatives = [next(found) for _ in _alternatives(op.response)]
        schemas.append(alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives})
    return schemas, named


def _alternatives(response: Any) -> tuple[Any, ...]:
    return response if isinstance(response, tuple) else (response,)


def client_fields(operation: Operation, http: HttpRoute) -> set[str]:
    """Request fields an HTTP client never sends: filled in from the path, the caller or the request."""
    hidden = set(FILLED_IN) | {http.request_field(p) for p in http.path_parameters}
    return hidden | {field for field, _ in http.caller_fields}


def body_fields(operation: Operation, http: HttpRoute) -> set[str]:
    """The request fields a client may send on this route (as a JSON body or in the query string)."""
    declared = {f.encode_name for f in msgspec.structs.fields(operation.request)}
    return declared - client_fields(operation, http)


def takes_body(operation: Operation, http: HttpRoute) -> bool:
    """Whether the route reads a JSON body: a POST, PUT or PATCH whose request has fields a client sends."""
    return http.method in ("POST", "PUT", "PATCH") and bool(body_fields(operation, http))


def required_parameters(request_type: type[Any]) -> set[str]:
    """Fields the handler requires though the decoder does not (marked `extra={"required": True}`)."""
    found = set()
    for field in msgspec.inspect.type_info(request_type).fields:  # type: ignore[attr-defined]
        if isinstance(field.type, msgspec.inspect.Metadata) and (field.type.extra or {}).get("required"):
            found.add(field.encode_name)
    return found


def without(schema: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """An object schema without the given properties."""
    trimmed = dict(schema)
    trimmed["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k not in hidden}
    trimmed["required"] = [k for k in schema.get("required", []) if k not in hidden]
    if not trimmed["required"]:
        del trimmed["required"]
    return trimmed
