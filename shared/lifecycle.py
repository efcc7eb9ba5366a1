"""Running a service process: start it, say it is ready, stop it cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
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


def health_subject(settings: Settings) -> str:
    """Where every service process answers "who is up": `<prefix>.health`."""
    return f"{settings.nats_prefix}.health"


@contextlib.asynccontextmanager
async def answering_health(settings: Settings, role: str) -> Any:
    """While inside, answer each request on the health subject with this process's role, instance and pid."""
    import nats

    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1)
    me = json.dumps({"role": role, "instance": os.environ.get("SCHED_INSTANCE", "1"), "pid": os.getpid()}).encode()

    async def answer(msg: Any) -> None:
        await msg.respond(me)

    await nc.subscribe(health_subject(settings), cb=answer)
    try:
        yield
    finally:
        await nc.close()


def serve(running: Callable[[Settings], AbstractAsyncContextManager[Any]], ready: str, role: str = "",
          fast_loop: bool = False) -> None:
    """Run `running(settings)` until a stop signal; print `ready` (supervisors and tests wait for it).

    With a `role` the process also answers the gateway's `/health` roll-call over NATS. `fast_loop` runs
    it on uvloop when installed (the query service: most of a cheap query's time is socket writes, which
    uvloop makes cheaper; the gateway gets it from uvicorn).
    """

    async def main() -> None:
        stop = stop_on_signals()
        settings = load_settings()
        async with running(settings), contextlib.AsyncExitStack() as stack:
            if role:
                await stack.enter_async_context(answering_health(settings, role))
            print(ready, flush=True)
            await stop.wait()

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines would log every webhook URL
    if fast_loop and os.environ.get("SCHED_ASYNCIO_LOOP") != "1":  # SCHED_ASYNCIO_LOOP=1: asyncio's own
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.run(main())
            return
    asyncio.run(main())
