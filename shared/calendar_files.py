"""iCalendar (RFC 5545) files of bookings: one booking's invitation or cancellation, and a provider's feed.

Pure text building, no I/O. Times are written in UTC (`...Z`): every calendar shows them in its own
zone, and no VTIMEZONE can disagree with the tz database. The `UID` is the booking id, so every file
of one booking updates the same calendar entry; `SEQUENCE` is the booking's stream version minus one
(each reschedule and the cancellation add one), so a calendar applies the newest file.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

from shared.domain.appointments import AppointmentState
from shared.domain.link_bookings import BookedEventState
from shared.manage import manage_urls

PRODID = "-//sched//invitee booking//EN"
UID_DOMAIN = "sched"


class Person(NamedTuple):
    """A name and an email, as an organizer or an attendee."""

    name: str
    email: str | None


class CalendarEntry(NamedTuple):
    """What one VEVENT says about a booking."""

    booking_id: str
    sequence: int
    start_at: str
    end_at: str
    summary: str
    description: str
    organizer: Person
    attendees: list[Person]
    canceled: bool
    created_at: str
    updated_at: str


def _stamp(iso: str) -> str:
    """`2026-05-07T10:00:00Z` -> `20260507T100000Z`."""
    return iso.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"


def _no_controls(value: str, keep: str = "") -> str:
    """`value` with every control character (but those in `keep`) replaced by a space."""
    return "".join(" " if (unicodedata.category(ch) == "Cc" and ch not in keep) or ch in "\u2028\u2029" else ch
                   for ch in value)


def _text(value: str) -> str:
    """A TEXT value: escaped, every line break (CRLF, LF or a lone CR) as `\\n`, no other control character."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return (_no_controls(value, keep="\n\t").replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _param(value: str) -> str:
    """A parameter value (CN): no control character, quoted when it holds a separator; quotes cannot appear."""
    value = _no_controls(value).replace('"', "'")
    return f'"{value}"' if any(ch in value for ch in ";:,") else value


def _address(email: str) -> str:
    """An address for `mailto:`, with nothing that could end the line or start a parameter."""
    return "".join(ch for ch in _no_controls(email) if ch not in " ;:,\"")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 section 3.1)."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    start, limit = 0, 75
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(raw[start:end].decode())
        start, limit = end, 74  # continuation lines begin with a space
    return "\r\n ".join(parts)


def _vevent(entry: CalendarEntry, stamp: str, with_people: bool = True) -> list[str]:
    lines = ["BEGIN:VEVENT", f"UID:{entry.booking_id}@{UID_DOMAIN}", f"DTSTAMP:{_stamp(stamp)}",
             f"SEQUENCE:{entry.sequence}", f"DTSTART:{_stamp(entry.start_at)}", f"DTEND:{_stamp(entry.end_at)}",
             f"CREATED:{_stamp(entry.created_at)}", f"LAST-MODIFIED:{_stamp(entry.updated_at)}",
             f"SUMMARY:{_text(entry.summary)}", f"DESCRIPTION:{_text(entry.description)}",
             f"STATUS:{'CANCELLED' if entry.canceled else 'CONFIRMED'}", "TRANSP:OPAQUE"]
    if with_people:
        organizer = entry.organizer
        if organizer.email:
            lines.append(f"ORGANIZER;CN={_param(organizer.name)}:mailto:{_address(organizer.email)}")
        for person in entry.attendees:
            if person.email:
                status = "DECLINED" if entry.canceled else "ACCEPTED"
                lines.append(f"ATTENDEE;CN={_param(person.name)};ROLE=REQ-PARTICIPANT;PARTSTAT={status}"
                             f":mailto:{_address(person.email)}")
    lines.append("END:VEVENT")
    return lines


def booking_ics(entry: CalendarEntry, stamp: str) -> str:
    """One booking as an iTIP message: METHOD:REQUEST while it stands, METHOD:CANCEL once canceled."""
    method = "CANCEL" if entry.canceled else "REQUEST"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", f"METHOD:{method}",
             *_vevent(entry, stamp), "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)


def feed_ics(entries: list[CalendarEntry], name: str, stamp: str) -> str:
    """A subscribable calendar (no METHOD) of the given bookings."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN",
             f"X-WR-CALNAME:{_text(name)}"]
    for entry in entries:
        lines.extend(_vevent(entry, stamp))
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


def ics_method(ics: str) -> str:
    """The METHOD of an iCalendar text (`REQUEST`, `CANCEL`), for the attachment's content type."""
    for line in ics.split("\r\n"):
        if line.startswith("METHOD:"):
            return line.removeprefix("METHOD:")
    return "PUBLISH"


def _description(lead: str, links: dict[str, str], canceled: bool) -> str:
    if canceled:
        return f"{lead}\n\nThis booking was canceled."
    return f"{lead}\n\nReschedule: {links['reschedule_url']}\nCancel: {links['cancel_url']}"


def event_entry(state: BookedEventState, version: int, public_url: str, signing_secret: str) -> CalendarEntry:
    """The calendar entry of a link event at stream `version`."""
    created = state.created
    assert created is not None
    links = manage_urls(public_url, signing_secret, created.event_id, state.start_at)
    lead = created.link.name + (f"\n{created.description}" if created.description else "")
    canceled = state.state == "canceled"
    return CalendarEntry(
        booking_id=created.event_id, sequence=max(version - 1, 0), start_at=state.start_at, end_at=state.end_at,
        summary=created.summary, description=_description(lead, links, canceled),
        organizer=Person(created.organizer.display_name or "", created.organizer.email),
        attendees=[Person(created.scheduler.display_name or "", created.scheduler.email),
                   Person(created.organizer.display_name or "", created.organizer.email)],
        canceled=canceled, created_at=created.created_at,
        updated_at=state.canceled_at or state.rescheduled_at or created.created_at)


def appointment_entry(state: AppointmentState, version: int, service_name: str, provider: Person,
                      public_url: str, signing_secret: str) -> CalendarEntry:
    """The calendar entry of an appointment at stream `version`, with its service's name and provider."""
    created = state.created
    assert created is not None
    links = manage_urls(public_url, signing_secret, created.appointment_id, state.start_at)
    canceled = state.state == "canceled"
    client = Person(created.client.display_name, created.client.email)
    return CalendarEntry(
        booking_id=created.appointment_id, sequence=max(version - 1, 0), start_at=state.start_at,
        end_at=state.end_at, summary=f"{service_name}: {provider.name} and {client.name}",
        description=_description(service_name, links, canceled), organizer=provider,
        attendees=[client, provider], canceled=canceled, created_at=created.created_at,
        updated_at=state.canceled_at or (state.rescheduled_at if isinstance(state.rescheduled_at, str) else None)
        or created.created_at)


def calendar_file(ics: str, booking_id: str) -> dict[str, Any]:
    """The query reply of a calendar file (the gateway answers `content` as text/calendar)."""
    return {"filename": f"{booking_id}.ics", "method": ics_method(ics), "content": ics}
