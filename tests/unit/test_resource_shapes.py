"""Every reply today's code builds fits its Struct in shared/messages/resources.py exactly.

Given real domain states (folded from events, or moved on by the deciders), when a resource
function or a query-service handler shapes the reply, then `msgspec.convert(reply, Type,
strict=True)` succeeds and `msgspec.to_builtins` of the result equals the reply: no key is missing
from the Struct, none is extra, and every value has the declared type and nullability. The query
service's handlers run for real against a fake read model (its `get_state`, `page`, calendar and
delivery reads return domain states and rows built here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
import pytest

from projections.calendars import queries as calendars
from projections.resources import queries as resources
from projections.webhooks import queries as webhook_queries
from services.query import auth, calendly
from services.query import resources as resource_queries
from services.query import slots as slot_queries
from services.query import webhooks as webhook_handlers
from services.query.reads import Reads
from services.webhooks.payloads import webhook_body
from shared.availability.model import (
    AvailabilityRule,
    DateOverride,
    PublicBookings,
    TimeOfDayRange,
    WeeklyRule,
)
from shared.domain import accounts, providers, service_catalogue, webhooks
from shared.domain.core import appointment_stream, provider_stream
from shared.domain.holds import hold_resource
from shared.messages import queries as q
from shared.messages import resources as r
from shared.messages.commands import (
    CreateAccount,
    CreateTeamScope,
    CreateUser,
    CreateWebhook,
    DeleteWebhook,
    IssueApiToken,
    RotateWebhookSecret,
    SetProviderSchedule,
)
from shared.messages.events import ProviderScheduleSet

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN,
    ANN_PROVIDER,
    BOB_PROVIDER,
    acme_with_ann,
    acme_with_ann_and_bob,
    ann_provider,
    fixed_env,
    intro_settings,
    link_created,
    link_given,
    provider_created,
)
from .test_domain_link_bookings import (
    NOW,
    World,
    after,
    cancel_event,
    complete_link_hold,
    create_event,
    expire_hold,
    hold_link_slot,
    link_settings,
    mon,
    release_hold,
    reschedule_event,
    world_with_link,
)
from .test_domain_links import create as create_link
from .test_domain_links import delete as delete_link
from .test_domain_links import duplicate as duplicate_link
from .test_domain_links import toggle as toggle_link
from .test_domain_links import update as update_link
from .test_domain_services_and_appointments import (
    SERVICE_ID,
    SP_ANN,
    add_provider,
    cancel_appointment,
    complete_service_hold,
    consultation,
    create_appointment,
    create_block,
    create_service,
    delete_block,
    hold_service_slot,
    remove_provider,
    service_of,
    sync_busy,
)

T = TypeVar("T")
BASE_URL = "https://api.example.test/calendly"


def fits(reply: Any, type_: type[T]) -> T:
    """The reply converts strictly into `type_` and back to the very same builtins."""
    converted = msgspec.convert(reply, type_, strict=True)
    assert msgspec.to_builtins(converted) == reply
    return converted


# --- links ------------------------------------------------------------------------------------------

class TestLinks:
    def test_every_link_decision_answers_a_link(self) -> None:
        created = create_link(private_name="intro (internal)", description="A chat", durations=[15, 30],
                              availability=[AvailabilityRule(day_of_week="monday", start_time="09:00",
                                                             end_time="12:00", rank=2)])
        fits(created.result, r.Link)
        state = link_given(link_created())
        for decision in (update_link(state, name="Renamed", description=None), toggle_link(state),
                         duplicate_link(state), delete_link(state)):
            fits(decision.result, r.Link)

    def test_a_team_link_and_a_disabled_single_use_link_fit_too(self) -> None:
        team = create_link(team_slug="sales", type="single", host_mode="all", hosts=[ANN_PROVIDER])
        link = fits(team.result, r.Link)
        assert (link.type, link.host_mode, link.scope.slug) == ("single", "all", "sales")
        disabled = toggle_link(link_given(link_created(settings=intro_settings(type="single"))))
        assert fits(disabled.result, r.Link).state == "disabled"


# --- link events and holds ---------------------------------------------------------------------------

class TestEventsAndHolds:
    def test_created_canceled_and_rescheduled_events_fit_the_seed_002_shape(self) -> None:
        world = world_with_link()
        created = create_event(world, mon("10:00"), fields=[{"id": "f1", "label": "Topic", "value": "x"}],
                               metadata={"crm": {"id": 42}})
        fits(created.result, r.BookedEvent)
        moved = reschedule_event(world, created.result["id"], mon("11:00"))
        assert fits(moved.result, r.BookedEvent).original_start_at == mon("10:00")
        canceled = cancel_event(world, created.result["id"], reason=None)
        assert fits(canceled.result, r.BookedEvent).state == "canceled"

    def test_a_hold_in_every_state_is_a_booking_intent(self) -> None:
        world = world_with_link()
        active = hold_link_slot(world, mon("10:00"))
        assert fits(active.result, r.BookingIntent).state == "active"
        assert fits(release_hold(world, active.result["id"]).result, r.BookingIntent).state == "abandoned"
        expiring = hold_link_slot(world, mon("11:00"))
        expired = expire_hold(world, expiring.result["id"], now=after(11))
        assert fits(expired.result, r.BookingIntent).state == "expired"
        completing = hold_link_slot(world, mon("12:00"))
        completed = complete_link_hold(world, completing.result["id"])
        # complete_hold on a link answers the event
        assert fits(completed.result, r.BookedEvent).state == "confirmed"
        completed_hold = hold_resource(world.hold(completing.result["id"]), int(NOW.timestamp()))
        intent = fits(completed_hold, r.BookingIntent)
        assert (intent.state, intent.event_id) == ("completed", completed.result["id"])


# --- services, appointments, blocks, busy times -------------------------------------------------------

class TestServices:
    def test_services_and_their_providers(self) -> None:
        fits(create_service(location_id="loc_1").result, r.Service)
        world = consultation()
        fits(add_provider(world.given(provider_stream("prov_carl"), *provider_events("prov_carl")),
                          "prov_carl").result, r.ServiceProvider)
        fits(remove_provider(world, service_provider_id=SP_ANN).result, r.ServiceProvider)
        service = fits(service_catalogue.service_resource(service_of(world)), r.Service)
        assert {p.provider.id for p in service.providers} == {BOB_PROVIDER, "prov_carl"}

    def test_appointments_created_canceled_and_from_a_hold(self) -> None:
        world = consultation()
        created = create_appointment(world, mon("10:00"))
        fits(created.result, r.Appointment)
        assert fits(cancel_appointment(world, created.result["id"]).result, r.Appointment).state == "canceled"
        held = hold_service_slot(world, mon("11:00"))
        assert fits(held.result, r.BookingIntent).service_id == SERVICE_ID
        # complete_hold on a service answers the appointment
        completed = fits(complete_service_hold(world, held.result["id"]).result, r.Appointment)
        assert completed.booking_intent_id == held.result["id"]
        assert world.state(appointment_stream(completed.id)).created is not None

    def test_blocks_and_external_busy_times(self) -> None:
        world = consultation()
        block = create_block(world, "provider", ANN_PROVIDER, reason="Dentist")
        fits(block.result, r.Block)
        fits(create_block(world, "service", SERVICE_ID).result, r.Block)
        assert fits(delete_block(world, block.result["id"]).result, r.Block).deleted is True
        synced = sync_busy(world, mon("00:00"), mon("23:00"), (mon("10:00"), mon("11:00")))
        assert fits(synced.result, r.SyncedBusyTimes).from_ == mon("00:00")
        fits(sync_busy(world, mon("00:00"), mon("23:00")).result, r.SyncedBusyTimes)


def provider_events(provider_id: str) -> list[Any]:
    """A provider in the account working the default hours in Etc/UTC, with no user and no email."""
    return [provider_created(provider_id, time_zone="Etc/UTC", user_id=None, display_name="Carl",
                             email=None)]


# --- providers and accounts ---------------------------------------------------------------------------

class TestProvidersAndAccounts:
    def test_a_provider_with_the_default_and_with_a_full_schedule(self) -> None:
        fits(providers.provider_resource(ann_provider()), r.Provider)
        command = SetProviderSchedule(
            command_id="cmd_s", account_id=ACCOUNT_ID, user_id=ANN, provider_id=ANN_PROVIDER,
            time_zone="America/Chicago", weekly_rules=[WeeklyRule(day_of_week="saturday", start_time="20:00",
                                                                   end_time="24:00")],
            date_overrides=[DateOverride(date="2026-06-01"),
                            DateOverride(date="2026-06-02", intervals=[TimeOfDayRange(start_time="07:00",
                                                                                      end_time="09:00")])],
            effective_from="2026-06-01", effective_until=None, public_bookings=PublicBookings(enabled=True))
        decision = providers.set_provider_schedule(command, ann_provider(), fixed_env())
        assert fits(decision.result, r.Provider).schedule.public_bookings.enabled is True

    def test_account_user_token_and_team_results_and_their_stored_replays(self) -> None:
        for command in (CreateAccount(command_id="c1", name="Ann Lee", email="ann@example.com"),
                        CreateAccount(command_id="c2", name="Ann Lee", email="ann@example.com", team_slug="sales")):
            decision = accounts.create_account(command, fixed_env())
            fits(decision.result, r.NewAccount)
            assert fits(decision.stored_result, r.NewAccount).token is None
        account = acme_with_ann_and_bob()
        fits(accounts.create_user(CreateUser(command_id="c3", account_id=ACCOUNT_ID, user_id=ANN, name="Cy Doe",
                                             email="cy@example.com"), account, fixed_env()).result, r.User)
        token = accounts.issue_api_token(IssueApiToken(command_id="c4", account_id=ACCOUNT_ID, user_id=ANN),
                                         account, fixed_env())
        fits(token.result, r.ApiToken)
        fits(token.stored_result, r.ApiToken)
        team = accounts.create_team_scope(CreateTeamScope(command_id="c5", account_id=ACCOUNT_ID, user_id=ANN,
                                                          name="Support", slug="support"), account, fixed_env())
        fits(team.result, r.TeamScope)


# --- webhooks -----------------------------------------------------------------------------------------

class TestWebhooks:
    def test_create_rotate_and_delete_and_the_replayed_replies(self) -> None:
        created = webhooks.create_webhook(CreateWebhook(command_id="w1", account_id=ACCOUNT_ID,
                                                        url="https://hooks.example.com/x",
                                                        events=["event.created", "link.updated"]),
                                          acme_with_ann(), fixed_env())
        fits(created.result, r.NewWebhook)
        assert fits(created.stored_result, r.NewWebhook).secret is None
        state = webhooks.evolve(webhooks.WebhookState(), created.changes[0][1][0])
        rotated = webhooks.rotate_webhook_secret(RotateWebhookSecret(command_id="w2", account_id=ACCOUNT_ID,
                                                                     webhook_id=state.webhook_id), state, fixed_env())
        fits(rotated.result, r.RotatedWebhook)
        fits(rotated.stored_result, r.RotatedWebhook)
        deleted = webhooks.delete_webhook(DeleteWebhook(command_id="w3", account_id=ACCOUNT_ID,
                                                        webhook_id=state.webhook_id), state, fixed_env())
        assert fits(deleted.result, r.Webhook).state == "deleted"
        assert fits(webhooks.webhook_resource(state, "failing"), r.Webhook).state == "failing"

    def test_a_delivery_body_carries_a_resource(self) -> None:
        link = create_link().result
        body = msgspec.json.decode(webhook_body("link.created", "evt_1", 1, "2026-05-04T09:30:15Z", link))
        delivered = fits(body, r.WebhookBody)
        fits(delivered.payload, r.Link)


# --- the query service, on a fake read model ------------------------------------------------------------

class FakeReadModel:
    """Stands in for the read-model functions the query service calls: domain states and rows by key."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.states: dict[tuple[str, str], Any] = {}
        self.calendars: dict[str, Any] = {}  # provider id -> ProviderState
        self.provider_rows: dict[str, dict[str, Any]] = {}
        self.busy_rows: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        monkeypatch.setattr(resources, "get_state", self.get_state)
        monkeypatch.setattr(resources, "page", self.page)
        monkeypatch.setattr(resources, "all_states", self.all_states)
        monkeypatch.setattr(calendars, "host_calendars", self.host_calendars)
        monkeypatch.setattr(calendars, "providers", self.providers)
        monkeypatch.setattr(calendars, "busy_rows", self.busy)
        monkeypatch.setattr(webhook_queries, "keyset_page", self.keyset_page)

    def put(self, kind: str, resource_id: str, state: Any) -> None:
        self.states[(kind, resource_id)] = state

    async def get_state(self, pool: Any, kind: str, resource_id: str, account_id: str) -> Any:
        return self.states.get((kind, resource_id))

    async def page(self, pool: Any, kind: str, account_id: str, **_: Any) -> tuple[list[Any], dict[str, Any]]:
        found = [state for (k, _id), state in self.states.items() if k == kind]
        return found, {"before": None, "after": "c2FtcGxl", "limit": 20}

    async def all_states(self, pool: Any, kind: str, account_id: str) -> list[Any]:
        return [state for (k, _id), state in self.states.items() if k == kind]

    async def host_calendars(self, pool: Any, provider_ids: list[str], now: int, start: int, end: int,
                             extra_busy: dict[str, list[Any]] | None = None) -> list[Any]:
        extra = extra_busy or {}
        return [self.calendars[p].host_calendar(now, (), extra.get(p, [])) for p in provider_ids
                if p in self.calendars]

    async def providers(self, pool: Any, provider_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {p: self.provider_rows[p] for p in provider_ids if p in self.provider_rows}

    async def busy(self, pool: Any, provider_id: str, start: int, end: int) -> list[dict[str, Any]]:
        return self.busy_rows

    async def keyset_page(self, pool: Any, **_: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return self.deliveries, {"before": "bmV3ZXI", "after": None, "limit": 20}


class FakePool:
    """What the query service asks the pool directly: webhook failing states and delivery attempts."""

    def __init__(self, read_model: FakeReadModel) -> None:
        self.read_model = read_model

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.read_model.attempts if "webhook_attempts" in sql else []


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def provider_row(state: providers.ProviderState) -> dict[str, Any]:
    """The rm_providers row the calendars projection keeps for a provider."""
    return {"provider_id": state.provider_id, "account_id": state.account_id, "display_name": state.display_name,
            "email": state.email, "user_id": state.user_id, "created_at": state.created_at,
            "schedule": msgspec.json.encode(state.schedule).decode(),
            "public_bookings": state.schedule.public_bookings.enabled}


@pytest.fixture
def read_model(monkeypatch: pytest.MonkeyPatch) -> FakeReadModel:
    return FakeReadModel(monkeypatch)


@pytest.fixture
def queries(read_model: FakeReadModel) -> Reads:
    return Reads(FakePool(read_model), public_url="https://book.example.test",  # type: ignore[arg-type]
                 clock=lambda: NOW.timestamp(), signing_secret="unit-test-signing-secret-0123456789abcdef")


def public_world() -> World:
    """The Consultation service whose providers take public bookings, and the intro link."""
    world = consultation()
    for provider_id in (ANN_PROVIDER, BOB_PROVIDER):
        schedule = msgspec.structs.replace(world.provider(provider_id).schedule,
                                           public_bookings=PublicBookings(enabled=True))
        world.given(provider_stream(provider_id), ProviderScheduleSet(provider_id=provider_id, schedule=schedule))
    return world


def load(read_model: FakeReadModel, world: World) -> None:
    """Every stream of the world into the fake read model, as the projections would keep it."""
    for stream_id, state in world.states.items():
        kind, _, key = stream_id.partition("-")
        if kind == "provider":
            read_model.calendars[key] = state
            read_model.provider_rows[key] = provider_row(state)
        read_model.put({"bi": "booking_intent", "appt": "appointment"}.get(kind, kind), key, state)


class TestQueries:
    def test_link_slots(self, read_model: FakeReadModel, queries: Reads) -> None:
        world = world_with_link()
        load(read_model, world)
        slots = run(slot_queries.link_slots(queries, q.LinkSlots(account_id=ACCOUNT_ID, link_id="link_intro")))
        assert slots
        fits(slots, r.LinkSlots)

    def test_service_slots_public_slots_and_earliest_slot(self, read_model: FakeReadModel,
                                                          queries: Reads) -> None:
        world = public_world()
        create_appointment(world, mon("10:00"))
        load(read_model, world)
        query = q.ServiceSlots(account_id=ACCOUNT_ID, service_id=SERVICE_ID, limit=5,
                                           time_zone="Europe/Berlin")
        slots = fits(run(slot_queries.service_slots(queries, query)), r.ServiceSlotsReply)
        assert slots.data.aggregated_slots and slots.data.provider_slots
        assert fits(run(slot_queries.public_service_slots(queries, query)), r.PublicServiceSlotsReply).data
        earliest = q.EarliestSlot(account_id=ACCOUNT_ID, service_id=SERVICE_ID)
        assert fits(run(slot_queries.earliest_slot(queries, earliest)), r.EarliestSlotReply).data is not None

    def test_no_earliest_slot_is_null(self, read_model: FakeReadModel,
                                      queries: Reads) -> None:
        load(read_model, consultation())  # nobody takes public bookings
        earliest = q.EarliestSlot(account_id=ACCOUNT_ID, service_id=SERVICE_ID)
        assert fits(run(slot_queries.earliest_slot(queries, earliest)), r.EarliestSlotReply).data is None

    def test_lists_and_gets(self, read_model: FakeReadModel, queries: Reads) -> None:
        world = public_world()
        world.given("link-link_intro", link_created(settings=link_settings()))
        event = create_event(world, mon("10:00"))
        appointment = create_appointment(world, mon("11:00"))
        hold = hold_service_slot(world, mon("12:00"))
        load(read_model, world)
        listed = fits(run(resource_queries.events_list(queries, q.EventsList(account_id=ACCOUNT_ID, period="all"))),
                      r.EventList)
        assert listed.entries
        assert fits(run(resource_queries.links_list(queries, q.ListQuery(account_id=ACCOUNT_ID))), r.LinkList).entries

        def get(handler: Callable[[Reads, q.GetById], Any], resource_id: str, type_: type[T]) -> T:
            return fits(run(handler(queries, q.GetById(account_id=ACCOUNT_ID, id=resource_id))), type_)

        get(resource_queries.event_get, event.result["id"], r.BookedEvent)
        get(resource_queries.link_get, "link_intro", r.Link)
        get(resource_queries.appointment_get, appointment.result["id"], r.Appointment)
        get(resource_queries.booking_intent_get, hold.result["id"], r.BookingIntent)
        get(resource_queries.service_get, SERVICE_ID, r.Service)
        provider = get(resource_queries.provider_get, ANN_PROVIDER, r.Provider)
        # provider_get (read model) and provider_resource (decider) answer the same shape
        assert msgspec.to_builtins(provider) == providers.provider_resource(world.provider(ANN_PROVIDER))

    def test_me_and_the_gateway_queries(self, read_model: FakeReadModel,
                                        queries: Reads) -> None:
        read_model.put("account", ACCOUNT_ID, acme_with_ann())
        fits(run(resource_queries.me(queries, q.GetById(account_id=ACCOUNT_ID, id=ANN))), r.Me)
        fits(run(auth.account_exists(queries, q.PublicAccount(account_id=ACCOUNT_ID))), r.KnownAccount)
        # whoami answers the rm_tokens row's two columns
        fits({"account_id": ACCOUNT_ID, "user_id": ANN}, r.Caller)

    def test_webhooks_and_deliveries(self, read_model: FakeReadModel, queries: Reads) -> None:
        created = webhooks.create_webhook(CreateWebhook(command_id="w1", account_id=ACCOUNT_ID,
                                                        url="https://hooks.example.com/x", events=["event.created"]),
                                          acme_with_ann(), fixed_env())
        state = webhooks.evolve(webhooks.WebhookState(), created.changes[0][1][0])
        read_model.put("webhook", state.webhook_id, state)
        fits(run(webhook_handlers.webhooks_list(queries, q.ListQuery(account_id=ACCOUNT_ID))), r.WebhookList)
        fits(run(webhook_handlers.webhook_get(queries, q.GetById(account_id=ACCOUNT_ID, id=state.webhook_id))), r.Webhook)
        at = datetime(2026, 5, 4, 9, 30, 15, 123456, tzinfo=UTC)
        # rows as webhook_deliveries and webhook_attempts hold them (migration 0004)
        read_model.deliveries = [
            {"seq": 2, "id": "dlv_2", "event_id": "evt_2", "type": "event.created", "state": "pending",
             "attempt_count": 1, "next_attempt_at": at + timedelta(seconds=5), "created_at": at, "finished_at": None},
            {"seq": 1, "id": "dlv_1", "event_id": "evt_1", "type": "event.created", "state": "delivered",
             "attempt_count": 2, "next_attempt_at": at, "created_at": at, "finished_at": at},
        ]
        read_model.attempts = [
            {"delivery_seq": 1, "attempt": 1, "attempted_at": at, "duration_ms": 5000.25, "status_code": None,
             "error": "timeout"},
            {"delivery_seq": 1, "attempt": 2, "attempted_at": at, "duration_ms": 12.0, "status_code": 200,
             "error": None},
            {"delivery_seq": 2, "attempt": 1, "attempted_at": at, "duration_ms": 30.5, "status_code": 500,
             "error": None},
        ]
        query = q.WebhookDeliveries(account_id=ACCOUNT_ID, webhook_id=state.webhook_id)
        deliveries = fits(run(webhook_handlers.webhook_deliveries(queries, query)), r.DeliveryList)
        assert [len(d.attempts) for d in deliveries.entries] == [1, 2]
        assert deliveries.entries[1].next_attempt_at is None


# --- Calendly ------------------------------------------------------------------------------------------

def calendly_query(type_: type[T], **fields: Any) -> T:
    return type_(account_id=ACCOUNT_ID, base_url=BASE_URL, user_id=ANN, **fields)


class TestCalendly:
    @pytest.fixture
    def world(self, read_model: FakeReadModel) -> World:
        world = world_with_link()
        world.given("link-link_team", link_created("link_team", settings=link_settings(
            slug="team-call", hosts=[ANN_PROVIDER, BOB_PROVIDER], host_mode="all")))
        world.given(provider_stream(BOB_PROVIDER), *provider_events(BOB_PROVIDER))
        create_event(world, mon("10:00"))
        load(read_model, world)
        read_model.put("account", ACCOUNT_ID, acme_with_ann_and_bob())
        return world

    def test_users_me_and_memberships(self, world: World, queries: Reads) -> None:
        fits(run(calendly.users_me(queries, calendly_query(q.CalendlyUsersMeQuery))), r.CalendlyUserReply)
        organization = f"{BASE_URL}/organizations/{ACCOUNT_ID}"
        memberships = fits(run(calendly.organization_memberships(queries, calendly_query(q.CalendlyMembershipsQuery, 
            organization=organization))), r.CalendlyMemberships)
        assert {m.role for m in memberships.collection} == {"owner", "user"}
        fits(run(calendly.organization_memberships(queries, calendly_query(q.CalendlyMembershipsQuery, user=f"{BASE_URL}/users/{ANN}"))),
             r.CalendlyMemberships)

    def test_event_types_and_available_times(self, world: World, queries: Reads) -> None:
        types = fits(run(calendly.event_types(queries, calendly_query(q.CalendlyEventTypesQuery, 
            organization=f"{BASE_URL}/organizations/{ACCOUNT_ID}"))), r.CalendlyEventTypes)
        assert {t.kind for t in types.collection} == {"solo", "group"}
        times = fits(run(calendly.event_type_available_times(queries, calendly_query(q.CalendlyAvailableTimesQuery, 
            event_type=f"{BASE_URL}/event_types/link_intro", start_time=mon("09:00"),
            end_time="2026-03-05T00:00:00Z"))), r.CalendlyAvailableTimes)
        assert times.collection

    def test_availability_schedules_and_busy_times(self, world: World, read_model: FakeReadModel,
                                                   queries: Reads) -> None:
        ann = world.provider(ANN_PROVIDER)
        schedule = msgspec.structs.replace(ann.schedule, date_overrides=[
            DateOverride(date="2026-03-10"),
            DateOverride(date="2026-03-11", intervals=[TimeOfDayRange(start_time="10:00", end_time="12:00")])])
        read_model.provider_rows[ANN_PROVIDER]["schedule"] = msgspec.json.encode(schedule).decode()
        schedules = fits(run(calendly.user_availability_schedules(queries, calendly_query(q.CalendlyAvailabilitySchedulesQuery, 
            user=f"{BASE_URL}/users/{ANN}"))), r.CalendlyAvailabilitySchedules)
        assert {rule.type for rule in schedules.collection[0].rules} == {"wday", "date"}
        at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        # rows as calendars.busy_rows returns them: reservations, then external busy times
        read_model.busy_rows = [
            {"kind": "event", "reservation_id": "event_1", "start_at": at, "end_at": at + timedelta(minutes=30),
             "buffer_before": 5, "buffer_after": 10, "expires_at": None},
            {"kind": "block", "reservation_id": "blk_1", "start_at": at + timedelta(hours=2),
             "end_at": at + timedelta(hours=3), "buffer_before": 0, "buffer_after": 0, "expires_at": None},
            {"kind": "external", "start_at": at + timedelta(hours=4), "end_at": at + timedelta(hours=5)},
        ]
        busy = fits(run(calendly.user_busy_times(queries, calendly_query(q.CalendlyBusyTimesQuery, 
            user=f"{BASE_URL}/users/{ANN}", start_time=mon("09:00"), end_time="2026-03-05T00:00:00Z"))),
            r.CalendlyBusyTimes)
        assert [b.type for b in busy.collection] == ["calendly", "calendly", "external"]
        assert busy.collection[0].event is not msgspec.UNSET and busy.collection[1].event is msgspec.UNSET


# --- schemas --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", [*r.REPLY_TYPES, r.LinkSlots], ids=lambda t: getattr(t, "__name__", str(t)))
def test_every_reply_type_has_a_json_schema(type_: Any) -> None:
    schema = msgspec.json.schema(type_)
    assert schema["$ref" if "$ref" in schema else "type"]


def test_every_reply_type_is_listed_and_documented() -> None:
    assert len(r.REPLY_TYPES) == len(set(r.REPLY_TYPES)) > 60
    assert all(t.__doc__ and t.__module__ == r.__name__ for t in r.REPLY_TYPES)
