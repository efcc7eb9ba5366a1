"""The `sched` command line: `migrate` applies every migration once, `docs` prints the generated documents."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import asyncpg
import pytest

from tests.conftest import ServerUrls, _with_database

pytestmark = pytest.mark.integration


async def _sched(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    return proc.returncode or 0, output.decode()


async def test_migrate_applies_every_migration_to_an_empty_database_once(servers: ServerUrls,
                                                                        settings_env: dict[str, str]) -> None:
    name = f"m_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f"create database {name}")
    await admin.close()
    url = _with_database(servers.database_admin_url, name)
    env = {**settings_env, "SCHED_DATABASE_URL": url}
    code, first = await _sched("migrate", env=env)
    assert code == 0 and "applied" in first, first
    code, again = await _sched("migrate", env=env)
    assert code == 0 and "up to date" in again, again
    conn = await asyncpg.connect(url)
    tables = {r["tablename"] for r in await conn.fetch("select tablename from pg_tables where schemaname = 'public'")}
    await conn.close()
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f"drop database {name} with (force)")
    await admin.close()
    assert {"events", "streams", "checkpoints", "rm_resources", "rm_reservations", "webhook_deliveries"} <= tables


async def test_docs_prints_the_asyncapi_and_openapi_documents(settings_env: dict[str, str]) -> None:
    code, text = await _sched("docs", "asyncapi", env=settings_env)
    assert code == 0
    document = json.loads(text)
    assert document["asyncapi"] == "3.0.0"
    prefix = settings_env["SCHED_NATS_PREFIX"]
    assert document["channels"]["create_event"]["address"] == f"{prefix}.cmd.create_event"
    code, text = await _sched("docs", "openapi", env=settings_env)
    assert code == 0 and "/v1/links/{link_id}/events" in json.loads(text)["paths"]


@pytest.mark.parametrize("module", ["services.commands", "services.query", "services.webhooks", "services.notifier"])
async def test_a_service_without_a_signing_secret_refuses_to_start(module: str,
                                                                   settings_env: dict[str, str]) -> None:
    env = {k: v for k, v in settings_env.items() if k != "SCHED_SIGNING_SECRET"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", module, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "refuses to start: SCHED_SIGNING_SECRET is not set" in output.decode()


async def test_the_gateway_without_a_signing_secret_refuses_to_start(settings_env: dict[str, str]) -> None:
    env = {k: v for k, v in settings_env.items() if k != "SCHED_SIGNING_SECRET"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app", "--port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "the gateway refuses to start" in output.decode()
