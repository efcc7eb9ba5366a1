"""`python -m services.webhooks`: run one webhook dispatcher until SIGTERM/SIGINT."""

from __future__ import annotations

from services.webhooks.app import running_dispatcher
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(running_dispatcher, "webhooks ready")
