"""A bookable account over NATS: provider schedule, a link, a service, and slot times to use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from shared.settings import Settings
from tests.integration.messaging import new_account, send

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def weekday_at(days_ahead: int, hour: int, minute: int = 0) -> datetime:
    """A weekday at least `days_ahead` days from now, at hour:minute UTC."""
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@dataclass
class Bookable:
    ids: dict[str, str]
    provider_id: str
    link_id: str
    service_id: str

    def event_body(self, start: datetime, minutes: int = 30, name: str = "Sally Scheduler") -> dict[str, Any]:
        return {**self.ids, "link_id": self.link_id, "display_name": name, "email": "sally@example.com",
                "start_at": iso(start), "end_at": iso(start + timedelta(minutes=minutes)),
                "time_zone": "America/Chicago"}


async def bookable_account(nc: nats.NATS, settings: Settings, **link_fields: Any) -> Bookable:
    """Provider working Mon-Fri 00:00-24:00 UTC, a 30-minute link and a 30-minute service on it."""
    account = await new_account(nc, settings)
    ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
    schedule = await send(nc, settings, "set_provider_schedule", {
        **ids, "provider_id": account["provider_id"], "time_zone": "Etc/UTC", "public_bookings": {"enabled": True},
        "weekly_rules": [{"day_of_week": d, "start_time": "00:00", "end_time": "24:00"} for d in WEEKDAYS]})
    assert schedule["ok"], schedule
    link = await send(nc, settings, "create_link", {**ids, "name": "Race", "durations": [30], "time_zone": "Etc/UTC",
                                                    **link_fields})
    assert link["ok"], link
    service = await send(nc, settings, "create_service", {
        **ids, "name": "Consult", "duration": 30, "time_zone": "Etc/UTC",
        "slot_rules": [{"days_of_week": WEEKDAYS, "start_time": "00:00", "end_time": "24:00", "interval": 15}]})
    assert service["ok"], service
    added = await send(nc, settings, "add_service_provider", {**ids, "service_id": service["result"]["id"],
                                                              "provider_id": account["provider_id"]})
    assert added["ok"], added
    return Bookable(ids, account["provider_id"], link["result"]["id"], service["result"]["id"])
