"""The OpenAPI document, generated from the gateway's route table and the message types.

Request bodies are the commands' own msgspec schemas without the fields the gateway fills in
(ids from the path, the caller, the command id); query parameters come from the query Structs;
responses list every status a route can answer, with the shape of each.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from services.query import calendly
from services.query import service as queries
from shared.messages import commands

FILLED_IN = {"command_id", "account_id", "user_id", "min_position", "base_url", "token_hash"}
_QUERY_TYPES: dict[str, type[msgspec.Struct]] = {
    "link_slots": queries.LinkSlots, "service_slots": queries.ServiceSlots,
    "public_service_slots": queries.ServiceSlots, "earliest_slot": queries.EarliestSlot,
    "events_list": queries.EventsList, "links_list": queries.ListQuery,
    **{name: calendly.CalendlyQuery for name in calendly.ROUTES},
}
_CALENDLY_PARAMETERS = {
    "calendly_users_me": (),
    "calendly_event_types": ("user", "organization", "count", "page_token"),
    "calendly_event_type_available_times": ("event_type", "start_time", "end_time"),
    "calendly_organization_memberships": ("organization", "user", "count"),
    "calendly_user_availability_schedules": ("user",),
    "calendly_user_busy_times": ("user", "start_time", "end_time"),
}

LINK_FIELDS = ["id", "slug", "name", "private_name", "description", "type", "state", "durations",
               "default_duration", "increment", "buffer_before", "buffer_after", "minimum_notice",
               "maximum_days_ahead", "time_zone", "availability", "hosts", "host_mode", "scope", "created_at",
               "updated_at", "url"]
EVENT_FIELDS = ["id", "state", "summary", "description", "additional_info", "location", "conferencing", "created_at",
                "start_at", "end_at", "duration", "canceled_at", "cancel_reason", "rescheduled_at",
                "reschedule_reason", "original_start_at", "original_end_at", "link", "poll", "scope", "scheduler",
                "organizer", "attendees", "payment", "metadata", "url", "location_settings",
                "description_settings", "buffer_before", "buffer_after", "is_group_session", "maximum_group_size"]
APPOINTMENT_FIELDS = ["object", "id", "state", "service_id", "provider_id", "service_provider_id", "start_at",
                      "end_at", "duration", "client", "booking_intent_id", "created_at", "canceled_at",
                      "cancel_reason"]
INTENT_FIELDS = ["object", "id", "state", "expires_at", "provider_id", "start_at", "end_at"]


def _object(required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": {name: {} for name in required}}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["entries", "metadata"], "properties": {
        "entries": {"type": "array", "items": item},
        "metadata": {"type": "object", "required": ["before", "after", "limit"], "properties": {
            "before": {"type": ["string", "null"]}, "after": {"type": ["string", "null"]},
            "limit": {"type": "integer"}}}}}


SLOT = {"type": "object", "required": ["object", "start_at", "start_at_ts", "end_at", "end_at_ts", "time_zone"],
        "properties": {"object": {"type": "string"}, "start_at": {"type": "string"},
                       "start_at_ts": {"type": "integer"}, "end_at": {"type": "string"},
                       "end_at_ts": {"type": "integer"}, "time_zone": {"type": "string"}}}
LINK_SLOT = {"type": "object", "required": ["start_at", "end_at", "duration", "rank"], "properties": {
    "start_at": {"type": "string"}, "end_at": {"type": "string"}, "duration": {"type": "integer"},
    "rank": {"type": "integer"}}}
CALENDLY_COLLECTION = {"type": "object", "required": ["collection"],
                       "properties": {"collection": {"type": "array"}, "pagination": {"type": "object"}}}

RESPONSES: dict[str, dict[str, Any]] = {
    "me": _object(["id", "email", "account_id"]),
    "links_list": _list_of(_object(LINK_FIELDS)),
    "create_link": _object(LINK_FIELDS), "link_get": _object(LINK_FIELDS), "update_link": _object(LINK_FIELDS),
    "toggle_link": _object(LINK_FIELDS), "duplicate_link": _object(LINK_FIELDS), "delete_link": _object(LINK_FIELDS),
    "link_slots": {"type": "array", "items": LINK_SLOT},
    "create_event": _object(EVENT_FIELDS), "events_list": _list_of(_object(EVENT_FIELDS)),
    "event_get": _object(EVENT_FIELDS), "cancel_event": _object(EVENT_FIELDS),
    "reschedule_event": _object(EVENT_FIELDS),
    "create_provider": _object(["object", "id", "display_name", "time_zone", "schedule"]),
    "provider_get": _object(["object", "id", "display_name", "time_zone", "schedule"]),
    "set_provider_schedule": _object(["object", "id", "display_name", "time_zone", "schedule"]),
    "sync_external_busy_times": _object(["provider_id", "from", "until", "busy_times"]),
    "create_service": _object(["object", "id", "name", "duration", "time_zone", "slot_rules", "providers"]),
    "service_get": _object(["object", "id", "name", "duration", "time_zone", "slot_rules", "providers"]),
    "add_service_provider": _object(["object", "id", "service_id", "provider"]),
    "service_slots": {"type": "object", "required": ["data"], "properties": {"data": {
        "type": "object", "required": ["aggregated_slots", "provider_slots"], "properties": {
            "aggregated_slots": {"type": "array", "items": SLOT}, "provider_slots": {"type": "array"}}}}},
    "public_service_slots": {"type": "object", "required": ["data"],
                             "properties": {"data": {"type": "array", "items": SLOT}}},
    "earliest_slot": {"type": "object", "required": ["data"],
                      "properties": {"data": {"oneOf": [SLOT, {"type": "null"}]}}},
    "create_block": _object(["object", "id", "attachment_type", "attachment_id", "start_at", "end_at"]),
    "delete_block": _object(["object", "id", "attachment_type", "attachment_id", "start_at", "end_at"]),
    "hold_slot": _object(INTENT_FIELDS), "booking_intent_get": _object(INTENT_FIELDS),
    "release_hold": _object(INTENT_FIELDS),
    "complete_hold": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
    "create_appointment": _object(APPOINTMENT_FIELDS), "appointment_get": _object(APPOINTMENT_FIELDS),
    "cancel_appointment": _object(APPOINTMENT_FIELDS),
    "calendly_users_me": {"type": "object", "required": ["resource"], "properties": {"resource": _object(
        ["uri", "name", "email", "timezone", "current_organization"])}},
    **{name: CALENDLY_COLLECTION for name in _CALENDLY_PARAMETERS if name != "calendly_users_me"},
}

SAVVYCAL_ERROR = {"type": "object", "required": ["errors"], "properties": {"errors": {
    "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}
CALENDLY_ERROR = {"type": "object", "required": ["title", "message"], "properties": {
    "title": {"type": "string"}, "message": {"type": "string"},
    "details": {"type": "array", "items": {"type": "object", "required": ["parameter", "message"]}}}}


def _command_type(name: str) -> type[msgspec.Struct] | None:
    class_name = "".join(part.title() for part in name.split("_"))
    found = getattr(commands, class_name, None)
    return found if isinstance(found, type) and issubclass(found, commands.Command) else None


def _path_parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+):\w+\}", path)


def build_document(routes: list[Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    command_types = [t for t in (_command_type(r.name) for r in routes if r.kind == "cmd" and r.body) if t]
    query_types = list({t: None for t in _QUERY_TYPES.values()})
    _, components = msgspec.json.schema_components(command_types + query_types,
                                                   ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in routes:
        path_names = _path_parameters(endpoint.path)
        openapi_path = re.sub(r"\{(\w+):\w+\}", r"{\1}", endpoint.path)
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path_names]
        if endpoint.auth == "public":
            parameters.append({"name": "X-SavvyCal-Account", "in": "header", "required": True,
                               "schema": {"type": "string"}})
        operation: dict[str, Any] = {"operationId": f"{endpoint.name}_{len(paths)}_{endpoint.method.lower()}",
                                     "parameters": parameters}
        if endpoint.auth != "public":
            operation["security"] = [{"bearer": []}]
        if endpoint.kind == "cmd" and endpoint.body:
            command = _command_type(endpoint.name)
            schema: dict[str, Any] = dict(components.get(command.__name__, {})) if command else {"type": "object"}
            hidden = FILLED_IN | set(path_names) | ({"team_slug"} if "team_slug" in path_names else set())
            schema["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k not in hidden}
            schema["required"] = [k for k in schema.get("required", []) if k not in hidden]
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
        query_type = _QUERY_TYPES.get(endpoint.name)
        if query_type is not None:
            allowed = _CALENDLY_PARAMETERS.get(endpoint.name)
            schema = components[query_type.__name__]
            for name, prop in schema.get("properties", {}).items():
                if name in FILLED_IN or name in path_names or (allowed is not None and name not in allowed):
                    continue
                operation["parameters"].append({"name": name, "in": "query", "required": False, "schema": prop})
        error = CALENDLY_ERROR if endpoint.style == "calendly" else SAVVYCAL_ERROR
        error_codes = ["400", "401", "404", "409", "413", "422", "503"]
        operation["responses"] = {
            str(endpoint.status): {"description": "success", "content": {"application/json": {
                "schema": RESPONSES.get(endpoint.name, {"type": "object"})}}},
            **{code: {"description": "error", "content": {"application/json": {"schema": error}}}
               for code in error_codes},
        }
        paths.setdefault(openapi_path, {})[endpoint.method.lower()] = operation
    for name in list(components):
        components[name] = {k: v for k, v in components[name].items() if k != "title"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sched: SavvyCal and Calendly scheduling API", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
