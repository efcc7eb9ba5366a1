"""The notifier's sender with fakes: no clear-text login without consent, and no failure blocks the queue."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from typing import Any, ClassVar, Self

import pytest

from services.notifier import notifier as notifier_module
from services.notifier.notifier import InsecureLogin, Notifier, SmtpTarget, send_blocking, smtp_target
from shared.settings import Settings


class FakeSmtp:
    """An SMTP client that offers STARTTLS or not, and records what it was asked to do."""

    offers_starttls = False
    instances: ClassVar[list[FakeSmtp]] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.calls: list[str] = []
        FakeSmtp.instances.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append("quit")

    def ehlo(self) -> None:
        self.calls.append("ehlo")

    def has_extn(self, name: str) -> bool:
        return name == "starttls" and self.offers_starttls

    def starttls(self, context: Any) -> None:
        self.calls.append("starttls")

    def login(self, user: str, password: str) -> None:
        self.calls.append(f"login {user}")

    def sendmail(self, sender: str, recipients: list[str], message: bytes) -> None:
        self.calls.append("sendmail")


@pytest.fixture
def fake_smtp(monkeypatch: pytest.MonkeyPatch) -> type[FakeSmtp]:
    FakeSmtp.instances = []
    FakeSmtp.offers_starttls = False
    monkeypatch.setattr(notifier_module.smtplib, "SMTP", FakeSmtp)
    return FakeSmtp


def test_credentials_are_never_sent_in_clear_without_consent(fake_smtp: type[FakeSmtp]):
    target = smtp_target("smtp://user:secret@mail.example.com:587")
    with pytest.raises(InsecureLogin):
        send_blocking(target, b"x", "a@example.com", "b@example.com", 1.0)
    assert not any(call.startswith("login") or call == "sendmail" for call in fake_smtp.instances[-1].calls)


def test_starttls_comes_before_the_login(fake_smtp: type[FakeSmtp]):
    fake_smtp.offers_starttls = True
    send_blocking(smtp_target("smtp://user:secret@mail.example.com:587"), b"x", "a@example.com", "b@example.com", 1.0)
    calls = fake_smtp.instances[-1].calls
    assert calls.index("starttls") < calls.index("login user") < calls.index("sendmail")


def test_smtp_insecure_allows_a_clear_text_login(fake_smtp: type[FakeSmtp]):
    target = smtp_target("smtp+insecure://user:secret@relay.local:2525")
    assert target == SmtpTarget("relay.local", 2525, False, "user", "secret", insecure=True)
    send_blocking(target, b"x", "a@example.com", "b@example.com", 1.0)
    assert fake_smtp.instances[-1].calls == ["ehlo", "login user", "sendmail", "quit"]


def test_without_credentials_plain_smtp_still_sends(fake_smtp: type[FakeSmtp]):
    send_blocking(smtp_target("smtp://127.0.0.1:2525"), b"x", "a@example.com", "b@example.com", 1.0)
    assert fake_smtp.instances[-1].calls == ["ehlo", "sendmail", "quit"]


class FakePool:
    """The outbox rows the sender reads, and the updates it makes."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.updates: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.rows

    async def execute(self, sql: str, *args: Any) -> None:
        self.updates.append((sql, args))


def _sender_with(rows: list[dict[str, Any]], send: Any) -> tuple[Notifier, FakePool]:
    pool = FakePool(rows)
    settings = Settings(smtp_url="smtp://user:secret@mail.example.com:587", webhook_retry_schedule=(5.0, 30.0))
    notifier = Notifier(pool, None, settings)  # type: ignore[arg-type]
    notifier.sender = send
    return notifier, pool


ROWS = [{"seq": 1, "recipient": "first@example.com", "message": b"1", "attempt_count": 0},
        {"seq": 2, "recipient": "second@example.com", "message": b"2", "attempt_count": 0}]


def test_an_unexpected_sender_error_is_a_failed_attempt_and_the_queue_moves_on():
    sent: list[str] = []

    def send(target: SmtpTarget, message: bytes, sender: str, recipient: str, timeout: float) -> None:
        if recipient == "first@example.com":
            raise RuntimeError("boom")
        sent.append(recipient)

    notifier, pool = _sender_with([dict(r) for r in ROWS], send)
    asyncio.run(notifier.send_pending(asyncio.Event()))
    assert sent == ["second@example.com"]
    (retry_sql, retry_args), (sent_sql, sent_args) = pool.updates
    assert "next_attempt_at" in retry_sql and retry_args[:3] == (1, 1, "boom")
    assert "'sent'" in sent_sql and sent_args == (2,)
    # the last attempt of the schedule makes it dead, as any other failure
    notifier, pool = _sender_with([{**ROWS[0], "attempt_count": 2}], send)
    asyncio.run(notifier.send_pending(asyncio.Event()))
    assert "'dead'" in pool.updates[0][0] and pool.updates[0][1][:2] == (1, 3)


def test_a_refused_clear_text_login_is_logged_and_counted_as_failed(fake_smtp: type[FakeSmtp],
                                                                    caplog: pytest.LogCaptureFixture):
    notifier, pool = _sender_with([dict(ROWS[0])], send_blocking)
    with caplog.at_level(logging.ERROR, logger="sched.notifier"):
        asyncio.run(notifier.send_pending(asyncio.Event()))
    assert "next_attempt_at" in pool.updates[0][0] and pool.updates[0][1][1] == 1
    assert "STARTTLS" in pool.updates[0][1][2]
    assert any(r.levelno == logging.ERROR and "in clear" in r.getMessage() for r in caplog.records)
    assert not any(call.startswith("login") for call in fake_smtp.instances[-1].calls)
    assert smtplib.SMTP is FakeSmtp
