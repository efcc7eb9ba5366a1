"""The whole system behind a real HTTP port, for the end-to-end tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.servers import free_port, wait_for_port


@pytest.fixture
async def http(command_service, query_service, projector, settings_env: dict[str, str],
               tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=settings_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_for_port, port, proc, "gateway", log, 30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=10)
