"""The HTTP gateway as a real process on a free port, and a client for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from shared.servers import free_port, wait_for_port


@asynccontextmanager
async def gateway_client(env: dict[str, str], log_dir: Path, port: int = 0) -> AsyncIterator[httpx.AsyncClient]:
    """Start uvicorn with the gateway (configured by `env`), yield a client for it, stop it after."""
    port = port or free_port()
    log = log_dir / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_for_port, port, proc, "gateway", log, 30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=10)
