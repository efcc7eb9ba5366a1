"""What an operation of the catalogue is: its kind, types, subject, HTTP routes and errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["command", "query"]
Auth = Literal["bearer", "account", "none"]
Facade = Literal["savvycal", "calendly"]

# Request fields a client never sends over HTTP: the gateway fills them in from the caller and the
# request. Any such key in a client's body or query string is dropped.
FILLED_IN = frozenset({"command_id", "account_id", "user_id", "min_position", "base_url", "token_hash"})

# Error codes of the reply envelope and the HTTP status each becomes (the Calendly facade turns a 422
# into Calendly's 400: services/gateway/errors.py).
ERROR_STATUS = {"validation_failed": 422, "invalid": 422, "not_found": 404, "unauthorized": 401,
                "conflict": 409, "forbidden": 403, "internal": 503,
                "unavailable": 503}


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP route of an operation; `path` uses `{name}` for path parameters."""

    method: str
    path: str
    status: int = 200
    auth: Auth = "bearer"
    facade: Facade = "savvycal"
    # Path parameter -> request field, where the names differ (GET /v1/links/{link_id} -> `id`).
    path_fields: tuple[tuple[str, str], ...] = ()
    # Request field -> what of the caller fills it: "user_id" (GET /v1/me sends the caller as `id`).
    caller_fields: tuple[tuple[str, str], ...] = ()
    # Not JSON: the reply's `content` is the body, with this media type (text/calendar for .ics files).
    media_type: str = "application/json"

    @property
    def path_parameters(self) -> list[str]:
        """The `{name}`s of the path, in order."""
        return re.findall(r"\{(\w+)\}", self.path)

    def request_field(self, parameter: str) -> str:
        """The request field a path parameter fills."""
        return dict(self.path_fields).get(parameter, parameter)


@dataclass(frozen=True)
class Operation:
    """A command or a query, declared once."""

    name: str
    kind: Kind
    request: type[Any]
    response: Any
    summary: str
    http: tuple[HttpRoute, ...] = ()
    errors: tuple[str, ...] = ("validation_failed", "not_found")

    def subject(self, prefix: str = "sched") -> str:
        """`sched.cmd.<name>` or `sched.query.<name>` under the given prefix."""
        return f"{prefix}.{'cmd' if self.kind == 'command' else 'query'}.{self.name}"


def subject_prefix(prefix: str, kind: Kind) -> str:
    """The subject prefix of one kind: `sched.cmd` or `sched.query`."""
    return f"{prefix}.{'cmd' if kind == 'command' else 'query'}"
