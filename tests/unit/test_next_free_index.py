"""The earliest-slot index answers what the engine answers over every wanted public provider, while the
calendars change under it (bookings, cancellations, moves, holds that expire, schedules that change or stop
being public) and time passes: in New York over its fall back, and in half-hour and 45-minute zones (Adelaide,
St John's, Kathmandu, Kolkata) over their DST changes, with the providers in the service's zone or another."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.calendars.memory import CHANGE_LOG, LiveCalendars
from services.query.next_free import NextFreeIndex
from shared.availability import ProviderSchedule, PublicBookings, ServiceRules, SlotRule, WeeklyRule, iso_utc
from shared.availability import service_slots as engine_service_slots
from shared.availability.timezones import local_ordinal
from shared.messages.events import ProviderCreated, ProviderScheduleSet, TimeReleased, TimeReserved

BASE = int(datetime(2026, 10, 30, 12, tzinfo=UTC).timestamp())  # New York falls back on Nov 1st
ZONE = "America/New_York"
RULES_ZONE = ZoneInfo(ZONE)
PROVIDERS = ["prov_a", "prov_b", "prov_c", "prov_d"]
RULES = ServiceRules(duration=60, time_zone=ZONE, slot_rules=[
    SlotRule(days_of_week=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
             start_time="08:00", end_time="12:00", interval=30)])


def _schedule(public: bool, start: str = "09:00", zone: str = ZONE) -> ProviderSchedule:
    return ProviderSchedule(time_zone=zone, public_bookings=PublicBookings(enabled=public), weekly_rules=[
        WeeklyRule(day_of_week=d, start_time=start, end_time="11:00") for d in ("friday", "saturday", "monday")])


def _calendars(zone: str = ZONE, base: int = BASE) -> LiveCalendars:
    live = LiveCalendars(clock=lambda: base)
    for provider_id in PROVIDERS:
        live.apply(ProviderCreated(provider_id=provider_id, account_id="acct_t", display_name=provider_id, email=None,
                                   user_id=None, time_zone=zone, created_at="2026-01-01T00:00:00Z"))
        live.apply(ProviderScheduleSet(provider_id=provider_id, schedule=_schedule(True, zone=zone)))
    return live


class Place(NamedTuple):
    """Where and when a run happens: its start, the service's zone and the providers' zone."""

    base: int
    service_zone: str
    provider_zone: str


def _noon(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp())


# New York's fall back (the examples' place), and half-hour and 45-minute zones over their DST changes (Adelaide
# forward on Oct 4th and back on Apr 5th, St John's back on Nov 1st and forward on Mar 8th) or none (Kathmandu,
# Kolkata), with the providers in the service's zone or another one.
PLACES = [
    Place(BASE, ZONE, ZONE),
    Place(_noon(2026, 10, 2), "Australia/Adelaide", "Australia/Adelaide"),
    Place(_noon(2026, 4, 3), "Australia/Adelaide", "Asia/Kathmandu"),
    Place(_noon(2026, 10, 30), "America/St_Johns", "America/St_Johns"),
    Place(_noon(2026, 3, 6), "America/St_Johns", "America/New_York"),
    Place(_noon(2026, 3, 6), "Asia/Kathmandu", "Asia/Kolkata"),
]
# The examples' slots (08:00-12:00 every 30 minutes), and for the runs' places also every 15 minutes across the
# night's DST jumps, which providers starting at 01:30 work through.
NIGHT_RULE = SlotRule(days_of_week=RULES.slot_rules[0].days_of_week, start_time="01:00", end_time="04:00", interval=15)


@st.composite
def changes(draw: st.DrawFn, place: Place) -> object:
    provider_id = draw(st.sampled_from(PROVIDERS))
    kind = draw(st.sampled_from(["book", "book", "hold", "release", "schedule"]))
    rid = draw(st.sampled_from(["r1", "r2", "r3", "r4"]))
    if kind == "schedule":
        return ProviderScheduleSet(provider_id=provider_id, schedule=_schedule(
            draw(st.booleans()), draw(st.sampled_from(["09:00", "10:00", "08:00", "01:30"])), place.provider_zone))
    if kind == "release":
        return TimeReleased(provider_id=provider_id, reservation_id=rid)
    start = place.base + draw(st.integers(0, 24 * 12)) * 900  # quarter hours over three days
    expires = iso_utc(place.base + draw(st.integers(1, 48)) * 1800) if kind == "hold" else None
    return TimeReserved(provider_id=provider_id, reservation_id=rid, kind="hold" if expires else "event",
                        start_at=iso_utc(start), end_at=iso_utc(start + 3600), expires_at=expires)


asks = st.tuples(st.integers(0, 48 * 60).map(lambda m: m * 60),  # how far time moved on (from the base)
                 st.one_of(st.none(), st.sets(st.sampled_from(PROVIDERS), min_size=1)))
runs = st.sampled_from(PLACES).flatmap(lambda place: st.tuples(
    st.just(place), st.lists(st.one_of(changes(place), asks), min_size=1, max_size=40)))


@settings(max_examples=150, deadline=None)
@given(runs, st.booleans())
def test_the_index_answers_the_engines_earliest_slot(run: tuple[Place, list[object]], short_log: bool) -> None:
    place, steps = run
    zone = place.service_zone
    rules = ServiceRules(duration=RULES.duration, time_zone=zone,
                         slot_rules=RULES.slot_rules if place == PLACES[0] else [*RULES.slot_rules, NIGHT_RULE])
    live = _calendars(place.provider_zone, place.base)
    if short_log:  # the index must also catch up when the change log no longer reaches back
        live.recent = type(live.recent)(maxlen=2)
    index = NextFreeIndex(live)
    latest = place.base
    for step in steps:
        if not isinstance(step, tuple):
            live.apply(step)  # type: ignore[arg-type]
            continue
        now = latest = max(latest, place.base + step[0])
        wanted = step[1]
        from_date = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(zone)).date()
        answer = index.earliest(("srv", 1, zone, from_date), rules, PROVIDERS, {}, zone, from_date, now, wanted)
        hosts = [h for h in live.host_calendars(PROVIDERS, now) if h.schedule.public_bookings.enabled
                 and (wanted is None or h.provider_id in wanted)]
        result = engine_service_slots(rules, hosts, now, zone, from_date, None, 1)
        assert answer == (result.aggregated[0][0].start if result.aggregated else None)
        assert from_date.toordinal() == local_ordinal(zone, now)


def _friday_nine() -> tuple[date, int, tuple[object, ...]]:
    """The run's first day (a Friday, open 09:00-11:00 New York), its 09:00, and an index key for it."""
    day = datetime.fromtimestamp(BASE, UTC).astimezone(RULES_ZONE).date()
    return day, int(datetime(day.year, day.month, day.day, 9, tzinfo=RULES_ZONE).timestamp()), ("srv", 1, ZONE, day)


def test_a_booking_moves_the_answer_and_a_cancellation_brings_it_back() -> None:
    live = _calendars()
    index = NextFreeIndex(live)
    day, nine, key = _friday_nine()
    now = nine - 7200
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, now, None) == nine
    for provider_id in PROVIDERS:
        live.apply(TimeReserved(provider_id=provider_id, reservation_id="r", kind="event", start_at=iso_utc(nine),
                                end_at=iso_utc(nine + 3600)))
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, now, None) == nine + 3600
    live.apply(TimeReleased(provider_id="prov_c", reservation_id="r"))
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, now, None) == nine
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, now, {"prov_a"}) == nine + 3600
    computed = index.computed
    index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, now, None)
    assert index.computed == computed  # nothing changed: nothing computed
    assert CHANGE_LOG >= 1000


def test_an_index_the_change_log_no_longer_reaches_looks_at_every_provider_again() -> None:
    live = _calendars()
    live.recent = type(live.recent)(maxlen=1)
    index = NextFreeIndex(live)
    day, nine, key = _friday_nine()
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, nine - 60, None) == nine
    for provider_id in PROVIDERS:  # four changes: the log keeps the last one only
        live.apply(TimeReserved(provider_id=provider_id, reservation_id="r", kind="event", start_at=iso_utc(nine),
                                end_at=iso_utc(nine + 3600)))
    assert index.earliest(key, RULES, PROVIDERS, {}, ZONE, day, nine - 60, None) == nine + 3600


def test_an_answer_computed_after_a_hold_expired_is_computed_again_when_the_clock_steps_back() -> None:
    live = _calendars()
    index = NextFreeIndex(live)
    day, nine, key = _friday_nine()
    live.apply(TimeReserved(provider_id="prov_a", reservation_id="h", kind="hold", start_at=iso_utc(nine),
                            end_at=iso_utc(nine + 7200), expires_at=iso_utc(nine - 3600)))
    assert index.earliest(key, RULES, ["prov_a"], {}, ZONE, day, nine - 1800, None) == nine  # the hold expired
    earlier = nine - 7200  # the clock stepped back: the hold occupies Friday again
    hosts = live.host_calendars(["prov_a"], earlier)
    result = engine_service_slots(RULES, hosts, earlier, ZONE, day, None, 1)
    assert result.aggregated[0][0].start > nine + 3600
    assert index.earliest(key, RULES, ["prov_a"], {}, ZONE, day, earlier, None) == result.aggregated[0][0].start
