"""`python -m services.webhooks`: run one webhook dispatcher until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.webhooks.app import running_dispatcher
from shared.settings import load_settings


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_dispatcher(load_settings()):
        print("webhooks ready", flush=True)  # supervisors and tests wait for this line
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines would log every webhook URL
    asyncio.run(main())
