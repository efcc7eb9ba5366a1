"""The availability engine: pure functions from schedules, rules and busy time to slots."""

from __future__ import annotations

from .calendar import rank_windows, ranked_windows, working_hours
from .engine import (
    LinkSlot,
    ProviderSlots,
    ServiceSlot,
    ServiceSlotsResult,
    choose_host,
    free_hosts,
    is_link_slot,
    is_service_slot,
    link_slots,
    service_free_providers,
    service_slots,
)
from .model import (
    DAYS,
    AvailabilityRule,
    Busy,
    DateOverride,
    HostCalendar,
    LinkRules,
    ProviderSchedule,
    PublicBookings,
    ServiceRules,
    SlotRule,
    TimeOfDayRange,
    WeeklyRule,
    parse_hhmm,
)
from .timezones import is_valid_zone, iso_in_zone, iso_utc, parse_instant

__all__ = [
    "DAYS",
    "AvailabilityRule",
    "Busy",
    "DateOverride",
    "HostCalendar",
    "LinkRules",
    "LinkSlot",
    "ProviderSchedule",
    "ProviderSlots",
    "PublicBookings",
    "ServiceRules",
    "ServiceSlot",
    "ServiceSlotsResult",
    "SlotRule",
    "TimeOfDayRange",
    "WeeklyRule",
    "choose_host",
    "free_hosts",
    "is_link_slot",
    "is_service_slot",
    "is_valid_zone",
    "iso_in_zone",
    "iso_utc",
    "link_slots",
    "parse_hhmm",
    "parse_instant",
    "rank_windows",
    "ranked_windows",
    "service_free_providers",
    "service_slots",
    "working_hours",
]
