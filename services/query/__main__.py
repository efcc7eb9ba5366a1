"""`python -m services.query`: run one query service instance until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from shared.settings import load_settings
from services.query.app import running_query_service


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_query_service(load_settings()):
        print("query service ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
