"""The HTTP gateway: a thin translation of HTTP into NATS commands and queries (DESIGN.md section 6).

Every route is one row of ROUTES: method, path, the command or query it becomes, and its success
status. The gateway adds the path ids and the caller's account and user, sends the message, and
maps the reply: no business rule and no SQL live here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import nats
from litestar import Litestar, Request, Response, get, route
from litestar.enums import HttpMethod

from services.gateway.openapi import build_document
from shared.settings import Settings, load_settings

MAX_BODY = 1024 * 1024
AUTH_CACHE_SECONDS = 30.0
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Litestar path, e.g. /v1/links/{link_id:str}
    kind: str  # "cmd" or "query"
    name: str
    status: int = 200
    auth: str = "token"  # "token" | "public"
    body: bool = False  # takes a JSON body (else the query string)
    style: str = "savvycal"  # "savvycal" | "calendly": error format and resource URIs


ROUTES: list[Endpoint] = [
    Endpoint("GET", "/v1/me", "query", "me"),
    Endpoint("GET", "/v1/links", "query", "links_list"),
    Endpoint("POST", "/v1/links", "cmd", "create_link", 201, body=True),
    Endpoint("POST", "/v1/scopes/{team_slug:str}/links", "cmd", "create_link", 201, body=True),
    Endpoint("GET", "/v1/links/{link_id:str}", "query", "link_get"),
    Endpoint("PATCH", "/v1/links/{link_id:str}", "cmd", "update_link", body=True),
    Endpoint("POST", "/v1/links/{link_id:str}/toggle", "cmd", "toggle_link"),
    Endpoint("POST", "/v1/links/{link_id:str}/duplicate", "cmd", "duplicate_link"),
    Endpoint("DELETE", "/v1/links/{link_id:str}", "cmd", "delete_link"),
    Endpoint("GET", "/v1/links/{link_id:str}/slots", "query", "link_slots"),
    Endpoint("POST", "/v1/links/{link_id:str}/events", "cmd", "create_event", 200, body=True),
    Endpoint("GET", "/v1/events", "query", "events_list"),
    Endpoint("GET", "/v1/events/{event_id:str}", "query", "event_get"),
    Endpoint("POST", "/v1/events/{event_id:str}/cancel", "cmd", "cancel_event", body=True),
    Endpoint("POST", "/v1/events/{event_id:str}/reschedule", "cmd", "reschedule_event", body=True),
    Endpoint("POST", "/v1/providers", "cmd", "create_provider", 201, body=True),
    Endpoint("GET", "/v1/providers/{provider_id:str}", "query", "provider_get"),
    Endpoint("PUT", "/v1/providers/{provider_id:str}/schedule", "cmd", "set_provider_schedule", body=True),
    Endpoint("PUT", "/v1/providers/{provider_id:str}/busy_times", "cmd", "sync_external_busy_times", body=True),
    Endpoint("POST", "/v1/services", "cmd", "create_service", 201, body=True),
    Endpoint("GET", "/v1/services/{service_id:str}", "query", "service_get"),
    Endpoint("POST", "/v1/services/{service_id:str}/providers", "cmd", "add_service_provider", 201, body=True),
    Endpoint("GET", "/v1/services/{service_id:str}/slots", "query", "service_slots"),
    Endpoint("GET", "/v1/public/services/{service_id:str}/slots", "query", "public_service_slots", auth="public"),
    Endpoint("GET", "/v1/public/services/{service_id:str}/earliest_slot", "query", "earliest_slot",
             auth="public"),
    Endpoint("POST", "/v1/blocks", "cmd", "create_block", 201, body=True),
    Endpoint("DELETE", "/v1/blocks/{block_id:str}", "cmd", "delete_block"),
    Endpoint("POST", "/v1/booking_intents", "cmd", "hold_slot", 201, body=True),
    Endpoint("GET", "/v1/booking_intents/{id:str}", "query", "booking_intent_get"),
    Endpoint("POST", "/v1/booking_intents/{booking_intent_id:str}/complete", "cmd", "complete_hold", body=True),
    Endpoint("POST", "/v1/booking_intents/{booking_intent_id:str}/abandon", "cmd", "release_hold"),
    Endpoint("POST", "/v1/appointments", "cmd", "create_appointment", 201, body=True),
    Endpoint("GET", "/v1/appointments/{id:str}", "query", "appointment_get"),
    Endpoint("POST", "/v1/appointments/{appointment_id:str}/cancel", "cmd", "cancel_appointment", body=True),
    Endpoint("POST", "/v1/webhooks", "cmd", "create_webhook", 201, body=True),
    Endpoint("GET", "/v1/webhooks", "query", "webhooks_list"),
    Endpoint("GET", "/v1/webhooks/{webhook_id:str}", "query", "webhook_get"),
    Endpoint("DELETE", "/v1/webhooks/{webhook_id:str}", "cmd", "delete_webhook"),
    Endpoint("GET", "/v1/webhooks/{webhook_id:str}/deliveries", "query", "webhook_deliveries"),
    Endpoint("POST", "/v1/webhooks/{webhook_id:str}/rotate_secret", "cmd", "rotate_webhook_secret", body=True),
    Endpoint("GET", "/calendly/users/me", "query", "calendly_users_me", style="calendly"),
    Endpoint("GET", "/calendly/event_types", "query", "calendly_event_types", style="calendly"),
    Endpoint("GET", "/calendly/event_type_available_times", "query", "calendly_event_type_available_times",
             style="calendly"),
    Endpoint("GET", "/calendly/organization_memberships", "query", "calendly_organization_memberships",
             style="calendly"),
    Endpoint("GET", "/calendly/user_availability_schedules", "query", "calendly_user_availability_schedules",
             style="calendly"),
    Endpoint("GET", "/calendly/user_busy_times", "query", "calendly_user_busy_times", style="calendly"),
]

# Path parameters that name the resource of a GET query ("id" in the query body).
_GET_ID = {"link_get": "link_id", "event_get": "event_id", "provider_get": "provider_id",
           "service_get": "service_id", "webhook_get": "webhook_id"}


class Metrics:
    """Request counts and latency per route and status, rendered in Prometheus' text format."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.seconds: dict[str, float] = {}

    def observe(self, route_name: str, status: int, seconds: float) -> None:
        self.requests[(route_name, status)] = self.requests.get((route_name, status), 0) + 1
        self.seconds[route_name] = self.seconds.get(route_name, 0.0) + seconds

    def render(self) -> str:
        lines = ["# HELP sched_http_requests_total HTTP requests by route and status.",
                 "# TYPE sched_http_requests_total counter"]
        lines += [f'sched_http_requests_total{{route="{r}",status="{s}"}} {n}'
                  for (r, s), n in sorted(self.requests.items())]
        lines += ["# HELP sched_http_request_seconds_sum Time spent answering, by route.",
                  "# TYPE sched_http_request_seconds_sum counter"]
        lines += [f'sched_http_request_seconds_sum{{route="{r}"}} {v:.6f}' for r, v in sorted(self.seconds.items())]
        return "\n".join(lines) + "\n"


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def error_response(error: dict[str, Any]) -> HttpError:
    """A typed error reply as the SavvyCal API answers it."""
    code = error.get("code")
    if code == "not_found":
        return HttpError(404, {"errors": {"detail": [error.get("message", "not found")]}})
    if code == "unauthorized":
        return HttpError(401, {"errors": {"detail": [error.get("message", "unauthorized")]}})
    if code == "conflict":
        return HttpError(409, {"errors": {"detail": [error.get("message", "conflict")]}})
    if code == "internal":
        return HttpError(503, {"errors": {"detail": ["temporarily unavailable; try again"]}})
    fields = error.get("fields") or {"detail": [error.get("message", "invalid")]}
    return HttpError(422, {"errors": fields})


def calendly_error(error: HttpError) -> HttpError:
    """The same error in Calendly's format: {title, message, details: [{parameter, message}]}."""
    if error.status == 404:
        return HttpError(404, {"title": "Resource Not Found", "message": "The server could not find the requested"
                                                                         " resource."})
    if error.status == 401:
        return HttpError(401, {"title": "Unauthenticated", "message": "The access token is invalid"})
    if error.status >= 500:
        return HttpError(error.status, {"title": "Internal Server Error", "message": "Try again later."})
    fields = error.body.get("errors", {})
    return HttpError(400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
                           "details": [{"parameter": name, "message": message}
                                       for name, messages in fields.items() for message in messages]})


class Backend:
    """The gateway's NATS side: requests, the caller's identity, and each account's last position."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nc: nats.NATS | None = None
        self.pool: asyncpg.Pool | None = None
        self.positions: dict[str, int] = {}
        self.tokens: dict[str, tuple[float, dict[str, str]]] = {}

    async def request(self, kind: str, name: str, body: dict[str, Any]) -> Any:
        assert self.nc is not None
        prefix = self.settings.cmd_subject_prefix if kind == "cmd" else self.settings.query_subject_prefix
        try:
            reply = await self.nc.request(f"{prefix}.{name}", _encoder.encode(body), timeout=15)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            raise HttpError(503, {"errors": {"detail": [f"the {kind} service is not answering"]}}) from None
        decoded = msgspec.json.decode(reply.data)
        if isinstance(decoded, dict) and decoded.get("ok") is False:
            raise error_response(decoded["error"])
        return decoded

    async def caller(self, request: Request[Any, Any, Any], endpoint: Endpoint) -> dict[str, str]:
        """The account (and user) a request acts as, or a 401."""
        if endpoint.auth == "public":
            account_id = request.headers.get("x-savvycal-account", "")
            if not account_id:
                raise HttpError(401, {"errors": {"detail": ["X-SavvyCal-Account header is required"]}})
            await self.request("query", "account_exists", {"account_id": account_id})
            return {"account_id": account_id}
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, {"errors": {"detail": ["a bearer token is required"]}})
        token_hash = hashlib.sha256(token.strip().encode()).hexdigest()
        cached = self.tokens.get(token_hash)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        ids = await self.request("query", "whoami", {"token_hash": token_hash})
        self.tokens[token_hash] = (time.monotonic() + AUTH_CACHE_SECONDS, ids)
        return ids  # type: ignore[no-any-return]

    def remember(self, account_id: str, position: int) -> None:
        if position > self.positions.get(account_id, 0):
            self.positions[account_id] = position


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise HttpError(413, {"errors": {"body": ["must be at most 1 MB"]}})
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HttpError(413, {"errors": {"body": ["must be at most 1 MB"]}})
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise HttpError(400, {"errors": {"body": ["is not valid JSON"]}}) from None
    if not isinstance(body, dict):
        raise HttpError(422, {"errors": {"body": ["must be a JSON object"]}})
    return body


_RESERVED = {"command_id", "account_id", "user_id", "min_position", "token_hash"}


def make_handler(endpoint: Endpoint, backend: Backend, metrics: Metrics) -> Callable[..., Any]:
    route_name = f"{endpoint.method} {endpoint.path}"

    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        started = time.perf_counter()
        response = await answer(request)
        metrics.observe(route_name, response.status_code or 200, time.perf_counter() - started)
        return response

    async def answer(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            ids = await backend.caller(request, endpoint)
            fields: dict[str, Any] = await _json_body(request) if endpoint.body else {
                k: v for k, v in request.query_params.items()}
            fields = {k: v for k, v in fields.items() if k not in _RESERVED}
            path = dict(request.path_params)
            if endpoint.name in _GET_ID:
                path = {"id": path.pop(_GET_ID[endpoint.name])}
            if endpoint.name == "me":
                path = {"id": ids.get("user_id", "")}
            for number in ("limit", "count"):
                if number in fields and endpoint.kind == "query":
                    try:
                        fields[number] = int(fields[number])
                    except (TypeError, ValueError):
                        raise HttpError(422, {"errors": {number: ["must be an integer"]}}) from None
            body = {**fields, **path, **(ids if endpoint.kind == "cmd" else {"account_id": ids["account_id"]})}
            if endpoint.style == "calendly":
                body["base_url"] = str(request.base_url).rstrip("/") + "/calendly"
                body["user_id"] = ids.get("user_id")
            if endpoint.kind == "cmd":
                body["command_id"] = request.headers.get("idempotency-key") or f"http-{time.time_ns()}-{id(request)}"
                reply = await backend.request("cmd", endpoint.name, body)
                backend.remember(ids["account_id"], reply.get("position", 0))
                return Response(reply["result"], status_code=endpoint.status,
                                headers={"x-sched-position": str(reply.get("position", 0))})
            seen = max(backend.positions.get(ids["account_id"], 0),
                       int(request.headers.get("x-sched-position") or 0) if
                       (request.headers.get("x-sched-position") or "").isdigit() else 0)
            if seen:
                body["min_position"] = seen
            return Response(await backend.request("query", endpoint.name, body), status_code=endpoint.status)
        except HttpError as exc:
            if endpoint.style == "calendly":
                exc = calendly_error(exc)
            return Response(exc.body, status_code=exc.status)

    handle.__name__ = f"{endpoint.method.lower()}_{endpoint.name}"
    return handle


def create_app(settings: Settings | None = None) -> Litestar:
    """The ASGI app; `settings` default to the environment."""
    settings = settings or load_settings()
    backend = Backend(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        backend.pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        backend.nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1)
        try:
            yield
        finally:
            await backend.nc.drain()
            await backend.pool.close()

    @get("/health")
    async def health() -> Response[dict[str, str]]:
        """Postgres and NATS reachable: 200, else 503 naming the one that is not."""
        status = {"postgres": "ok", "nats": "ok"}
        try:
            assert backend.pool is not None
            await backend.pool.fetchval("select 1", timeout=2)
        except Exception as exc:
            status["postgres"] = f"unreachable: {type(exc).__name__}"
        if backend.nc is None or not backend.nc.is_connected:
            status["nats"] = "unreachable"
        healthy = all(v == "ok" for v in status.values())
        return Response({"status": "ok" if healthy else "degraded", **status}, status_code=200 if healthy else 503)

    document = build_document(ROUTES)

    @get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        """The OpenAPI document at the path DESIGN.md fixes, generated from ROUTES and the message types."""
        return document

    @get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
    async def metrics_document() -> str:
        """Prometheus metrics of this gateway process."""
        return metrics.render()

    handlers = [health, openapi_document, metrics_document]
    for endpoint in ROUTES:
        handlers.append(route(endpoint.path, http_method=[HttpMethod(endpoint.method)], operation_id=
                              f"{endpoint.method.lower()}_{endpoint.name}_{len(handlers)}",
                              status_code=endpoint.status)(make_handler(endpoint, backend, metrics)))
    return Litestar(route_handlers=handlers, lifespan=[lifespan],
                    openapi_config=None,
                    request_max_body_size=MAX_BODY + 1)


def app() -> Litestar:
    """Factory for `uvicorn --factory services.gateway.app:app`."""
    return create_app()
