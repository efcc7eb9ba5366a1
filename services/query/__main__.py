"""`python -m services.query`: run one query service instance until SIGTERM/SIGINT."""

from __future__ import annotations

from services.query.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "query service ready", role="query", fast_loop=True)
