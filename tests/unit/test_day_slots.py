"""Link slots assembled from per-day slot lists are exactly the engine's answer for the window.

Two stories: the pure assembly (`shared.availability.days`) over random links, hosts, windows and `now`
around DST days in several zones; and the query service's cache of days (`services.query.link_days`) over
in-memory calendars while bookings, cancellations, moves, holds and external busy times are applied in
between queries, and time passes (holds expire): every answer equals the engine's on the calendars as
they are at that moment, never one computed before an event the calendars have applied.

Both draw links with ranked availability (ranks 1-3), increments of 1, 7 and 45 minutes as well as the
usual ones, durations that do not divide the day (50, 100 minutes) and 45/90, and link and provider zones
with half-hour and 45-minute offsets (Kolkata, Kathmandu, Adelaide, St John's), over the DST changes of
the zones that have them (Adelaide's, St John's, New York's, Berlin's).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.calendars.memory import MAX_STAMPED_DAYS, LiveCalendars
from services.query.link_days import LinkDays
from shared.availability import (
    AvailabilityRule,
    HostCalendar,
    LinkRules,
    ProviderSchedule,
    WeeklyRule,
    iso_utc,
    link_slots,
)
from shared.availability.days import assemble, day_link_slots, window_days
from shared.messages.events import (
    BusyInterval,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
)

from .test_availability_properties import (
    DST_ZONE_OF_ANCHOR,
    PROPERTY_SETTINGS,
    LinkScenario,
    day_sets,
    link_scenarios,
    minute_ranges,
)

DAY = 86400
ALL_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ODD_OFFSET_ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "America/St_Johns"]
# Adelaide's clocks change on Lord Howe's days, St John's on New York's: the anchors' DST days are theirs too.
ODD_ZONE_CHANGING_WITH = {"Australia/Lord_Howe": "Australia/Adelaide", "America/New_York": "America/St_Johns"}
ODD_INCREMENTS = [1, 7, 45]
ODD_DURATIONS = [45, 50, 90, 100]  # 50 and 100 do not divide the day


def ranked_availability() -> st.SearchStrategy[list[AvailabilityRule]]:
    """Rules of ranks 1-3 (always at least one above rank 1), often on or across a DST jump."""
    rule = st.tuples(day_sets(), minute_ranges(), st.integers(1, 3))
    higher = st.tuples(day_sets(), minute_ranges(), st.integers(2, 3))
    return st.tuples(st.lists(rule, max_size=3), higher).map(lambda drawn: [
        AvailabilityRule(day_of_week=day, start_time=start_time, end_time=end_time, rank=rank)
        for days, (start_time, end_time), rank in [*drawn[0], drawn[1]] for day in days])


@st.composite
def odd_link_scenarios(draw: st.DrawFn) -> LinkScenario:
    """A link scenario whose link and hosts are in half-hour or 45-minute zones (mostly one whose clocks change
    on the anchor's day), with ranked rules, a 1, 7 or 45-minute increment and durations that fit the day badly."""
    case = draw(link_scenarios())
    changing = ODD_ZONE_CHANGING_WITH.get(DST_ZONE_OF_ANCHOR[case.anchor])
    zones = st.one_of(st.just(changing), st.sampled_from(ODD_OFFSET_ZONES)) if changing \
        else st.sampled_from(ODD_OFFSET_ZONES)
    link = msgspec.structs.replace(
        case.link, time_zone=draw(zones), increment=draw(st.sampled_from(ODD_INCREMENTS)),
        durations=draw(st.lists(st.sampled_from(ODD_DURATIONS), min_size=1, max_size=2, unique=True)),
        availability=draw(st.one_of(ranked_availability(), st.just([]))))
    hosts = [HostCalendar(provider_id=host.provider_id, busy=host.busy,
                          schedule=msgspec.structs.replace(host.schedule, time_zone=draw(zones)))
             for host in case.hosts]
    return case._replace(link=link, hosts=hosts)


def _assembled_is_the_engines_answer(case: LinkScenario) -> None:
    days = [day_link_slots(case.link, case.hosts, day)
            for day in window_days(case.link, case.now, case.start, case.end)]
    assembled = assemble(case.link, days, case.now, case.start, case.end)
    assert assembled == link_slots(case.link, case.hosts, case.now, case.start, case.end)


@PROPERTY_SETTINGS
@given(link_scenarios())
def test_a_window_assembled_from_its_days_is_the_engines_answer(case: LinkScenario) -> None:
    _assembled_is_the_engines_answer(case)


@settings(max_examples=60, deadline=None)
@given(odd_link_scenarios())
def test_a_window_assembled_from_its_days_is_the_engines_answer_for_odd_zones_increments_and_ranks(
        case: LinkScenario) -> None:
    _assembled_is_the_engines_answer(case)


# --- the query service's cache of days, while the calendars change under it

def _midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


# Each run covers four days from its base: the day before a DST change and the change itself in these zones.
DST_ZONES_OF_BASE = {
    _midnight(2026, 10, 31): ["America/New_York", "America/St_Johns"],  # clocks go back on Nov 1st
    _midnight(2026, 3, 7): ["America/New_York", "America/St_Johns"],  # forward on Mar 8th
    _midnight(2026, 10, 3): ["Australia/Adelaide"],  # forward on Oct 4th (02:00 -> 03:00)
    _midnight(2026, 4, 4): ["Australia/Adelaide"],  # back on Apr 5th (03:00 -> 02:00)
    _midnight(2026, 3, 28): ["Europe/Berlin"],  # forward on Mar 29th
}
BASE = _midnight(2026, 10, 31)  # the example tests' base: New York falls back on Nov 1st, Berlin a week before
ZONES = ["America/New_York", "Europe/Berlin", "Etc/UTC", *ODD_OFFSET_ZONES]
PROVIDERS = ["prov_a", "prov_b"]
WORKING_HOURS = [("08:00", "18:00"), ("00:00", "24:00"), ("01:30", "03:45")]  # the last one across DST jumps


def _created(provider_id: str, zone: str) -> ProviderCreated:
    return ProviderCreated(provider_id=provider_id, account_id="acct_t", display_name=provider_id, email=None,
                           user_id=None, time_zone=zone, created_at="2026-01-01T00:00:00Z")


def _calendars(zone: str, base: int = BASE, hours: tuple[str, str] = ("08:00", "18:00")) -> LiveCalendars:
    live = LiveCalendars(clock=lambda: base)
    for provider_id in PROVIDERS:
        live.apply(_created(provider_id, zone))
        schedule = ProviderSchedule(time_zone=zone, weekly_rules=[
            WeeklyRule(day_of_week=d, start_time=hours[0], end_time=hours[1]) for d in ALL_DAYS])
        live.providers[provider_id].schedule = schedule
    return live


reservation_ids = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])


@st.composite
def calendar_events(draw: st.DrawFn, base: int) -> object:
    provider_id = draw(st.sampled_from(PROVIDERS))
    kind = draw(st.sampled_from(["reserve", "reserve", "hold", "release", "move", "external"]))
    rid = draw(reservation_ids)
    start = base + draw(st.integers(0, 4 * 288)) * 300  # 5-minute marks over four days
    length = draw(st.sampled_from([15, 30, 45, 60, 120])) * 60
    if kind in ("reserve", "hold"):
        expires = iso_utc(base + draw(st.integers(1, 36 * 4)) * 900) if kind == "hold" else None  # within the run
        return TimeReserved(provider_id=provider_id, reservation_id=rid, kind="hold" if expires else "event",
                            start_at=iso_utc(start), end_at=iso_utc(start + length),
                            buffer_before=draw(st.sampled_from([0, 15])), buffer_after=draw(st.sampled_from([0, 30])),
                            expires_at=expires)
    if kind == "release":
        return TimeReleased(provider_id=provider_id, reservation_id=rid)
    if kind == "move":
        return ReservationMoved(provider_id=provider_id, reservation_id=rid, start_at=iso_utc(start),
                                end_at=iso_utc(start + length))
    first = base + draw(st.integers(0, 3 * 24)) * 3600  # a synced window of an hour to four days, anywhere in the run
    until = min(base + 4 * DAY, first + draw(st.integers(1, 4 * 24)) * 3600)
    busy = [BusyInterval(start_at=iso_utc(start), end_at=iso_utc(start + length))] if first <= start < until else []
    return ExternalBusyTimesSynced(provider_id=provider_id, from_at=iso_utc(first), until_at=iso_utc(until),
                                   busy_times=busy)


queries = st.tuples(st.integers(0, 36 * 4).map(lambda k: k * 900 + 60 * (k % 3)),  # now: base + up to 36 h
                    st.integers(-8, 3 * 96).map(lambda k: k * 900 + 300 * (k % 2)),  # from: base + this
                    st.integers(1, 3 * 96).map(lambda k: k * 900))  # until: from + this


class CacheRun(NamedTuple):
    base: int
    provider_zone: str
    hours: tuple[str, str]
    link: LinkRules
    budget: int
    steps: list[object]  # calendar events, and (now, from, until) queries relative to `base`


def _zones_near(base: int) -> st.SearchStrategy[str]:
    """Half the time a zone whose clocks change in the run."""
    return st.one_of(st.sampled_from(DST_ZONES_OF_BASE[base]), st.sampled_from(ZONES))


@st.composite
def cache_runs(draw: st.DrawFn) -> CacheRun:
    base = draw(st.sampled_from(sorted(DST_ZONES_OF_BASE)))
    link = LinkRules(
        time_zone=draw(_zones_near(base)),
        durations=draw(st.lists(st.sampled_from([15, 30, 60, *ODD_DURATIONS]), min_size=1, max_size=2, unique=True)),
        increment=draw(st.sampled_from([15, 20, 30, *ODD_INCREMENTS])), buffer_before=draw(st.sampled_from([0, 10])),
        buffer_after=draw(st.sampled_from([0, 15])), minimum_notice=draw(st.sampled_from([0, 90, 1500])),
        maximum_days_ahead=draw(st.sampled_from([1, 2, 60])), host_mode=draw(st.sampled_from(["any", "all"])),
        availability=draw(st.one_of(st.just([]), ranked_availability())))
    return CacheRun(
        base, draw(_zones_near(base)), draw(st.sampled_from(WORKING_HOURS)), link,
        # small (about two days of a 15-minute link, not one of a 1-minute one): eviction, days not kept; or ample
        draw(st.sampled_from([40_000, 4_000_000])),
        draw(st.lists(st.one_of(calendar_events(base), queries), min_size=1, max_size=30)))


@settings(max_examples=100, deadline=None)
@given(cache_runs())
def test_the_day_cache_answers_what_the_engine_answers_as_the_calendars_change(run: CacheRun) -> None:
    live = _calendars(run.provider_zone, run.base, run.hours)
    days = LinkDays(live, budget=run.budget)
    hosts = PROVIDERS
    for step in run.steps:
        if isinstance(step, tuple):
            now = run.base + step[0]  # time moves on, and may step back (a clock corrected)
            start, end = run.base + step[1], run.base + step[1] + step[2]
            answer = msgspec.json.decode(days.answer(1, run.link, hosts, now, start, end))
            expected = [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                         "rank": s.rank}
                        for s in link_slots(run.link, live.host_calendars(hosts, now), now, start, end)]
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
        for d in ALL_DAYS] + [
        AvailabilityRule(day_of_week=d, start_time="12:00", end_time="23:59", rank=2)
        for d in ALL_DAYS])


def _calendars_all_day() -> LiveCalendars:
    live = _calendars("Etc/UTC")
    for provider_id in PROVIDERS:
        live.providers[provider_id].schedule = ProviderSchedule(time_zone="Etc/UTC", weekly_rules=[
            WeeklyRule(day_of_week=d, start_time="00:00", end_time="23:59")
            for d in ALL_DAYS])
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


# Kept days are invalidated per day: a booking moves only the days its time (with buffers) can reach. These
# use the widest durations and buffers the domain allows (a day each), so a margin too narrow shows.
WIDE = [0, 720, 1440]


@st.composite
def wide_bookings(draw: st.DrawFn) -> object:
    rid = draw(reservation_ids)
    kind = draw(st.sampled_from(["reserve", "reserve", "release", "move"]))
    start = BASE + draw(st.integers(-2 * 24, 11 * 24)) * 3600  # hour marks from two days before to eleven after
    length = draw(st.sampled_from([30, 60, 1440])) * 60
    if kind == "reserve":
        return TimeReserved(provider_id="prov_a", reservation_id=rid, kind="event", start_at=iso_utc(start),
                            end_at=iso_utc(start + length), buffer_before=draw(st.sampled_from(WIDE)),
                            buffer_after=draw(st.sampled_from(WIDE)))
    if kind == "release":
        return TimeReleased(provider_id="prov_a", reservation_id=rid)
    return ReservationMoved(provider_id="prov_a", reservation_id=rid, start_at=iso_utc(start),
                            end_at=iso_utc(start + length))


@settings(max_examples=60, deadline=None)
@given(link=st.builds(LinkRules, time_zone=st.sampled_from(["Etc/UTC", "Asia/Kathmandu", "America/St_Johns"]),
                      durations=st.lists(st.sampled_from([60, 720, 1440]), min_size=1, max_size=2, unique=True),
                      increment=st.just(60), buffer_before=st.sampled_from(WIDE), buffer_after=st.sampled_from(WIDE),
                      maximum_days_ahead=st.just(60)),
       steps=st.lists(wide_bookings(), min_size=1, max_size=12))
def test_kept_days_of_links_with_day_long_durations_and_buffers_follow_every_booking_that_reaches_them(
        link: LinkRules, steps: list[object]) -> None:
    live = _calendars("Etc/UTC", BASE, ("00:00", "24:00"))
    days = LinkDays(live)
    start, end = BASE, BASE + 9 * DAY
    for event in steps:
        days.answer(1, link, ["prov_a"], BASE, start, end)  # every day of the window kept before the change
        live.apply(event)  # type: ignore[arg-type]
        answer = msgspec.json.decode(days.answer(1, link, ["prov_a"], BASE, start, end))
        assert answer == _engines(link, live, ["prov_a"], BASE, start, end)


def _engines(link: LinkRules, live: LiveCalendars, hosts: list[str], now: int, start: int, end: int) -> list[object]:
    """The engine's answer for the window, as LinkDays encodes it."""
    return [{"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration, "rank": s.rank}
            for s in link_slots(link, live.host_calendars(hosts, now), now, start, end)]


def _twenty_days_kept() -> tuple[LiveCalendars, LinkDays, LinkRules, int]:
    """Calendars, and a link's next twenty days kept; how many days that computed."""
    live = _calendars("Etc/UTC")
    days = LinkDays(live)
    link = LinkRules(time_zone="Etc/UTC", durations=[30])
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 20 * DAY)
    return live, days, link, days.computed


def test_a_booking_leaves_kept_the_days_it_cannot_reach() -> None:
    live, days, link, computed = _twenty_days_kept()
    live.apply(TimeReserved(provider_id="prov_a", reservation_id="r", kind="event",
                            start_at=iso_utc(BASE + 10 * DAY + 9 * 3600), end_at=iso_utc(BASE + 10 * DAY + 10 * 3600)))
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 20 * DAY)
    assert days.computed == computed + 7  # days 7 to 13: the booking's day and three on each side
    live.apply(ProviderScheduleSet(provider_id="prov_b", schedule=live.providers["prov_b"].schedule))
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 20 * DAY)
    assert days.computed == computed + 7 + 20  # a new schedule may move any day


def test_a_busy_time_sync_moves_the_days_of_its_window_and_leaves_the_others_kept() -> None:
    live, days, link, computed = _twenty_days_kept()
    nine = BASE + 12 * DAY + 9 * 3600
    live.apply(ExternalBusyTimesSynced(provider_id="prov_a", from_at=iso_utc(BASE + 12 * DAY),
                                       until_at=iso_utc(BASE + 13 * DAY),
                                       busy_times=[BusyInterval(start_at=iso_utc(nine), end_at=iso_utc(nine + 3 * 3600))]))
    answer = msgspec.json.decode(days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 20 * DAY))
    assert answer == _engines(link, live, PROVIDERS, BASE, BASE, BASE + 20 * DAY)
    assert days.computed == computed + 8  # days 9 to 16: the window's day and three on each side (it ends at midnight)


def test_a_provider_changed_on_more_days_than_it_keeps_stamps_for_has_every_day_computed_again() -> None:
    live = _calendars("Etc/UTC")
    days = LinkDays(live)
    link = LinkRules(time_zone="Etc/UTC", durations=[30])
    days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 30 * DAY)
    window_days, computed = days.computed, days.computed
    k = 0
    while live.providers["prov_a"].days or k == 0:  # bookings a fortnight apart from day 100: seven stamps each
        live.apply(TimeReserved(provider_id="prov_a", reservation_id=f"r{k}", kind="event",
                                start_at=iso_utc(BASE + (100 + 14 * k) * DAY + 9 * 3600),
                                end_at=iso_utc(BASE + (100 + 14 * k) * DAY + 10 * 3600)))
        assert len(live.providers["prov_a"].days) <= MAX_STAMPED_DAYS
        if live.providers["prov_a"].days:  # under the cap: the window's days stay kept
            answer = days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 30 * DAY)
            assert days.computed == computed
        k += 1
    assert k == MAX_STAMPED_DAYS // 7 + 1  # the booking that passed the cap cleared the stamps and raised `base`
    answer = days.answer(1, link, PROVIDERS, BASE, BASE, BASE + 30 * DAY)
    assert days.computed == computed + window_days
    assert msgspec.json.decode(answer) == _engines(link, live, PROVIDERS, BASE, BASE, BASE + 30 * DAY)
