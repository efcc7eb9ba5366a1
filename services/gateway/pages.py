"""The invitee's pages (DESIGN.md section 9): booking, confirmation, reschedule, cancel, feeds, caught mail.

Server-rendered HTML with every asset served from `/book/assets/`. Each page is a thin translation
too: it reads through queries (`public_link_page`, `booking_page_slots`, `manage_booking`,
`service_get`, `public_service_slots`, `appointment_reschedule_slots`) and books through the same
commands as the API (`create_event`, `reschedule_event`, `cancel_event`, `create_appointment`,
`reschedule_appointment`, `cancel_appointment`), so every rule (free slots, who may book, what a manage link allows) stays in the domain and the query
service. The page only formats times in the invitee's zone and puts each 422 beside its field.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, available_timezones

from litestar import Request, Response, get, post
from litestar.response import Redirect

from services.gateway.backend import Backend
from services.gateway.errors import HttpError
from shared.availability import parse_instant
from shared.manage import view_url
from shared.settings import Settings

ASSETS = Path(__file__).parent / "assets"
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/")))
ZONES_SET = frozenset(ZONES) | {"UTC"}
TAKEN = "Sorry, that time was just taken. Please choose another of the times below."
HTML = "text/html; charset=utf-8"
MAX_YEARS_AHEAD = 100  # a `month` further ahead falls back to the current month


def _zone(value: str | None, fallback: str) -> str:
    return value if value in ZONES_SET else (fallback if fallback in ZONES_SET else "UTC")


def _local(iso: str, zone: str) -> datetime:
    return datetime.fromtimestamp(parse_instant(iso), UTC).astimezone(ZoneInfo(zone))


def long_time(iso: str, zone: str) -> str:
    """`Thursday, 7 May 2026, 10:00` in the zone."""
    moment = _local(iso, zone)
    return f"{moment:%A}, {moment.day} {moment:%B %Y}, {moment:%H:%M}"


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    document = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/book/assets/book.css">
<script src="/book/assets/book.js" defer></script>
</head>
<body>
<main id="main">
{body}
</main>
</body>
</html>
"""
    headers = {"cache-control": "no-store",
               "content-security-policy": "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:"}
    if status == 503:  # the system is restarting or behind: the browser (and any client) may come back shortly
        headers["retry-after"] = "1"
    return Response(document, status_code=status, media_type=HTML, headers=headers)


def _problem(status: int) -> Response[str]:
    """A refused link or page, saying nothing about any booking."""
    if status == 403:
        return _page("Link no longer valid", "<h1>This link can no longer be used</h1><p>The booking was already "
                     "canceled, or its time has passed. Nothing was changed.</p>", 403)
    if status == 400:
        return _page("Bad request", "<h1>This address is not valid</h1><p>Part of it could not be read. Please go "
                     "back to the booking page and choose a time again.</p>", 400)
    if status == 404:
        return _page("Not found", "<h1>Page not found</h1><p>This address is not a valid booking page or link."
                     "</p>", 404)
    return _page("Unavailable", "<h1>Something went wrong</h1><p>Please try again in a moment.</p>", status)


def _field_errors(error: HttpError) -> dict[str, list[str]]:
    errors = error.body.get("errors", {})
    return errors if isinstance(errors, dict) else {}


def _zone_select(zone: str) -> str:
    options = "".join(f'<option value="{escape(z)}"{" selected" if z == zone else ""}>{escape(z)}</option>'
                      for z in (ZONES if zone in ZONES else [zone, *ZONES]))
    return f"""<label for="tz">Time zone</label>
<select id="tz" name="tz">{options}</select>"""


class Slots:
    """A month of slots (UTC ISO starts) grouped by the invitee's local date."""

    def __init__(self, slots: list[dict[str, Any]], zone: str) -> None:
        self.by_day: dict[date, list[dict[str, Any]]] = {}
        for slot in slots:
            self.by_day.setdefault(_local(slot["start_at"], zone).date(), []).append(slot)


def _month_view(month: date, slots: Slots, chosen: date | None, params: dict[str, str]) -> str:
    """A month grid: days with slots are links (with accessible names), the others plain text."""
    cal = calendar.Calendar(firstweekday=0)
    previous = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    nav = (f'<a class="month-nav" href="?{urlencode({**params, "month": previous.strftime("%Y-%m")})}" '
           f'aria-label="Previous month, {previous:%B %Y}">&larr;</a>'
           f'<h2 id="month-title">{month:%B %Y}</h2>'
           f'<a class="month-nav" href="?{urlencode({**params, "month": following.strftime("%Y-%m")})}" '
           f'aria-label="Next month, {following:%B %Y}">&rarr;</a>')
    head = "".join(f'<th scope="col" abbr="{name}">{name[:2]}</th>' for name in calendar.day_name)
    rows = []
    for week in cal.monthdatescalendar(month.year, month.month):
        cells = []
        for day in week:
            if day.month != month.month:
                cells.append('<td class="outside"></td>')
                continue
            label = f"{day:%A}, {day.day} {day:%B %Y}"
            if day in slots.by_day:
                current = ' aria-current="date"' if day == chosen else ""
                link = urlencode({**params, "month": month.strftime("%Y-%m"), "date": day.isoformat()})
                cells.append(f'<td><a class="day open" href="?{link}#times"{current} '
                             f'aria-label="{label}, times available">{day.day}</a></td>')
            else:
                cells.append(f'<td><span class="day" aria-label="{label}, no times">{day.day}</span></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"""<section class="month" aria-labelledby="month-title">
<div class="month-head">{nav}</div>
<table class="calendar"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>
</section>"""


def _times(day: date | None, slots: Slots, zone: str, params: dict[str, str], chosen: str | None) -> str:
    if day is None:
        return '<section id="times" class="times"><p>Choose a day to see its times.</p></section>'
    entries = slots.by_day.get(day, [])
    if not entries:
        return (f'<section id="times" class="times"><h2>{day:%A}, {day.day} {day:%B}</h2>'
                '<p>No times left on this day. Please choose another day.</p></section>')
    items = []
    for slot in entries:
        local = _local(slot["start_at"], zone)
        link = urlencode({**params, "date": day.isoformat(), "start": slot["start_at"]})
        pressed = ' aria-current="true"' if slot["start_at"] == chosen else ""
        items.append(f'<li><a class="slot" href="?{link}#details"{pressed} '
                     f'aria-label="{local:%H:%M} on {local:%A} {local.day} {local:%B}">{local:%H:%M}</a></li>')
    return (f'<section id="times" class="times" aria-labelledby="times-title"><h2 id="times-title">'
            f'{day:%A}, {day.day} {day:%B}</h2><ul class="slots">{"".join(items)}</ul></section>')


def _input(name: str, label: str, value: str, errors: dict[str, list[str]], kind: str = "text",
           required: bool = True, autocomplete: str = "") -> str:
    messages = errors.get(name, [])
    described = f' aria-describedby="{name}-error" aria-invalid="true"' if messages else ""
    error = (f'<p class="field-error" id="{name}-error">{escape(label)} {escape("; ".join(messages))}</p>'
             if messages else "")
    req = " required" if required else ""
    auto = f' autocomplete="{autocomplete}"' if autocomplete else ""
    if kind == "textarea":
        control = f'<textarea id="{name}" name="{name}" rows="3"{described}{req}>{escape(value)}</textarea>'
    else:
        control = f'<input id="{name}" name="{name}" type="{kind}" value="{escape(value)}"{described}{req}{auto}>'
    return f'<div class="field"><label for="{name}">{escape(label)}</label>{control}{error}</div>'


class BookingPages:
    """The handlers of the invitee's pages over one gateway backend."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.position = 0  # the newest write made through these pages: pages read at least that far

    async def query(self, name: str, body: dict[str, Any]) -> Any:
        """One query's reply (errors raise HttpError), read after every write these pages made."""
        if self.position:
            body["min_position"] = self.position
        return await self.backend.request("query", name, body)

    async def command(self, name: str, body: dict[str, Any]) -> Any:
        """One command's result, with a fresh command id."""
        body["command_id"] = f"page-{time.time_ns()}"
        reply = await self.backend.request("command", name, body)
        self.position = max(self.position, int(reply.get("position", 0)))
        if body.get("account_id"):
            self.backend.remember(body["account_id"], reply.get("position", 0))
        return reply["result"]

    # --- link booking pages -------------------------------------------------------------------------

    async def link_page(self, request: Request[Any, Any, Any], scope_slug: str, link_slug: str,
                        form: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None,
                        notice: str = "", reschedule: dict[str, Any] | None = None,
                        status: int = 200) -> Response[str]:
        """The booking page of a link (or, with `reschedule`, of the booking being moved)."""
        if reschedule is not None:
            page = {"account_id": reschedule["account_id"], "link": reschedule["link"]}
        else:
            try:
                page = await self.query("public_link_page", {"scope_slug": scope_slug, "link_slug": link_slug})
            except HttpError as exc:
                return _problem(exc.status)
        link = page["link"]
        params_in = dict(request.query_params.items())
        if form:
            params_in.update({k: v for k, v in form.items() if k in ("tz", "date", "start", "duration", "month")})
        zone = _zone(params_in.get("tz"), reschedule["event"]["scheduler"]["time_zone"] if reschedule
                     else link["time_zone"])
        durations = link["durations"]
        asked = _int_of(params_in.get("duration"))
        duration: int = asked if asked is not None and asked in durations else link["default_duration"]
        chosen_start = params_in.get("start") or None
        if chosen_start is not None and _start_local(chosen_start, zone) is None:
            return _problem(400)
        today = datetime.now(ZoneInfo(zone)).date()
        month = _month_of(params_in.get("month"), today)
        start = datetime.combine(max(month, today), datetime.min.time(), ZoneInfo(zone))
        end = datetime.combine((month.replace(day=28) + timedelta(days=4)).replace(day=1), datetime.min.time(),
                               ZoneInfo(zone))
        query: dict[str, Any] = {"link_id": link["id"], "from": start.isoformat(), "until": end.isoformat()}
        if reschedule is not None:
            query["reschedule_token"] = reschedule["token"]
        try:
            raw = await self.query("booking_page_slots", query) if end > start else []
        except HttpError as exc:
            return _problem(exc.status)
        slots = Slots([s for s in raw if s["duration"] == duration], zone)
        chosen_day = _date_of(params_in.get("date"))
        if chosen_start and chosen_day is None:
            chosen_day = _start_local(chosen_start, zone)
        params = {"tz": zone, "duration": str(duration)}
        durations_html = ""
        if len(durations) > 1:
            current = ' aria-current="true"'
            choices = "".join(
                f'<li><a href="?{urlencode({**params, "duration": str(d), "month": month.strftime("%Y-%m")})}"'
                f'{current if d == duration else ""}>{d} minutes</a></li>' for d in durations)
            durations_html = f'<nav aria-label="Duration"><ul class="durations">{choices}</ul></nav>'
        heading = escape(link["name"])
        intro = f'<p class="description">{escape(link["description"])}</p>' if link.get("description") else ""
        if reschedule is not None:
            event = reschedule["event"]
            intro += (f'<p class="notice">Rescheduling your booking of '
                      f'<strong>{escape(long_time(event["start_at"], zone))}</strong> ({escape(zone)}). '
                      f'Your current time stays reserved until you choose a new one.</p>')
        notice_html = f'<p class="alert" role="alert">{escape(notice)}</p>' if notice else ""
        details = ""
        if chosen_start and chosen_day and any(s["start_at"] == chosen_start
                                               for s in slots.by_day.get(chosen_day, [])):
            details = self._details_form(chosen_start, duration, zone, form or {}, errors or {}, reschedule)
        elif chosen_start and not notice:
            notice_html = f'<p class="alert" role="alert">{escape(TAKEN)}</p>'
        body = f"""<header class="link-head">
<p class="eyebrow">{escape(link["scope"]["name"] if link.get("scope") else "")}</p>
<h1>{heading}</h1>
{intro}
<p class="meta">{" or ".join(f"{d} min" for d in durations)}</p>
</header>
{notice_html}
<form class="zone" method="get" action="">
{_zone_select(zone)}
<input type="hidden" name="duration" value="{duration}">
<input type="hidden" name="month" value="{month:%Y-%m}">
{f'<input type="hidden" name="date" value="{chosen_day.isoformat()}">' if chosen_day else ""}
<button type="submit" class="secondary">Show times</button>
</form>
{durations_html}
<div class="picker">
{_month_view(month, slots, chosen_day, params)}
{_times(chosen_day, slots, zone, {**params, "month": month.strftime("%Y-%m")}, chosen_start)}
</div>
{details}"""
        return _page(f"{link['name']}: book a time", body, status)

    def _details_form(self, start_at: str, duration: int, zone: str, form: dict[str, str],
                      errors: dict[str, list[str]], reschedule: dict[str, Any] | None) -> str:
        end_at = datetime.fromtimestamp(parse_instant(start_at) + duration * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in
                         (("start", start_at), ("end", end_at), ("tz", zone), ("duration", str(duration))))
        when = f"{long_time(start_at, zone)} ({zone}), {duration} minutes"
        if reschedule is not None:
            fields = _input("reschedule_reason", "Reason (optional)", form.get("reschedule_reason", ""), errors,
                            "textarea", required=False)
            button = "Confirm new time"
        else:
            fields = (_input("display_name", "Name", form.get("display_name", ""), errors, autocomplete="name")
                      + _input("email", "Email", form.get("email", ""), errors, "email", autocomplete="email")
                      + (_input("notes", "Notes (optional)", form.get("notes", ""), errors, "textarea",
                                required=False) if "no_notes" not in form else ""))
            button = "Confirm booking"
        other = {k: v for k, v in errors.items() if k not in ("display_name", "email", "notes", "reschedule_reason")}
        other_html = "".join(f'<p class="field-error">{escape(k)}: {escape("; ".join(v))}</p>'
                             for k, v in other.items())
        return f"""<section id="details" class="details" aria-labelledby="details-title">
<h2 id="details-title">Your details</h2>
<p class="when">{escape(when)}</p>
{other_html}
<form method="post" action="" novalidate>
{hidden}
{fields}
<button type="submit">{button}</button>
</form>
</section>"""

    async def book_link(self, request: Request[Any, Any, Any], scope_slug: str, link_slug: str) -> Response[str]:
        """POST of the booking form: `create_event`, then the confirmation page (or the form again)."""
        form = await _form(request)
        try:
            page = await self.query("public_link_page", {"scope_slug": scope_slug, "link_slug": link_slug})
        except HttpError as exc:
            return _problem(exc.status)
        zone = _zone(form.get("tz"), page["link"]["time_zone"])
        fields = [{"label": "Notes", "value": form["notes"].strip()}] if form.get("notes", "").strip() else []
        try:
            event = await self.command("create_event", {
                "account_id": page["account_id"], "link_id": page["link"]["id"],
                "display_name": form.get("display_name", "").strip(), "email": form.get("email", "").strip(),
                "start_at": form.get("start", ""), "end_at": form.get("end", ""), "time_zone": zone,
                "fields": fields})
        except HttpError as exc:
            return await self._refused(request, scope_slug, link_slug, form, exc)
        return self._to_confirmation(event["id"], event["start_at"], zone)

    async def _refused(self, request: Request[Any, Any, Any], scope_slug: str, link_slug: str,
                       form: dict[str, str], exc: HttpError, reschedule: dict[str, Any] | None = None
                       ) -> Response[str]:
        if exc.status != 422:
            return _problem(exc.status)
        errors = _field_errors(exc)
        if "start_at" in errors or "end_at" in errors:  # the slot went meanwhile: say so, show fresh times
            form = {k: v for k, v in form.items() if k != "start"}
            return await self.link_page(request, scope_slug, link_slug, form, {}, TAKEN, reschedule, 409)
        return await self.link_page(request, scope_slug, link_slug, form, errors, "", reschedule, 422)

    def _to_confirmation(self, booking_id: str, start_at: str, zone: str) -> Response[Any]:
        url = view_url("", self.settings.signing_secret, booking_id, start_at)
        return Redirect(f"/book{url}?{urlencode({'tz': zone})}", status_code=303)

    # --- service booking pages ----------------------------------------------------------------------

    async def service_page(self, request: Request[Any, Any, Any], account_id: str, service_id: str,
                           form: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None,
                           notice: str = "", status: int = 200,
                           reschedule: dict[str, Any] | None = None) -> Response[str]:
        """The booking page of a service: its public-bookings providers' slots (or, with `reschedule`, the
        slots the appointment being moved may take: its own provider's, its own time free)."""
        try:
            service = await self.query("service_get", {"account_id": account_id, "id": service_id})
        except HttpError as exc:
            return _problem(404 if exc.status in (401, 404, 422) else exc.status)
        params_in = dict(request.query_params.items())
        if form:
            params_in.update({k: v for k, v in form.items() if k in ("tz", "date", "start", "month")})
        zone = _zone(params_in.get("tz"), reschedule["appointment"]["client"]["time_zone"] if reschedule
                     else service["time_zone"])
        chosen_start = params_in.get("start") or None
        if chosen_start is not None and _start_local(chosen_start, zone) is None:
            return _problem(400)
        today = datetime.now(ZoneInfo(zone)).date()
        month = _month_of(params_in.get("month"), today)
        first = max(month, today)
        last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        window = {"from": first.isoformat(), "until": last.isoformat(), "time_zone": zone}
        try:
            if last < first:
                reply: dict[str, Any] = {"data": []}
            elif reschedule is not None:
                reply = await self.query("appointment_reschedule_slots",
                                         {"reschedule_token": reschedule["token"], **window})
            else:
                reply = await self.query("public_service_slots",
                                         {"account_id": account_id, "service_id": service_id, **window})
        except HttpError as exc:
            return _problem(exc.status)
        slots = Slots([{"start_at": _iso(s["start_at_ts"])} for s in reply["data"]], zone)
        chosen_day = _date_of(params_in.get("date"))
        if chosen_start and chosen_day is None:
            chosen_day = _start_local(chosen_start, zone)
        params = {"tz": zone}
        notice_html = f'<p class="alert" role="alert">{escape(notice)}</p>' if notice else ""
        details = ""
        if chosen_start and chosen_day and any(s["start_at"] == chosen_start for s in slots.by_day.get(chosen_day, [])):
            details = self._details_form(chosen_start, service["duration"], zone, {**(form or {}), "no_notes": "1"},
                                         errors or {}, reschedule)
        elif chosen_start and not notice:
            notice_html = f'<p class="alert" role="alert">{escape(TAKEN)}</p>'
        intro = ""
        if reschedule is not None:
            intro = (f'<p class="notice">Rescheduling your appointment of '
                     f'<strong>{escape(long_time(reschedule["appointment"]["start_at"], zone))}</strong> '
                     f'({escape(zone)}). Your current time stays reserved until you choose a new one.</p>')
        body = f"""<header class="link-head">
<h1>{escape(service["name"])}</h1>
{intro}
<p class="meta">{service["duration"]} min</p>
</header>
{notice_html}
<form class="zone" method="get" action="">
{_zone_select(zone)}
<input type="hidden" name="month" value="{month:%Y-%m}">
<button type="submit" class="secondary">Show times</button>
</form>
<div class="picker">
{_month_view(month, slots, chosen_day, params)}
{_times(chosen_day, slots, zone, {**params, "month": month.strftime("%Y-%m")}, chosen_start)}
</div>
{details}"""
        return _page(f"{service['name']}: book a time", body, status)

    async def book_service(self, request: Request[Any, Any, Any], account_id: str, service_id: str) -> Response[str]:
        """POST of a service's booking form: `create_appointment`, then the confirmation page."""
        form = await _form(request)
        zone = _zone(form.get("tz"), "UTC")
        try:
            appointment = await self.command("create_appointment", {
                "account_id": account_id, "service_id": service_id, "public": True, "start_at": form.get("start", ""),
                "display_name": form.get("display_name", "").strip(), "email": form.get("email", "").strip(),
                "time_zone": zone})
        except HttpError as exc:
            if exc.status != 422:
                return _problem(exc.status)
            errors = _field_errors(exc)
            if "start_at" in errors:
                form = {k: v for k, v in form.items() if k != "start"}
                return await self.service_page(request, account_id, service_id, form, {}, TAKEN, 409)
            return await self.service_page(request, account_id, service_id, form, errors, "", 422)
        return self._to_confirmation(appointment["id"], appointment["start_at"], zone)

    # --- confirmation and manage links --------------------------------------------------------------

    async def managed(self, token: str, action: str) -> dict[str, Any]:
        """The booking a token names for `action` (HttpError 404/403 otherwise)."""
        return await self.query("manage_booking", {"token": token, "action": action})  # type: ignore[no-any-return]

    async def confirmation(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        """The confirmation page: the time in the invitee's zone, the .ics download and the manage links."""
        try:
            booking = await self.managed(token, "view")
        except HttpError as exc:
            return _problem(exc.status)
        event: Any = booking.get("event")  # an appointment's reply has no `event` key at all
        resource: Any = event or booking.get("appointment")
        invitee = resource["scheduler"] if event else resource["client"]
        zone = _zone(request.query_params.get("tz"), invitee["time_zone"])
        title = event["link"]["name"] if event else "Your appointment"
        canceled = resource["state"] == "canceled"
        status = "Canceled" if canceled else "You are booked"
        manage = "" if canceled else f"""<ul class="actions">
<li><a class="button" href="/book/booked/{escape(token)}/ics" download>Add to calendar (.ics)</a></li>
<li><a class="button secondary" href="{escape(resource["reschedule_url"])}">Reschedule</a></li>
<li><a class="button secondary" href="{escape(resource["cancel_url"])}">Cancel</a></li>
</ul>"""
        body = f"""<section class="confirmation" aria-labelledby="title">
<h1 id="title">{status}</h1>
<p class="what">{escape(title)}</p>
<p class="when" data-testid="when"><time datetime="{escape(resource["start_at"])}">{escape(
            long_time(resource["start_at"], zone))}</time> ({escape(zone)}), {resource["duration"]} minutes</p>
<p>{escape(invitee["display_name"])} &lt;{escape(invitee["email"] or "")}&gt;</p>
{manage}
<p class="small">A confirmation email with a calendar invitation is on its way.</p>
</section>"""
        return _page(f"{status}: {title}", body)

    async def confirmation_ics(self, token: str) -> Response[Any]:
        """The booking's .ics, behind its confirmation token."""
        try:
            booking = await self.managed(token, "view")
            kind = booking["kind"]
            resource = booking[kind]
            reply = await self.query(f"{kind}_ics", {"account_id": booking["account_id"], "id": resource["id"]})
        except HttpError as exc:
            return _problem(exc.status)
        return Response(reply["content"], media_type=f"text/calendar; method={reply['method']}; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{reply["filename"]}"'})

    async def reschedule_page(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        """The booking page again, the booking's own time free, to choose a new time."""
        try:
            booking = await self.managed(token, "reschedule")
        except HttpError as exc:
            return _problem(exc.status)
        if booking["kind"] == "appointment":
            return await self._appointment_page(request, {**booking, "token": token})
        if booking.get("link") is None:
            return _problem(404)
        return await self.link_page(request, "", "", reschedule={**booking, "token": token})

    async def _appointment_page(self, request: Request[Any, Any, Any], reschedule: dict[str, Any],
                                form: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None,
                                notice: str = "", status: int = 200) -> Response[str]:
        """The service page of the appointment being moved: its own provider's slots, its own time free."""
        appointment = reschedule["appointment"]
        return await self.service_page(request, reschedule["account_id"], appointment["service_id"], form, errors,
                                       notice, status, reschedule)

    async def reschedule(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        """POST of the reschedule form: `reschedule_event`, then the new confirmation page."""
        form = await _form(request)
        try:
            booking = await self.managed(token, "reschedule")
        except HttpError as exc:
            return _problem(exc.status)
        if booking["kind"] == "appointment":
            return await self._reschedule_appointment(request, form, {**booking, "token": token})
        if booking.get("link") is None:
            return _problem(404)
        zone = _zone(form.get("tz"), booking["event"]["scheduler"]["time_zone"])
        try:
            event = await self.command("reschedule_event", {
                "account_id": booking["account_id"], "event_id": booking["event"]["id"],
                "start_at": form.get("start", ""), "end_at": form.get("end", ""),
                "reschedule_reason": form.get("reschedule_reason", "").strip() or None})
        except HttpError as exc:
            return await self._refused(request, "", "", form, exc, {**booking, "token": token})
        return self._to_confirmation(event["id"], event["start_at"], zone)

    async def _reschedule_appointment(self, request: Request[Any, Any, Any], form: dict[str, str],
                                      reschedule: dict[str, Any]) -> Response[str]:
        """`reschedule_appointment` from the form, then the new confirmation page (or the page again)."""
        appointment = reschedule["appointment"]
        zone = _zone(form.get("tz"), appointment["client"]["time_zone"])
        try:
            moved = await self.command("reschedule_appointment", {
                "account_id": reschedule["account_id"], "appointment_id": appointment["id"],
                "start_at": form.get("start", ""),
                "reschedule_reason": form.get("reschedule_reason", "").strip() or None})
        except HttpError as exc:
            if exc.status != 422:
                return _problem(exc.status)
            errors = _field_errors(exc)
            if "start_at" in errors:  # the slot went meanwhile: say so, show fresh times
                form = {k: v for k, v in form.items() if k != "start"}
                return await self._appointment_page(request, reschedule, form, {}, TAKEN, 409)
            return await self._appointment_page(request, reschedule, form, errors, "", 422)
        return self._to_confirmation(moved["id"], moved["start_at"], zone)

    async def cancel_page(self, request: Request[Any, Any, Any], token: str,
                          errors: dict[str, list[str]] | None = None, reason: str = "") -> Response[str]:
        """The cancel page: the booking and a reason to give."""
        try:
            booking = await self.managed(token, "cancel")
        except HttpError as exc:
            return _problem(exc.status)
        event: Any = booking.get("event")  # an appointment's reply has no `event` key at all
        resource: Any = event or booking.get("appointment")
        invitee = resource["scheduler"] if event else resource["client"]
        zone = _zone(request.query_params.get("tz"), invitee["time_zone"])
        title = event["link"]["name"] if event else "Your appointment"
        body = f"""<h1>Cancel your booking</h1>
<p class="what">{escape(title)}</p>
<p class="when">{escape(long_time(resource["start_at"], zone))} ({escape(zone)})</p>
<form method="post" action="" novalidate>
{_input("cancel_reason", "Reason for canceling", reason, errors or {}, "textarea")}
<button type="submit" class="danger">Cancel booking</button>
</form>
<p><a href="{escape(booking["view_url"])}">Keep this booking</a></p>"""
        return _page("Cancel your booking", body, 422 if errors else 200)

    async def cancel(self, request: Request[Any, Any, Any], token: str) -> Response[str]:
        """POST of the cancel form: the reason is required, then `cancel_event` or `cancel_appointment`."""
        form = await _form(request)
        reason = form.get("cancel_reason", "").strip()
        if not reason:
            return await self.cancel_page(request, token, {"cancel_reason": ["is required"]})
        try:
            booking = await self.managed(token, "cancel")
            kind = booking["kind"]
            key = "event_id" if kind == "event" else "appointment_id"
            await self.command(f"cancel_{kind}", {"account_id": booking["account_id"],
                                                  key: booking[kind]["id"], "cancel_reason": reason[:500]})
        except HttpError as exc:
            if exc.status == 422:
                return await self.cancel_page(request, token, _field_errors(exc), reason)
            return _problem(exc.status)
        return _page("Canceled", """<h1>Your booking is canceled</h1>
<p>We have let the host know. A cancellation email is on its way.</p>""")

    # --- feeds and the dev mail catcher -------------------------------------------------------------

    async def feed(self, file: str) -> Response[Any]:
        """A provider's iCalendar feed at `…/ical/<token>.ics`."""
        if not file.endswith(".ics"):
            return _problem(404)
        try:
            reply = await self.query("provider_feed", {"token": file.removesuffix(".ics")})
        except HttpError as exc:
            return _problem(exc.status)
        return Response(reply["content"], media_type="text/calendar; charset=utf-8")

    def caught_mail(self) -> Response[str]:
        """`/dev/mail`: the mail `make run`'s local catcher received, newest first."""
        folder = Path(self.settings.mail_catcher_dir) if self.settings.mail_catcher_dir else None
        if folder is None:
            return _problem(404)
        items = []
        for path in sorted(folder.glob("*.eml"), reverse=True)[:200]:
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            text = mail.get_body(preferencelist=("plain",))
            content = text.get_content() if text is not None else ""
            attachments = [part.get_filename() or part.get_content_type() for part in mail.iter_attachments()]
            items.append(f"""<article class="mail"><h2>{escape(str(mail["subject"]))}</h2>
<p class="small">To {escape(str(mail["to"]))} &middot; {escape(str(mail["date"]))} &middot; attachments:
{escape(", ".join(attachments) or "none")}</p><pre>{escape(content)}</pre></article>""")
        return _page("Caught mail", f"<h1>Caught mail ({len(items)})</h1>" + ("".join(items) or
                                                                              "<p>No mail yet.</p>"))


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_of(text: str | None, today: date) -> date:
    """The month `YYYY-MM` asks for: the current month when unreadable, past or too far ahead to show."""
    try:
        year, month = (int(part) for part in (text or "").split("-"))
        chosen = date(year, month, 1)
    except (ValueError, OverflowError):
        return today.replace(day=1)
    if chosen.year > today.year + MAX_YEARS_AHEAD:  # beyond any booking window (and date arithmetic's range)
        return today.replace(day=1)
    return max(chosen, today.replace(day=1))


def _int_of(text: str | None) -> int | None:
    """A plain decimal number, or None."""
    if not text or len(text) > 6 or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _start_local(text: str, zone: str) -> date | None:
    """The invitee's local date of an ISO start with an offset, or None when it is unreadable."""
    try:
        return _local(text, zone).date()
    except (ValueError, OverflowError, OSError):
        return None


def _date_of(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def page_routes(backend: Backend, settings: Settings) -> list[Any]:
    """The Litestar handlers of the invitee's pages, the assets, the feeds and `/dev/mail`."""
    pages = BookingPages(backend, settings)

    @get("/book/assets/{name:str}", include_in_schema=False)
    async def asset(name: str) -> Response[bytes]:
        """A local asset of the booking pages (no CDN, no external font)."""
        path = ASSETS / name
        if name not in ("book.css", "book.js") or not path.is_file():
            return Response(b"", status_code=404)
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(path.read_bytes(), media_type=f"{media}; charset=utf-8",
                        headers={"cache-control": "public, max-age=300"})

    @get("/book/{scope_slug:str}/{link_slug:str}", include_in_schema=False)
    async def link_page(request: Request[Any, Any, Any], scope_slug: str, link_slug: str) -> Response[str]:
        """A link's booking page."""
        return await pages.link_page(request, scope_slug, link_slug)

    @post("/book/{scope_slug:str}/{link_slug:str}", include_in_schema=False, status_code=200)
    async def book_link(request: Request[Any, Any, Any], scope_slug: str, link_slug: str) -> Response[str]:
        """Book on a link's page."""
        return await pages.book_link(request, scope_slug, link_slug)

    @get("/book/{scope_slug:str}/{link_slug:str}/{start:str}", include_in_schema=False)
    async def link_slot(scope_slug: str, link_slug: str, start: str) -> Response[Any]:
        """A slot's own address (Calendly's `scheduling_url` of an available time): the page with it chosen."""
        return Redirect(f"/book/{scope_slug}/{link_slug}?{urlencode({'start': start})}#details", status_code=302)

    @get("/book/{account_id:str}/services/{service_id:str}", include_in_schema=False)
    async def service_page(request: Request[Any, Any, Any], account_id: str, service_id: str) -> Response[str]:
        """A service's booking page."""
        return await pages.service_page(request, account_id, service_id)

    @post("/book/{account_id:str}/services/{service_id:str}", include_in_schema=False, status_code=200)
    async def book_service(request: Request[Any, Any, Any], account_id: str, service_id: str) -> Response[str]:
        """Book on a service's page."""
        return await pages.book_service(request, account_id, service_id)

    @get("/book/booked/{token:str}", include_in_schema=False)
    async def booked(request: Request[Any, Any, Any], token: str) -> Response[str]:
        """The confirmation page."""
        return await pages.confirmation(request, token)

    @get("/book/booked/{token:str}/ics", include_in_schema=False)
    async def booked_ics(token: str) -> Response[Any]:
        """The booking's calendar file."""
        return await pages.confirmation_ics(token)

    @get("/book/reschedule/{token:str}", include_in_schema=False)
    async def reschedule_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
        """The reschedule page of a manage link."""
        return await pages.reschedule_page(request, token)

    @post("/book/reschedule/{token:str}", include_in_schema=False, status_code=200)
    async def reschedule(request: Request[Any, Any, Any], token: str) -> Response[str]:
        """Move the booking."""
        return await pages.reschedule(request, token)

    @get("/book/cancel/{token:str}", include_in_schema=False)
    async def cancel_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
        """The cancel page of a manage link."""
        return await pages.cancel_page(request, token)

    @post("/book/cancel/{token:str}", include_in_schema=False, status_code=200)
    async def cancel(request: Request[Any, Any, Any], token: str) -> Response[str]:
        """Cancel the booking with a reason."""
        return await pages.cancel(request, token)

    @get("/ical/{file:str}", include_in_schema=False)
    async def feed(file: str) -> Response[Any]:
        """A provider's secret calendar feed."""
        return await pages.feed(file)

    @get("/dev/mail", include_in_schema=False)
    async def dev_mail() -> Response[str]:
        """The local mail catcher's inbox (only when `make run` runs one)."""
        return pages.caught_mail()

    return [asset, link_page, book_link, link_slot, service_page, book_service, booked, booked_ics,
            reschedule_page, reschedule, cancel_page, cancel, feed, dev_mail]
