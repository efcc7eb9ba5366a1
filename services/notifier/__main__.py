"""`python -m services.notifier`: run one notifier until SIGTERM/SIGINT."""

from __future__ import annotations

from services.notifier.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "notifier ready", role="notifier")
