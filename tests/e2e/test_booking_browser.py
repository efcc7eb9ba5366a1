"""The booking page in a real browser: Playwright driving Debian's Chromium (never `playwright install`).

One browser for the session, a fresh context per test. Without /usr/bin/chromium these tests fail
(`make test` installs it with apt-get when it can): they never skip silently.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.e2e.conftest import Site
from tests.integration.booking_setup import Bookable, bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.webhook_receiver import eventually

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]
# The README's screenshots: written to docs/screenshots when SCHED_UPDATE_SCREENSHOTS=1, else to a temporary
# folder (so a test run leaves the work tree clean).
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("SCHED_UPDATE_SCREENSHOTS")
               else Path(tempfile.gettempdir()) / "sched-screenshots")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`); "
                    "`make test` does this when it can")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def new_context(browser: Browser, zone: str, width: int = 1280, height: int = 900) -> BrowserContext:
    context = await browser.new_context(timezone_id=zone, viewport={"width": width, "height": height},
                                        locale="en-GB")
    context.set_default_timeout(20_000)
    return context


def local(site: Site, url: str) -> str:
    parts = urlsplit(url)
    return site.base_url + parts.path + (f"?{parts.query}" if parts.query else "")


async def link_of(site: Site, nc: nats.NATS, bookable: Bookable, **fields: Any) -> dict[str, Any]:
    reply = await send(nc, site.settings, "create_link", {
        **bookable.ids, "name": "Product Demo", "description": "A 30-minute walk through the product.",
        "durations": [30], "time_zone": "Europe/Berlin", **fields})
    assert reply["ok"], reply
    link: dict[str, Any] = reply["result"]

    async def shown() -> bool:
        return (await site.http.get(urlsplit(link["url"]).path)).status_code == 200

    await eventually(shown, what="the link's page")
    return link


async def slots_of(site: Site, nc: nats.NATS, bookable: Bookable, link_id: str) -> list[str]:
    reply = await send(nc, site.settings, "issue_api_token", bookable.ids)
    headers = {"Authorization": f"Bearer {reply['result']['token']}"}
    answer = await site.http.get(f"/v1/links/{link_id}/slots", headers=headers, params={
        "from": iso(weekday_at(0, 0)), "until": iso(weekday_at(0, 0) + timedelta(days=30))})
    assert answer.status_code == 200, answer.text
    return [s["start_at"] for s in answer.json()]


async def accessible_names_missing(page: Page) -> list[str]:
    return await page.evaluate("""() => [...document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')]
        .filter(el => {
          const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label');
          const text = (el.textContent || '').trim();
          return !(labelled || (['A', 'BUTTON'].includes(el.tagName) && text));
        }).map(el => el.outerHTML.slice(0, 120))""")


async def choose_first_time(page: Page) -> str:
    await page.locator("a.day.open").first.click()
    slot = page.locator("a.slot").first
    label = await slot.get_attribute("aria-label") or ""
    await slot.click()
    await expect(page.locator("#details")).to_be_visible()
    return label


async def test_a_whole_booking_in_the_invitees_zone_then_the_slot_is_gone(browser: Browser, site: Site,
                                                                          nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = await link_of(site, nc, bookable)
    context = await new_context(browser, "Asia/Tokyo")  # the host is in Europe/Berlin, the link too
    page = await context.new_page()
    await page.goto(local(site, link["url"]))
    await expect(page.locator("#tz")).to_have_value("Asia/Tokyo")  # taken from the browser
    await expect(page.get_by_role("heading", name="Product Demo")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("a.day.open").first.click()
    await page.screenshot(path=str(SCREENSHOTS / "booking-desktop.png"), full_page=True)
    slot = page.locator("a.slot").first
    label = await slot.get_attribute("aria-label") or ""
    start = dict(p.split("=", 1) for p in urlsplit(await slot.get_attribute("href") or "").query.split("&"))["start"]
    await slot.click()
    await page.get_by_label("Name").fill("Priya Invitee")
    await page.get_by_label("Email").fill("priya@example.com")
    await page.get_by_label("Notes (optional)").fill("Looking forward to it")
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    when = await page.get_by_test_id("when").inner_text()
    assert "Asia/Tokyo" in when and label.split(" on ")[0] in when  # the time as the invitee chose it
    await expect(page.get_by_role("link", name="Add to calendar (.ics)")).to_be_visible()
    await expect(page.get_by_role("link", name="Reschedule")).to_be_visible()
    await expect(page.get_by_role("link", name="Cancel")).to_be_visible()
    start_iso = start.replace("%3A", ":")
    assert start_iso not in await slots_of(site, nc, bookable, link["id"])  # gone from the API
    await context.close()


async def test_reschedule_and_cancel_through_the_manage_links(browser: Browser, site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = await link_of(site, nc, bookable)
    start = weekday_at(2, 9)
    booked = await send(nc, site.settings, "create_event", {**bookable.event_body(start), "link_id": link["id"],
                                                            "time_zone": "America/New_York"})
    assert booked["ok"], booked
    context = await new_context(browser, "America/New_York")
    page = await context.new_page()
    await page.goto(local(site, booked["result"]["reschedule_url"]))
    await expect(page.get_by_text("Rescheduling your booking")).to_be_visible()
    await choose_first_time(page)
    await page.get_by_label("Reason (optional)").fill("A clash came up")
    await page.get_by_role("button", name="Confirm new time").click()
    await expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    cancel = await page.get_by_role("link", name="Cancel").get_attribute("href")
    assert cancel and cancel != booked["result"]["cancel_url"]  # the moved booking has new links
    old = await page.goto(local(site, booked["result"]["reschedule_url"]))
    assert old is not None and old.status == 404  # the old link is used up
    await page.goto(local(site, cancel))
    await page.get_by_role("button", name="Cancel booking").click()
    await expect(page.locator("#cancel_reason-error")).to_be_visible()  # the reason is asked for
    await page.get_by_label("Reason for canceling").fill("Plans changed")
    await page.get_by_role("button", name="Cancel booking").click()
    await expect(page.get_by_role("heading", name="Your booking is canceled")).to_be_visible()
    again = await page.goto(local(site, cancel))
    assert again is not None and again.status == 403
    assert "America/New_York" not in await page.content()  # no booking data on a used link
    await context.close()


async def test_two_browsers_confirming_one_slot(browser: Browser, site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = await link_of(site, nc, bookable)
    first, second = await new_context(browser, "Europe/London"), await new_context(browser, "Europe/London")
    pages = [await first.new_page(), await second.new_page()]
    for n, page in enumerate(pages):
        await page.goto(local(site, link["url"]) + "?tz=Europe/London")
        await choose_first_time(page)
        await page.get_by_label("Name").fill(f"Racer {n}")
        await page.get_by_label("Email").fill(f"racer{n}@example.com")
    await pages[0].get_by_role("button", name="Confirm booking").click()
    await expect(pages[0].get_by_role("heading", name="You are booked")).to_be_visible()
    await pages[1].get_by_role("button", name="Confirm booking").click()
    await expect(pages[1].get_by_role("alert")).to_contain_text("that time was just taken")
    await expect(pages[1].locator("a.day.open").first).to_be_visible()  # fresh times to choose from
    await first.close()
    await second.close()


async def tab_to(page: Page, selector: str, limit: int = 400) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_keyboard_only_booking(browser: Browser, site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = await link_of(site, nc, bookable)
    context = await new_context(browser, "Australia/Sydney")
    page = await context.new_page()
    await page.goto(local(site, link["url"]))
    await expect(page.locator("#tz")).to_have_value("Australia/Sydney")
    await tab_to(page, "a.day.open")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**date=*")
    await tab_to(page, "a.slot")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**start=*")
    await tab_to(page, "#display_name")
    await page.keyboard.type("Kai Keyboard")
    await page.keyboard.press("Tab")
    await page.keyboard.type("kai@example.com")
    await tab_to(page, "button[type=submit]:not(.secondary)")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    await context.close()


async def test_the_page_at_375_px(browser: Browser, site: Site, nc: nats.NATS):
    bookable = await bookable_account(nc, site.settings)
    link = await link_of(site, nc, bookable)
    context = await new_context(browser, "America/Sao_Paulo", width=375, height=812)
    page = await context.new_page()
    await page.goto(local(site, link["url"]))
    await choose_first_time(page)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing scrolls sideways
    assert await accessible_names_missing(page) == []
    for selector in ("a.day.open", "a.slot", "#display_name", "button[type=submit]"):
        box = await page.locator(selector).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "booking-phone.png"), full_page=True)
    await page.get_by_role("button", name="Confirm booking").click()  # empty fields: messages beside them
    await expect(page.locator("#display_name-error")).to_be_visible()
    await expect(page.locator("#email-error")).to_be_visible()
    assert await page.get_attribute("#display_name", "aria-describedby") == "display_name-error"
    await context.close()
