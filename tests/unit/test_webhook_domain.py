"""Webhook stories: create (secret shown once), refused targets, rotate with a grace period, delete."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.webhooks.outbox import Subscription
from services.webhooks.senders import retry_delay, signing_secrets
from shared.domain import webhooks
from shared.domain.accounts import AccountState
from shared.domain.core import Env, webhook_stream
from shared.messages.commands import CreateWebhook, DeleteWebhook, RotateWebhookSecret
from shared.messages.events import WebhookCreated, WebhookDeleted, WebhookSecretRotated, encode_event

from .domain_fixtures import (
    ACCOUNT_ID,
    NOW,
    NOW_ISO,
    OTHER_ACCOUNT_ID,
    acme_with_ann,
    all_events,
    events_on,
    fixed_env,
    not_found,
    rejected,
)

URL = "https://hooks.example.com/sched"


def create(url: str = URL, events: list[str] | None = None, env: Env | None = None,
           account_id: str = ACCOUNT_ID):
    command = CreateWebhook(command_id="c1", account_id=account_id, url=url,
                            events=["event.created", "link.updated"] if events is None else events)
    return webhooks.create_webhook(command, acme_with_ann(), env or fixed_env())


def webhook_given(*events) -> webhooks.WebhookState:
    state = webhooks.WebhookState()
    for event in events:
        state = webhooks.evolve(state, event)
    return state


def created_event() -> WebhookCreated:
    return all_events(create())[0]  # type: ignore[return-value]


def test_creating_a_webhook_shows_the_secret_once_and_never_logs_it():
    decision = create()
    [event] = events_on(decision, webhook_stream(decision.result["id"]))
    assert isinstance(event, WebhookCreated)
    assert (event.url, event.events, event.account_id, event.created_at) == (
        URL, ["event.created", "link.updated"], ACCOUNT_ID, NOW_ISO)
    secret = decision.result["secret"]
    assert secret.startswith("whsec_")
    assert decision.result == {"id": event.webhook_id, "url": URL, "events": ["event.created", "link.updated"],
                               "state": "active", "created_at": NOW_ISO, "updated_at": NOW_ISO, "secret": secret}
    assert decision.stored_result == {**decision.result, "secret": None}
    assert secret.encode() not in encode_event(event)  # only the secret's id is in the log
    assert webhooks.new_secret_of(decision) == (event.webhook_id, event.secret_id, secret)


@pytest.mark.parametrize("url", [
    "ftp://example.com/x", "file:///etc/passwd", "example.com/hooks", "https://", "http://:80/x",
    "http://10.0.0.1/hook", "http://192.168.1.20/", "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data",
    "http://127.0.0.1:9000/", "http://localhost/", "http://api.localhost/", "http://2130706433/", "http://127.1/",
    "http://[::1]/", "http://[fe80::1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/", "http://100.64.0.1/",
    "https://example.com:99999/", "",
])
def test_only_public_http_urls_are_accepted(url: str):
    with rejected("url"):
        create(url)


def test_loopback_is_allowed_only_when_the_setting_says_so():
    env = Env(now=NOW, webhook_allow_loopback=True)
    assert create("http://127.0.0.1:9000/hook", env=env).result["url"] == "http://127.0.0.1:9000/hook"
    assert create("http://localhost:9000/hook", env=env).result["state"] == "active"
    with rejected("url"):  # private stays refused
        create("http://10.0.0.1/", env=env)
    with rejected("url"):
        create("http://169.254.169.254/", env=env)


def test_event_types_must_be_known_and_listed_once():
    with rejected("events"):
        create(events=["event.created", "event.exploded"])
    with rejected("events"):
        create(events=[])
    with rejected("events"):
        create(events=["link.created", "link.created"])
    assert create(events=list(webhooks.WEBHOOK_EVENT_TYPES)).result["events"] == list(webhooks.WEBHOOK_EVENT_TYPES)


def test_an_unknown_account_cannot_subscribe():
    with not_found():
        webhooks.create_webhook(CreateWebhook(command_id="c", account_id="acct_nope", url=URL, events=["event.created"]),
                                AccountState(), fixed_env())


def test_rotating_keeps_the_previous_secret_for_the_grace_period():
    created = created_event()
    state = webhook_given(created)
    decision = webhooks.rotate_webhook_secret(
        RotateWebhookSecret(command_id="c2", account_id=ACCOUNT_ID, webhook_id=created.webhook_id,
                            grace_period_seconds=3600), state, fixed_env())
    [event] = all_events(decision)
    assert isinstance(event, WebhookSecretRotated)
    assert event.previous_secret_id == created.secret_id and event.secret_id != created.secret_id
    assert event.previous_expires_at == webhooks.iso_z(NOW + timedelta(hours=1))
    assert decision.result["secret"].startswith("whsec_") and decision.stored_result["secret"] is None
    assert decision.result["previous_secret_expires_at"] == event.previous_expires_at
    assert webhooks.new_secret_of(decision)[1] == event.secret_id
    with rejected("grace_period_seconds"):
        webhooks.rotate_webhook_secret(RotateWebhookSecret(command_id="c3", account_id=ACCOUNT_ID,
                                                           webhook_id=created.webhook_id, grace_period_seconds=-1),
                                       state, fixed_env())


def test_deleting_answers_the_deleted_webhook_and_only_once():
    created = created_event()
    state = webhook_given(created)
    decision = webhooks.delete_webhook(DeleteWebhook(command_id="c", account_id=ACCOUNT_ID,
                                                     webhook_id=created.webhook_id), state, fixed_env())
    assert isinstance(all_events(decision)[0], WebhookDeleted)
    assert decision.result["state"] == "deleted" and "secret" not in decision.result
    gone = webhook_given(created, *all_events(decision))
    with not_found():
        webhooks.delete_webhook(DeleteWebhook(command_id="c", account_id=ACCOUNT_ID, webhook_id=created.webhook_id),
                                gone, fixed_env())
    with not_found():
        webhooks.delete_webhook(DeleteWebhook(command_id="c", account_id=OTHER_ACCOUNT_ID,
                                              webhook_id=created.webhook_id), state, fixed_env())


def test_retries_follow_the_schedule_with_jitter_then_stop():
    schedule = (5.0, 30.0, 120.0)
    rng = random.Random(7)
    for attempt, base in enumerate(schedule, start=1):
        for _ in range(50):
            delay = retry_delay(attempt, schedule, rng)
            assert delay is not None and base * 0.8 <= delay <= base * 1.2
    assert retry_delay(4, schedule, rng) is None  # the 4th failure of a 3-step schedule: dead


def test_the_previous_secret_signs_only_during_its_grace_period():
    sub = Subscription("whk_1", URL, "whsec_new", "whsec_old", NOW + timedelta(minutes=5), "active")
    secrets = {"whsec_new": "NEW", "whsec_old": "OLD"}
    assert signing_secrets(sub, secrets, NOW) == ["NEW", "OLD"]
    assert signing_secrets(sub, secrets, NOW + timedelta(minutes=6)) == ["NEW"]
    assert signing_secrets(sub._replace(previous_secret_id=None), secrets, NOW) == ["NEW"]
