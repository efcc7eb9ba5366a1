"""Commands: imperative msgspec Structs, one per NATS subject `sched.cmd.<snake_case_name>`.

Every command carries `command_id` (the idempotency key) and the acting `account_id`/`user_id`.
Optional fields default to UNSET so that "absent" (keep / use the default) differs from null.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from shared.availability.model import AvailabilityRule, DateOverride, PublicBookings, WeeklyRule


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every command."""

    command_id: str
    account_id: str | None = None
    user_id: str | None = None


# --- accounts ------------------------------------------------------------------------------------

class CreateAccount(Command, kw_only=True):
    """A tenant with its first user (who is also a provider), personal scope and API token."""

    name: str
    email: str
    time_zone: str = "Etc/UTC"
    team_slug: str | None = None
    team_name: str | None = None


class CreateUser(Command, kw_only=True):
    name: str
    email: str
    time_zone: str = "Etc/UTC"


class IssueApiToken(Command, kw_only=True):
    """A new personal API token for `for_user_id` (default: the acting user)."""

    for_user_id: str | None = None


class CreateTeamScope(Command, kw_only=True):
    name: str
    slug: str
    member_user_ids: list[str] = []


# --- providers -----------------------------------------------------------------------------------

class CreateProvider(Command, kw_only=True):
    display_name: str
    email: str | None = None
    time_zone: str = "Etc/UTC"


class SetProviderSchedule(Command, kw_only=True):
    """Set a provider's schedule; a field left out keeps its current value, null clears a date bound."""

    provider_id: str
    time_zone: str | UnsetType = UNSET
    weekly_rules: list[WeeklyRule] | UnsetType = UNSET
    date_overrides: list[DateOverride] | UnsetType = UNSET
    effective_from: str | None | UnsetType = UNSET
    effective_until: str | None | UnsetType = UNSET
    public_bookings: PublicBookings | UnsetType = UNSET


# --- links ---------------------------------------------------------------------------------------

class LinkFields(Command, kw_only=True):
    """The writable link fields; UNSET means "not given"."""

    name: str | UnsetType = UNSET
    private_name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    type: str | UnsetType = UNSET
    state: str | UnsetType = UNSET
    durations: list[int] | UnsetType = UNSET
    default_duration: int | UnsetType = UNSET
    increment: int | UnsetType = UNSET
    buffer_before: int | UnsetType = UNSET
    buffer_after: int | UnsetType = UNSET
    minimum_notice: int | UnsetType = UNSET
    maximum_days_ahead: int | UnsetType = UNSET
    time_zone: str | UnsetType = UNSET
    availability: list[AvailabilityRule] | UnsetType = UNSET
    hosts: list[str] | UnsetType = UNSET
    host_mode: str | UnsetType = UNSET


class CreateLink(LinkFields, kw_only=True):
    """Create a link in the acting user's personal scope, or in the team scope `team_slug`."""

    team_slug: str | None = None


class UpdateLink(LinkFields, kw_only=True):
    link_id: str


class ToggleLink(Command, kw_only=True):
    link_id: str


class DuplicateLink(Command, kw_only=True):
    link_id: str


class DeleteLink(Command, kw_only=True):
    link_id: str
