"""`python -m services.query`: run one query service instance until SIGTERM/SIGINT."""

from __future__ import annotations

from services.query.app import running_query_service
from shared.lifecycle import serve

if __name__ == "__main__":
    serve(running_query_service, "query service ready")
