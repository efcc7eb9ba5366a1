"""Text from bookers ends up in .ics files and mail headers: control characters never inject anything."""

from __future__ import annotations

from email import message_from_bytes, policy

import icalendar
import pytest

from services.notifier.mails import Booking, Recipient, build_message, outbox_messages
from shared.calendar_files import CalendarEntry, Person, booking_ics
from shared.domain.validation import Problems, check_booker, check_text

EVIL = "Eve\r\nATTENDEE;CN=Mallory:mailto:mallory@example.com"


def entry(name: str = EVIL, summary: str = "Intro: Ann and Eve") -> CalendarEntry:
    return CalendarEntry(booking_id="event_1", sequence=0, start_at="2026-03-02T10:00:00Z",
                         end_at="2026-03-02T10:30:00Z", summary=summary, description="Hello\rX-INJECTED:1",
                         organizer=Person("Ann\nX-EVIL:1", "ann@example.com"),
                         attendees=[Person(name, "eve@example.com"), Person("Ann", "ann@example.com")],
                         canceled=False, created_at="2026-03-01T10:00:00Z", updated_at="2026-03-01T10:00:00Z")


@pytest.mark.parametrize("name", [EVIL, "Eve\nX", "Eve\rX", "Eve\x00", "Eve\x1b[31m", "Eve\u2028X", "Eve\x85X"])
def test_a_bookers_name_with_control_characters_is_refused_naming_the_field(name: str) -> None:
    problems = Problems()
    check_booker(problems, name, "eve@example.com", "Etc/UTC")
    assert "display_name" in problems.fields


def test_a_description_may_hold_line_breaks_but_no_other_control_character() -> None:
    problems = Problems()
    check_text(problems, "description", "line one\r\nline two\ttabbed", required=False, multiline=True)
    assert not problems.fields
    check_text(problems, "description", "bell\x07", required=False, multiline=True)
    assert "description" in problems.fields


def test_the_ics_writer_lets_no_text_start_a_property_of_its_own() -> None:
    text = booking_ics(entry(), "2026-03-01T10:00:00Z")
    physical = text.split("\r\n")
    assert not any(line.startswith(("ATTENDEE;CN=Mallory", "X-EVIL", "X-INJECTED")) for line in physical)
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert {str(a) for a in event.get("ATTENDEE")} == {"mailto:eve@example.com", "mailto:ann@example.com"}
    assert "X-EVIL" not in event and "X-INJECTED" not in event
    assert all(ch not in text.replace("\r\n", "") for ch in "\r\n")  # only the line ends are CRLF


def booking(title: str = "Intro") -> Booking:
    return Booking(title, entry(), "https://x/book/reschedule/t", "https://x/book/cancel/t", "https://x/book/booked/t",
                   None)


def test_a_name_with_a_line_break_does_not_break_the_mail_headers() -> None:
    message = build_message("confirmation", booking("Intro\r\nBcc: victim@example.com"),
                            Recipient(EVIL, "eve@example.com", "Etc/UTC", True), "sched <no-reply@sched.test>",
                            "evt_1", "2026-03-01T10:00:00Z")
    raw = message.as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and "mallory" not in str(parsed["To"]).split("<")[-1]
    assert parsed["To"].addresses[0].addr_spec == "eve@example.com"


def test_one_recipient_whose_mail_cannot_be_built_never_drops_the_others() -> None:
    recipients = [Recipient("Eve", "eve@example.com", "Etc/UTC", True),
                  Recipient("Host", "host@example.com", "Not/AZone", False),  # its message cannot be built
                  Recipient("Other", "other@example.com", "Europe/Paris", False)]
    built = outbox_messages("confirmation", booking(), recipients, "sched <no-reply@sched.test>", "evt_1",
                            "2026-03-01T10:00:00Z")
    assert [email for email, _ in built] == ["eve@example.com", "other@example.com"]


@pytest.mark.parametrize("is_invitee", [True, False])
@pytest.mark.parametrize("kind", ["confirmation", "reschedule"])
def test_the_invitee_and_the_hosts_mails_carry_the_manage_links(kind: str, is_invitee: bool) -> None:
    booking = Booking("Intro", entry("Eve"), "https://x/book/reschedule/t", "https://x/book/cancel/t",
                      "https://x/book/booked/t", None)
    message = build_message(kind, booking, Recipient("Ann", "ann@example.com", "Etc/UTC", is_invitee),
                            "sched <no-reply@sched.test>", "evt_1", "2026-03-01T10:00:00Z")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    for subtype in ("plain", "html"):
        body = parsed.get_body(preferencelist=(subtype,)).get_content()
        for url in (booking.reschedule_url, booking.cancel_url, booking.view_url):
            assert url in body, (subtype, url)
