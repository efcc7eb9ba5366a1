"""The availability engine agrees with the minute-by-minute reference on random inputs.

Windows are kept to a day or two around DST changes (US 2026-03-08 / 2026-11-01, EU
2026-03-29 / 2026-10-25, Lord Howe's 30-minute shifts 2026-04-05 / 2026-10-04) and a
plain summer day, in zones with whole-hour, half-hour and 30-minute-DST offsets.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.availability import (
    AvailabilityRule,
    Busy,
    DateOverride,
    HostCalendar,
    LinkRules,
    ProviderSchedule,
    ServiceRules,
    SlotRule,
    TimeOfDayRange,
    WeeklyRule,
    free_hosts,
    is_link_slot,
    link_slots,
    rank_windows,
    service_slots,
    working_hours,
)

from .availability_reference import (
    DAY,
    DAYS,
    MINUTE,
    at_minutes,
    clock,
    link_rule_minutes,
    reference_link_slots,
    reference_service_slots,
    schedule_minutes,
    utc_midnight,
)

ZONES = ["Asia/Kolkata", "Australia/Lord_Howe", "America/New_York", "Europe/Berlin", "Etc/UTC"]
# Each anchor is a day with a DST change in one of the zones (and a plain summer day).
DST_ZONE_OF_ANCHOR = {
    date(2026, 3, 8): "America/New_York",
    date(2026, 11, 1): "America/New_York",
    date(2026, 3, 29): "Europe/Berlin",
    date(2026, 10, 25): "Europe/Berlin",
    date(2026, 4, 5): "Australia/Lord_Howe",
    date(2026, 10, 4): "Australia/Lord_Howe",
    date(2026, 6, 15): "Asia/Kolkata",
}
# Wall times on or next to the DST jumps of the zones above (02:00-03:00, Lord Howe's 01:30-02:30).
DST_MINUTES = [0, 60, 90, 105, 120, 135, 150, 165, 180, 195, 540, 1020, 1380, 1410]
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

anchors = st.sampled_from(sorted(DST_ZONE_OF_ANCHOR))


def zones_near(anchor: date) -> st.SearchStrategy[str]:
    """Mostly the zone whose clocks change on the anchor day, so windows really meet the change."""
    return st.one_of(
        st.just(DST_ZONE_OF_ANCHOR[anchor]), st.just(DST_ZONE_OF_ANCHOR[anchor]), st.sampled_from(ZONES)
    )


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# Typical days, whole days, and ranges spanning or ending inside the DST jumps.
TYPICAL_RANGES = [
    ("09:00", "17:00"),
    ("00:00", "24:00"),
    ("01:00", "04:00"),
    ("22:00", "24:00"),
    ("00:00", "02:15"),
]


def minute_ranges() -> st.SearchStrategy[tuple[str, str]]:
    """A wall-clock range with end after start, often touching a DST jump, 24:00 now and then."""
    return st.one_of(st.sampled_from(TYPICAL_RANGES), _any_minute_range())


@st.composite
def _any_minute_range(draw: st.DrawFn) -> tuple[str, str]:
    start = draw(st.one_of(st.sampled_from(DST_MINUTES), st.integers(0, 287).map(lambda k: k * 5)))
    end = draw(st.one_of(st.just(1440), st.integers(start // 5 + 1, 288).map(lambda k: k * 5)))
    return hhmm(start), hhmm(end)


def day_sets() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.just(list(DAYS)),
        st.just(list(DAYS)),
        st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
    )


@st.composite
def schedules(draw: st.DrawFn, anchor: date) -> ProviderSchedule:
    weekly = [
        WeeklyRule(day_of_week=day, start_time=start, end_time=end)
        for day in draw(day_sets())
        for start, end in draw(st.lists(minute_ranges(), min_size=1, max_size=2))
    ]
    override_days = draw(st.lists(st.integers(-2, 3), max_size=2, unique=True))
    overrides = [
        DateOverride(
            date=(anchor + timedelta(days=offset)).isoformat(),
            intervals=[
                TimeOfDayRange(start_time=s, end_time=e)
                for s, e in draw(st.lists(minute_ranges(), max_size=2))
            ],
        )
        for offset in override_days
    ]
    bound = st.one_of(
        st.none(),
        st.none(),
        st.none(),
        st.integers(-2, 3).map(lambda k: (anchor + timedelta(days=k)).isoformat()),
    )
    return ProviderSchedule(
        time_zone=draw(zones_near(anchor)),
        weekly_rules=weekly,
        date_overrides=overrides,
        effective_from=draw(bound),
        effective_until=draw(bound),
    )


@st.composite
def windows(draw: st.DrawFn, anchor: date) -> tuple[int, int]:
    """[start, end) within [anchor - 1 day, anchor + 2.5 days], a multiple of 5 minutes."""
    start = utc_midnight(anchor) - DAY + draw(st.integers(0, 2 * 288)) * 300
    minutes = draw(
        st.one_of(st.sampled_from([720, 1440, 2160]), st.integers(1, 36 * 12).map(lambda k: k * 5))
    )
    return start, start + minutes * MINUTE


@st.composite
def busy_lists(draw: st.DrawFn, start: int, end: int) -> list[Busy]:
    buffers = st.sampled_from([0, 0, 10, 15, 30]).map(lambda m: m * MINUTE)
    items = []
    for _ in range(draw(st.integers(0, 6))):
        begin = start - 3 * 3600 + draw(st.integers(0, (end - start) // MINUTE + 360)) * MINUTE
        length = draw(st.sampled_from([0, 15, 30, 45, 60, 90, 120, 7])) * MINUTE
        items.append(Busy(begin, begin + length, draw(buffers), draw(buffers)))
    return items


class LinkScenario(NamedTuple):
    anchor: date
    link: LinkRules
    hosts: list[HostCalendar]
    now: int
    start: int
    end: int


class ServiceScenario(NamedTuple):
    anchor: date
    service: ServiceRules
    providers: list[HostCalendar]
    now: int
    time_zone: str
    from_date: date
    until_date: date | None
    limit: int | None


@st.composite
def link_scenarios(draw: st.DrawFn) -> LinkScenario:
    anchor = draw(anchors)
    start, end = draw(windows(anchor))
    rules = [
        AvailabilityRule(day_of_week=day, start_time=start_time, end_time=end_time, rank=rank)
        for days, (start_time, end_time), rank in draw(
            st.one_of(
                st.just([]),
                st.lists(st.tuples(day_sets(), minute_ranges(), st.integers(1, 3)), min_size=1, max_size=4),
            )
        )
        for day in days
    ]
    link = LinkRules(
        time_zone=draw(zones_near(anchor)),
        durations=draw(st.lists(st.sampled_from([15, 30, 45, 60, 90]), min_size=1, max_size=3)),
        increment=draw(st.sampled_from([10, 15, 20, 25, 30, 45, 60])),
        buffer_before=draw(st.sampled_from([0, 0, 10, 15, 30])),
        buffer_after=draw(st.sampled_from([0, 0, 10, 15, 30])),
        minimum_notice=draw(st.sampled_from([0, 0, 0, 30, 90, 720, 1500])),
        maximum_days_ahead=draw(st.sampled_from([0, 1, 2, 60, 60, 60])),
        availability=rules,
        host_mode=draw(st.sampled_from(["any", "all"])),
    )
    # Team members often share one schedule, which gives "all" links something in common.
    team_schedule = draw(schedules(anchor))
    hosts = [
        HostCalendar(
            provider_id=provider_id,
            schedule=draw(st.one_of(st.just(team_schedule), st.just(team_schedule), schedules(anchor))),
            busy=draw(busy_lists(start, end)),
        )
        for provider_id in ["prov_a", "prov_b", "prov_c"][: draw(st.integers(1, 3))]
    ]
    # Near a 5-minute mark, now + notice often lands on or a minute off a candidate start.
    near_mark = st.tuples(st.integers(-288, 288), st.sampled_from([-1, 0, 0, 1])).map(
        lambda m: m[0] * 5 + m[1]
    )
    now = start + draw(st.one_of(near_mark, st.integers(-2 * 1440, 1440))) * MINUTE
    return LinkScenario(anchor, link, hosts, now, start, end)


@PROPERTY_SETTINGS
@given(link_scenarios())
def test_link_slots_match_the_reference(case: LinkScenario) -> None:
    engine = [tuple(slot) for slot in link_slots(case.link, case.hosts, case.now, case.start, case.end)]
    assert engine == reference_link_slots(case.link, case.hosts, case.now, case.start, case.end, case.anchor)


@PROPERTY_SETTINGS
@given(link_scenarios(), st.data())
def test_booking_check_matches_the_reference(case: LinkScenario, data: st.DataObject) -> None:
    listed = [slot.start for slot in link_slots(case.link, case.hosts, case.now, case.start, case.end)]
    # Half the time ask about a listed start (a booking that should succeed), else any 5-minute mark.
    anywhere = st.integers(0, (case.end - case.start) // 300).map(lambda k: case.start + k * 300)
    slot_start = data.draw(st.one_of(st.sampled_from(listed), anywhere) if listed else anywhere)
    duration = data.draw(st.sampled_from([*case.link.durations, 20]))
    slot_end = slot_start + duration * MINUTE
    expected_free = sorted(
        host.provider_id
        for host in case.hosts
        if duration in case.link.durations
        and any(
            slot[0] == slot_start and slot[2] == duration  # the same start AND the same duration
            for slot in reference_link_slots(case.link, [host], case.now, slot_start, slot_end, case.anchor)
        )
    )
    assert free_hosts(case.link, case.hosts, case.now, slot_start, duration) == expected_free
    every_host_free = len(expected_free) == len(case.hosts)
    expected_slot = every_host_free if case.link.host_mode == "all" else bool(expected_free)
    assert is_link_slot(case.link, case.hosts, case.now, slot_start, duration) is expected_slot


@PROPERTY_SETTINGS
@given(anchors.flatmap(lambda anchor: st.tuples(st.just(anchor), schedules(anchor), windows(anchor))))
def test_working_hours_match_the_reference(case: tuple[date, ProviderSchedule, tuple[int, int]]) -> None:
    anchor, schedule, (start, end) = case
    assert working_hours(schedule, start, end) == schedule_minutes(schedule, anchor, start, end).runs(
        start, end
    )


@PROPERTY_SETTINGS
@given(link_scenarios(), st.integers(1, 3))
def test_rank_windows_match_the_reference(case: LinkScenario, rank: int) -> None:
    expected = link_rule_minutes(case.link, rank, case.anchor, case.start, case.end).runs(
        case.start, case.end
    )
    assert rank_windows(case.link.availability, case.link.time_zone, rank, case.start, case.end) == expected


@st.composite
def service_scenarios(draw: st.DrawFn) -> ServiceScenario:
    anchor = draw(anchors)
    duration = draw(st.sampled_from([15, 30, 45, 60, 90]))
    slot_rules = [
        SlotRule(
            days_of_week=draw(day_sets()),
            start_time=start_time,
            end_time=end_time,
            interval=draw(st.sampled_from([None, 10, 15, 20, 30, 45, 60, 90])),
            starts_on=draw(
                st.one_of(
                    st.none(), st.integers(-2, 2).map(lambda k: (anchor + timedelta(days=k)).isoformat())
                )
            ),
            ends_on=draw(
                st.one_of(
                    st.none(), st.integers(-1, 3).map(lambda k: (anchor + timedelta(days=k)).isoformat())
                )
            ),
        )
        for start_time, end_time in draw(st.lists(minute_ranges(), min_size=1, max_size=3))
    ]
    service = ServiceRules(duration=duration, time_zone=draw(zones_near(anchor)), slot_rules=slot_rules)
    from_date = anchor + timedelta(days=draw(st.integers(-1, 1)))
    until_date = draw(st.one_of(st.none(), st.integers(0, 2).map(lambda k: from_date + timedelta(days=k))))
    limit = draw(st.integers(1, 12)) if until_date is None else draw(st.one_of(st.none(), st.integers(1, 12)))
    midnight = utc_midnight(from_date)
    providers = [
        HostCalendar(
            provider_id=provider_id,
            schedule=draw(schedules(anchor)),
            busy=draw(busy_lists(midnight - DAY, midnight + 3 * DAY)),
        )
        for provider_id in ["prov_a", "prov_b", "prov_c"][: draw(st.integers(1, 3))]
    ]
    return ServiceScenario(
        anchor=anchor,
        service=service,
        providers=providers,
        now=midnight + draw(st.one_of(st.integers(-1440, 0), st.integers(-2 * 1440, 1440))) * MINUTE,
        time_zone=draw(zones_near(anchor)),
        from_date=from_date,
        until_date=until_date,
        limit=limit,
    )


@PROPERTY_SETTINGS
@given(service_scenarios())
def test_service_slots_match_the_reference(case: ServiceScenario) -> None:
    result = service_slots(
        case.service, case.providers, case.now, case.time_zone, case.from_date, case.until_date, case.limit
    )
    engine_times = [(slot.start, count) for slot, count in result.aggregated]
    assert all(slot.end == slot.start + case.service.duration * MINUTE for slot, _ in result.aggregated)
    # The reference walks at most two dates when `until` is absent; the engine looks a year ahead.
    walked_until = case.from_date + timedelta(days=1) if case.until_date is None else case.until_date
    expected, expected_by_provider = reference_service_slots(
        case.service, case.providers, case.now, case.time_zone, case.from_date, walked_until, case.anchor
    )
    if case.until_date is not None or len(expected) >= (case.limit or 0):
        kept = expected[: case.limit]
        assert engine_times == kept
        kept_times = {start for start, _ in kept}
        assert [entry.provider_id for entry in result.providers] == [p.provider_id for p in case.providers]
        for entry, starts in zip(result.providers, expected_by_provider, strict=True):
            assert [slot.start for slot in entry.open] == [start for start in starts if start in kept_times]
    else:
        # Fewer than `limit` in the walked dates: they come first, and anything after is later.
        assert engine_times[: len(expected)] == expected
        assert len(engine_times) <= (case.limit or 0)
        next_midnight = clock(case.time_zone, case.anchor).boundary(at_minutes(walked_until, 1440))
        assert all(start >= next_midnight for start, _ in engine_times[len(expected) :])
