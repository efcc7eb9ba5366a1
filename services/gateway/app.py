"""The HTTP gateway: a thin translation of HTTP into NATS commands and queries (DESIGN.md section 6).

Every route comes from the operation catalogue (`shared.catalogue`): its method, path, status,
auth and facade. The gateway adds the path ids and the caller's account and user, sends the
message, and maps the reply: no business rule and no SQL live here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.types import ASGIApp, Receive, Scope, Send

from services.gateway.backend import Backend, clear_deadline, header, set_deadline
from services.gateway.errors import HttpError, calendly_error
from services.gateway.metrics import Metrics
from services.gateway.pages import page_routes
from shared.catalogue import FILLED_IN, HttpRoute, Operation, routes
from shared.catalogue.asyncapi import asyncapi_document
from shared.catalogue.openapi import openapi_document
from shared.catalogue.schemas import takes_body
from shared.manage import require_signing_secret
from shared.settings import Settings, load_settings

MAX_BODY = 1024 * 1024


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise HttpError.on(413, "body", "must be at most 1 MB")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HttpError.on(413, "body", "must be at most 1 MB")
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise HttpError.on(400, "body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError.on(422, "body", "must be a JSON object")
    return body


def _integer_fields(request_type: type[Any]) -> frozenset[str]:
    """Request fields typed int: a query string carries them as text."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(request_type)
                     if f.type is int or f.type == int | None)


def _boolean_fields(request_type: type[Any]) -> frozenset[str]:
    """Request fields typed bool: a query string carries them as `true` / `false`."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(request_type)
                     if f.type is bool or f.type == bool | None)


def _request_fields(request_type: type[Any]) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(request_type))


def make_handler(operation: Operation, http: HttpRoute, backend: Backend,
                 metrics: Metrics) -> Callable[..., Any]:
    """The Litestar handler of one catalogue route."""
    route_name = f"{http.method} {http.path}"
    integers = _integer_fields(operation.request)
    booleans = _boolean_fields(operation.request)
    # Calendly ignores parameters it does not know; so does its facade (SavvyCal's names them in a 422).
    ignores_unknown = http.facade == "calendly"
    declared = _request_fields(operation.request)
    is_command = operation.kind == "command"
    reads_body = takes_body(operation, http)

    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        started = time.perf_counter()
        response = await answer(request)
        metrics.observe(route_name, response.status_code or 200, time.perf_counter() - started)
        return response

    def parameters(fields: dict[str, Any], problems: dict[str, list[str]]) -> dict[str, Any]:
        """Query-string text as the request's ints and bools; a value that is neither is noted and left out."""
        for name in integers & fields.keys():
            try:
                fields[name] = int(fields[name])
            except (TypeError, ValueError):
                problems[name] = ["must be an integer"]
                del fields[name]
        for name in booleans & fields.keys():
            if isinstance(fields[name], str) and fields[name].lower() in ("true", "false"):
                fields[name] = fields[name].lower() == "true"
            elif not isinstance(fields[name], bool):
                problems[name] = ["must be true or false"]
                del fields[name]
        return fields

    async def query_naming_every_fault(body: dict[str, Any], problems: dict[str, list[str]]) -> None:
        """Parameters were refused here: ask the query anyway and answer 422 with every fault together."""
        try:
            await backend.request("query", operation.name, body)
        except HttpError as error:
            if error.status != 422:
                raise
            problems = {**error.body.get("errors", {}), **problems}
        raise HttpError(422, {"errors": problems})

    async def answer(request: Request[Any, Any, Any]) -> Response[Any]:
        refused: dict[str, list[str]] = {}
        try:
            ids = await backend.caller(request, http.auth)
            if reads_body:
                body = {k: v for k, v in (await _json_body(request)).items() if k not in FILLED_IN}
            elif http.method == "GET":
                given = dict(request.query_params.items()) if request.scope["query_string"] else {}
                if ignores_unknown:  # Calendly's clients may send GET parameters as a JSON body
                    given = {**(await _json_body(request)), **given}
                body = parameters({k: v for k, v in given.items() if k not in FILLED_IN}, refused)
            else:
                body = {}
            if ignores_unknown:
                body = {k: v for k, v in body.items() if k in declared}
            body.update({http.request_field(k): v for k, v in request.path_params.items()})
            body.update({field: ids.get(source, "") for field, source in http.caller_fields})
            body.update({k: v for k, v in ids.items() if k in declared})
            if "base_url" in declared:
                body["base_url"] = str(request.base_url).rstrip("/") + "/calendly"
            if is_command:
                body["command_id"] = _command_id(request)
                reply = await backend.request("command", operation.name, body)
                backend.remember(ids["account_id"], reply.get("position", 0))
                headers = {"x-sched-position": str(reply.get("position", 0))}
                if http.status == 204:
                    return Response(None, status_code=204, headers=headers)
                return Response(reply["result"], status_code=http.status, headers=headers)
            seen = backend.last_position(ids.get("account_id", ""), header(request, b"x-sched-position"))
            if seen:
                body["min_position"] = seen
            if refused:
                await query_naming_every_fault(body, refused)
            if http.media_type != "application/json":  # a file: the reply's `content` is the body
                return file_response(await backend.request("query", operation.name, body), http.media_type)
            return Response(await backend.request_raw("query", operation.name, body), status_code=http.status,
                            media_type="application/json")
        except HttpError as exc:
            if http.facade == "calendly":
                exc = calendly_error(exc)
            return Response(exc.body, status_code=exc.status, headers=exc.headers)

    handle.__name__ = f"{http.method.lower()}_{operation.name}"
    return handle


def _command_id(request: Request[Any, Any, Any]) -> str:
    """The client's `Idempotency-Key` (1 to 200 characters), else a fresh id for this request."""
    key = header(request, b"idempotency-key")
    if key is None:
        return f"http-{time.time_ns()}-{id(request)}"
    if not key.strip() or len(key) > 200:
        raise HttpError.on(422, "Idempotency-Key", "must be 1 to 200 characters")
    return key


def file_response(reply: dict[str, Any], media_type: str) -> Response[Any]:
    """A calendar file reply as its own body: `text/calendar; method=…`, offered for download."""
    if media_type == "text/calendar":
        media_type = f"text/calendar; method={reply.get('method', 'PUBLISH')}; charset=utf-8"
    return Response(reply["content"], media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{reply["filename"]}"'})


def one_deadline(app: ASGIApp) -> ASGIApp:
    """Middleware: each HTTP request gets one deadline for all it asks of NATS, so no client waits past 10 s
    (a slow token lookup followed by a slow query would otherwise wait for both); then a 503 with Retry-After."""
    async def with_deadline(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        token = set_deadline()
        try:
            await app(scope, receive, send)
        finally:
            clear_deadline(token)
    return with_deadline


def _litestar_path(path: str) -> str:
    """`/v1/links/{link_id}` -> `/v1/links/{link_id:str}`."""
    return path.replace("}", ":str}")


def bootstrap(settings: Settings) -> Litestar:
    """The gateway's composition root: the ASGI app over NATS (and Postgres, for /health)."""
    require_signing_secret(settings.signing_secret, "the gateway")  # its pages sign confirmation links
    backend = Backend(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        backend.pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        async def reconnected() -> None:
            backend.forget_all()

        await backend.connect(reconnected_cb=reconnected)
        assert backend.nc is not None
        try:
            yield
        finally:
            await backend.nc.drain()
            await backend.pool.close()

    @get("/health")
    async def health() -> Response[dict[str, str]]:
        """Each component by name: Postgres, NATS and every service role; 200 when all are up, else 503."""
        status = await backend.health()
        healthy = all(v == "ok" or v.startswith("ok (") for v in status.values())
        return Response({"status": "ok" if healthy else "degraded", **status}, status_code=200 if healthy else 503)

    @get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        """This process answers HTTP (no Postgres, no NATS): the gateway's own no-op route."""
        return {"status": "ok"}

    openapi = openapi_document()
    asyncapi = asyncapi_document(settings.nats_prefix, settings.events_stream)

    @get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> dict[str, Any]:
        """The OpenAPI document, generated from the catalogue."""
        return openapi

    @get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_json() -> dict[str, Any]:
        """The AsyncAPI 3 document of the NATS side, generated from the catalogue."""
        return asyncapi

    @get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
    async def metrics_text() -> str:
        """Prometheus metrics of this gateway process."""
        return metrics.render()

    handlers = [health, live, openapi_json, asyncapi_json, metrics_text, *page_routes(backend, settings)]
    for operation, http in routes():
        handlers.append(route(_litestar_path(http.path), http_method=[HttpMethod(http.method)],
                              operation_id=f"{http.method.lower()}_{operation.name}_{len(handlers)}",
                              # Litestar refuses a 204 handler that returns a value; the Response sets 204 itself
                              status_code=200 if http.status == 204 else http.status)(
            make_handler(operation, http, backend, metrics)))
    return Litestar(route_handlers=handlers, lifespan=[lifespan], openapi_config=None, middleware=[one_deadline],
                    request_max_body_size=MAX_BODY + 1)


def app() -> Litestar:
    """Factory for `uvicorn --factory services.gateway.app:app`."""
    return bootstrap(load_settings())
