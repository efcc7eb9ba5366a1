"""The Calendly facade's pure parts: its error statuses and titles, and where webhook URIs point."""

from __future__ import annotations

import pytest

from services.gateway.errors import HttpError, calendly_error
from services.webhooks.intake import Intake
from shared.settings import Settings


@pytest.mark.parametrize(("status", "title"), [
    (401, "Unauthenticated"), (403, "Permission Denied"), (404, "Resource Not Found"), (409, "Conflict"),
    (413, "Payload Too Large"), (429, "Too Many Requests"), (500, "Internal Server Error"),
    (503, "Internal Server Error"),
])
def test_each_status_keeps_its_code_with_calendlys_title(status: int, title: str) -> None:
    answer = calendly_error(HttpError(status, {"errors": {"detail": ["why"]}}))
    assert answer.status == status and answer.body["title"] == title
    assert set(answer.body) == {"title", "message"}


def test_a_refused_parameter_is_a_400_naming_it() -> None:
    answer = calendly_error(HttpError.on(422, "start_time", "must be in the future"))
    assert answer.status == 400 and answer.body["title"] == "Invalid Argument"
    assert answer.body["details"] == [{"parameter": "start_time", "message": "must be in the future"}]


def test_a_forbidden_or_conflicting_request_says_why() -> None:
    assert calendly_error(HttpError(403, {"errors": {"detail": ["this link was used"]}})).body["message"] \
        == "this link was used"
    assert calendly_error(HttpError.on(413, "body", "must be at most 1 MB")).body["message"] \
        == "body must be at most 1 MB"


class _Public(Settings, frozen=True, kw_only=True):
    """Settings whose public URL is not the bind address (a proxy in front)."""

    @property
    def public_url(self) -> str:
        """The booking site as the world sees it."""
        return "https://sched.example.com/book"


def test_webhook_payload_uris_use_the_public_base_not_the_bind_address() -> None:
    intake = Intake(None, None, _Public(http_host="0.0.0.0", http_port=9000), lambda _: None)  # type: ignore[arg-type]
    assert intake.calendly_url == "https://sched.example.com/calendly"
    assert intake.public_url == "https://sched.example.com/book"
