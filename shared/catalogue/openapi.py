"""The OpenAPI 3.1 document of the HTTP API, generated from the catalogue.

Request bodies and query parameters are the request types' schemas without the fields the
gateway fills in; each response lists every status the route can answer, with its shape.
"""

from __future__ import annotations

from typing import Any

from shared.catalogue.model import ERROR_STATUS, HttpRoute, Operation
from shared.catalogue.operations import OPERATIONS
from shared.catalogue.schemas import (
    client_fields,
    components,
    required_parameters,
    response_schemas,
    takes_body,
    without,
)

SAVVYCAL_ERROR = {"type": "object", "required": ["errors"], "properties": {"errors": {
    "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}
CALENDLY_ERROR = {"type": "object", "required": ["title", "message"], "properties": {
    "title": {"type": "string"}, "message": {"type": "string"},
    "details": {"type": "array", "items": {"type": "object", "required": ["parameter", "message"], "properties": {
        "parameter": {"type": "string"}, "message": {"type": "string"}}}}}}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "Used as the command id: a retry with the same key gets the first result.",
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
ACCOUNT_HEADER = {"name": "X-SavvyCal-Account", "in": "header", "required": True, "schema": {"type": "string"}}
POSITION_HEADER = {"name": "X-Sched-Position", "in": "header", "required": False,
                   "description": "A position a command returned: the answer waits until the read models reach it.",
                   "schema": {"type": "string", "pattern": "^[0-9]+$"}}


def error_statuses(operation: Operation, http: HttpRoute) -> list[int]:
    """Every error status the route can answer."""
    statuses = {ERROR_STATUS[code] for code in operation.errors} | {422, 503}
    if http.auth != "none":
        statuses.add(401)
    if takes_body(operation, http) or (http.facade == "calendly" and http.method == "GET"):
        statuses |= {400, 413}
    if http.facade == "calendly":
        statuses = {400 if status == 422 else status for status in statuses}
    return sorted(statuses)


def _operation(operation: Operation, http: HttpRoute, index: int, request_schema: dict[str, Any],
               response_schema: dict[str, Any]) -> dict[str, Any]:
    hidden = client_fields(operation, http)
    parameters: list[dict[str, Any]] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                        for name in http.path_parameters]
    if http.auth == "account":
        parameters.append(ACCOUNT_HEADER)
    if operation.kind == "command":
        parameters.append(IDEMPOTENCY_KEY)
    else:
        parameters.append(POSITION_HEADER)
    document: dict[str, Any] = {"operationId": operation.name if index == 0 else f"{operation.name}_{index}",
                                "summary": operation.summary, "tags": [http.facade], "parameters": parameters}
    if http.auth == "bearer":
        document["security"] = [{"bearer": []}]
    client_schema = without(request_schema, hidden)
    documented = required_parameters(operation.request) - hidden
    if documented:
        client_schema["required"] = sorted({*client_schema.get("required", []), *documented})
    if takes_body(operation, http):
        document["requestBody"] = {"required": False, "content": {"application/json": {"schema": client_schema}}}
    elif http.method == "GET":
        required = set(client_schema.get("required", []))
        for name, prop in client_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    error = CALENDLY_ERROR if http.facade == "calendly" else SAVVYCAL_ERROR
    success: dict[str, Any] = {"description": "success"}
    if http.media_type != "application/json":
        success["content"] = {http.media_type: {"schema": {"type": "string"}}}
    elif http.status != 204:
        success["content"] = {"application/json": {"schema": response_schema}}
    document["responses"] = {
        str(http.status): success,
        **{str(status): {"description": "error", "content": {"application/json": {"schema": error}}}
           for status in error_statuses(operation, http)},
    }
    return document


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every HTTP route in the catalogue."""
    routed = [op for op in OPERATIONS if op.http]
    request_refs, named = components([op.request for op in routed])
    responses, more = response_schemas(routed)
    named.update(more)
    paths: dict[str, dict[str, Any]] = {}
    for op, request_ref, response_schema in zip(routed, request_refs, responses, strict=True):
        request_schema = named[request_ref["$ref"].rsplit("/", 1)[1]]
        for index, http in enumerate(op.http):
            paths.setdefault(http.path, {})[http.method.lower()] = _operation(op, http, index, request_schema,
                                                                             response_schema)
    return {
        "openapi": "3.1.0",
        "info": {"title": "sched: SavvyCal and Calendly scheduling API", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": named, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
