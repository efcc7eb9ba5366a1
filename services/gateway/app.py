"""The HTTP gateway: a thin translation of HTTP into NATS commands and queries (DESIGN.md section 6).

So far it serves `/health`; the SavvyCal and Calendly endpoints arrive with the gateway issue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import nats
from litestar import Litestar, Response, get

from shared.settings import Settings, load_settings


class Connections:
    pool: asyncpg.Pool | None = None
    nc: nats.NATS | None = None


def create_app(settings: Settings | None = None) -> Litestar:
    """The ASGI app; `settings` default to the environment."""
    settings = settings or load_settings()
    connections = Connections()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        connections.pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        connections.nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1)
        try:
            yield
        finally:
            await connections.nc.drain()
            await connections.pool.close()

    @get("/health")
    async def health() -> Response[dict[str, str]]:
        """Postgres and NATS reachable: 200, else 503 naming the one that is not."""
        status = {"postgres": "ok", "nats": "ok"}
        try:
            assert connections.pool is not None
            await connections.pool.fetchval("select 1", timeout=2)
        except Exception as exc:
            status["postgres"] = f"unreachable: {type(exc).__name__}"
        if connections.nc is None or not connections.nc.is_connected:
            status["nats"] = "unreachable"
        healthy = all(v == "ok" for v in status.values())
        return Response({"status": "ok" if healthy else "degraded", **status}, status_code=200 if healthy else 503)

    return Litestar(route_handlers=[health], lifespan=[lifespan], openapi_config=None)


def app() -> Litestar:
    """Factory for `uvicorn --factory services.gateway.app:app`."""
    return create_app()
