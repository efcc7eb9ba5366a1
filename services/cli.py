"""The `sched` command line: run the whole system, manage accounts, serve one service."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

STATE_DIR = Path(".sched")
URLS_FILE = STATE_DIR / "urls.env"
SECRET_FILE = STATE_DIR / "signing_secret"  # the HMAC key of the manage links, made once by `sched run`
RUN_PG_PORT = 55432
RUN_NATS_PORT = 54222
RUN_MAIL_PORT = 54025  # make run's local mail catcher, when SCHED_SMTP_URL is not set
SERVICES = {
    "commands": [sys.executable, "-m", "services.commands"],
    "relay": [sys.executable, "-m", "services.relay"],
    "projections": [sys.executable, "-m", "projections"],
    "query": [sys.executable, "-m", "services.query"],
    "webhooks": [sys.executable, "-m", "services.webhooks"],
    "notifier": [sys.executable, "-m", "services.notifier"],
    "gateway": [sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app", "--no-access-log",
                "--log-level", "warning"],
}


def project_signing_secret(create: bool = False) -> str | None:
    """The project's signing secret in .sched/signing_secret (mode 0600), made on first use when `create`."""
    if SECRET_FILE.exists():
        secret = SECRET_FILE.read_text().strip()
        if secret:
            return secret
    if not create:
        return None
    STATE_DIR.mkdir(exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    os.chmod(SECRET_FILE, 0o600)  # also when the file was there (empty) with a wider mode
    return secret


def load_urls_file() -> None:
    """Adopt the URLs and the signing secret `make run` wrote, unless the environment already sets them."""
    if not os.environ.get("SCHED_SIGNING_SECRET") and (secret := project_signing_secret()):
        os.environ["SCHED_SIGNING_SECRET"] = secret
    if not URLS_FILE.exists():
        return
    for line in URLS_FILE.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.startswith("SCHED_") and value and not os.environ.get(key):
            os.environ[key] = value


async def migrate_all(database_url: str) -> list[str]:
    """Apply every migration (the event store's, the dispatcher's, each read model's); return those applied."""
    import asyncpg

    from projections import migrations
    from shared.eventstore import migrate

    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn, migrations())
    finally:
        await conn.close()


def migrate_command(args: argparse.Namespace) -> int:
    """`sched migrate`: apply every migration to SCHED_DATABASE_URL."""
    from shared.settings import load_settings

    load_urls_file()
    try:
        applied = asyncio.run(migrate_all(load_settings().database_url))
    except OSError as exc:
        print(f"cannot reach Postgres ({exc}); start the system with `make run` or set SCHED_DATABASE_URL",
              file=sys.stderr)
        return 1
    print("\n".join(f"applied {name}" for name in applied) or "the database is up to date")
    return 0


def docs_command(args: argparse.Namespace) -> int:
    """`sched docs asyncapi|openapi`: print a document generated from the operation catalogue."""
    from shared.catalogue.asyncapi import asyncapi_document
    from shared.catalogue.openapi import openapi_document
    from shared.settings import load_settings

    settings = load_settings()
    document = (asyncapi_document(settings.nats_prefix, settings.events_stream) if args.document == "asyncapi"
                else openapi_document())
    print(json.dumps(document, indent=2))
    return 0


class Commands:
    """A one-shot command runner (`python -m services.commands.oneshot`) straight against the database."""

    def __enter__(self) -> Self:
        self.process = subprocess.Popen([sys.executable, "-m", "services.commands.oneshot"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=os.environ.copy())
        return self

    def execute(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The command's reply; OSError when the runner is gone (no database to reach)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"name": name, "body": body}).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise OSError("the command runner stopped") from None
        line = self.process.stdout.readline()
        if not line:
            raise OSError("the command runner stopped")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def __exit__(self, *_: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def account_create(args: argparse.Namespace) -> int:
    """`sched account create`: print account_id, user_id, provider_id, token (and team_scope_id)."""
    load_urls_file()
    body: dict[str, Any] = {"command_id": f"cli-{uuid.uuid4()}", "name": args.name, "email": args.email,
                            "time_zone": args.time_zone}
    if args.team_slug:
        body["team_slug"] = args.team_slug
    try:
        with Commands() as commands:
            reply = commands.execute("create_account", body)
    except OSError as exc:
        print(f"cannot reach Postgres ({exc}); start the system with `make run` or set SCHED_DATABASE_URL",
              file=sys.stderr)
        return 1
    if not reply["ok"]:
        print(json.dumps(reply["error"], indent=2), file=sys.stderr)
        return 2
    result = reply["result"]
    keys = ["account_id", "user_id", "provider_id", "token"] + (["team_scope_id"] if args.team_slug else [])
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    return 0


def seed_demo(commands: Commands) -> dict[str, Any]:
    """The demo account, its schedule and a link; safe to repeat (fixed command ids) and prints a fresh token."""
    account = commands.execute("create_account", {"command_id": "demo-account", "name": "Demo Organizer",
                                               "email": "demo@example.com", "time_zone": "America/New_York",
                                               "team_slug": "demo-team", "team_name": "Demo Team"})
    if not account["ok"]:
        raise RuntimeError(f"could not create the demo account: {account['error']}")
    result = account["result"]
    ids = {"account_id": result["account_id"], "user_id": result["user_id"]}
    if not result.get("token"):  # the account exists from an earlier run; tokens are shown once, so issue one
        token = commands.execute("issue_api_token", {"command_id": f"demo-token-{uuid.uuid4()}", **ids})
        result["token"] = token["result"]["token"]
    commands.execute("set_provider_schedule", {
        "command_id": "demo-schedule", **ids, "provider_id": result["provider_id"], "time_zone": "America/New_York",
        "weekly_rules": [{"day_of_week": d, "start_time": "09:00", "end_time": "17:00"}
                         for d in ("monday", "tuesday", "wednesday", "thursday", "friday")],
        "public_bookings": {"enabled": True}})
    link = commands.execute("create_link", {"command_id": "demo-link", **ids, "name": "Demo Meeting",
                                         "durations": [30, 60], "time_zone": "America/New_York"})
    result["link_id"] = link["result"]["id"] if link["ok"] else None
    result["link_url"] = link["result"]["url"] if link["ok"] else None
    return result


def _wait_http(url: str, timeout: float, tick: Callable[[], None] = lambda: None) -> bool:
    """Whether `url` answers 200 within `timeout`; `tick` runs between tries (the supervisor restarts
    whatever exits meanwhile, so one service crashing at start-up does not fail the whole start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _server_component(role: str, instance: int, server: Any) -> Any:
    """A supervised embedded server: started (and restarted) by its `start()`, stopped by its `stop()`."""
    from shared.supervisor import Component

    def start() -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = server.start().proc
        return proc

    return Component(role=role, instance=instance, port=server.port, start=start, stop=lambda _proc: server.stop())


def _service_component(role: str, instance: int, command: list[str], env: dict[str, str],
                       port: int | None = None) -> Any:
    """A supervised service process with its own environment (its instance number in SCHED_INSTANCE)."""
    from shared.supervisor import Component, terminate

    return Component(role=role, instance=instance, port=port, stop=terminate,
                     start=lambda: subprocess.Popen(command, env=env))


async def _wait_for_jetstream(urls: list[str], timeout: float) -> None:
    """Wait until JetStream answers (a cluster first elects its meta leader)."""
    import nats

    deadline = time.monotonic() + timeout
    while True:
        try:
            nc = await nats.connect(urls, connect_timeout=2, max_reconnect_attempts=1)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except Exception:  # not ready yet, whatever the reason
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    """`sched run` (`make run`): servers, migrations, every service, the demo account, all supervised.

    With `--cluster` (`make cluster`): three NATS nodes, SCHED_EVENTS with 3 replicas and
    `--instances` (default 2) of every service, gateways on consecutive ports from 8000.
    """
    from shared.servers import EmbeddedNats, EmbeddedPostgres, ServerStartError
    from shared.supervisor import Supervisor

    STATE_DIR.mkdir(exist_ok=True)
    if not os.environ.get("SCHED_SIGNING_SECRET"):  # every child signs or checks links with the project's secret
        os.environ["SCHED_SIGNING_SECRET"] = project_signing_secret(create=True) or ""
    cluster = bool(getattr(args, "cluster", False))
    instances = max(1, int(getattr(args, "instances", 2))) if cluster else 1
    supervisor = Supervisor(state_file=STATE_DIR / ("cluster.json" if cluster else "processes.json"))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not os.environ.get("SCHED_DATABASE_URL"):
            pg = EmbeddedPostgres(STATE_DIR / "postgres",
                                  port=int(os.environ.get("SCHED_EMBEDDED_PG_PORT", RUN_PG_PORT)))
            supervisor.add(_server_component("postgres", 0, pg))
            os.environ["SCHED_DATABASE_URL"] = pg.url
        if not os.environ.get("SCHED_NATS_URL"):
            base = int(os.environ.get("SCHED_EMBEDDED_NATS_PORT", RUN_NATS_PORT))
            if cluster:
                routes = [base + 100 + i for i in range(3)]
                nodes = [EmbeddedNats(STATE_DIR / "nats" / f"node{i + 1}", port=base + i, name=f"sched-{i + 1}",
                                      cluster_port=routes[i], routes=routes) for i in range(3)]
            else:
                nodes = [EmbeddedNats(STATE_DIR / "nats", port=base)]
            for i, node in enumerate(nodes):
                supervisor.add(_server_component("nats", i + 1 if cluster else 0, node))
            os.environ["SCHED_NATS_URL"] = ",".join(node.url for node in nodes)
        if cluster:
            os.environ.setdefault("SCHED_EVENTS_REPLICAS", "3")
            os.environ.setdefault("SCHED_CALENDAR_PARTITIONS", "4")
        os.environ.setdefault("SCHED_WEBHOOK_ALLOW_LOOPBACK", "1")
        if not os.environ.get("SCHED_SMTP_URL"):  # a real SMTP server on loopback; /dev/mail lists what it caught
            mail_port = os.environ.get("SCHED_MAIL_CATCHER_PORT", str(RUN_MAIL_PORT))
            mail_dir = str((STATE_DIR / "mail").resolve())
            supervisor.add(_service_component(
                "mailcatcher", 0, [sys.executable, "-m", "services.notifier.catcher", "--dir", mail_dir, "--port",
                                   mail_port], dict(os.environ), int(mail_port)))
            os.environ["SCHED_SMTP_URL"] = f"smtp://127.0.0.1:{mail_port}"
            os.environ["SCHED_MAIL_CATCHER_DIR"] = mail_dir
        host = os.environ.get("SCHED_HTTP_HOST", "127.0.0.1")
        first_port = int(os.environ.get("SCHED_HTTP_PORT", "8000"))
        http_urls = [f"http://{host}:{first_port + i}" for i in range(instances)]
        URLS_FILE.write_text(f"SCHED_DATABASE_URL={os.environ['SCHED_DATABASE_URL']}\n"
                             f"SCHED_NATS_URL={os.environ['SCHED_NATS_URL']}\nSCHED_HTTP_URL={http_urls[0]}\n")
        asyncio.run(migrate_all(os.environ["SCHED_DATABASE_URL"]))
        asyncio.run(_wait_for_jetstream(os.environ["SCHED_NATS_URL"].split(","), timeout=60))
        with Commands() as commands:
            demo = seed_demo(commands)
        for name, command in SERVICES.items():
            for i in range(instances):
                env = {**os.environ, "SCHED_INSTANCE": str(i + 1)}
                port = first_port + i if name == "gateway" else None
                extra = ["--host", host, "--port", str(port)] if port else []
                supervisor.add(_service_component(name, i + 1 if cluster else 0, command + extra, env, port))
        for url in http_urls:
            if not _wait_http(f"{url}/health", timeout=120 if cluster else 30, tick=supervisor.tick):
                print(f"the gateway {url} did not answer /health in time; see the output above", file=sys.stderr)
                return 1
        gateways = "\n".join(f"  HTTP gateway     {url}   (health: {url}/health)" for url in http_urls)
        print(f"""
sched is running{f" as a cluster ({instances} instances of every service)" if cluster else ""}.
{gateways}
  Postgres         {os.environ['SCHED_DATABASE_URL']}
  NATS             {os.environ['SCHED_NATS_URL']}   (commands: sched.cmd.<name>, events: SCHED_EVENTS)
  URLs written to  {URLS_FILE}{f"; processes in {STATE_DIR / 'cluster.json'}" if cluster else ""}

Demo account {demo['account_id']}  (user {demo['user_id']}, provider {demo['provider_id']}, link {demo['link_id']})
Demo token:  {demo['token']}
Booking page {demo['link_url']}   (the demo link's page; caught mail at {http_urls[0]}/dev/mail)

A process that exits is restarted. Ctrl-C stops everything.""", flush=True)
        while not stopping:
            supervisor.tick()
            time.sleep(0.2)
        return 0
    except ServerStartError as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop_all()


def projections_command(args: argparse.Namespace) -> int:
    """`sched projections status` / `sched projections rebuild [NAME]`, against the running system."""
    from projections import PROJECTIONS, runnable
    from projections.runner import rebuild, status
    from shared.eventstore import create_pool
    from shared.settings import load_settings

    load_urls_file()

    async def go() -> int:
        database_url = load_settings().database_url
        await migrate_all(database_url)
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            if args.action == "rebuild":
                names = [args.name] if args.name else list(PROJECTIONS)
                unknown = [n for n in names if n not in PROJECTIONS]
                if unknown:
                    print(f"unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}", file=sys.stderr)
                    return 2
                for name in names:
                    started = time.monotonic()
                    count = await rebuild(pool, PROJECTIONS[name])
                    print(f"rebuilt {name}: {count} events in {time.monotonic() - started:.2f}s")
            for row in await status(pool, runnable(load_settings().calendar_partitions)):
                print(f"{row['name']:<12} position {row['position']:>10}  head {row['head']:>10}  lag {row['lag']:>8}")
            return 0
        finally:
            await pool.close()

    try:
        return asyncio.run(go())
    except OSError as exc:
        print(f"cannot reach Postgres ({exc}); start the system with `make run` or set SCHED_DATABASE_URL",
              file=sys.stderr)
        return 1


def serve(args: argparse.Namespace) -> int:
    """`sched serve NAME`: run one service in the foreground (for deployment)."""
    load_urls_file()
    extra = []
    if args.service == "gateway":
        extra = ["--host", os.environ.get("SCHED_HTTP_HOST", "127.0.0.1"), "--port", os.environ.get("SCHED_HTTP_PORT", "8000")]
    return subprocess.call(SERVICES[args.service] + extra)


def main(argv: list[str] | None = None) -> int:
    """The `sched` command line."""
    parser = argparse.ArgumentParser(prog="sched", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start Postgres, NATS and every service; seed a demo account")
    run_parser.add_argument("--cluster", action="store_true",
                            help="three NATS nodes, SCHED_EVENTS with 3 replicas, several instances of every service")
    run_parser.add_argument("--instances", type=int, default=2, help="instances of every service with --cluster")
    run_parser.set_defaults(func=run)
    account = commands.add_parser("account", help="manage accounts").add_subparsers(dest="action", required=True)
    create = account.add_parser("create", help="create an account, its first user, provider and token")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--team-slug")
    create.add_argument("--time-zone", default="Etc/UTC")
    create.set_defaults(func=account_create)
    projections_parser = commands.add_parser("projections", help="read models: status, rebuild")
    projection_actions = projections_parser.add_subparsers(dest="action", required=True)
    projection_actions.add_parser("status", help="position and lag per projection").set_defaults(
        func=projections_command)
    rebuild_parser = projection_actions.add_parser("rebuild", help="rebuild from position 0 while the system runs")
    rebuild_parser.add_argument("name", nargs="?")
    rebuild_parser.set_defaults(func=projections_command)
    commands.add_parser("migrate", help="apply every migration").set_defaults(func=migrate_command)
    docs = commands.add_parser("docs", help="print a generated API document")
    docs.add_argument("document", choices=["asyncapi", "openapi"])
    docs.set_defaults(func=docs_command)
    serve_parser = commands.add_parser("serve", help="run one service in the foreground")
    serve_parser.add_argument("service", choices=sorted(SERVICES))
    serve_parser.set_defaults(func=serve)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
