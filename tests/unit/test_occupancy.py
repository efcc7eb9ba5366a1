"""Stories for the occupancy kernel: what occupies a provider's time (DESIGN.md section 3)."""

from __future__ import annotations

from shared.availability import Busy
from shared.availability.occupancy import EXTERNAL, Reservation, occupancy, occupants, occupies
from shared.domain.reservations import Calendar
from shared.messages.events import TimeReleased, TimeReserved

NOW = 1_800_000_000
HOUR = 3600


def event(reservation_id: str, start: int, end: int, before: int = 0, after: int = 0) -> Reservation:
    return Reservation(reservation_id, "event", start, end, before, after)


def hold(reservation_id: str, start: int, end: int, expires_at: int) -> Reservation:
    return Reservation(reservation_id, "hold", start, end, expires_at=expires_at)


def test_an_expired_hold_occupies_nothing_an_active_one_does() -> None:
    expired = hold("hold_1", NOW + HOUR, NOW + 2 * HOUR, expires_at=NOW)
    active = hold("hold_2", NOW + 3 * HOUR, NOW + 4 * HOUR, expires_at=NOW + 1)

    assert not occupies(expired, NOW) and occupies(active, NOW)
    assert occupancy([expired, active], [], NOW).busy == [Busy(NOW + 3 * HOUR, NOW + 4 * HOUR)]
    assert [r.reservation_id for r in occupants([expired, active], [], NOW)] == ["hold_2"]
    assert occupancy([active], [], NOW + 1).busy == []  # the moment it expires, swept or not


def test_canceled_and_released_reservations_leave_the_calendar() -> None:
    calendar = Calendar()
    for reservation_id in ("event_1", "hold_1"):
        calendar.apply(TimeReserved(provider_id="prov_1", reservation_id=reservation_id, kind=reservation_id[:-2],
                                    start_at="2027-01-04T10:00:00Z", end_at="2027-01-04T11:00:00Z"))
    calendar.apply(TimeReleased(provider_id="prov_1", reservation_id="event_1"))
    calendar.apply(TimeReleased(provider_id="prov_1", reservation_id="hold_1"))

    assert calendar.occupancy(NOW) == ([], [])


def test_a_booking_reserves_its_buffer_zones() -> None:
    booked = event("event_1", NOW + HOUR, NOW + 2 * HOUR, before=600, after=900)

    assert occupancy([booked], [], NOW).busy == [Busy(NOW + HOUR, NOW + 2 * HOUR, 600, 900)]
    # a range that only the buffer zones reach still lists the booking
    assert occupants([booked], [], NOW, during=(NOW + 2 * HOUR, NOW + 3 * HOUR)) == [booked]
    assert occupants([booked], [], NOW, during=(NOW, NOW + HOUR - 600)) == []
    assert occupants([booked], [], NOW, during=(NOW + 2 * HOUR + 900, NOW + 3 * HOUR)) == []


def test_a_reschedule_leaves_out_the_booking_s_own_time_but_host_assignment_still_counts_it() -> None:
    own = event("event_1", NOW + HOUR, NOW + 2 * HOUR, after=900)
    other = Reservation("appt_1", "appointment", NOW + 3 * HOUR, NOW + 4 * HOUR)

    busy, starts = occupancy([own, other], [], NOW, exclude={"event_1"})

    assert busy == [Busy(NOW + 3 * HOUR, NOW + 4 * HOUR)]
    assert sorted(starts) == [NOW + HOUR, NOW + 3 * HOUR]
    assert occupants([own, other], [], NOW, exclude={"event_1"}) == [other]


def test_booking_starts_count_events_and_appointments_only() -> None:
    reservations = [event("event_1", NOW, NOW + HOUR), Reservation("appt_1", "appointment", NOW + HOUR, NOW + 2 * HOUR),
                    hold("hold_1", NOW + 2 * HOUR, NOW + 3 * HOUR, NOW + HOUR),
                    Reservation("blk_1", "block", NOW + 3 * HOUR, NOW + 4 * HOUR)]

    assert occupancy(reservations, [(NOW, NOW + HOUR)], NOW).booking_starts == [NOW, NOW + HOUR]


def test_external_busy_times_occupy_without_buffers_and_sort_among_reservations() -> None:
    booked = event("event_1", NOW + 2 * HOUR, NOW + 3 * HOUR, before=300)

    assert occupancy([booked], [(NOW, NOW + HOUR)], NOW).busy == [
        Busy(NOW + 2 * HOUR, NOW + 3 * HOUR, 300, 0), Busy(NOW, NOW + HOUR)]
    assert occupants([booked], [(NOW, NOW + HOUR)], NOW) == [
        Reservation("", EXTERNAL, NOW, NOW + HOUR), booked]


def test_history_before_since_is_left_out_but_booking_starts_reach_a_day_further() -> None:
    ended = event("event_1", NOW - 3 * HOUR, NOW - 2 * HOUR)

    busy, starts = occupancy([ended], [(NOW - 3 * HOUR, NOW - 2 * HOUR)], NOW, since=NOW - 2 * HOUR)

    assert busy == [] and starts == [NOW - 3 * HOUR]
    assert occupancy([ended], [], NOW, since=NOW - 2 * HOUR - 1).busy == [Busy(NOW - 3 * HOUR, NOW - 2 * HOUR)]
