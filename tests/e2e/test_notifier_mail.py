"""Booking emails end to end: commands -> log -> relay -> SCHED_EVENTS -> notifier -> a real SMTP server.

The SMTP server is aiosmtpd on a loopback port; every message is parsed, its .ics attachment read with
the `icalendar` library, and its manage links followed on the real gateway.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import icalendar
import msgspec
import nats
import pytest
from aiosmtpd.controller import Controller

from services.notifier.app import bootstrap as notifier_bootstrap
from services.relay.relay import Relay
from shared.eventstore import EventStore
from shared.servers import free_port
from shared.settings import Settings
from tests.e2e.conftest import Site
from tests.integration.booking_setup import bookable_account, iso, weekday_at
from tests.integration.messaging import send
from tests.integration.webhook_receiver import eventually

pytestmark = pytest.mark.integration


class Mailbox:
    """An aiosmtpd handler keeping every message; `hold_at` makes the n-th DATA wait for `release`."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse_first = 0  # how many of the first messages get a temporary failure (451), not kept
        self.refused = 0
        self.hold_at: int | None = None
        self.release = threading.Event()
        self.port = free_port()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refused < self.refuse_first:
                self.refused += 1
                return "451 try again later"
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            count = len(self.messages)
        if count == self.hold_at:
            await asyncio.to_thread(self.release.wait, 30)
        return "250 OK"

    def snapshot(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    box.release.set()
    controller.stop()


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return msgspec.structs.replace(settings, smtp_url=f"smtp://127.0.0.1:{mailbox.port}",
                                   mail_from="Sched <bookings@sched.test>", webhook_retry_schedule=(0.2, 0.5, 1.0))


@pytest.fixture
async def relay(store: EventStore, nc: nats.NATS, settings: Settings) -> AsyncIterator[Relay]:
    relay = Relay(store, nc.jetstream(), settings)
    await relay.start()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    yield relay
    stop.set()
    await task


def ics_of(message: EmailMessage) -> tuple[str, icalendar.Calendar]:
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, message
    return parts[0]["content-type"], icalendar.Calendar.from_ical(parts[0].get_content())


def plain(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content()


def html(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return body.get_content()


async def test_confirmation_reschedule_and_cancellation_mails(site: Site, nc: nats.NATS, relay: Relay,
                                                              mailbox: Mailbox):
    bookable = await bookable_account(nc, site.settings)
    start = weekday_at(3, 15)
    async with notifier_bootstrap(site.settings) as notifier:
        await eventually(notifier.leading.is_set, what="the notifier to lead")
        body = {**bookable.event_body(start), "time_zone": "Asia/Tokyo"}
        created = await send(nc, site.settings, "create_event", body)
        assert created["ok"], created
        await eventually(lambda: len(mailbox.snapshot()) >= 2, timeout=30, what="the confirmation mails")
        confirmations = mailbox.snapshot()
        assert sorted(str(m["To"]) for m in confirmations) == ["Ada Lovelace <ada@example.com>",
                                                               "Sally Scheduler <sally@example.com>"]
        invitee = next(m for m in confirmations if "sally" in str(m["To"]))
        assert str(invitee["Subject"]).strip().startswith("Confirmed: Race on")
        assert "(Asia/Tokyo)" in str(invitee["Subject"])  # 15:00 UTC, shown in the invitee's zone: 00:00 next day
        content_type, cal = ics_of(invitee)
        assert "method=REQUEST" in content_type.replace('"', "")
        vevent = cal.walk("VEVENT")[0]
        assert str(cal["METHOD"]) == "REQUEST" and int(vevent["SEQUENCE"]) == 0
        assert vevent.decoded("DTSTART") == start
        uid = str(vevent["UID"])
        assert uid == f"{created['result']['id']}@sched"
        reschedule_url = created["result"]["reschedule_url"]
        cancel_url = created["result"]["cancel_url"]
        assert reschedule_url in plain(invitee) and cancel_url in plain(invitee)
        assert reschedule_url in html(invitee) and cancel_url in html(invitee)
        host_mail = next(m for m in confirmations if "ada" in str(m["To"]))
        assert reschedule_url in plain(host_mail) and cancel_url in plain(host_mail)  # the hosts' mails too
        assert reschedule_url in html(host_mail) and cancel_url in html(host_mail)
        assert (await site.http.get(urlsplit(cancel_url).path)).status_code == 200  # the mail's link works

        later = start + timedelta(hours=2)
        moved = await send(nc, site.settings, "reschedule_event", {
            **bookable.ids, "event_id": created["result"]["id"], "start_at": iso(later),
            "end_at": iso(later + timedelta(minutes=30)), "reschedule_reason": "conflict"})
        assert moved["ok"], moved
        await eventually(lambda: len(mailbox.snapshot()) >= 4, timeout=30, what="the reschedule mails")
        rescheduled = next(m for m in mailbox.snapshot()[2:] if "sally" in str(m["To"]))
        assert str(rescheduled["Subject"]).strip().startswith("Rescheduled:") and "conflict" in plain(rescheduled)
        _, cal = ics_of(rescheduled)
        assert str(cal.walk("VEVENT")[0]["UID"]) == uid and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 1
        new_cancel = moved["result"]["cancel_url"]
        assert new_cancel in plain(rescheduled)

        done = await site.http.post(urlsplit(new_cancel).path, data={"cancel_reason": "Cannot make it"})
        assert done.status_code == 200, done.text
        await eventually(lambda: len(mailbox.snapshot()) >= 6, timeout=30, what="the cancellation mails")
        canceled = next(m for m in mailbox.snapshot()[4:] if "ada" in str(m["To"]))
        content_type, cal = ics_of(canceled)
        assert "method=CANCEL" in content_type.replace('"', "") and str(cal["METHOD"]) == "CANCEL"
        assert str(cal.walk("VEVENT")[0]["UID"]) == uid and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 2
        assert "Cannot make it" in plain(canceled)
        await asyncio.sleep(0.3)  # time for a stray duplicate to show up
    assert len(mailbox.snapshot()) == 6
    assert len({m["Message-ID"] for m in mailbox.snapshot()}) == 6


async def test_an_appointment_reschedule_mail(site: Site, nc: nats.NATS, relay: Relay, mailbox: Mailbox):
    bookable = await bookable_account(nc, site.settings)
    start = weekday_at(3, 9)
    async with notifier_bootstrap(site.settings) as notifier:
        await eventually(notifier.leading.is_set, what="the notifier to lead")
        created = await send(nc, site.settings, "create_appointment", {
            **bookable.ids, "service_id": bookable.service_id, "start_at": iso(start), "display_name": "Cleo",
            "email": "cleo@example.com", "time_zone": "Etc/UTC"})
        assert created["ok"], created
        await eventually(lambda: len(mailbox.snapshot()) >= 2, timeout=30, what="the confirmation mails")
        later = start + timedelta(hours=2)
        moved = await send(nc, site.settings, "reschedule_appointment", {
            **bookable.ids, "appointment_id": created["result"]["id"], "start_at": iso(later),
            "reschedule_reason": "flat tyre"})
        assert moved["ok"], moved
        await eventually(lambda: len(mailbox.snapshot()) >= 4, timeout=30, what="the reschedule mails")
        rescheduled = next(m for m in mailbox.snapshot()[2:] if "cleo" in str(m["To"]))
        assert str(rescheduled["Subject"]).strip().startswith("Rescheduled: Consult") and "flat tyre" in plain(
            rescheduled)
        _, cal = ics_of(rescheduled)
        vevent = cal.walk("VEVENT")[0]
        assert str(vevent["UID"]) == f"{created['result']['id']}@sched" and int(vevent["SEQUENCE"]) == 1
        assert vevent.decoded("DTSTART") == later
        assert moved["result"]["reschedule_url"] in plain(rescheduled)  # the new manage links
        await asyncio.sleep(0.3)
    assert len(mailbox.snapshot()) == 4


def start_notifier(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.notifier"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def test_a_notifier_killed_mid_send_sends_one_mail_per_change(
    site: Site, nc: nats.NATS, relay: Relay, mailbox: Mailbox, settings_env: dict[str, str], tmp_path: Path
):
    bookable = await bookable_account(nc, site.settings)
    env = {**settings_env, "SCHED_SMTP_URL": site.settings.smtp_url, "SCHED_HTTP_PORT": str(site.settings.http_port),
           "SCHED_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1"}
    mailbox.hold_at = 3  # the third message's DATA hangs until the notifier has been killed
    event_ids = []
    for day in range(4):
        booked = await send(nc, site.settings, "create_event", bookable.event_body(weekday_at(2 + day, 10),
                                                                                   name=f"Guest {day}"))
        assert booked["ok"], booked
        event_ids.append(booked["result"]["id"])
    log = tmp_path / "notifier.log"
    proc = start_notifier(env, log)
    try:
        await eventually(lambda: len(mailbox.snapshot()) >= 3, timeout=30, what="the held message")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        mailbox.release.set()
        canceled = await send(nc, site.settings, "cancel_event", {**bookable.ids, "event_id": event_ids[0],
                                                                  "cancel_reason": "while it was down"})
        assert canceled["ok"], canceled
        proc = start_notifier(env, log)
        # 4 confirmations and 1 cancellation, each to the invitee and the host
        await eventually(lambda: len({m["Message-ID"] for m in mailbox.snapshot()}) >= 10, timeout=30,
                         what=f"every mail after the restart; log:\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.5)  # time for a stray duplicate to show up
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    messages = mailbox.snapshot()
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) == 10  # one mail per (booking change, recipient)
    # at least once: only the mail interrupted by the kill may arrive twice, and then as the same message
    assert len(ids) <= 11 and all(ids.count(i) == 1 for i in ids if i != ids[2])
    per_change = {(re.sub(r"\s+", " ", str(m["Subject"])).strip(), str(m["To"])) for m in messages}
    assert len(per_change) == 10
    assert "notifier ready" in log.read_text()


async def test_a_standby_notifier_takes_over_from_a_sigstopped_one_which_sends_nothing_when_it_resumes(
    site: Site, nc: nats.NATS, relay: Relay, mailbox: Mailbox, pool: asyncpg.Pool, settings_env: dict[str, str],
    tmp_path: Path,
):
    """A's first mail fails and its retry is due while A is paused; B sends it; A, resumed, sends nothing."""
    bookable = await bookable_account(nc, site.settings)
    env = {**settings_env, "SCHED_SMTP_URL": site.settings.smtp_url, "SCHED_HTTP_PORT": str(site.settings.http_port),
           "SCHED_WEBHOOK_RETRY_SCHEDULE": "3,0.5,1"}  # A's retry: due while it is paused
    mailbox.refuse_first = 1
    logs = [tmp_path / "a.log", tmp_path / "b.log"]

    async def holder_is(pid: int) -> bool:
        row = await pool.fetchrow("select holder from leases where name = 'notifier' and expires_at > now()")
        return row is not None and f":{pid}:" in row["holder"]

    a = start_notifier({**env, "SCHED_INSTANCE": "1"}, logs[0])
    procs = [a]
    try:
        await eventually(lambda: holder_is(a.pid), timeout=30, what="A to lead")
        b = start_notifier({**env, "SCHED_INSTANCE": "2"}, logs[1])
        procs.append(b)
        booked = await send(nc, site.settings, "create_event", bookable.event_body(weekday_at(2, 10)))
        assert booked["ok"], booked

        async def first_failed_second_sent() -> bool:  # as recorded by A: nothing left for B to resend
            row = await pool.fetchrow("select count(*) filter (where state = 'sent') as sent, count(*) filter"
                                      " (where state = 'pending' and attempt_count = 1) as failed from mail_outbox")
            return (row["sent"], row["failed"]) == (1, 1)

        await eventually(first_failed_second_sent, timeout=30, what="A's failed first mail and its second")
        assert mailbox.refused == 1 and len(mailbox.snapshot()) == 1
        os.kill(a.pid, signal.SIGSTOP)
        try:
            await eventually(lambda: holder_is(b.pid), timeout=30, what="B to take over")
            await eventually(lambda: len(mailbox.snapshot()) >= 2, timeout=30, what="B's retry of the failed mail")
            canceled = await send(nc, site.settings, "cancel_event", {**bookable.ids, "event_id": booked["result"]["id"],
                                                                      "cancel_reason": "paused"})
            assert canceled["ok"], canceled
            await eventually(lambda: len(mailbox.snapshot()) >= 4, timeout=30, what="B's cancellation mails")
        finally:
            os.kill(a.pid, signal.SIGCONT)
        await eventually(lambda: "lost its lease" in logs[0].read_text(), timeout=30, what="A to stand down")
        await asyncio.sleep(1)  # room for a stale mail to show up, were there one
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    ids = [m["Message-ID"] for m in mailbox.snapshot()]
    assert len(ids) == 4 and len(set(ids)) == 4


async def test_the_notifier_resumes_on_a_recreated_stream_and_sends_each_mail_once(
    site: Site, nc: nats.NATS, store: EventStore, mailbox: Mailbox,
):
    """SCHED_EVENTS deleted and rebuilt by the relay: the notifier notices, reads it again, sends nothing twice."""
    from services.relay.app import bootstrap as relay_bootstrap

    js = nc.jetstream()
    bookable = await bookable_account(nc, site.settings)
    async with relay_bootstrap(site.settings) as relay, notifier_bootstrap(site.settings) as notifier:
        await eventually(notifier.leading.is_set, what="the notifier to lead")
        first = await send(nc, site.settings, "create_event", bookable.event_body(weekday_at(2, 10)))
        assert first["ok"], first
        await eventually(lambda: len(mailbox.snapshot()) == 2, timeout=30, what="the first confirmations")
        # A repair first (a message lost mid-stream): the stream's sequences run well past the log's length,
        # so the rebuilt stream below numbers its messages lower than where the notifier stands.
        await js.delete_msg(site.settings.events_stream, 1)
        relay.request_check()
        logged = await store.head_position()

        async def read_the_repaired_stream() -> bool:
            last = (await js.stream_info(site.settings.events_stream)).state.last_seq
            return last > logged + 1 and notifier.position == last

        await eventually(read_the_repaired_stream, timeout=60, what="the repaired stream, read")
        created = notifier.stream_created
        await js.delete_stream(site.settings.events_stream)
        second = await send(nc, site.settings, "create_event", bookable.event_body(weekday_at(3, 10),
                                                                                  name="Second Guest"))
        assert second["ok"], second  # its publish fails: the relay rebuilds the stream from the log
        await eventually(lambda: len(mailbox.snapshot()) == 4, timeout=60, what="the second confirmations")
        assert relay.repairs >= 1 and notifier.stream_created != created
        await asyncio.sleep(1)  # room for a second copy of the first mails, were one sent
    ids = [m["Message-ID"] for m in mailbox.snapshot()]
    assert len(ids) == 4 and len(set(ids)) == 4
