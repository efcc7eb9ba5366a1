"""Hand-written stories for the availability engine: the seed examples and the DST days."""

from __future__ import annotations

from datetime import date

import pytest

from shared.availability import (
    DAYS,
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
    choose_host,
    free_hosts,
    is_link_slot,
    is_service_slot,
    is_valid_zone,
    iso_in_zone,
    iso_utc,
    link_slots,
    parse_hhmm,
    parse_instant,
    rank_windows,
    service_free_providers,
    service_slots,
    working_hours,
)

HOUR = 3600
NEW_YORK = "America/New_York"


def at(text: str) -> int:
    return parse_instant(text)


def every_day(start_time: str, end_time: str, rank: int = 1) -> list[AvailabilityRule]:
    return [
        AvailabilityRule(day_of_week=day, start_time=start_time, end_time=end_time, rank=rank) for day in DAYS
    ]


def all_week(zone: str, start_time: str = "09:00", end_time: str = "17:00") -> ProviderSchedule:
    return ProviderSchedule(
        time_zone=zone,
        weekly_rules=[WeeklyRule(day_of_week=day, start_time=start_time, end_time=end_time) for day in DAYS],
    )


def host(
    provider_id: str,
    busy: list[Busy] | None = None,
    schedule: ProviderSchedule | None = None,
    booking_starts: list[int] | None = None,
) -> HostCalendar:
    return HostCalendar(
        provider_id=provider_id,
        schedule=schedule or all_week("Etc/UTC"),
        busy=busy or [],
        booking_starts=booking_starts or [],
    )


def utc_times(slots: list, duration: int | None = None, rank: int | None = None) -> list[str]:
    return [
        iso_utc(slot.start)[11:16]
        for slot in slots
        if (duration is None or slot.duration == duration) and (rank is None or slot.rank == rank)
    ]


# --- seed 000: link slots -------------------------------------------------------------------


def test_several_durations_give_slots_at_the_same_start() -> None:
    # Given a link offering 30 or 60 minutes, open Tuesday 2021-06-01 00:00-01:00 UTC
    link = LinkRules(time_zone="Etc/UTC", durations=[60, 30], availability=every_day("00:00", "01:00"))
    # When listing that hour
    slots = link_slots(
        link,
        [host("prov_a")],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-01T01:00:00Z"),
    )
    # Then both durations start at 00:00, ordered by start, then duration
    assert [(iso_utc(s.start), iso_utc(s.end), s.duration, s.rank) for s in slots] == [
        ("2021-06-01T00:00:00Z", "2021-06-01T00:30:00Z", 30, 1),
        ("2021-06-01T00:00:00Z", "2021-06-01T01:00:00Z", 60, 1),
        ("2021-06-01T00:15:00Z", "2021-06-01T00:45:00Z", 30, 1),
        ("2021-06-01T00:30:00Z", "2021-06-01T01:00:00Z", 30, 1),
    ]


def test_filtering_rank_two_gives_every_rank_one_time_too() -> None:
    # Given rank 1 mornings and rank 2 afternoons
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[30],
        increment=30,
        availability=every_day("09:00", "10:00") + every_day("14:00", "15:00", rank=2),
    )
    # When listing a day
    slots = link_slots(
        link,
        [host("prov_a")],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    # Then rank === 1 is the preferred times and rank === 2 the preferred plus the expanded ones
    assert utc_times(slots, rank=1) == ["09:00", "09:30"]
    assert utc_times(slots, rank=2) == ["09:00", "09:30", "14:00", "14:30"]


def test_a_rank_without_rules_repeats_the_rank_below() -> None:
    # Given rules of rank 1 and rank 3 only
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[60],
        increment=60,
        availability=every_day("09:00", "10:00") + every_day("12:00", "13:00", rank=3),
    )
    slots = link_slots(
        link,
        [host("prov_a")],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    # Then rank 2 equals rank 1, and rank 3 adds the noon hour
    assert utc_times(slots, rank=1) == utc_times(slots, rank=2) == ["09:00"]
    assert utc_times(slots, rank=3) == ["09:00", "12:00"]
    assert rank_windows(
        link.availability, "Etc/UTC", 2, at("2021-06-01T00:00:00Z"), at("2021-06-02T00:00:00Z")
    ) == [(at("2021-06-01T09:00:00Z"), at("2021-06-01T10:00:00Z"))]


def test_without_rules_the_hosts_working_hours_are_rank_one() -> None:
    link = LinkRules(time_zone="Etc/UTC", durations=[60], increment=60)
    schedule = all_week("Etc/UTC", "09:00", "11:00")
    slots = link_slots(
        link,
        [host("prov_a", schedule=schedule)],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    assert [(iso_utc(s.start), s.rank) for s in slots] == [
        ("2021-06-01T09:00:00Z", 1),
        ("2021-06-01T10:00:00Z", 1),
    ]


def test_a_meeting_ending_at_ten_does_not_overlap_one_starting_at_ten() -> None:
    link = LinkRules(
        time_zone="Etc/UTC", durations=[30], increment=30, availability=every_day("09:00", "11:00")
    )
    meeting = Busy(at("2021-06-01T09:00:00Z"), at("2021-06-01T10:00:00Z"))
    slots = link_slots(
        link,
        [host("prov_a", [meeting])],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    assert utc_times(slots) == ["10:00", "10:30"]


def test_buffers_keep_meetings_apart_both_ways() -> None:
    # Given a link with 15 minutes before each meeting, a 10:00-10:30 meeting booked with 30
    # minutes before it, and an 08:00-08:30 meeting booked with 30 minutes after it
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[30],
        increment=15,
        buffer_before=15,
        availability=every_day("09:00", "12:00"),
    )
    meetings = [
        Busy(at("2021-06-01T10:00:00Z"), at("2021-06-01T10:30:00Z"), 30 * 60, 0),
        Busy(at("2021-06-01T08:00:00Z"), at("2021-06-01T08:30:00Z"), 0, 30 * 60),
    ]
    slots = link_slots(
        link,
        [host("prov_a", meetings)],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    # Then 09:00 stands although its own buffer meets the other meeting's buffer zone;
    # 09:15-10:15 touch the 09:30-10:30 meeting or its buffer zone; 10:30's own buffer
    # (10:15-10:30) overlaps the meeting, 10:45's does not
    assert utc_times(slots) == ["09:00", "10:45", "11:00", "11:15", "11:30"]


def test_own_buffer_may_not_overlap_another_meeting() -> None:
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[30],
        increment=30,
        buffer_after=30,
        availability=every_day("09:00", "12:00"),
    )
    meeting = Busy(at("2021-06-01T10:00:00Z"), at("2021-06-01T10:30:00Z"))
    slots = link_slots(
        link,
        [host("prov_a", [meeting])],
        at("2021-05-31T00:00:00Z"),
        at("2021-06-01T00:00:00Z"),
        at("2021-06-02T00:00:00Z"),
    )
    # 09:30-10:00 would leave its 30-minute after-buffer on the meeting
    assert utc_times(slots) == ["09:00", "10:30", "11:00", "11:30"]


def test_notice_and_horizon_bound_the_starts() -> None:
    now = at("2021-06-01T09:10:00Z")
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[30],
        increment=30,
        minimum_notice=50,
        maximum_days_ahead=1,
        availability=every_day("09:00", "11:00"),
    )
    slots = link_slots(link, [host("prov_a")], now, at("2021-06-01T00:00:00Z"), at("2021-06-03T00:00:00Z"))
    # 10:00 is the first start at least 50 minutes away; 09:00 on the next day is within 24 h, 09:30 is not
    assert [iso_utc(s.start) for s in slots] == [
        "2021-06-01T10:00:00Z",
        "2021-06-01T10:30:00Z",
        "2021-06-02T09:00:00Z",
    ]


def test_notice_and_horizon_bounds_are_inclusive() -> None:
    # Given starts every 5 minutes, now 09:10, notice 50 minutes and a 1-day horizon
    now = at("2021-06-01T09:10:00Z")
    link = LinkRules(
        time_zone="Etc/UTC",
        durations=[5],
        increment=5,
        minimum_notice=50,
        maximum_days_ahead=1,
        availability=every_day("00:00", "24:00"),
    )
    starts = [s.start for s in link_slots(link, [host("prov_a")], now, now, now + 2 * 86400)]
    # Then the first start is exactly now + notice and the last exactly now + 24 h
    assert (starts[0], starts[-1]) == (now + 50 * 60, now + 86400)
    assert not is_link_slot(link, [host("prov_a")], now, now + 45 * 60, 5)
    assert not is_link_slot(link, [host("prov_a")], now, now + 86400 + 5 * 60, 5)


def test_any_needs_one_free_host_and_all_needs_every_host() -> None:
    link_any = LinkRules(
        time_zone="Etc/UTC", durations=[60], increment=60, availability=every_day("09:00", "11:00")
    )
    link_all = LinkRules(
        time_zone="Etc/UTC",
        durations=[60],
        increment=60,
        availability=every_day("09:00", "11:00"),
        host_mode="all",
    )
    hosts = [host("prov_b", [Busy(at("2021-06-01T09:00:00Z"), at("2021-06-01T10:00:00Z"))]), host("prov_a")]
    now, start, end = at("2021-05-31T00:00:00Z"), at("2021-06-01T00:00:00Z"), at("2021-06-02T00:00:00Z")
    assert utc_times(link_slots(link_any, hosts, now, start, end)) == ["09:00", "10:00"]
    assert utc_times(link_slots(link_all, hosts, now, start, end)) == ["10:00"]
    assert free_hosts(link_any, hosts, now, at("2021-06-01T09:00:00Z"), 60) == ["prov_a"]
    assert free_hosts(link_any, hosts, now, at("2021-06-01T10:00:00Z"), 60) == ["prov_a", "prov_b"]
    assert is_link_slot(link_all, hosts, now, at("2021-06-01T10:00:00Z"), 60)
    assert not is_link_slot(link_all, hosts, now, at("2021-06-01T09:00:00Z"), 60)
    # A duration the link does not offer is never a slot
    assert free_hosts(link_any, hosts, now, at("2021-06-01T10:00:00Z"), 30) == []


def test_any_books_the_host_with_fewest_bookings_that_local_day() -> None:
    # Given bookings counted by their local date in the link's zone (New York)
    link = LinkRules(time_zone=NEW_YORK, durations=[30])
    hosts = [
        host("prov_a", booking_starts=[at("2021-06-01T14:00:00Z"), at("2021-06-01T15:00:00Z")]),
        host("prov_b", booking_starts=[at("2021-06-01T16:00:00Z"), at("2021-06-02T02:00:00Z")]),
        host("prov_c", booking_starts=[at("2021-06-01T13:00:00Z")]),
    ]
    slot = at("2021-06-01T18:00:00Z")
    # prov_b's 02:00 UTC booking is 22:00 on 06-01 in New York: two each for a and b, one for c
    assert choose_host(link, hosts, ["prov_a", "prov_b", "prov_c"], slot) == "prov_c"
    # Ties go to the smallest id
    assert choose_host(link, hosts, ["prov_b", "prov_a"], slot) == "prov_a"


# --- DST: 23- and 25-hour days ----------------------------------------------------------------


def test_a_spring_forward_day_has_23_hours_and_no_skipped_starts() -> None:
    # Given a New York link open all of Sunday 2026-03-08 (clocks jump 02:00 -> 03:00)
    link = LinkRules(time_zone=NEW_YORK, durations=[15], availability=every_day("00:00", "24:00"))
    day_start, day_end = at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z")
    assert rank_windows(link.availability, NEW_YORK, 1, day_start - 6 * HOUR, day_end + 6 * HOUR) == [
        (day_start - 6 * HOUR, day_end + 6 * HOUR)
    ]
    slots = link_slots(link, [host("prov_a")], day_start - 24 * HOUR, day_start, day_end)
    local = [iso_in_zone(s.start, NEW_YORK)[11:16] for s in slots]
    # Then the day lasts 23 hours: 92 quarter-hour starts, none between 02:00 and 03:00
    assert day_end - day_start == 23 * HOUR
    assert len(slots) == 92
    assert local[7:10] == ["01:45", "03:00", "03:15"]


def test_a_fall_back_day_has_25_hours_and_repeated_times_start_once() -> None:
    link = LinkRules(time_zone=NEW_YORK, durations=[60], availability=every_day("00:00", "24:00"))
    day_start, day_end = at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z")
    slots = link_slots(link, [host("prov_a")], day_start - 24 * HOUR, day_start, day_end + HOUR)
    starts = [s.start for s in slots if s.start < day_end]
    assert day_end - day_start == 25 * HOUR
    # 96 wall-clock starts; 01:30 is its first occurrence (EDT), not the repeat an hour later (EST)
    assert len(starts) == 96
    assert at("2026-11-01T05:30:00Z") in starts and at("2026-11-01T06:30:00Z") not in starts
    # A 60-minute meeting lasts 3,600 s even across the change: 01:30 EDT -> 01:30 EST
    slot = next(s for s in slots if s.start == at("2026-11-01T05:30:00Z"))
    assert slot.end - slot.start == HOUR and iso_in_zone(slot.end, NEW_YORK) == "2026-11-01T01:30:00-05:00"


def test_nine_to_five_stays_nine_to_five_local_across_the_change() -> None:
    windows = working_hours(all_week(NEW_YORK), at("2026-03-07T00:00:00Z"), at("2026-03-10T00:00:00Z"))
    assert [(iso_in_zone(s, NEW_YORK), iso_in_zone(e, NEW_YORK)) for s, e in windows] == [
        ("2026-03-07T09:00:00-05:00", "2026-03-07T17:00:00-05:00"),
        ("2026-03-08T09:00:00-04:00", "2026-03-08T17:00:00-04:00"),
        ("2026-03-09T09:00:00-04:00", "2026-03-09T17:00:00-04:00"),
    ]
    assert windows[0] == (at("2026-03-07T14:00:00Z"), at("2026-03-07T22:00:00Z"))
    assert windows[1] == (at("2026-03-08T13:00:00Z"), at("2026-03-08T21:00:00Z"))


def test_a_boundary_in_the_gap_moves_to_the_first_instant_after_it() -> None:
    schedule = ProviderSchedule(
        time_zone=NEW_YORK,
        date_overrides=[
            DateOverride(date="2026-03-08", intervals=[TimeOfDayRange(start_time="02:30", end_time="05:00")])
        ],
    )
    assert working_hours(schedule, at("2026-03-08T00:00:00Z"), at("2026-03-09T00:00:00Z")) == [
        (at("2026-03-08T07:00:00Z"), at("2026-03-08T09:00:00Z"))  # 03:00 EDT - 05:00 EDT
    ]


def test_an_ambiguous_boundary_takes_the_first_occurrence() -> None:
    schedule = ProviderSchedule(
        time_zone=NEW_YORK,
        date_overrides=[
            DateOverride(date="2026-11-01", intervals=[TimeOfDayRange(start_time="01:30", end_time="03:00")])
        ],
    )
    assert working_hours(schedule, at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z")) == [
        (at("2026-11-01T05:30:00Z"), at("2026-11-01T08:00:00Z"))  # 01:30 EDT - 03:00 EST: 2.5 hours
    ]


def test_lord_howe_skips_half_an_hour_and_repeats_half_an_hour() -> None:
    zone = "Australia/Lord_Howe"
    link = LinkRules(time_zone=zone, durations=[15], availability=every_day("01:00", "03:00"))
    # 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00
    spring = link_slots(
        link,
        [host("prov_a")],
        at("2026-10-01T00:00:00Z"),
        at("2026-10-03T12:00:00Z"),
        at("2026-10-04T12:00:00Z"),
    )
    assert [iso_in_zone(s.start, zone)[11:] for s in spring] == [
        "01:00:00+10:30",
        "01:15:00+10:30",
        "01:30:00+10:30",
        "01:45:00+10:30",
        "02:30:00+11:00",
        "02:45:00+11:00",
    ]
    # 2026-04-05: 02:00 +11:00 falls back to 01:30 +10:30; 01:30-01:45 start only on their first pass
    autumn = link_slots(
        link,
        [host("prov_a")],
        at("2026-04-01T00:00:00Z"),
        at("2026-04-04T12:00:00Z"),
        at("2026-04-05T12:00:00Z"),
    )
    assert [iso_in_zone(s.start, zone)[11:] for s in autumn] == [
        "01:00:00+11:00",
        "01:15:00+11:00",
        "01:30:00+11:00",
        "01:45:00+11:00",
        "02:00:00+10:30",
        "02:15:00+10:30",
        "02:30:00+10:30",
        "02:45:00+10:30",
    ]


# --- working hours ------------------------------------------------------------------------------


def test_windows_touching_at_midnight_form_one_window() -> None:
    schedule = ProviderSchedule(
        time_zone="Etc/UTC",
        weekly_rules=[
            WeeklyRule(day_of_week="monday", start_time="22:00", end_time="24:00"),
            WeeklyRule(day_of_week="tuesday", start_time="00:00", end_time="02:00"),
            WeeklyRule(day_of_week="tuesday", start_time="01:00", end_time="03:00"),
        ],
    )
    assert working_hours(schedule, at("2021-05-31T00:00:00Z"), at("2021-06-02T00:00:00Z")) == [
        (at("2021-05-31T22:00:00Z"), at("2021-06-01T03:00:00Z"))
    ]


def test_an_override_replaces_the_day_and_an_empty_one_is_a_day_off() -> None:
    schedule = ProviderSchedule(
        time_zone="Etc/UTC",
        date_overrides=[
            DateOverride(date="2021-06-01", intervals=[TimeOfDayRange(start_time="13:00", end_time="14:00")]),
            DateOverride(date="2021-06-02", intervals=[]),
        ],
    )
    assert working_hours(schedule, at("2021-06-01T00:00:00Z"), at("2021-06-04T00:00:00Z")) == [
        (at("2021-06-01T13:00:00Z"), at("2021-06-01T14:00:00Z")),
        (at("2021-06-03T09:00:00Z"), at("2021-06-03T17:00:00Z")),
    ]


def test_outside_the_effective_dates_there_are_no_hours_overrides_included() -> None:
    schedule = ProviderSchedule(
        time_zone="Etc/UTC",
        date_overrides=[
            DateOverride(date="2021-06-04", intervals=[TimeOfDayRange(start_time="10:00", end_time="11:00")])
        ],
        effective_from="2021-06-02",
        effective_until="2021-06-03",
    )
    assert working_hours(schedule, at("2021-05-31T00:00:00Z"), at("2021-06-07T00:00:00Z")) == [
        (at("2021-06-02T09:00:00Z"), at("2021-06-02T17:00:00Z")),
        (at("2021-06-03T09:00:00Z"), at("2021-06-03T17:00:00Z")),
    ]


def test_a_new_providers_schedule_is_weekdays_nine_to_five_utc_and_private() -> None:
    schedule = ProviderSchedule()
    assert schedule.time_zone == "Etc/UTC" and schedule.public_bookings.enabled is False
    assert [(r.day_of_week, r.start_time, r.end_time) for r in schedule.weekly_rules] == [
        (day, "09:00", "17:00") for day in DAYS[:5]
    ]


# --- seed 003: service slots, stage by stage ----------------------------------------------------

SERVICE = ServiceRules(
    duration=60,
    time_zone=NEW_YORK,
    slot_rules=[SlotRule(days_of_week=list(DAYS[:5]), start_time="09:00", end_time="17:00")],
)
MONDAY = date(2025, 3, 10)


def brooks(busy: list[Busy] | None = None) -> HostCalendar:
    return host("prov_brooks", busy, all_week(NEW_YORK, "00:00", "24:00"))


def patel(busy: list[Busy] | None = None) -> HostCalendar:
    return host("prov_patel", busy, all_week(NEW_YORK, "09:00", "12:00"))


def local_open(providers: list[HostCalendar]) -> dict[str, list[str]]:
    result = service_slots(SERVICE, providers, at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, MONDAY, None)
    return {
        entry.provider_id: [iso_in_zone(s.start, NEW_YORK)[11:16] for s in entry.open]
        for entry in result.providers
    }


def ny(local_time: str) -> int:
    return at(f"2025-03-10T{local_time}:00-04:00")


def test_stage_1_slot_rules_say_when_slots_begin() -> None:
    # Given a provider free around the clock, the service's rules alone decide: 09:00 ... 16:00
    assert local_open([brooks()])["prov_brooks"] == [f"{h:02d}:00" for h in range(9, 17)]


def test_stage_2_working_hours_remove_slots_outside_them() -> None:
    # 11:00-12:00 still fits Patel's 09:00-12:00; 12:00 does not
    assert local_open([brooks(), patel()])["prov_patel"] == ["09:00", "10:00", "11:00"]


def test_stage_3_appointments_remove_overlapping_slots() -> None:
    appointment = Busy(ny("13:00"), ny("14:00"))
    assert "13:00" not in local_open([brooks([appointment])])["prov_brooks"]
    assert local_open([brooks([appointment])])["prov_brooks"] == [
        "09:00",
        "10:00",
        "11:00",
        "12:00",
        "14:00",
        "15:00",
        "16:00",
    ]


def test_stage_4_blocks_remove_overlapping_slots() -> None:
    block = Busy(ny("14:30"), ny("14:45"))
    assert local_open([brooks([Busy(ny("13:00"), ny("14:00")), block])])["prov_brooks"] == [
        "09:00",
        "10:00",
        "11:00",
        "12:00",
        "15:00",
        "16:00",
    ]


def test_stage_5_external_busy_times_remove_overlapping_slots() -> None:
    busy = [Busy(ny("13:00"), ny("14:00")), Busy(ny("14:30"), ny("14:45")), Busy(ny("15:59"), ny("16:01"))]
    assert local_open([brooks(busy)])["prov_brooks"] == ["09:00", "10:00", "11:00", "12:00"]


def test_stage_6_holds_remove_the_held_slot() -> None:
    hold = Busy(ny("09:00"), ny("10:00"))
    before = service_slots(
        SERVICE, [brooks(), patel()], at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, MONDAY, None
    )
    after = service_slots(
        SERVICE, [brooks(), patel([hold])], at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, MONDAY, None
    )
    assert before.aggregated[0] == ((ny("09:00"), ny("10:00")), 2)
    assert after.aggregated[0] == ((ny("09:00"), ny("10:00")), 1)
    assert service_free_providers(
        SERVICE, [brooks(), patel([hold])], at("2025-03-01T00:00:00Z"), ny("09:00")
    ) == ["prov_brooks"]
    assert not is_service_slot(SERVICE, patel([hold]), at("2025-03-01T00:00:00Z"), ny("09:00"))
    assert is_service_slot(SERVICE, patel([hold]), at("2025-03-01T00:00:00Z"), ny("10:00"))


def test_seed_response_times_carry_the_requested_zones_offset() -> None:
    result = service_slots(
        SERVICE, [brooks(), patel()], at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, MONDAY, None
    )
    first, count = result.aggregated[0]
    assert (iso_in_zone(first.start, NEW_YORK), iso_in_zone(first.end, NEW_YORK), count) == (
        "2025-03-10T09:00:00-04:00",
        "2025-03-10T10:00:00-04:00",
        2,
    )
    # 09:00 EDT is 13:00 UTC (the seed's sample start_at_ts, 1741615200, is 10:00 EDT)
    assert first.start == 1741611600


def test_the_requested_zone_decides_which_date_a_slot_belongs_to() -> None:
    # Given evening slots in New York, 18:00 and 19:00 EDT = 23:00 and 00:00 in Berlin (CET, +01:00)
    evening = ServiceRules(
        duration=60,
        time_zone=NEW_YORK,
        slot_rules=[SlotRule(days_of_week=["monday"], start_time="18:00", end_time="20:00")],
    )
    result = service_slots(
        evening, [brooks()], at("2025-03-01T00:00:00Z"), "Europe/Berlin", MONDAY, MONDAY, None
    )
    assert [iso_in_zone(slot.start, "Europe/Berlin") for slot, _ in result.aggregated] == [
        "2025-03-10T23:00:00+01:00"
    ]
    tuesday = service_slots(
        evening,
        [brooks()],
        at("2025-03-01T00:00:00Z"),
        "Europe/Berlin",
        date(2025, 3, 11),
        date(2025, 3, 11),
        None,
    )
    assert [iso_in_zone(slot.start, "Europe/Berlin") for slot, _ in tuesday.aggregated] == [
        "2025-03-11T00:00:00+01:00"
    ]


def test_slot_rules_step_by_their_interval_within_their_dates() -> None:
    rules = ServiceRules(
        duration=30,
        time_zone="Etc/UTC",
        slot_rules=[
            SlotRule(
                days_of_week=list(DAYS),
                start_time="09:00",
                end_time="10:00",
                interval=20,
                starts_on="2025-03-11",
                ends_on="2025-03-11",
            ),
        ],
    )
    result = service_slots(
        rules, [brooks()], at("2025-03-01T00:00:00Z"), "Etc/UTC", MONDAY, date(2025, 3, 12), None
    )
    # 09:40 may begin a slot although it ends after the rule's end_time: rules say when slots begin
    assert [iso_utc(slot.start) for slot, _ in result.aggregated] == [
        "2025-03-11T09:00:00Z",
        "2025-03-11T09:20:00Z",
        "2025-03-11T09:40:00Z",
    ]


def test_a_limit_keeps_the_first_slots_and_lists_providers_only_at_those_times() -> None:
    result = service_slots(
        SERVICE, [brooks(), patel()], at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, None, 3
    )
    assert [slot.start for slot, _ in result.aggregated] == [ny("09:00"), ny("10:00"), ny("11:00")]
    assert [[s.start for s in entry.open] for entry in result.providers] == [
        [ny("09:00"), ny("10:00"), ny("11:00")],
        [ny("09:00"), ny("10:00"), ny("11:00")],
    ]


def test_the_earliest_slot_is_found_weeks_ahead_when_nothing_is_sooner() -> None:
    away = host("prov_away", schedule=ProviderSchedule(time_zone=NEW_YORK, effective_from="2025-05-05"))
    result = service_slots(SERVICE, [away], at("2025-03-01T00:00:00Z"), NEW_YORK, MONDAY, None, 1)
    assert [iso_in_zone(slot.start, NEW_YORK) for slot, _ in result.aggregated] == [
        "2025-05-05T09:00:00-04:00"
    ]


def test_nothing_that_starts_before_now_is_a_slot() -> None:
    result = service_slots(SERVICE, [brooks()], ny("10:30"), NEW_YORK, MONDAY, MONDAY, None)
    assert result.aggregated[0][0].start == ny("11:00")


def test_service_slots_need_until_or_limit() -> None:
    with pytest.raises(ValueError):
        service_slots(SERVICE, [brooks()], 0, NEW_YORK, MONDAY, None, None)


# --- helpers for the command side ---------------------------------------------------------------


def test_parse_hhmm_accepts_wall_clock_times_and_24_00_only() -> None:
    assert (parse_hhmm("00:00"), parse_hhmm("09:30"), parse_hhmm("24:00")) == (0, 570, 1440)
    for bad in ["9:00", "24:01", "12:60", "25:00", "noon", "09:00:00"]:
        with pytest.raises(ValueError):
            parse_hhmm(bad)


def test_zone_names_and_formats() -> None:
    assert is_valid_zone("Australia/Lord_Howe") and is_valid_zone("Etc/UTC")
    assert not is_valid_zone("Mars/Olympus") and not is_valid_zone("") and not is_valid_zone("America")
    assert iso_utc(1741611600) == "2025-03-10T13:00:00Z"
    assert iso_in_zone(at("2026-07-01T00:00:00Z"), "Australia/Lord_Howe") == "2026-07-01T10:30:00+10:30"
    assert iso_in_zone(at("2026-07-01T00:00:00Z"), "Asia/Kolkata") == "2026-07-01T05:30:00+05:30"
    assert parse_instant("2025-03-10T09:00:00-04:00") == 1741611600
    with pytest.raises(ValueError):
        parse_instant("2025-03-10T09:00:00")
