"""Link slots assembled from per-day slot lists are exactly the engine's answer for the window.

Two stories: the pure assembly (`shared.availability.days`) over random links, hosts, windows and `now`
around DST days in several zones; and the query service's cache of days (`services.query.link_days`) over
in-memory calendars while bookings, cancellations, moves, holds and external busy times are applied in
between queries, and time passes (holds expire): every answer equals the engine's on the calendars as
they are at that moment, never one computed before an event the calendars have applied.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.calendars.memory import LiveCalendars
from services.query.link_days import LinkDays
from shared.availability import AvailabilityRule, LinkRules, ProviderSchedule, WeeklyRule, iso_utc, link_slots
from shared.availability.days import assemble, day_link_slots, window_days
from shared.messages.events import (
    BusyInterval,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
)

from .test_availability_properties import PROPERTY_SETTINGS, LinkScenario, link_scenarios

DAY = 86400


@PROPERTY_SETTINGS
@given(link_scenarios())
def test_a_window_assembled_from_its_days_is_the_engines_answer(case: LinkScenario) -> None:
    days = [day_link_slots(case.link, case.hosts, day)
            for day in window_days(case.link, case.now, case.start, case.end)]
    assembled = assemble(case.link, days, case.now, case.start, case.end)
    assert assembled == link_slots(case.link, case.hosts, case.now, case.start, case.end)


# --- the query service's cache of days, while the calendars change under it

BASE = int(datetime(2026, 10, 31, tzinfo=UTC).timestamp())  # New York falls back on Nov 1st, Berlin a week before
PROVIDERS = ["prov_a", "prov_b"]


def _created(provider_id: str, zone: str) -> ProviderCreated:
    return ProviderCreated(provider_id=provider_id, account_id="acct_t", display_name=provider_id, email=None,
                           user_id=None, time_zone=zone, created_at="2026-01-01T00:00:00Z")


def _calendars(zone: str) -> LiveCalendars:
    live = LiveCalendars(clock=lambda: BASE)
    for provider_id in PROVIDERS:
        live.apply(_created(provider_id, zone))
        schedule = ProviderSchedule(time_zone=zone, weekly_rules=[
            WeeklyRule(day_of_week=d, start_time="08:00", end_time="18:00")
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")])
        live.providers[provider_id].schedule = schedule
    return live


reservation_ids = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])
offsets = st.integers(0, 4 * 96).map(lambda k: BASE + k * 900)  # 15-minute marks over four days


@st.composite
def calendar_events(draw: st.DrawFn) -> object:
    provider_id = draw(st.sampled_from(PROVIDERS))
    kind = draw(st.sampled_from(["reserve", "reserve", "hold", "release", "move", "external"]))
    rid = draw(reservation_ids)
    start = draw(offsets)
    length = draw(st.sampled_from([15, 30, 60, 120])) * 60
    if kind in ("reserve", "hold"):
        expires = iso_utc(BASE + draw(st.integers(1, 36 * 4)) * 900) if kind == "hold" else None  # within the run
        return TimeReserved(provider_id=provider_id, reservation_id=rid, kind="hold" if expires else "event",
                            start_at=iso_utc(start), end_at=iso_utc(start + length),
                            buffer_before=draw(st.sampled_from([0, 15])), buffer_after=draw(st.sampled_from([0, 30])),
                            expires_at=expires)
    if kind == "release":
        return TimeReleased(provider_id=provider_id, reservation_id=rid)
    if kind == "move":
        return ReservationMoved(provider_id=provider_id, reservation_id=rid, start_at=iso_utc(start),
                                end_at=iso_utc(start + length))
    return ExternalBusyTimesSynced(provider_id=provider_id, from_at=iso_utc(BASE), until_at=iso_utc(BASE + 4 * DAY),
                                   busy_times=[BusyInterval(start_at=iso_utc(start), end_at=iso_utc(start + length))])


queries = st.tuples(st.integers(0, 36 * 4).map(lambda k: k * 900 + 60 * (k % 3)),  # now: BASE + up to 36 h
                    st.integers(-8, 3 * 96).map(lambda k: k * 900 + 300 * (k % 2)),  # from: BASE + this
                    st.integers(1, 3 * 96).map(lambda k: k * 900))  # until: from + this


@settings(max_examples=80, deadline=None)
@given(zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Kathmandu", "Etc/UTC"]),
       link=st.builds(LinkRules, time_zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Etc/UTC"]),
                      durations=st.lists(st.sampled_from([15, 30, 60]), min_size=1, max_size=2, unique=True),
                      increment=st.sampled_from([15, 20, 30]), buffer_before=st.sampled_from([0, 10]),
                      buffer_after=st.sampled_from([0, 15]), minimum_notice=st.sampled_from([0, 90, 1500]),
                      maximum_days_ahead=st.sampled_from([1, 2, 60]), host_mode=st.sampled_from(["any", "all"])),
       steps=st.lists(st.one_of(calendar_events(), queries), min_size=1, max_size=30))
def test_the_day_cache_answers_what_the_engine_answers_as_the_calendars_change(
        zone: str, link: LinkRules, steps: list[object]) -> None:
    live = _calendars(zone)
    days = LinkDays(live, budget=40_000)  # small (about two days): eviction happens too
    hosts = PROVIDERS
    for step in steps:
        if isinstance(step, tuple):
            now = BASE + step[0]  # time moves on, and may step back (a clock corrected)
            start, end = BASE + step[1], BASE + step[1] + step[2]
            answer = msgspec.json.decode(days.answer(1, link, hosts, now, start, end))
            expected = [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                         "rank": s.rank} for s in link_slots(link, live.host_calendars(hosts, now), now, start, end)]
            assert answer == expected
        else:
            live.apply(step)  # type: ignore[arg-type]
    assert days.kept_bytes <= days.budget


def test_a_second_window_over_the_same_days_computes_nothing_new() -> None:
    live = _calendars("Etc/UTC")
    days = LinkDays(live)
    link = LinkRules(time_zone="Etc/UTC", durations=[30, 60])
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 3 * DAY)
    computed = days.computed
    shifted = msgspec.json.decode(days.answer(1, link, PROVIDERS, BASE, BASE + 3600 + 900, BASE + 2 * DAY))
    assert days.computed == computed
    assert shifted[0]["start_at"] == iso_utc(BASE + 8 * 3600)  # 08:00 on the first day, after the window's start
    live.apply(TimeReserved(provider_id="prov_a", reservation_id="r", kind="event", start_at=iso_utc(BASE + DAY),
                            end_at=iso_utc(BASE + DAY + 1800)))
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 3 * DAY)
    assert days.computed == computed + 3  # a host's calendar changed: every day of its links is computed again


def _held_ten_oclock() -> tuple[LinkDays, Callable[[int], set[str]], int]:
    """A link's days over a calendar with a hold at 10:00 that expires at 01:00; the starts it offers at `now`."""
    live = _calendars("Etc/UTC")
    days = LinkDays(live)
    link = LinkRules(time_zone="Etc/UTC", durations=[60])
    ten = BASE + 10 * 3600
    live.apply(TimeReserved(provider_id="prov_a", reservation_id="h", kind="hold", start_at=iso_utc(ten),
                            end_at=iso_utc(ten + 3600), expires_at=iso_utc(BASE + 3600)))

    def starts(now: int) -> set[str]:
        return {s["start_at"] for s in msgspec.json.decode(days.answer(1, link, ["prov_a"], now, BASE, BASE + DAY))}

    return days, starts, ten


def test_a_day_kept_while_a_hold_occupied_it_is_computed_again_once_the_hold_expires() -> None:
    _, starts, ten = _held_ten_oclock()
    assert iso_utc(ten) not in starts(BASE)
    assert iso_utc(ten) not in starts(BASE + 3599)  # the same day, from the cache: the hold still occupies it
    assert iso_utc(ten) in starts(BASE + 3600)  # expired: no event changed the calendar, yet the slot is back


def test_a_day_computed_after_a_hold_expired_is_computed_again_when_the_clock_steps_back() -> None:
    days, starts, ten = _held_ten_oclock()
    assert iso_utc(ten) in starts(BASE + 7200)  # computed after the hold expired
    computed = days.computed
    assert iso_utc(ten) not in starts(BASE + 60)  # the clock stepped back: the hold occupies the slot again
    assert days.computed == computed + 1


# --- memory: the days kept stay within their byte budget, whatever the link's increment and durations

def _minute_link() -> LinkRules:
    """A link whose day holds thousands of slots: a 1-minute increment, four durations, two ranks."""
    return LinkRules(time_zone="Etc/UTC", durations=[15, 30, 45, 60], increment=1, availability=[
        AvailabilityRule(day_of_week=d, start_time="00:00", end_time="12:00", rank=1)
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")] + [
        AvailabilityRule(day_of_week=d, start_time="12:00", end_time="23:59", rank=2)
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")])


def _calendars_all_day() -> LiveCalendars:
    live = _calendars("Etc/UTC")
    for provider_id in PROVIDERS:
        live.providers[provider_id].schedule = ProviderSchedule(time_zone="Etc/UTC", weekly_rules=[
            WeeklyRule(day_of_week=d, start_time="00:00", end_time="23:59")
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")])
    return live


def test_days_of_a_one_minute_link_stay_within_the_byte_budget_and_answer_what_the_engine_answers() -> None:
    live = _calendars_all_day()
    link = _minute_link()
    budget = 2 * 1024 * 1024
    days = LinkDays(live, budget=budget)
    first = msgspec.json.decode(days.answer(1, link, PROVIDERS, BASE, BASE, BASE + DAY))
    assert len(first) > 4000  # thousands of slots in one day
    one_day = days.kept_bytes
    assert one_day >= len(msgspec.json.encode(first))  # the estimate counts at least the JSON kept
    assert budget // one_day < 6  # so a 6-day window cannot all be kept
    for serial in (1, 2, 3):  # several link states (serials), windows of 6 days over and over
        for shift in (0, 2, 1):
            start, end = BASE + shift * DAY + 3 * 60, BASE + (shift + 6) * DAY
            answer = msgspec.json.decode(days.answer(serial, link, PROVIDERS, BASE, start, end))
            expected = [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                         "rank": s.rank} for s in link_slots(link, live.host_calendars(PROVIDERS, BASE), BASE, start, end)]
            assert answer == expected  # eviction never changes an answer
            assert days.kept_bytes <= budget
            assert days.kept_bytes == sum(entry.size for entry in days.days.values())
    assert 0 < len(days.days) < 6


def test_a_day_larger_than_the_whole_budget_is_answered_and_not_kept() -> None:
    live = _calendars_all_day()
    days = LinkDays(live, budget=100_000)
    answer = msgspec.json.decode(days.answer(1, _minute_link(), PROVIDERS, BASE, BASE, BASE + DAY))
    assert len(answer) > 4000
    assert days.days == {} and days.kept_bytes == 0
