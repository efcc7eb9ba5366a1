"""The whole system behind a real HTTP port, for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from shared.servers import free_port
from shared.settings import Settings
from tests.integration.gateway_process import gateway_client


@pytest.fixture
async def http(command_service, query_service, projector, settings_env: dict[str, str],
               tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(settings_env, tmp_path) as client:
        yield client


@dataclass
class Site:
    """The whole system behind a real port whose address is its own public URL (manage links work)."""

    settings: Settings
    base_url: str
    http: httpx.AsyncClient


@pytest.fixture
async def site(settings: Settings, settings_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Site]:
    """Command and query services, projections and a gateway process, all knowing the gateway's port."""
    from projections.app import bootstrap as projections
    from services.commands.app import bootstrap as commands
    from services.query.app import bootstrap as queries

    port = free_port()
    own = msgspec.structs.replace(settings, http_port=port)
    env = {**settings_env, "SCHED_HTTP_PORT": str(port)}
    async with commands(own), queries(own), projections(own), gateway_client(env, tmp_path, port) as client:
        yield Site(own, f"http://127.0.0.1:{port}", client)
