"""Fixtures: real Postgres and NATS, started once per test session, fresh database per test.

Where they come from, in order: SCHED_DATABASE_URL / SCHED_NATS_URL when set; testcontainers
when a Docker engine answers; otherwise the embedded servers (shared/servers.py), which need
nothing but the installed wheels. Unit tests request none of these and run without servers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import pytest

from projections import migrations
from shared.eventstore import EventStore, create_pool, migrate
from shared.settings import Settings, load_settings


@dataclass(frozen=True)
class ServerUrls:
    database_admin_url: str  # a database we may CREATE DATABASE from
    nats_url: str


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no usable Docker, however it fails
        return False


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerUrls]:
    env_db, env_nats = os.environ.get("SCHED_DATABASE_URL"), os.environ.get("SCHED_NATS_URL")
    stack: list[object] = []
    root: Path | None = None
    try:
        if env_db and env_nats:
            yield ServerUrls(env_db, env_nats)
            return
        if _docker_available():
            from testcontainers.core.container import DockerContainer
            from testcontainers.postgres import PostgresContainer

            pg = PostgresContainer("postgres:16", username="postgres", password="postgres", dbname="sched")
            pg.start()
            stack.append(pg)
            nc = DockerContainer("nats:2.10").with_command("-js").with_exposed_ports(4222)
            nc.start()
            stack.append(nc)
            db_url = (f"postgresql://postgres:postgres@{pg.get_container_host_ip()}:"
                      f"{pg.get_exposed_port(5432)}/sched")
            yield ServerUrls(db_url, f"nats://{nc.get_container_host_ip()}:{nc.get_exposed_port(4222)}")
            return
        from shared.servers import EmbeddedNats, EmbeddedPostgres

        root = Path(tempfile.mkdtemp(prefix="sched-test-"))
        pg_server = EmbeddedPostgres(root / "pg", durable=False).start()
        stack.append(pg_server)
        nats_server = EmbeddedNats(root / "nats").start()
        stack.append(nats_server)
        yield ServerUrls(pg_server.url, nats_server.url)
    finally:
        for item in reversed(stack):
            item.stop()  # type: ignore[attr-defined]
        if root is not None:
            pg_server.remove()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(servers: ServerUrls) -> str:
    """A migrated database that every test's fresh database is copied from."""
    name = f"sched_tpl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f"create database {name}")
    await admin.close()
    conn = await asyncpg.connect(_with_database(servers.database_admin_url, name))
    await migrate(conn, migrations())
    await conn.close()
    return name


@pytest.fixture
async def database_url(servers: ServerUrls, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f"create database {name} template {template_database}")
    await admin.close()
    yield _with_database(servers.database_admin_url, name)
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f"drop database if exists {name} with (force)")
    await admin.close()


# Every service refuses to start without a signing secret: the test session makes up its own.
SESSION_SIGNING_SECRET = secrets.token_urlsafe(48)


@pytest.fixture
def settings(servers: ServerUrls, database_url: str) -> Settings:
    """Settings of one test's system: its own database and its own NATS subjects and stream."""
    tag = uuid.uuid4().hex[:10]
    return load_settings(database_url=database_url, nats_url=servers.nats_url, nats_prefix=f"t{tag}",
                         events_stream=f"T{tag.upper()}_EVENTS", check_replies=True,
                         signing_secret=SESSION_SIGNING_SECRET)


@pytest.fixture
def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that points a subprocess at this test's system."""
    return {**os.environ, "SCHED_DATABASE_URL": settings.database_url, "SCHED_NATS_URL": settings.nats_url,
            "SCHED_NATS_PREFIX": settings.nats_prefix, "SCHED_EVENTS_STREAM": settings.events_stream,
            "SCHED_CHECK_REPLIES": "1", "SCHED_SIGNING_SECRET": settings.signing_secret}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=2, max_size=30)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture
async def nc(servers: ServerUrls) -> AsyncIterator[nats.NATS]:
    conn = await nats.connect(servers.nats_url)
    yield conn
    await conn.close()


@pytest.fixture
async def command_service(settings: Settings) -> AsyncIterator[object]:
    """One command service instance of this test's system, in this process."""
    from services.commands.app import bootstrap

    async with bootstrap(settings) as app:
        yield app


@pytest.fixture
async def query_service(settings: Settings) -> AsyncIterator[object]:
    """One query service instance of this test's system, in this process."""
    from services.query.app import bootstrap

    async with bootstrap(settings) as app:
        yield app


@pytest.fixture
async def projector(settings: Settings) -> AsyncIterator[object]:
    """Every projection following the log in the background, as `python -m projections` does."""
    from projections.app import bootstrap

    async with bootstrap(settings) as runner:
        yield runner
