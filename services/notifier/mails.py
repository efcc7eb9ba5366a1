"""The emails of a booking change: confirmation, reschedule, cancellation, to the invitee and the hosts.

Each is a multipart message (plain text and HTML, with the manage links) with the booking's .ics
attached as `text/calendar; method=…`. Its Message-ID is fixed by the domain event and the
recipient, so a message sent twice (the notifier died between sending and recording) is the same
message, which mail clients show once.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from html import escape
from typing import NamedTuple
from zoneinfo import ZoneInfo

from shared.availability import parse_instant
from shared.calendar_files import CalendarEntry, booking_ics, ics_method

log = logging.getLogger("sched.notifier")

KINDS = {"event_created": "confirmation", "appointment_created": "confirmation",
         "event_rescheduled": "reschedule", "appointment_rescheduled": "reschedule",
         "event_canceled": "cancellation", "appointment_canceled": "cancellation"}


class Recipient(NamedTuple):
    """Who gets one message, and whether they booked (the invitee) or host."""

    name: str
    email: str
    time_zone: str
    is_invitee: bool


class Booking(NamedTuple):
    """What the mails of one booking change say."""

    title: str
    entry: CalendarEntry
    reschedule_url: str
    cancel_url: str
    view_url: str
    reason: str | None


def header_text(value: str) -> str:
    """Text fit for a mail header: every control character (CR and LF above all) becomes a space."""
    return " ".join("".join(" " if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" else ch
                            for ch in value).split())


def _when(iso: str, zone: str) -> str:
    moment = datetime.fromtimestamp(parse_instant(iso), UTC).astimezone(ZoneInfo(zone))
    return f"{moment:%A}, {moment.day} {moment:%B %Y}, {moment:%H:%M} ({zone})"


def subject(kind: str, booking: Booking, recipient: Recipient) -> str:
    """The subject line of one message."""
    when = _when(booking.entry.start_at, recipient.time_zone)
    title = header_text(booking.title)
    return header_text({"confirmation": f"Confirmed: {title} on {when}",
                        "reschedule": f"Rescheduled: {title} now on {when}",
                        "cancellation": f"Canceled: {title} on {when}"}[kind])


def build_message(kind: str, booking: Booking, recipient: Recipient, sender: str, event_id: str,
                  occurred_at: str) -> EmailMessage:
    """One recipient's message about one booking change."""
    when = _when(booking.entry.start_at, recipient.time_zone)
    lead = {"confirmation": "is booked", "reschedule": "has moved", "cancellation": "is canceled"}[kind]
    lines = [f"{booking.title} {lead}.", "", f"When: {when}", f"Who: {booking.entry.summary}"]
    if booking.reason:
        lines.append(f"Reason: {booking.reason}")
    links: list[tuple[str, str]] = []
    if kind != "cancellation":  # the invitee and the hosts alike get the manage links
        links = [("Booking details", booking.view_url), ("Reschedule", booking.reschedule_url),
                 ("Cancel", booking.cancel_url)]
    text = "\n".join(lines + [""] + [f"{label}: {url}" for label, url in links]) + "\n"
    html_links = "".join(f'<li><a href="{escape(url)}">{escape(label)}</a></li>' for label, url in links)
    html = (f"<html><body><p><strong>{escape(booking.title)}</strong> {lead}.</p>"
            f"<p>When: {escape(when)}<br>Who: {escape(booking.entry.summary)}"
            + (f"<br>Reason: {escape(booking.reason)}" if booking.reason else "")
            + f"</p><ul>{html_links}</ul></body></html>")
    message = EmailMessage()
    message["Subject"] = subject(kind, booking, recipient)
    message["From"] = sender
    message["To"] = formataddr((header_text(recipient.name), header_text(recipient.email).replace(" ", "")))
    message["Date"] = format_datetime(_utc(occurred_at))
    digest = hashlib.sha256(f"{event_id}\x1f{recipient.email.lower()}".encode()).hexdigest()[:24]
    message["Message-ID"] = f"<{event_id}.{digest}@sched>"
    message["X-Sched-Booking"] = header_text(booking.entry.booking_id)
    message.set_content(text, cte="quoted-printable")  # no line over SMTP's 998 octets, whatever the links
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    ics = booking_ics(booking.entry, occurred_at)
    method = ics_method(ics)
    message.add_attachment(ics.encode(), maintype="text", subtype="calendar",
                           filename="invite.ics" if method == "REQUEST" else "cancel.ics",
                           params={"method": method, "charset": "utf-8"})
    return message


def _utc(iso: str) -> datetime:
    return datetime.fromtimestamp(parse_instant(iso), UTC)


def outbox_messages(kind: str, booking: Booking, recipients: list[Recipient], sender: str, event_id: str,
                    occurred_at: str) -> list[tuple[str, EmailMessage]]:
    """(recipient email, message) of each recipient, once per address; one that cannot be built is logged and
    left out, and never costs the other recipients their mail."""
    built = []
    for recipient in {r.email.lower(): r for r in recipients if r.email}.values():
        try:
            built.append((recipient.email, build_message(kind, booking, recipient, sender, event_id, occurred_at)))
        except Exception:  # whatever is wrong with one recipient, the others get their mail
            log.exception("cannot build the %s mail of event %s to %s; not sent", kind, event_id, recipient.email)
    return built
