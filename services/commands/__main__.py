"""`python -m services.commands`: run one command service instance until SIGTERM/SIGINT."""

from __future__ import annotations

from services.commands.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "command service ready", role="commands")
