"""`python -m services.relay`: run the relay on its own until SIGTERM/SIGINT."""

from __future__ import annotations

from services.relay.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "relay ready", role="relay")
