"""The notifier: SCHED_EVENTS -> a mail outbox in Postgres -> SMTP, the webhook dispatcher's pattern.

Intake: a durable JetStream consumer; each batch becomes, in one transaction, one outbox row per
(domain event, recipient) holding the exact message, plus the stream position read up to. Messages
are acknowledged only after that commit, and the consumer restarts from the committed position, so
a notifier killed at any moment loses nothing. Sender: sends pending rows in outbox order and
records each outcome on the row; a failure is retried on the webhook schedule, then the mail is
dead. A mail interrupted between sending and recording is sent again with the same Message-ID (at
least once).

One notifier is active: the holder of the `notifier` lease (shared/lease.py); the others stand by and
one takes over within a lease's length of the holder's death or pause. A holder paused past its lease
that resumes writes nothing and sends at most the one mail it had passed its check for when paused (a
repeat with the same Message-ID): it checks `lease.held()` right before each mail, every write (intake
position with its outbox rows, each outcome) is a transaction fenced by the lease's token, and each
term reads through its own consumer (`notifier-<token>`), so a stale holder takes no message from the
new one.

A recreated SCHED_EVENTS (deleted, then rebuilt by the relay's repair, numbering from 1 again) is
noticed at the start of each term and whenever the consumer is gone or the stream went back (the
intake then restarts): the intake reads the new stream from the start, and the outbox, unique per
(event, recipient), keeps every mail once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import msgspec
import nats
from nats.js import JetStreamContext

from projections.calendars import queries as calendars
from services.notifier.mails import KINDS, Booking, Recipient, outbox_messages
from shared.calendar_files import Person, appointment_entry, event_entry
from shared.domain.registry import stream_kind
from shared.feed import Envelope, ensure_events_stream, stream_incarnation, term_consumer
from shared.lease import Lease, LeaseLost, serve_terms
from shared.lifecycle import sleep_unless_stopped
from shared.manage import manage_urls, view_url
from shared.messages.events import (
    AppointmentCanceled,
    AppointmentRescheduled,
    EventCanceled,
    EventRescheduled,
    decode_event,
)
from shared.settings import Settings

log = logging.getLogger("sched.notifier")

CONSUMER = "notifier"
LEASE = "notifier"
STANDBY_POLL_SECONDS = 0.2
JITTER = 0.2
_envelope = msgspec.json.Decoder(Envelope)
# CRLF line ends; headers folded only past 200 characters (a subject stays on its line in most clients)
SMTP_POLICY = policy.SMTP.clone(max_line_length=200)


class SmtpTarget(msgspec.Struct, frozen=True):
    """Where mail goes: host, port, TLS from the start (smtps), optional credentials, clear-text login allowed."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    insecure: bool = False


class InsecureLogin(smtplib.SMTPException):
    """The server offers no STARTTLS and the URL does not allow sending credentials in clear."""


SCHEMES = ("smtp", "smtps", "smtp+insecure")


def smtp_target(url: str) -> SmtpTarget:
    """`smtp://user:pass@host:port`, `smtps://…` or `smtp+insecure://…` (SCHED_SMTP_URL) as a target."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError("SCHED_SMTP_URL must be smtp://[user:password@]host[:port], smtps://… or smtp+insecure://…")
    tls = parts.scheme == "smtps"
    return SmtpTarget(parts.hostname, parts.port or (465 if tls else 25), tls,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None,
                      insecure=parts.scheme == "smtp+insecure")


def send_blocking(target: SmtpTarget, message: bytes, sender: str, recipient: str, timeout: float) -> None:
    """Hand one message to the SMTP server; credentials go only over TLS (STARTTLS) unless the URL allows clear."""
    client: smtplib.SMTP
    if target.tls:
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    with client:
        client.ehlo()
        if not target.tls and target.username:
            if client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            elif not target.insecure:
                raise InsecureLogin(f"{target.host}:{target.port} offers no STARTTLS: refusing to send the SMTP "
                                    "credentials in clear (use smtp+insecure:// to allow it)")
        if target.username:
            client.login(target.username, target.password or "")
        client.sendmail(sender, [recipient], message)


async def _fold(conn: asyncpg.Connection, stream_id: str, version: int) -> Any:
    kind = stream_kind(stream_id)
    rows = await conn.fetch("select data from events where stream_id = $1 and version <= $2 order by version",
                            stream_id, version)
    return kind.fold(kind.state_type(), [decode_event(r["data"]) for r in rows])


class Notifier:
    """One process's notifier: intake and sender while it holds the `notifier` lease (`lease` None: unfenced)."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, settings: Settings,
                 lease: Lease | None = None) -> None:
        self.pool = pool
        self.lease = lease
        self.js = js
        self.settings = settings
        self.public_url = settings.public_url
        self.target = smtp_target(settings.smtp_url) if settings.smtp_url else None
        self.sender = send_blocking  # tests put a fake here
        self.position = 0
        self.stream_created: str | None = None
        self.leading = asyncio.Event()
        self.wake = asyncio.Event()
        self.rng = random.Random()
        self._sub: JetStreamContext.PullSubscription | None = None

    # --- intake -------------------------------------------------------------------------------------

    async def _write(self, sql: str, *args: object) -> None:
        """One write, fenced by the lease when there is one."""
        if self.lease is None:
            await self.pool.execute(sql, *args)
        else:
            await self.lease.execute(self.pool, sql, *args)

    async def start_intake(self) -> None:
        """(Re)create this term's durable consumer right after the committed intake position.

        A stream recreated since that position was written (another creation time) is read from the
        start: its sequences begin at 1 again.
        """
        stream = self.settings.events_stream
        await ensure_events_stream(self.js, self.settings)
        row = await self.pool.fetchrow("select sequence, stream_created from mail_intake where stream = $1", stream)
        self.position, known = (int(row["sequence"]), row["stream_created"]) if row else (0, None)
        created = await stream_incarnation(self.js, self.settings)
        if known != created:
            if known is not None:
                log.warning("SCHED_EVENTS was recreated; the notifier reads it again from the start")
                self.position = 0
            await self._write("insert into mail_intake (stream, sequence, stream_created) values ($1, $2, $3)"
                              " on conflict (stream) do update set sequence = excluded.sequence,"
                              " stream_created = excluded.stream_created", stream, self.position, created)
        self.stream_created = created
        sub, self._sub = self._sub, None  # until a new one is made, `run_intake` knows to start again
        if sub is not None:
            with contextlib.suppress(Exception):  # the server may be away: the subscription is gone anyway
                await sub.unsubscribe()
        token = self.lease.token if self.lease is not None else None
        self._sub = await term_consumer(self.js, self.settings, CONSUMER, token, self.position)

    async def _stream_replaced(self) -> bool:
        """Whether the stream we read is gone or another one now (deleted and recreated, say)."""
        try:
            info = await self.js.stream_info(self.settings.events_stream)
        except nats.js.errors.NotFoundError:
            return True
        return str(info.created) != self.stream_created or info.state.last_seq < self.position

    async def intake_step(self, wait: float = 1.0) -> int:
        """Turn the next batch into outbox rows, commit, then acknowledge; return how many messages it held."""
        assert self._sub is not None
        try:
            messages = await self._sub.fetch(1, timeout=wait)
        except (TimeoutError, nats.errors.TimeoutError):
            if await self._stream_replaced():  # a pull on a deleted consumer just times out: look
                await self.start_intake()
            return 0
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            messages += await self._sub.fetch(199, timeout=0.005)
        last, queued = self.position, False
        async with self.pool.acquire() as conn, conn.transaction():
            if self.lease is not None:
                await self.lease.fence(conn)
            for message in messages:
                sequence = message.metadata.sequence.stream
                if sequence <= last:
                    continue  # a redelivery of what is already committed
                envelope = _envelope.decode(message.data)
                if envelope.type in KINDS:
                    try:
                        queued |= await self._enqueue(conn, envelope)
                    except Exception:  # a bug must not stall every mail behind one event
                        log.exception("cannot build the mails of event %s (%s); not sent", envelope.id,
                                      envelope.type)
                last = sequence
            if last > self.position:
                await conn.execute("insert into mail_intake (stream, sequence) values ($1, $2)"
                                   " on conflict (stream) do update set sequence = excluded.sequence",
                                   self.settings.events_stream, last)
        self.position = last
        await messages[-1].ack()
        if queued:
            self.wake.set()
        return len(messages)

    async def _enqueue(self, conn: asyncpg.Connection, envelope: Envelope) -> bool:
        event = decode_event(envelope.data)
        state = await _fold(conn, envelope.stream_id, envelope.version)
        if state.created is None:
            return False
        reason = (event.cancel_reason if isinstance(event, EventCanceled | AppointmentCanceled)
                  else event.reschedule_reason if isinstance(event, EventRescheduled | AppointmentRescheduled) else None)
        secret = self.settings.signing_secret
        if envelope.stream_id.startswith("event-"):
            created = state.created
            entry = event_entry(state, envelope.version, self.public_url, secret)
            title = created.link.name
            scheduler = created.scheduler
            recipients = [Recipient(scheduler.display_name, scheduler.email or "", scheduler.time_zone, True)]
            hosts = await calendars.providers(conn, created.provider_ids)
            for provider_id in created.provider_ids:
                row = hosts.get(provider_id)
                email = row["email"] if row else (created.organizer.email if provider_id == created.provider_ids[0]
                                                  else None)
                zone = msgspec.json.decode(row["schedule"])["time_zone"] if row else created.organizer.time_zone
                name = row["display_name"] if row else created.organizer.display_name
                if email:
                    recipients.append(Recipient(name, email, zone, False))
            booking_id, start_at = created.event_id, state.start_at
        else:
            created = state.created
            service = await _fold(conn, f"service-{created.service_id}", 1_000_000)
            title = service.created.name if service.created else "Appointment"
            row = (await calendars.providers(conn, [created.provider_id])).get(created.provider_id)
            provider = Person(row["display_name"], row["email"]) if row else Person("", None)
            entry = appointment_entry(state, envelope.version, title, provider, self.public_url, secret)
            recipients = [Recipient(created.client.display_name, created.client.email, created.client.time_zone, True)]
            if row and row["email"]:
                recipients.append(Recipient(row["display_name"], row["email"],
                                            msgspec.json.decode(row["schedule"])["time_zone"], False))
            booking_id, start_at = created.appointment_id, state.start_at
        links = manage_urls(self.public_url, secret, booking_id, start_at)
        booking = Booking(title, entry, links["reschedule_url"], links["cancel_url"],
                          view_url(self.public_url, secret, booking_id, start_at), reason)
        kind = KINDS[envelope.type]
        rows = []
        for email, message in outbox_messages(kind, booking, recipients, self.settings.mail_from, envelope.id,
                                              envelope.occurred_at):
            try:
                rows.append((envelope.id, email, kind, message.as_bytes(policy=SMTP_POLICY)))
            except Exception:  # one recipient's bad message never drops the others'
                log.exception("cannot encode the %s mail of event %s to %s; not sent", kind, envelope.id, email)
        await conn.executemany("insert into mail_outbox (event_id, recipient, kind, message) values ($1, $2, $3, $4)"
                               " on conflict (event_id, recipient) do nothing", rows)
        return bool(rows)

    async def run_intake(self, stop: asyncio.Event) -> None:
        """Follow the stream until `stop`; after an error, resume from the committed position."""
        while not stop.is_set():
            try:
                if self._sub is None:  # a restart failed half-way (NATS away): start again before reading
                    await self.start_intake()
                await self.intake_step()
            except Exception:
                log.exception("notifier intake failed; resuming from the committed position")
                await sleep_unless_stopped(stop, 0.5)
                with contextlib.suppress(Exception):
                    await self.start_intake()

    # --- sender -------------------------------------------------------------------------------------

    async def send_pending(self, stop: asyncio.Event) -> None:
        """Send every due pending mail in outbox order; each outcome is recorded on its row."""
        rows = await self.pool.fetch("select seq, recipient, message, attempt_count from mail_outbox where"
                                     " state = 'pending' and next_attempt_at <= now() order by seq limit 100")
        for row in rows:
            if stop.is_set():
                return
            if self.target is None:
                return  # no SMTP server configured: the mail waits in the outbox
            if self.lease is not None and not self.lease.held():
                raise LeaseLost(self.lease.name)  # paused past our lease: the new holder sends it
            try:
                await asyncio.to_thread(self.sender, self.target, row["message"], _address(self.settings.mail_from),
                                        row["recipient"], self.settings.webhook_timeout * 2)
            except InsecureLogin as exc:
                log.error("mail %d to %s not sent: %s", row["seq"], row["recipient"], exc)
                await self._failed(row, exc)
                continue
            except (OSError, smtplib.SMTPException) as exc:
                await self._failed(row, exc)
                continue
            except Exception as exc:  # an unexpected failure counts as one attempt: it never blocks the queue
                log.exception("mail %d to %s failed unexpectedly", row["seq"], row["recipient"])
                await self._failed(row, exc)
                continue
            await self._write("update mail_outbox set state = 'sent', attempt_count = attempt_count + 1,"
                                    " sent_at = now(), last_error = null where seq = $1", row["seq"])

    async def _failed(self, row: Any, exc: BaseException) -> None:
        """Record one failed attempt: retried on the webhook schedule, then dead."""
        attempt = row["attempt_count"] + 1
        schedule = self.settings.webhook_retry_schedule
        error = (str(exc) or type(exc).__name__)[:500]
        if attempt > len(schedule):
            await self._write("update mail_outbox set state = 'dead', attempt_count = $2,"
                                    " last_error = $3 where seq = $1", row["seq"], attempt, error)
            log.warning("mail %d to %s is dead after %d attempts: %s", row["seq"], row["recipient"], attempt, error)
            return
        delay = schedule[attempt - 1] * self.rng.uniform(1 - JITTER, 1 + JITTER)
        await self._write("update mail_outbox set attempt_count = $2, last_error = $3,"
                                " next_attempt_at = $4 where seq = $1", row["seq"], attempt, error,
                                datetime.now(UTC) + timedelta(seconds=delay))

    async def run_sender(self, stop: asyncio.Event) -> None:
        """Send what is due now, then whenever the intake queues more, and at least every second."""
        while not stop.is_set():
            try:
                await self.send_pending(stop)
            except LeaseLost:
                log.warning("the notifier's lease is no longer ours: no more mail from this instance")
                return
            except Exception:
                log.exception("sending mail failed; trying again shortly")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            try:
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            self.wake.clear()

    # --- leadership ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work while holding the lease, until `stop`; stand by while another instance holds it."""
        assert self.lease is not None, "a running notifier is a single-active role: give it its lease"
        await serve_terms(self.lease, stop, self._lead, "notifier", STANDBY_POLL_SECONDS)

    async def _lead(self, stop: asyncio.Event) -> None:
        assert self.lease is not None and self.lease.token is not None
        token, work_stop = self.lease.token, asyncio.Event()

        async def watch() -> None:
            """End the term on `stop`, or as soon as the lease is no longer ours."""
            assert self.lease is not None
            while not stop.is_set() and self.lease.held() and self.lease.token == token:
                await sleep_unless_stopped(stop, STANDBY_POLL_SECONDS)
            if not stop.is_set():
                log.warning("notifier lost its lease (token %d); standing by", token)
            work_stop.set()

        try:
            await self.start_intake()
            self.leading.set()
            log.info("notifier leading (lease token %d) from stream sequence %d", token, self.position)
            await asyncio.gather(self.run_intake(work_stop), self.run_sender(work_stop), watch())
        finally:
            work_stop.set()
            self.leading.clear()
            if self._sub is not None:
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()
                self._sub = None


def _address(mail_from: str) -> str:
    """The bare address of `Name <address>`."""
    return mail_from.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in mail_from else mail_from.strip()
