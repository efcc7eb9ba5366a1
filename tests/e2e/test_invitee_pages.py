"""The invitee's side over real HTTP: booking pages, signed manage links, calendar files and feeds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import httpx
import icalendar
import nats
import pytest

from tests.e2e.conftest import Site
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.messaging_query import query
from tests.integration.webhook_receiver import eventually

pytestmark = pytest.mark.integration


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def calendar_of(text: str) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(text)


async def test_a_booking_through_the_page_its_manage_links_and_calendar_files(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = (await send(nc, site.settings, "create_link", {**bookable.ids, "name": "Page Call", "durations": [30],
                                                          "time_zone": "Etc/UTC", "description": "Hello"}))["result"]
    page = await site.http.get(path_of(link["url"]), params={"tz": "Asia/Kolkata"})
    assert page.status_code == 200 and "Page Call" in page.text and "Hello" in page.text
    assert "https://" not in page.text.replace(site.base_url, "")  # every asset is local
    start = weekday_at(3, 9)
    booked = await site.http.post(path_of(link["url"]), data={
        "display_name": "Ines Invitee", "email": "ines@example.com", "notes": "About the roadmap",
        "start": iso(start), "end": iso(start + timedelta(minutes=30)), "tz": "Asia/Kolkata"})
    assert booked.status_code == 303, booked.text
    confirmation = await site.http.get(booked.headers["location"])
    assert confirmation.status_code == 200
    assert "14:30" in confirmation.text and "Asia/Kolkata" in confirmation.text  # 09:00 UTC in India

    events = (await send(nc, site.settings, "create_event", {**bookable.event_body(start)}))
    assert not events["ok"]  # the slot is taken

    ics_link = re.search(r'href="(/book/booked/[^"]+/ics)"', confirmation.text)
    assert ics_link is not None
    downloaded = await site.http.get(ics_link.group(1))
    assert downloaded.headers["content-type"].startswith("text/calendar; method=REQUEST")
    cal = calendar_of(downloaded.text)
    event = cal.walk("VEVENT")[0]
    assert str(cal["METHOD"]) == "REQUEST" and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == start and str(event["ORGANIZER"]) == "mailto:ada@example.com"
    assert {str(a) for a in event.get("ATTENDEE")} == {"mailto:ines@example.com", "mailto:ada@example.com"}
    uid = str(event["UID"])

    reschedule_url = re.search(r'href="([^"]+/book/reschedule/[^"]+)"', confirmation.text).group(1)
    cancel_url = re.search(r'href="([^"]+/book/cancel/[^"]+)"', confirmation.text).group(1)
    forged = cancel_url[:-4] + ("0000" if not cancel_url.endswith("0000") else "1111")
    assert (await site.http.get(path_of(forged))).status_code == 404
    assert "Ines" not in (await site.http.get(path_of(forged))).text

    # reschedule: the page offers the booking's own time too; move it one hour later
    resched = await site.http.get(path_of(reschedule_url), params={"tz": "Asia/Kolkata",
                                                                   "date": start.date().isoformat()})
    assert resched.status_code == 200 and "Rescheduling your booking" in resched.text
    assert urlencode({"start": iso(start)}) in resched.text  # its own time is not busy for itself
    later = start + timedelta(hours=1)
    moved = await site.http.post(path_of(reschedule_url), data={
        "start": iso(later), "end": iso(later + timedelta(minutes=30)), "tz": "Asia/Kolkata",
        "reschedule_reason": "clash"})
    assert moved.status_code == 303, moved.text
    assert (await site.http.get(path_of(reschedule_url))).status_code == 404  # used: the old link is gone
    moved_page = await site.http.get(moved.headers["location"])
    assert "15:30" in moved_page.text

    event_id = uid.split("@")[0]
    token = {"Authorization": f"Bearer {(await send(nc, site.settings, 'issue_api_token', bookable.ids))['result']['token']}"}
    api_ics = await site.http.get(f"/v1/events/{event_id}/ics", headers=token)
    assert api_ics.status_code == 200, api_ics.text
    moved_event = calendar_of(api_ics.text).walk("VEVENT")[0]
    assert str(moved_event["UID"]) == uid and int(moved_event["SEQUENCE"]) == 1
    assert moved_event.decoded("DTSTART") == later

    feed_url = (await site.http.get(f"/v1/providers/{bookable.provider_id}/ical_url", headers=token)).json()["url"]
    feed = await site.http.get(path_of(feed_url))
    assert feed.status_code == 200 and uid in feed.text
    assert (await site.http.get("/ical/prov_0000.0123456789abcdef0123456789abcdef.ics")).status_code == 404

    new_cancel = re.search(r'href="([^"]+/book/cancel/[^"]+)"', moved_page.text).group(1)
    asked = await site.http.get(path_of(new_cancel))
    assert asked.status_code == 200 and "Reason for canceling" in asked.text
    refused = await site.http.post(path_of(new_cancel), data={"cancel_reason": ""})
    assert refused.status_code == 422 and 'id="cancel_reason-error"' in refused.text
    done = await site.http.post(path_of(new_cancel), data={"cancel_reason": "No longer needed"})
    assert done.status_code == 200 and "canceled" in done.text
    used = await site.http.get(path_of(new_cancel))
    assert used.status_code == 403 and "Ines" not in used.text

    canceled = calendar_of((await site.http.get(f"/v1/events/{event_id}/ics", headers=token)).text)
    assert str(canceled["METHOD"]) == "CANCEL" and int(canceled.walk("VEVENT")[0]["SEQUENCE"]) == 2
    assert str(canceled.walk("VEVENT")[0]["UID"]) == uid


async def test_a_service_page_books_an_appointment(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    path = f"/book/{bookable.ids['account_id']}/services/{bookable.service_id}"

    async def shown() -> bool:  # the service was created over NATS a moment ago: wait for the read model
        return (await site.http.get(path, params={"tz": "Europe/Paris"})).status_code == 200

    await eventually(shown, what="the service's page")
    page = await site.http.get(path, params={"tz": "Europe/Paris"})
    assert page.status_code == 200 and "Consult" in page.text
    start = weekday_at(3, 10)
    booked = await site.http.post(path, data={"display_name": "Sam", "email": "sam@example.com",
                                              "start": iso(start), "end": iso(start + timedelta(minutes=30)),
                                              "tz": "Europe/Paris"})
    assert booked.status_code == 303, booked.text
    again = await site.http.post(path, data={"display_name": "Kim", "email": "kim@example.com",
                                             "start": iso(start), "tz": "Europe/Paris"})
    assert again.status_code == 409 and "just taken" in again.text
    bad = await site.http.post(path, data={"display_name": "", "email": "nope", "start": iso(start + timedelta(hours=1)),
                                           "tz": "Europe/Paris"})
    assert bad.status_code == 422 and 'id="display_name-error"' in bad.text and 'id="email-error"' in bad.text
    assert (await site.http.get("/book/acct_nope/services/srv_nope")).status_code == 404


async def test_two_accounts_with_the_same_user_and_link_names_both_get_their_own_page(site: Site, nc: nats.NATS):
    # scope slugs name the page system-wide: one account can never take down (or stand in for) another's page
    urls = []
    for owner in ("first", "second"):
        bookable = await bookable_account(nc, site.settings)  # both users are called the same
        link = await send(nc, site.settings, "create_link", {**bookable.ids, "name": "Page Call", "durations": [30],
                                                             "time_zone": "Etc/UTC", "description": f"{owner} owner"})
        assert link["ok"], link
        urls.append((owner, link["result"]["url"]))
    assert urls[0][1] != urls[1][1]
    for owner, url in urls:
        async def shown(url: str = url) -> bool:
            return (await site.http.get(path_of(url))).status_code == 200

        await eventually(shown, what=f"the {owner} account's page")
        page = await site.http.get(path_of(url))
        assert f"{owner} owner" in page.text


async def test_a_team_slug_another_account_holds_is_refused(site: Site, nc: nats.NATS):
    body = {"name": "Ada Lovelace", "email": "ada@example.com", "time_zone": "Etc/UTC", "team_slug": "sales"}
    first = await send(nc, site.settings, "create_account", body)
    assert first["ok"], first
    second = await send(nc, site.settings, "create_account", body)
    assert not second["ok"] and second["error"]["fields"] == {"team_slug": ["is already taken"]}


async def test_the_service_page_cannot_book_a_private_provider(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    private = await send(nc, site.settings, "set_provider_schedule", {
        **bookable.ids, "provider_id": bookable.provider_id, "time_zone": "Etc/UTC",
        "public_bookings": {"enabled": False},
        "weekly_rules": [{"day_of_week": d, "start_time": "00:00", "end_time": "24:00"}
                         for d in ("monday", "tuesday", "wednesday", "thursday", "friday")]})
    assert private["ok"], private
    path = f"/book/{bookable.ids['account_id']}/services/{bookable.service_id}"
    await eventually(lambda: _status_is(site, path, 200), what="the service's page")
    start = weekday_at(3, 10)
    refused = await site.http.post(path, data={"display_name": "Sam", "email": "sam@example.com",
                                               "start": iso(start), "tz": "Etc/UTC"})
    assert refused.status_code == 409, refused.text  # no public provider takes that time
    # the time is still free: the account's own API (not public) books it
    booked = await send(nc, site.settings, "create_appointment", {
        **bookable.ids, "service_id": bookable.service_id, "start_at": iso(start), "display_name": "Sam",
        "email": "sam@example.com", "time_zone": "Etc/UTC"})
    assert booked["ok"], booked


async def _book_on_page(site: Site, page: str, start: datetime) -> tuple[httpx.Response, str, str]:
    """Ines books 30 minutes at `start` on a booking page: the redirect, the confirmation page and its
    reschedule link's path."""
    booked = await site.http.post(page, data={
        "display_name": "Ines Invitee", "email": "ines@example.com", "start": iso(start),
        "end": iso(start + timedelta(minutes=30)), "tz": "Etc/UTC"})
    assert booked.status_code == 303, booked.text
    confirmation = (await site.http.get(booked.headers["location"])).text
    reschedule = path_of(re.search(r'href="([^"]+/book/reschedule/[^"]+)"', confirmation).group(1))
    return booked, confirmation, reschedule


async def _status_is(site: Site, path: str, status: int) -> bool:
    return (await site.http.get(path)).status_code == status


GARBAGE = [
    {"start": "garbage"}, {"start": "2026-05-07T10:00:00"}, {"start": "0001-01-01T00:00:00+14:00"},
    {"start": "9999-12-31T23:59:59-14:00"}, {"start": "2026-05-07T10:00:00Z", "date": "garbage"},
    {"month": "9999-12"}, {"month": "10000-01"}, {"month": "0000-01"}, {"month": "2026-13"}, {"month": "-1-1"},
    {"month": "garbage"}, {"month": "99999999999999999999999-01"}, {"date": "9999-12-31"}, {"date": "0001-01-01"},
    {"date": "garbage"}, {"duration": "²"}, {"duration": "99999999999999999999999"}, {"duration": "-30"},
    {"duration": "garbage"}, {"tz": "garbage"}, {"tz": "../../etc/passwd"}, {"tz": "\x00"},
    {"tz": "Asia/Kolkata", "month": "9999-12", "date": "9999-12-31", "start": "9999-12-31T23:00:00Z"},
]


async def test_no_query_parameter_makes_a_booking_page_fail(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = (await send(nc, site.settings, "create_link", {**bookable.ids, "name": "Garbage Call", "durations": [30],
                                                          "time_zone": "Etc/UTC"}))["result"]
    service = f"/book/{bookable.ids['account_id']}/services/{bookable.service_id}"
    await eventually(lambda: _status_is(site, service, 200), what="the service's page")
    start = weekday_at(3, 9)
    booked, confirmation, reschedule = await _book_on_page(site, path_of(link["url"]), start)
    cancel = path_of(re.search(r'href="([^"]+/book/cancel/[^"]+)"', confirmation).group(1))
    pages = [path_of(link["url"]), service, reschedule, cancel, urlsplit(booked.headers["location"]).path]
    for page in pages:
        for params in GARBAGE:
            answer = await site.http.get(page, params=params)
            assert answer.status_code < 500, (page, params, answer.status_code)
            assert "<h1" in answer.text, (page, params)
    for start_text in ("garbage", "9999-12-31T23:59:59-14:00"):
        answer = await site.http.get(f"{path_of(link['url'])}/{start_text}", follow_redirects=True)
        assert answer.status_code < 500, (start_text, answer.status_code)
    bad_start = await site.http.get(path_of(link["url"]), params={"start": "garbage"})
    assert bad_start.status_code == 400 and "could not be read" in bad_start.text
    far = await site.http.get(path_of(link["url"]), params={"month": "9999-12"})
    assert far.status_code == 200  # the current month instead


async def test_a_used_single_use_link_can_still_be_rescheduled_through_its_manage_link(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = (await send(nc, site.settings, "create_link", {**bookable.ids, "name": "Once", "durations": [30],
                                                          "time_zone": "Etc/UTC", "type": "single"}))["result"]
    start = weekday_at(3, 9)
    _, _, reschedule = await _book_on_page(site, path_of(link["url"]), start)
    await eventually(lambda: _status_is(site, path_of(link["url"]), 404), what="the used link disabled")
    page = await site.http.get(reschedule, params={"date": start.date().isoformat()})
    assert page.status_code == 200 and "Rescheduling your booking" in page.text, page.status_code
    later = start + timedelta(hours=1)
    assert urlencode({"start": iso(later)}) in page.text
    moved = await site.http.post(reschedule, data={"start": iso(later), "end": iso(later + timedelta(minutes=30)),
                                                   "tz": "Etc/UTC"})
    assert moved.status_code == 303, moved.text
    assert "09:00" not in (await site.http.get(moved.headers["location"])).text
    assert (await site.http.get(path_of(link["url"]))).status_code == 404  # a plain visit stays refused


async def test_an_appointment_is_rescheduled_through_its_manage_link(site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    path = f"/book/{bookable.ids['account_id']}/services/{bookable.service_id}"
    await eventually(lambda: _status_is(site, path, 200), what="the service's page")
    start = weekday_at(3, 10)
    booked = await site.http.post(path, data={"display_name": "Sam", "email": "sam@example.com",
                                              "start": iso(start), "tz": "Etc/UTC"})
    assert booked.status_code == 303, booked.text
    confirmation = (await site.http.get(booked.headers["location"])).text
    assert "/book/reschedule/" in confirmation, confirmation
    reschedule = path_of(re.search(r'href="([^"]+/book/reschedule/[^"]+)"', confirmation).group(1))
    other = await send(nc, site.settings, "create_appointment", {  # someone else takes 11:00
        **bookable.ids, "service_id": bookable.service_id, "start_at": iso(start + timedelta(hours=1)),
        "display_name": "Kim", "email": "kim@example.com", "time_zone": "Etc/UTC"})
    assert other["ok"], other
    # Kim's booking did not go through these pages, so they do not wait for it: the query service has it
    # once it answers a query at its position.
    await query(nc, site.settings, "appointment_get", {"account_id": bookable.ids["account_id"],
                                                       "id": other["result"]["id"], "min_position": other["position"]})

    page = await site.http.get(reschedule, params={"date": start.date().isoformat(), "tz": "Etc/UTC"})
    assert page.status_code == 200 and "Rescheduling your appointment" in page.text, page.text
    assert "cancel this one" not in page.text.lower()
    offered = {urlencode({"start": iso(start + timedelta(minutes=m))}) in page.text for m in (0, 15)}
    assert offered == {True}  # its own time (and what overlaps it) is free for it
    assert urlencode({"start": iso(start + timedelta(hours=1))}) not in page.text  # Kim's
    taken = await site.http.post(reschedule, data={"start": iso(start + timedelta(hours=1)), "tz": "Etc/UTC"})
    assert taken.status_code == 409 and "just taken" in taken.text
    later = start + timedelta(hours=2)
    moved = await site.http.post(reschedule, data={"start": iso(later), "tz": "Etc/UTC",
                                                   "reschedule_reason": "train late"})
    assert moved.status_code == 303, moved.text
    new_confirmation = (await site.http.get(moved.headers["location"])).text
    assert "12:00" in new_confirmation and "10:00" not in new_confirmation
    assert (await site.http.get(reschedule)).status_code == 404  # the old manage link named the old time
    token = {"Authorization": "Bearer " + (await send(nc, site.settings, "issue_api_token",
                                                      {**bookable.ids}))["result"]["token"]}
    appointment_id = booked.headers["location"]
    listed = await site.http.get(f"/v1/appointments/{other['result']['id']}", headers=token)
    assert listed.status_code == 200
    day = start.date().isoformat()
    slots = (await site.http.get(f"/v1/services/{bookable.service_id}/slots", headers=token,
                                 params={"from": day, "until": day})).json()["data"]["aggregated_slots"]
    starts = {s["start_at"][11:16] for s in slots}
    assert "10:00" in starts and "12:00" not in starts and "11:00" not in starts, appointment_id
