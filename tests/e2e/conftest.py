"""The whole system behind a real HTTP port, for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.gateway_process import gateway_client


@pytest.fixture
async def http(command_service, query_service, projector, settings_env: dict[str, str],
               tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(settings_env, tmp_path) as client:
        yield client
