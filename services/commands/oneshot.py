"""`python -m services.commands.oneshot`: run commands straight against the database, no broker needed.

Reads one JSON request per line on stdin (`{"name": "create_account", "body": {...}}`) and writes
each command's reply as one JSON line on stdout. The `sched` launcher uses it to seed the demo
account and for `sched account create`, so it never imports the command service itself.
"""

from __future__ import annotations

import asyncio
import sys

import msgspec

from services.commands.app import command_service
from shared.eventstore import EventStore, create_pool
from shared.manage import require_signing_secret
from shared.settings import load_settings


class Request(msgspec.Struct, frozen=True):
    """One line of stdin: the command's catalogue name and its body."""

    name: str
    body: msgspec.Raw


async def main() -> None:
    """Answer every line of stdin until it closes."""
    settings = load_settings()
    require_signing_secret(settings.signing_secret, "the command runner")
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    decoder = msgspec.json.Decoder(Request)
    try:
        service = command_service(EventStore(pool), settings)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
            request = decoder.decode(line)
            sys.stdout.buffer.write(await service.execute(request.name, bytes(request.body)) + b"\n")
            sys.stdout.buffer.flush()
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
