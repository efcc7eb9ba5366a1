"""`python -m projections`: keep every read model caught up with the log until SIGTERM/SIGINT."""

from __future__ import annotations

from projections.app import bootstrap
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(bootstrap, "projections ready", role="projections")
