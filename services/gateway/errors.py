"""HTTP errors in each facade's shape: SavvyCal's `{"errors": {field: [...]}}` and Calendly's 400 body."""

from __future__ import annotations

from typing import Any

from shared.catalogue import ERROR_STATUS


class HttpError(Exception):
    """An answer other than success: a status and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        # A 503 always says when to come back: clients ride through a restart instead of giving up.
        self.headers = headers or ({"retry-after": "1"} if status == 503 else {})

    @classmethod
    def on(cls, status: int, field: str, message: str) -> HttpError:
        """An error naming one field, in SavvyCal's shape."""
        return cls(status, {"errors": {field: [message]}})


def from_reply(error: dict[str, Any]) -> HttpError:
    """A typed error reply of a command or query service as the SavvyCal API answers it."""
    code = str(error.get("code"))
    status = ERROR_STATUS.get(code, 422)
    if status == 503:
        message = error.get("message") if code == "unavailable" else None  # behind, not broken: say so
        return HttpError(503, {"errors": {"detail": [message or "temporarily unavailable; try again"]}})
    if status == 422:
        return HttpError(422, {"errors": error.get("fields") or {"detail": [error.get("message", "invalid")]}})
    return HttpError(status, {"errors": {"detail": [error.get("message", code)]}})


# Status -> Calendly's title and message for errors that name no parameter (400 carries `details`).
CALENDLY_ERRORS: dict[int, tuple[str, str]] = {
    401: ("Unauthenticated", "The access token is invalid"),
    403: ("Permission Denied", "You do not have permission to access this resource."),
    404: ("Resource Not Found", "The server could not find the requested resource."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    413: ("Payload Too Large", "The request body is too large."),
    429: ("Too Many Requests", "The rate limit has been exceeded. Try again later."),
    500: ("Internal Server Error", "The server encountered an unexpected condition. Try again later."),
}


def _detail(error: HttpError) -> str | None:
    """The one message of a SavvyCal-shaped error, when it says more than its status."""
    messages = [m if name == "detail" else f"{name} {m}" for name, ms in error.body.get("errors", {}).items()
                for m in ms]
    return messages[0] if len(messages) == 1 else None


def calendly_error(error: HttpError) -> HttpError:
    """The same error in Calendly's format: {title, message} and, on a 400, details: [{parameter, message}].

    Each status keeps its code and gets Calendly's title (403 Permission Denied, 409 Conflict, 429
    Too Many Requests, 5xx Internal Server Error); only a refused parameter (422 here) becomes a 400.
    """
    status = error.status
    if status in (400, 422):
        fields = error.body.get("errors", {})
        return HttpError(400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
                               "details": [{"parameter": name, "message": message}
                                           for name, messages in fields.items() for message in messages]})
    title, message = CALENDLY_ERRORS.get(status, CALENDLY_ERRORS[500] if status >= 500 else ("Error", "Error"))
    if status in (403, 409, 413):  # the domain's reason says more than the title
        message = _detail(error) or message
    return HttpError(status, {"title": title, "message": message})
