"""The operation catalogue: every command and query declared once (DESIGN.md section 6).

Each `Operation` names its kind, request and response types, NATS subject, HTTP routes (method,
path, status, auth, facade) and error codes. The gateway's routes, the command and query services'
dispatch, `/openapi.json` and `/asyncapi.json` are all derived from `CATALOGUE`; adding an endpoint
means one entry in `operations.py` and one handler in the service of its kind.
"""

from __future__ import annotations

from shared.catalogue.model import ERROR_STATUS, FILLED_IN, HttpRoute, Operation, subject_prefix
from shared.catalogue.operations import CATALOGUE, commands, queries, routes

__all__ = ["CATALOGUE", "ERROR_STATUS", "FILLED_IN", "HttpRoute", "Operation", "commands", "queries", "routes",
           "subject_prefix"]
