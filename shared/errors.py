"""Domain errors: typed values mapped once to NATS error replies and HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client may cause; `code` is stable, `fields` names the inputs at fault."""

    code = "invalid"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_reply(self) -> dict[str, object]:
        """The NATS error reply for this error: `{"ok": false, "error": {code, message, fields}}`."""
        return {"ok": False, "error": {"code": self.code, "message": self.message, "fields": self.fields}}


def internal_error_reply() -> dict[str, object]:
    """What a caller gets for a bug or an outage on our side: a typed error, never a traceback."""
    return {"ok": False, "error": {"code": "internal", "message": "internal error; try again", "fields": {}}}


class ValidationFailed(DomainError):
    """Input that breaks a rule; names the field(s) at fault."""

    code = "validation_failed"

    @classmethod
    def on(cls, field: str, message: str) -> ValidationFailed:
        """The error on one field, with the message that field gets."""
        return cls(f"{field}: {message}", {field: [message]})


class NotFound(DomainError):
    """The resource does not exist or belongs to another account (never tells which)."""

    code = "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")


class Unauthorized(DomainError):
    """The request carries no valid API token, or names no known account."""

    code = "unauthorized"


class Forbidden(DomainError):
    """A genuine signed link that no longer works: the booking was canceled, moved or is past."""

    code = "forbidden"
    http_status = 403


class Unavailable(DomainError):
    """The system is behind or restarting, not the client wrong: try again shortly (HTTP 503, Retry-After)."""

    code = "unavailable"


class Conflict(DomainError):
    """A state conflict that re-deciding cannot fix (e.g. a command id reused for another command)."""

    code = "conflict"


class VersionConflict(Exception):
    """An append lost an optimistic-concurrency race; the command service re-decides on fresh state."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"version conflict on {stream_id}")
        self.stream_id = stream_id
