"""Running a service process: start it, say it is ready, stop it cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shared.settings import Settings, load_settings


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile (the idle step of every follower loop)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def serve(running: Callable[[Settings], AbstractAsyncContextManager[Any]], ready: str) -> None:
    """Run `running(settings)` until a stop signal; print `ready` (supervisors and tests wait for it)."""

    async def main() -> None:
        stop = stop_on_signals()
        async with running(load_settings()):
            print(ready, flush=True)
            await stop.wait()

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines would log every webhook URL
    asyncio.run(main())
