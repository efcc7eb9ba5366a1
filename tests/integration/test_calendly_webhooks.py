"""Calendly webhook subscriptions on the same dispatcher: signed `invitee.created` and `invitee.canceled`."""

from __future__ import annotations

import hashlib
import hmac
import time

import nats
import pytest

from shared.settings import Settings
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.test_webhooks import (  # noqa: F401 - fixtures
    commands,
    dispatcher,
    hook_settings,
    ok,
    receivers,
    relay,
    start_receiver,
)
from tests.integration.webhook_receiver import eventually

pytestmark = pytest.mark.integration

BASE = "http://127.0.0.1:8000/calendly"


def calendly_signature_ok(key: str, body: bytes, header: str) -> bool:
    """Calendly's documented check: t=<ts>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>, fresh."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(key.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


async def test_a_subscription_gets_signed_invitee_created_and_canceled(
        nc: nats.NATS, hook_settings: Settings, commands, dispatcher, receivers) -> None:  # noqa: F811
    account = await bookable_account(nc, hook_settings)
    ids = account.ids
    receiver = start_receiver(receivers)
    other = start_receiver(receivers)
    subscription = await ok(nc, hook_settings, "calendly_create_webhook_subscription", {
        **ids, "base_url": BASE, "url": receiver.url, "events": ["invitee.created", "invitee.canceled"],
        "organization": f"{BASE}/organizations/{ids['account_id']}", "scope": "user",
        "user": f"{BASE}/users/{ids['user_id']}", "signing_key": "calendly-key"})
    assert subscription["result"]["resource"]["scope"] == "user"
    await ok(nc, hook_settings, "calendly_create_webhook_subscription", {  # organization scope: created only
        **ids, "base_url": BASE, "url": other.url, "events": ["invitee.created"],
        "organization": f"{BASE}/organizations/{ids['account_id']}", "scope": "organization"})
    booked = await ok(nc, hook_settings, "calendly_create_invitee", {
        **ids, "base_url": BASE, "event_type": f"{BASE}/event_types/{account.link_id}",
        "start_time": iso(weekday_at(2, 10)),
        "invitee": {"name": "Ada Lovelace", "email": "ada@example.com", "timezone": "Europe/London"}})
    event_uri = booked["result"]["resource"]["event"]
    await ok(nc, hook_settings, "calendly_cancel_event", {**ids, "base_url": BASE,
                                                         "uuid": event_uri.rsplit("/", 1)[1], "reason": "ill"})
    await eventually(lambda: len(receiver.delivered()) == 2, what="invitee.created and invitee.canceled")
    created, canceled = receiver.delivered()
    assert [created.json["event"], canceled.json["event"]] == ["invitee.created", "invitee.canceled"]
    for request in (created, canceled):
        assert calendly_signature_ok("calendly-key", request.body, request.headers["calendly-webhook-signature"])
        assert request.json["payload"]["scheduled_event"]["uri"] == event_uri
    assert canceled.json["payload"]["status"] == "canceled"
    assert canceled.json["payload"]["cancellation"]["reason"] == "ill"
    await eventually(lambda: len(other.delivered()) == 1, what="the organization subscription's delivery")
