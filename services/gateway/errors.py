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
        return HttpError(503, {"errors": {"detail": ["temporarily unavailable; try again"]}})
    if status == 422:
        return HttpError(422, {"errors": error.get("fields") or {"detail": [error.get("message", "invalid")]}})
    return HttpError(status, {"errors": {"detail": [error.get("message", code)]}})


def calendly_error(error: HttpError) -> HttpError:
    """The same error in Calendly's format: {title, message, details: [{parameter, message}]}."""
    if error.status == 404:
        return HttpError(404, {"title": "Resource Not Found",
                               "message": "The server could not find the requested resource."})
    if error.status == 401:
        return HttpError(401, {"title": "Unauthenticated", "message": "The access token is invalid"})
    if error.status >= 500:
        return HttpError(error.status, {"title": "Internal Server Error", "message": "Try again later."})
    fields = error.body.get("errors", {})
    return HttpError(400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
                           "details": [{"parameter": name, "message": message}
                                       for name, messages in fields.items() for message in messages]})
