"""`python -m services.commands`: run one command service instance until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from shared.settings import load_settings
from services.commands.app import running_command_service


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_command_service(load_settings()):
        print("command service ready", flush=True)  # supervisors and tests wait for this line
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
