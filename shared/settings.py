"""Process settings, read once from the environment."""

from __future__ import annotations

import os

import msgspec

from shared.catalogue.model import subject_prefix


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the servers are and how the NATS names are spelled.

    `nats_prefix` and `events_stream` default to the names DESIGN.md fixes (`sched.*`,
    `SCHED_EVENTS`); tests give each run its own so parallel systems never cross.
    """

    database_url: str = "postgresql://postgres@127.0.0.1:5432/sched"
    nats_url: str = "nats://127.0.0.1:4222"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    nats_prefix: str = "sched"
    events_stream: str = "SCHED_EVENTS"
    events_replicas: int = 1  # 3 on a three-node NATS cluster (`sched run --cluster`)
    calendar_partitions: int = 1  # the calendars read model split by provider (4 in cluster mode)
    command_workers: int = 32
    # Bytes the query service keeps of links' slots per day and of answers (SCHED_QUERY_DAYS_BYTES,
    # SCHED_QUERY_ANSWERS_BYTES): least recently used / oldest go first past them.
    query_days_bytes: int = 64 * 1024 * 1024
    query_answers_bytes: int = 32 * 1024 * 1024
    webhook_allow_loopback: bool = False
    # Seconds before each retry of a failed webhook delivery (then it is dead), and per-attempt timeout.
    webhook_retry_schedule: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 3600.0, 21600.0, 86400.0)
    webhook_timeout: float = 5.0
    # Check every command and query reply against the catalogue's response type (the test suite does).
    check_replies: bool = False
    # HMAC key of the invitees' manage links and the providers' feed URLs (SCHED_SIGNING_SECRET). No default:
    # the services that sign or verify refuse to start without it (shared.manage.require_signing_secret).
    signing_secret: str = ""
    # Outgoing mail: smtp:// or smtps://user:password@host:port (SCHED_SMTP_URL); empty: no mail is sent.
    smtp_url: str = ""
    mail_from: str = "sched <no-reply@sched.localhost>"
    # Where `make run`'s local mail catcher keeps the mail it caught (shown at /dev/mail); empty: no /dev/mail.
    mail_catcher_dir: str = ""

    @property
    def nats_servers(self) -> list[str]:
        """SCHED_NATS_URL may list a cluster's servers separated by commas."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def public_url(self) -> str:
        """Where booking pages live: the base of every link's `url`."""
        return f"http://{self.http_host}:{self.http_port}/book"

    @property
    def cmd_subject_prefix(self) -> str:
        """Where commands are asked for: `<prefix>.cmd.<name>` (the catalogue's rule)."""
        return subject_prefix(self.nats_prefix, "command")

    @property
    def query_subject_prefix(self) -> str:
        """Where queries are asked for: `<prefix>.query.<name>` (the catalogue's rule)."""
        return subject_prefix(self.nats_prefix, "query")

    @property
    def events_subject_prefix(self) -> str:
        """Where the relay publishes events: `<prefix>.events.<aggregate>.<type>`."""
        return f"{self.nats_prefix}.events"


def load_settings(**overrides: object) -> Settings:
    """Settings from `SCHED_*` environment variables, then explicit overrides."""
    env = os.environ
    values: dict[str, object] = {}
    for field, name in (
        ("database_url", "SCHED_DATABASE_URL"),
        ("nats_url", "SCHED_NATS_URL"),
        ("nats_prefix", "SCHED_NATS_PREFIX"),
        ("events_stream", "SCHED_EVENTS_STREAM"),
        ("http_host", "SCHED_HTTP_HOST"),
        ("signing_secret", "SCHED_SIGNING_SECRET"),
        ("smtp_url", "SCHED_SMTP_URL"),
        ("mail_from", "SCHED_MAIL_FROM"),
        ("mail_catcher_dir", "SCHED_MAIL_CATCHER_DIR"),
    ):
        if env.get(name):
            values[field] = env[name]
    if env.get("SCHED_HTTP_PORT"):
        values["http_port"] = int(env["SCHED_HTTP_PORT"])
    if env.get("SCHED_EVENTS_REPLICAS"):
        values["events_replicas"] = int(env["SCHED_EVENTS_REPLICAS"])
    if env.get("SCHED_CALENDAR_PARTITIONS"):
        values["calendar_partitions"] = int(env["SCHED_CALENDAR_PARTITIONS"])
    if env.get("SCHED_COMMAND_WORKERS"):
        values["command_workers"] = int(env["SCHED_COMMAND_WORKERS"])
    for field, name in (("query_days_bytes", "SCHED_QUERY_DAYS_BYTES"),
                        ("query_answers_bytes", "SCHED_QUERY_ANSWERS_BYTES")):
        if env.get(name):
            values[field] = int(env[name])
    if env.get("SCHED_WEBHOOK_ALLOW_LOOPBACK"):
        values["webhook_allow_loopback"] = env["SCHED_WEBHOOK_ALLOW_LOOPBACK"] in ("1", "true", "yes")
    if env.get("SCHED_WEBHOOK_RETRY_SCHEDULE"):  # e.g. "5,30,120,600,3600,21600,86400"
        values["webhook_retry_schedule"] = tuple(float(s) for s in env["SCHED_WEBHOOK_RETRY_SCHEDULE"].split(",")
                                                 if s.strip())
    if env.get("SCHED_CHECK_REPLIES"):
        values["check_replies"] = env["SCHED_CHECK_REPLIES"] in ("1", "true", "yes")
    if env.get("SCHED_WEBHOOK_TIMEOUT"):
        values["webhook_timeout"] = float(env["SCHED_WEBHOOK_TIMEOUT"])
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
