"""Given events, a fixed Env and small readers of a Decision, shared by the domain story tests.

The deciders are pure, so a test's "given" is a list of past events folded with the decider's
own `evolve`, its "when" is one command, and its "then" is the events (per stream) and the
result of the Decision, or the error raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from shared.domain import accounts, links, providers
from shared.domain.core import Decision, Env
from shared.errors import NotFound, ValidationFailed
from shared.messages.events import (
    AccountCreated,
    Event,
    LinkCreated,
    LinkDeleted,
    LinkSettings,
    ProviderCreated,
    ScopeRef,
    TeamScopeCreated,
    UserCreated,
)

S = TypeVar("S")

NOW = datetime(2026, 5, 4, 9, 30, 15, tzinfo=UTC)
NOW_ISO = "2026-05-04T09:30:15Z"
EARLIER_ISO = "2026-04-01T08:00:00Z"
PUBLIC_URL = "https://book.example.test"

ACCOUNT_ID = "acct_main"
OTHER_ACCOUNT_ID = "acct_other"

ANN = "user_ann"
ANN_PROVIDER = "prov_ann"
ANN_SCOPE = "scope_ann"
ANN_SCOPE_SLUG = "ann-lee"
ANN_ZONE = "Europe/Berlin"

BOB = "user_bob"
BOB_PROVIDER = "prov_bob"
BOB_SCOPE = "scope_bob"
BOB_ZONE = "America/New_York"

ROOM_PROVIDER = "prov_room"
OTHER_PROVIDER = "prov_other"

TEAM_SCOPE = "scope_sales"
TEAM_SLUG = "sales"

LINK_ID = "link_intro"
LINK_SLUG = "intro-call"
SIGNING_SECRET = "unit-test-signing-secret-0123456789abcdef"


# --- environment ---------------------------------------------------------------------------------

def fixed_env(now: datetime = NOW) -> Env:
    """An Env whose time is fixed and whose ids and secrets come from counters."""
    ids = itertools.count(1)
    secrets = itertools.count(1)
    return Env(
        now=now,
        new_id=lambda prefix: f"{prefix}_{next(ids):026d}",
        new_secret=lambda: f"sched_test_secret_{next(secrets)}",
        public_url=PUBLIC_URL,
        signing_secret=SIGNING_SECRET,
    )


# --- folding -------------------------------------------------------------------------------------

def fold(evolve: Callable[[S, Event], S], state: S, events: Iterable[Event]) -> S:
    """The state after every event, in order."""
    for event in events:
        state = evolve(state, event)
    return state


def account_given(*events: Event) -> accounts.AccountState:
    return fold(accounts.evolve, accounts.AccountState(), events)


def provider_given(*events: Event) -> providers.ProviderState:
    return fold(providers.evolve, providers.ProviderState(), events)


def link_given(*events: Event) -> links.LinkState:
    return fold(links.evolve, links.LinkState(), events)


def slug_given(*events: Event) -> links.SlugState:
    return fold(links.evolve_slug, links.SlugState(), events)


# --- past events ---------------------------------------------------------------------------------

def account_created(account_id: str = ACCOUNT_ID, name: str = "Acme") -> AccountCreated:
    return AccountCreated(account_id=account_id, name=name, created_at=EARLIER_ISO)


def ann_created() -> UserCreated:
    return UserCreated(user_id=ANN, name="Ann Lee", email="ann@example.com", provider_id=ANN_PROVIDER,
                       personal_scope_id=ANN_SCOPE, personal_scope_slug=ANN_SCOPE_SLUG, created_at=EARLIER_ISO)


def bob_created() -> UserCreated:
    return UserCreated(user_id=BOB, name="Bob Stone", email="bob@example.com", provider_id=BOB_PROVIDER,
                       personal_scope_id=BOB_SCOPE, personal_scope_slug="bob-stone", created_at=EARLIER_ISO)


def team_created(slug: str = TEAM_SLUG, members: list[str] | None = None,
                 scope_id: str = TEAM_SCOPE) -> TeamScopeCreated:
    return TeamScopeCreated(scope_id=scope_id, name="Sales", slug=slug,
                            member_user_ids=[ANN] if members is None else members, created_at=EARLIER_ISO)


def provider_created(provider_id: str = ANN_PROVIDER, account_id: str = ACCOUNT_ID, time_zone: str = ANN_ZONE,
                     user_id: str | None = ANN, display_name: str = "Ann Lee",
                     email: str | None = "ann@example.com") -> ProviderCreated:
    return ProviderCreated(provider_id=provider_id, account_id=account_id, display_name=display_name,
                           email=email, time_zone=time_zone, user_id=user_id, created_at=EARLIER_ISO)


def acme_with_ann() -> accounts.AccountState:
    """Account `acct_main` whose only user is Ann (personal scope `ann-lee`)."""
    return account_given(account_created(), ann_created())


def acme_with_ann_and_bob() -> accounts.AccountState:
    """Account `acct_main` with Ann and Bob, and a team scope `sales` whose only member is Ann."""
    return account_given(account_created(), ann_created(), bob_created(), team_created())


def ann_provider() -> providers.ProviderState:
    return provider_given(provider_created())


def bob_provider() -> providers.ProviderState:
    return provider_given(provider_created(BOB_PROVIDER, time_zone=BOB_ZONE, user_id=BOB, display_name="Bob Stone",
                                           email="bob@example.com"))


def room_provider() -> providers.ProviderState:
    return provider_given(provider_created(ROOM_PROVIDER, time_zone="Asia/Kolkata", user_id=None,
                                           display_name="Room 1", email=None))


def other_account_provider() -> providers.ProviderState:
    return provider_given(provider_created(OTHER_PROVIDER, account_id=OTHER_ACCOUNT_ID, user_id="user_eve",
                                           display_name="Eve", email="eve@example.org"))


ANN_SCOPE_REF = ScopeRef(id=ANN_SCOPE, name="Ann Lee", slug=ANN_SCOPE_SLUG)


def intro_settings(**changes: object) -> LinkSettings:
    """A link's settings with most fields away from their defaults, so a copy or a PATCH shows."""
    base: dict[str, object] = {
        "name": "Intro call", "slug": LINK_SLUG, "private_name": "intro (internal)", "description": "A first chat",
        "type": "recurring", "state": "active", "durations": [20, 40], "default_duration": 40, "increment": 10,
        "buffer_before": 5, "buffer_after": 10, "minimum_notice": 120, "maximum_days_ahead": 30, "time_zone": ANN_ZONE,
        "availability": [], "hosts": [ANN_PROVIDER], "host_mode": "any",
    }
    return LinkSettings(**{**base, **changes})  # type: ignore[arg-type]


def link_created(link_id: str = LINK_ID, account_id: str = ACCOUNT_ID, settings: LinkSettings | None = None,
                 scope: ScopeRef = ANN_SCOPE_REF) -> LinkCreated:
    return LinkCreated(link_id=link_id, account_id=account_id, scope=scope,
                       settings=settings or intro_settings(), created_at=EARLIER_ISO)


def link_deleted(link_id: str = LINK_ID) -> LinkDeleted:
    return LinkDeleted(link_id=link_id, deleted_at=EARLIER_ISO)


# --- reading a decision --------------------------------------------------------------------------

def streams_of(decision: Decision) -> list[str]:
    return [stream_id for stream_id, _ in decision.changes]


def events_on(decision: Decision, stream_id: str) -> list[Event]:
    """The events the decision appends to one stream (fails when it appends none there)."""
    by_stream = dict(decision.changes)
    assert stream_id in by_stream, f"no events on {stream_id}; streams: {list(by_stream)}"
    return by_stream[stream_id]


def all_events(decision: Decision) -> list[Event]:
    return [event for _, events in decision.changes for event in events]


# --- expecting errors ----------------------------------------------------------------------------

@contextmanager
def rejected(*fields: str) -> Iterator[None]:
    """The block raises ValidationFailed naming exactly these fields."""
    with pytest.raises(ValidationFailed) as caught:
        yield
    assert set(caught.value.fields) == set(fields), caught.value.fields
    for field in fields:
        assert caught.value.fields[field], f"no message for {field}"


@contextmanager
def not_found() -> Iterator[None]:
    """The block raises NotFound (and never a validation error that would leak existence)."""
    with pytest.raises(NotFound) as caught:
        yield
    assert caught.value.code == "not_found"
