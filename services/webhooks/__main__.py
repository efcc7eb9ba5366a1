"""`python -m services.webhooks`: run one webhook dispatcher until SIGTERM/SIGINT."""

from __future__ import annotations

from services.webhooks.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "webhooks ready", role="webhooks")
