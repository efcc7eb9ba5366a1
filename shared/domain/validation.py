"""Field checks shared by the deciders; each failure names the field at fault."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.availability import parse_instant
from shared.errors import ValidationFailed

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Always used with fullmatch: "$" alone would accept a trailing newline.
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Problems:
    """Collects every field error of one command, then raises them together."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        """Note one error on `field`."""
        self.fields.setdefault(field, []).append(message)

    def check(self, ok: bool, field: str, message: str) -> bool:
        """Note `message` on `field` unless `ok`; return `ok`."""
        if not ok:
            self.add(field, message)
        return ok

    def raise_if_any(self) -> None:
        """Raise every noted error as one ValidationFailed (its message is the first); nothing when none."""
        if self.fields:
            first = next(iter(self.fields))
            raise ValidationFailed(f"{first}: {self.fields[first][0]}", self.fields)


@lru_cache(maxsize=1024)
def zone_exists(name: str) -> bool:
    """Whether `name` is an IANA zone this machine knows."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def minutes_of(hhmm: str) -> int | None:
    """Minutes after midnight of an `HH:MM` wall-clock time (24:00 = 1440), None when malformed."""
    if not isinstance(hhmm, str) or not _HHMM.fullmatch(hhmm):
        return None
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def parse_date(value: str) -> date | None:
    """A `YYYY-MM-DD` date, None when malformed."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):  # fromisoformat also takes "2026-W23-1"
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def check_time_range(problems: Problems, field: str, start: str, end: str) -> None:
    """`start` and `end` are HH:MM and the range is not empty (end may be 24:00)."""
    start_min, end_min = minutes_of(start), minutes_of(end)
    problems.check(start_min is not None and start_min < 1440, f"{field}.start_time", "must be HH:MM")
    problems.check(end_min is not None, f"{field}.end_time", "must be HH:MM (24:00 allowed)")
    if start_min is not None and end_min is not None and end_min <= start_min:
        problems.add(f"{field}.end_time", "must be after start_time")


def check_day(problems: Problems, field: str, day: str) -> None:
    """`day` is a lowercase English day name."""
    problems.check(day in DAYS, field, "must be a lowercase English day name (monday ... sunday)")


def check_zone(problems: Problems, field: str, zone: str) -> None:
    """`zone` is an IANA time zone this machine knows."""
    problems.check(zone_exists(zone), field, "is not a known IANA time zone")


def check_email(problems: Problems, field: str, email: str | None) -> None:
    """`email` looks like an address and fits 320 characters (None is allowed)."""
    if email is not None:
        problems.check(bool(_EMAIL.fullmatch(email)) and len(email) <= 320, field, "is not a valid email address")


def has_control_characters(value: str, multiline: bool = False) -> bool:
    """Whether `value` holds a control character (line breaks and tabs allowed only when `multiline`)."""
    allowed = "\r\n\t" if multiline else ""
    return any((unicodedata.category(ch) == "Cc" and ch not in allowed) or ch in "\u2028\u2029" for ch in value)


def check_text(problems: Problems, field: str, value: str | None, required: bool, max_length: int = 255,
               multiline: bool = False) -> None:
    """`value` fits `max_length`, holds no control character (but line breaks if `multiline`), is not blank if `required`.

    Names end up in calendar files and mail headers, where a line break would start a property or header.
    """
    if value is None or value.strip() == "":
        if required:
            problems.add(field, "is required")
        return
    problems.check(len(value) <= max_length, field, f"must be at most {max_length} characters")
    problems.check(not has_control_characters(value, multiline), field,
                   "must not contain line breaks or other control characters" if not multiline
                   else "must not contain control characters")


def check_slug(problems: Problems, field: str, slug: str) -> None:
    """`slug` is lowercase letters and digits in dash-separated parts, at most 64 characters."""
    problems.check(bool(_SLUG.fullmatch(slug)) and len(slug) <= 64, field,
                   "must be lowercase letters, digits and single dashes")


def slugify(text: str) -> str:
    """A URL slug from a name: `My New Link!` -> `my-new-link` (`link` when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    return slug or "link"


def instant(problems: Problems, field: str, text: str | None) -> int | None:
    """UTC seconds of an ISO-8601 datetime with an offset, or a field error."""
    if not isinstance(text, str) or not text:
        problems.add(field, "is required")
        return None
    try:
        return parse_instant(text)
    except ValueError:
        problems.add(field, "must be an ISO-8601 datetime with a time zone offset")
        return None


def check_interval(problems: Problems, start_at: str, end_at: str) -> tuple[int | None, int | None]:
    """start_at and end_at as UTC seconds: end after start by a whole number of minutes."""
    start = instant(problems, "start_at", start_at)
    end = instant(problems, "end_at", end_at)
    if start is not None and end is not None:
        if end <= start:
            problems.add("end_at", "must be after start_at")
        elif (end - start) % 60:
            problems.add("end_at", "must be a whole number of minutes after start_at")
    return start, end


def check_booker(problems: Problems, display_name: str, email: str, time_zone: str) -> None:
    """The booker's name, email and time zone, as an event or appointment records them."""
    check_text(problems, "display_name", display_name, required=True)
    check_text(problems, "email", email, required=True, max_length=320)
    if email:
        check_email(problems, "email", email)
    check_zone(problems, "time_zone", time_zone)
