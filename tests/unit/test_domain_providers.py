"""Provider stories: creating a bookable provider and setting its working-hours schedule."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.availability.model import (
    DateOverride,
    ProviderSchedule,
    PublicBookings,
    TimeOfDayRange,
    WeeklyRule,
)
from shared.domain import accounts, providers
from shared.domain.core import provider_stream
from shared.errors import ValidationFailed
from shared.ids import has_prefix
from shared.messages.commands import CreateProvider, SetProviderSchedule
from shared.messages.events import ProviderCreated, ProviderScheduleSet

from .domain_fixtures import (
    ACCOUNT_ID,
    ANN,
    ANN_PROVIDER,
    ANN_ZONE,
    EARLIER_ISO,
    NOW_ISO,
    OTHER_ACCOUNT_ID,
    acme_with_ann,
    ann_provider,
    events_on,
    fixed_env,
    fold,
    not_found,
    other_account_provider,
    provider_created,
    provider_given,
    rejected,
    streams_of,
)

WEEKDAYS_NINE_TO_FIVE = [
    {"day_of_week": day, "start_time": "09:00", "end_time": "17:00"}
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
]


def rule(day: str = "monday", start: str = "09:00", end: str = "17:00") -> WeeklyRule:
    return WeeklyRule(day_of_week=day, start_time=start, end_time=end)


def override(date: str, *spans: tuple[str, str]) -> DateOverride:
    return DateOverride(date=date, intervals=[TimeOfDayRange(start_time=s, end_time=e) for s, e in spans])


def set_schedule(provider_id: str = ANN_PROVIDER, account_id: str = ACCOUNT_ID, **fields: Any) -> SetProviderSchedule:
    return SetProviderSchedule(command_id="cmd_s", account_id=account_id, user_id=ANN, provider_id=provider_id,
                               **fields)


def new_provider(**fields: Any) -> CreateProvider:
    body = {"command_id": "cmd_p", "account_id": ACCOUNT_ID, "user_id": ANN, "display_name": "Room 1",
            "email": "room1@example.com", "time_zone": "Asia/Kolkata"}
    return CreateProvider(**{**body, **fields})


# --- create_provider -----------------------------------------------------------------------------

class TestCreateProvider:
    def test_creates_a_provider_with_the_default_schedule_in_the_given_zone(self) -> None:
        # given
        account = acme_with_ann()

        # when
        decision = providers.create_provider(new_provider(), account, fixed_env())

        # then
        provider_id = decision.result["id"]
        assert has_prefix(provider_id, "prov")
        assert streams_of(decision) == [provider_stream(provider_id)]
        assert events_on(decision, provider_stream(provider_id)) == [
            ProviderCreated(provider_id=provider_id, account_id=ACCOUNT_ID, display_name="Room 1",
                            email="room1@example.com", time_zone="Asia/Kolkata", user_id=None, created_at=NOW_ISO)
        ]
        assert decision.result == {
            "object": "provider", "id": provider_id, "display_name": "Room 1", "email": "room1@example.com",
            "time_zone": "Asia/Kolkata", "user_id": None, "created_at": NOW_ISO,
            "schedule": {
                "time_zone": "Asia/Kolkata",
                "weekly_rules": WEEKDAYS_NINE_TO_FIVE,
                "date_overrides": [],
                "effective_from": None,
                "effective_until": None,
                "public_bookings": {"enabled": False},
            },
        }

    def test_zone_defaults_to_utc_and_email_is_optional(self) -> None:
        decision = providers.create_provider(
            CreateProvider(command_id="cmd_p", account_id=ACCOUNT_ID, user_id=ANN, display_name="Room 2"),
            acme_with_ann(), fixed_env())

        assert decision.result["time_zone"] == "Etc/UTC"
        assert decision.result["schedule"]["time_zone"] == "Etc/UTC"
        assert decision.result["email"] is None

    def test_folding_the_event_gives_the_resource_of_the_result(self) -> None:
        decision = providers.create_provider(new_provider(), acme_with_ann(), fixed_env())

        state = fold(providers.evolve, providers.ProviderState(), events_on(decision, streams_of(decision)[0]))

        assert providers.provider_resource(state) == decision.result
        assert state.schedule == ProviderSchedule(time_zone="Asia/Kolkata")

    @pytest.mark.parametrize(("fields", "bad_field"), [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 256}, "display_name"),
        ({"email": "room1"}, "email"),
        ({"email": ""}, "email"),
        ({"time_zone": "Asia/Nowhere"}, "time_zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone"),
    ])
    def test_a_bad_field_is_rejected_by_name(self, fields: dict[str, Any], bad_field: str) -> None:
        with rejected(bad_field):
            providers.create_provider(new_provider(**fields), acme_with_ann(), fixed_env())

    def test_a_missing_account_is_not_found(self) -> None:
        with not_found():
            providers.create_provider(new_provider(), accounts.AccountState(), fixed_env())


# --- set_provider_schedule -----------------------------------------------------------------------

def berlin_schedule_set() -> ProviderScheduleSet:
    """A schedule with every part away from its default."""
    return ProviderScheduleSet(provider_id=ANN_PROVIDER, schedule=ProviderSchedule(
        time_zone=ANN_ZONE,
        weekly_rules=[rule("tuesday", "08:00", "12:00"), rule("thursday", "13:00", "18:00")],
        date_overrides=[override("2026-05-14"), override("2026-05-21", ("10:00", "11:00"))],
        effective_from="2026-05-01",
        effective_until="2026-12-31",
        public_bookings=PublicBookings(enabled=True),
    ))


class TestSetProviderSchedule:
    def test_sets_every_part_of_the_schedule(self) -> None:
        # given
        provider = ann_provider()

        # when
        decision = providers.set_provider_schedule(set_schedule(
            time_zone="America/Chicago",
            weekly_rules=[rule("monday", "08:30", "12:00"), rule("saturday", "20:00", "24:00")],
            date_overrides=[override("2026-06-01"), override("2026-06-02", ("07:00", "09:00"), ("10:00", "11:30"))],
            effective_from="2026-06-01",
            effective_until="2026-06-30",
            public_bookings=PublicBookings(enabled=True),
        ), provider, fixed_env())

        # then
        expected = ProviderSchedule(
            time_zone="America/Chicago",
            weekly_rules=[rule("monday", "08:30", "12:00"), rule("saturday", "20:00", "24:00")],
            date_overrides=[override("2026-06-01"), override("2026-06-02", ("07:00", "09:00"), ("10:00", "11:30"))],
            effective_from="2026-06-01",
            effective_until="2026-06-30",
            public_bookings=PublicBookings(enabled=True),
        )
        assert streams_of(decision) == [provider_stream(ANN_PROVIDER)]
        assert events_on(decision, provider_stream(ANN_PROVIDER)) == [
            ProviderScheduleSet(provider_id=ANN_PROVIDER, schedule=expected)]
        assert decision.result["schedule"] == msgspec.to_builtins(expected)
        assert decision.result["time_zone"] == "America/Chicago"
        assert decision.result["id"] == ANN_PROVIDER and decision.result["created_at"] == EARLIER_ISO

    def test_folding_the_event_gives_the_resource_of_the_result(self) -> None:
        provider = ann_provider()

        decision = providers.set_provider_schedule(set_schedule(weekly_rules=[rule("friday")]), provider, fixed_env())

        after = fold(providers.evolve, provider, events_on(decision, provider_stream(ANN_PROVIDER)))
        assert providers.provider_resource(after) == decision.result
        assert after.schedule.weekly_rules == [rule("friday")]

    @pytest.mark.parametrize("given_part", [
        "time_zone", "weekly_rules", "date_overrides", "effective_from", "effective_until", "public_bookings",
    ])
    def test_fields_left_out_keep_their_current_values(self, given_part: str) -> None:
        # given a schedule with every part set
        provider = provider_given(provider_created(), berlin_schedule_set())
        before = provider.schedule
        new_values: dict[str, Any] = {
            "time_zone": "Asia/Tokyo",
            "weekly_rules": [rule("sunday", "10:00", "14:00")],
            "date_overrides": [override("2026-07-04")],
            "effective_from": "2026-06-15",
            "effective_until": "2026-11-30",
            "public_bookings": PublicBookings(enabled=False),
        }

        # when one part is given
        decision = providers.set_provider_schedule(set_schedule(**{given_part: new_values[given_part]}), provider,
                                                   fixed_env())

        # then only that part changes
        (event,) = events_on(decision, provider_stream(ANN_PROVIDER))
        assert isinstance(event, ProviderScheduleSet)
        assert event.schedule == msgspec.structs.replace(before, **{given_part: new_values[given_part]})
        assert getattr(event.schedule, given_part) != getattr(before, given_part)

    def test_an_empty_command_keeps_the_whole_schedule(self) -> None:
        provider = provider_given(provider_created(), berlin_schedule_set())

        decision = providers.set_provider_schedule(set_schedule(), provider, fixed_env())

        (event,) = events_on(decision, provider_stream(ANN_PROVIDER))
        assert isinstance(event, ProviderScheduleSet) and event.schedule == berlin_schedule_set().schedule

    def test_null_clears_a_date_bound(self) -> None:
        provider = provider_given(provider_created(), berlin_schedule_set())

        decision = providers.set_provider_schedule(set_schedule(effective_from=None), provider, fixed_env())

        assert decision.result["schedule"]["effective_from"] is None
        assert decision.result["schedule"]["effective_until"] == "2026-12-31"

    def test_a_day_off_override_has_no_intervals(self) -> None:
        decision = providers.set_provider_schedule(set_schedule(date_overrides=[override("2026-12-25")]),
                                                   ann_provider(), fixed_env())

        assert decision.result["schedule"]["date_overrides"] == [{"date": "2026-12-25", "intervals": []}]

    @pytest.mark.parametrize("zone", [
        "Europe/Atlantis", "", "Europe/Berlin ", "/etc/localtime", "Europe/../Europe/Berlin",
    ])
    def test_an_unknown_zone_is_rejected(self, zone: str) -> None:
        with rejected("time_zone"):
            providers.set_provider_schedule(set_schedule(time_zone=zone), ann_provider(), fixed_env())

    @pytest.mark.parametrize("start", ["9:00", "25:00", "09:60", "0900", "09:00:00", "", "ab:cd", "24:01"])
    def test_a_malformed_start_time_is_rejected(self, start: str) -> None:
        with rejected("weekly_rules[0].start_time"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(start=start)]), ann_provider(),
                                            fixed_env())

    @pytest.mark.parametrize("end", ["17:0", "25:00", "17:60", "24:30", "5pm"])
    def test_a_malformed_end_time_is_rejected(self, end: str) -> None:
        with rejected("weekly_rules[0].end_time"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(end=end)]), ann_provider(), fixed_env())

    @pytest.mark.parametrize(("start", "end"), [("17:00", "09:00"), ("09:00", "09:00"), ("12:30", "12:29")])
    def test_an_end_not_after_the_start_is_rejected(self, start: str, end: str) -> None:
        with rejected("weekly_rules[0].end_time"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(start=start, end=end)]), ann_provider(),
                                            fixed_env())

    def test_24_00_is_accepted_as_an_end_but_not_as_a_start(self) -> None:
        decision = providers.set_provider_schedule(
            set_schedule(weekly_rules=[rule(start="00:00", end="24:00")]), ann_provider(), fixed_env())
        assert decision.result["schedule"]["weekly_rules"] == [
            {"day_of_week": "monday", "start_time": "00:00", "end_time": "24:00"}]

        with rejected("weekly_rules[0].start_time", "weekly_rules[0].end_time"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(start="24:00", end="24:00")]),
                                            ann_provider(), fixed_env())

    def test_the_field_names_the_rule_at_fault(self) -> None:
        with rejected("weekly_rules[2].start_time"):
            providers.set_provider_schedule(
                set_schedule(weekly_rules=[rule("monday"), rule("tuesday"), rule("wednesday", start="7:00")]),
                ann_provider(), fixed_env())

    @pytest.mark.parametrize("day", ["Monday", "mon", "funday", "", "sunday "])
    def test_an_invalid_day_is_rejected(self, day: str) -> None:
        with rejected("weekly_rules[0].day_of_week"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(day=day)]), ann_provider(), fixed_env())

    @pytest.mark.parametrize("date", ["2026-02-30", "2026/05/01", "2026-5-1", "01-05-2026", "tomorrow", ""])
    def test_a_bad_override_date_is_rejected(self, date: str) -> None:
        with rejected("date_overrides[0].date"):
            providers.set_provider_schedule(set_schedule(date_overrides=[override(date)]), ann_provider(),
                                            fixed_env())

    def test_a_date_given_twice_is_rejected_at_its_second_place(self) -> None:
        with rejected("date_overrides[2].date"):
            providers.set_provider_schedule(
                set_schedule(date_overrides=[override("2026-06-01"), override("2026-06-02"),
                                             override("2026-06-01", ("10:00", "12:00"))]),
                ann_provider(), fixed_env())

    def test_a_bad_override_interval_names_the_interval(self) -> None:
        with rejected("date_overrides[0].intervals[1].end_time"):
            providers.set_provider_schedule(
                set_schedule(date_overrides=[override("2026-06-01", ("08:00", "09:00"), ("11:00", "10:00"))]),
                ann_provider(), fixed_env())

    @pytest.mark.parametrize("date", ["2026-W23-1", "2026-06-01\n"])
    def test_an_override_date_not_written_yyyy_mm_dd_is_rejected(self, date: str) -> None:
        # "2026-W23-1" is ISO week notation for 2026-06-01: Python 3.11's date.fromisoformat accepts it,
        # so it also slips past the "appears twice" check next to "2026-06-01".
        with rejected("date_overrides[0].date"):
            providers.set_provider_schedule(set_schedule(date_overrides=[override(date)]), ann_provider(),
                                            fixed_env())

    def test_the_same_day_written_two_ways_is_rejected(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            providers.set_provider_schedule(
                set_schedule(date_overrides=[override("2026-06-01"), override("2026-W23-1", ("10:00", "11:00"))]),
                ann_provider(), fixed_env())
        assert "date_overrides[1].date" in caught.value.fields

    def test_effective_until_before_effective_from_is_rejected(self) -> None:
        with rejected("effective_until"):
            providers.set_provider_schedule(set_schedule(effective_from="2026-06-10", effective_until="2026-06-09"),
                                            ann_provider(), fixed_env())

    def test_effective_until_before_the_current_effective_from_is_rejected(self) -> None:
        provider = provider_given(provider_created(), berlin_schedule_set())  # effective from 2026-05-01

        with rejected("effective_until"):
            providers.set_provider_schedule(set_schedule(effective_until="2026-04-30"), provider, fixed_env())

    def test_a_single_day_range_is_accepted(self) -> None:
        decision = providers.set_provider_schedule(
            set_schedule(effective_from="2026-06-10", effective_until="2026-06-10"), ann_provider(), fixed_env())

        assert decision.result["schedule"]["effective_from"] == "2026-06-10"
        assert decision.result["schedule"]["effective_until"] == "2026-06-10"

    @pytest.mark.parametrize("bound", ["effective_from", "effective_until"])
    def test_a_malformed_date_bound_is_rejected(self, bound: str) -> None:
        with rejected(bound):
            providers.set_provider_schedule(set_schedule(**{bound: "June 10"}), ann_provider(), fixed_env())

    def test_a_time_with_a_trailing_newline_is_rejected(self) -> None:
        # `$` in the HH:MM pattern matches before a final "\n"; the availability engine's parse_hhmm
        # (fullmatch) raises ValueError on such a stored time.
        with rejected("weekly_rules[0].start_time"):
            providers.set_provider_schedule(set_schedule(weekly_rules=[rule(start="09:00\n")]), ann_provider(),
                                            fixed_env())

    def test_another_accounts_provider_is_not_found(self) -> None:
        with not_found():
            providers.set_provider_schedule(set_schedule(provider_id="prov_other", weekly_rules=[rule()]),
                                            other_account_provider(), fixed_env())

    def test_a_provider_seen_from_another_account_is_not_found(self) -> None:
        with not_found():
            providers.set_provider_schedule(set_schedule(account_id=OTHER_ACCOUNT_ID), ann_provider(), fixed_env())

    def test_a_missing_provider_is_not_found(self) -> None:
        with not_found():
            providers.set_provider_schedule(set_schedule(provider_id="prov_ghost"), providers.ProviderState(),
                                            fixed_env())
