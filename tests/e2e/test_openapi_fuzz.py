"""schemathesis against /openapi.json over every operation: no 5xx, no response breaking its own schema."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import nats
import pytest

from shared.settings import Settings
from tests.integration.booking_setup import bookable_account
from tests.integration.messaging import send

pytestmark = pytest.mark.integration


async def test_schemathesis_finds_no_server_errors_and_no_schema_breaks(http: httpx.AsyncClient, nc: nats.NATS,
                                                                         settings: Settings):
    account = await bookable_account(nc, settings)
    token = (await send(nc, settings, "issue_api_token", {**account.ids}))["result"]["token"]
    document = (await http.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations >= 40
    schemathesis = Path(sys.executable).parent / "st"
    proc = await asyncio.create_subprocess_exec(
        str(schemathesis), "run", str(http.base_url).rstrip("/") + "/openapi.json", "-H", f"Authorization: Bearer {token}",
        "-H", f"X-SavvyCal-Account: {account.ids['account_id']}", "-n", "5", "--generation-deterministic",
        "-c", "not_a_server_error,response_schema_conformance,status_code_conformance", "--request-timeout", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await proc.communicate()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert f"Tested: {operations}" in text, text[-2000:]
