"""A local mail catcher for `make run` without SCHED_SMTP_URL: a real SMTP server (aiosmtpd).

Every message it receives is written as one `.eml` file into a folder; the gateway lists them at
`/dev/mail`. `python -m services.notifier.catcher --dir DIR --port PORT`.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SaveToFolder:
    """An aiosmtpd handler that stores each message as `<time>-<n>.eml`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message; answer 250."""
        self.count += 1
        name = f"{time.time_ns()}-{self.count:06d}.eml"
        (self.folder / f".{name}").write_bytes(envelope.original_content or envelope.content)
        (self.folder / f".{name}").rename(self.folder / name)  # readers never see half a file
        return "250 Message accepted for delivery"


def main() -> None:
    """Run the catcher until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    controller = Controller(SaveToFolder(Path(args.dir)), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail catcher ready on smtp://{args.host}:{args.port}, saving to {args.dir}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
