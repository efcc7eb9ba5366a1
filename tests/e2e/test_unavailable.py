"""When the system cannot answer: a 503 with Retry-After within 10 s, never a 422, a 500 or a longer wait.

Stories: the query and command services are stopped while the gateway runs (every kind of request answers
503 with Retry-After within the bound); the read models are behind a client's own write (its read with
`X-Sched-Position` answers 503, over NATS a typed `unavailable` error: the client's input is fine).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import nats
import pytest

from shared.settings import Settings
from tests.integration.gateway_process import gateway_client
from tests.integration.messaging import new_account, send

pytestmark = pytest.mark.integration

CLIENT_BOUND = 10.0  # DESIGN section 8: an HTTP client never waits past 10 s


async def timed(request: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request  # type: ignore[misc]
    return response, time.monotonic() - started


async def test_with_the_query_and_command_services_stopped_every_request_answers_503_in_time(
    settings: Settings, settings_env: dict[str, str], nc: nats.NATS, tmp_path: Path
) -> None:
    """API reads (cached token or not), a command and a booking page: each a 503 with Retry-After by 10 s."""
    from projections.app import bootstrap as projections
    from services.commands.app import bootstrap as commands
    from services.query.app import bootstrap as queries

    async with projections(settings), gateway_client(settings_env, tmp_path) as http:
        services = AsyncExitStack()
        await services.enter_async_context(commands(settings))
        await services.enter_async_context(queries(settings))
        account = await new_account(nc, settings)
        ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
        link = (await send(nc, settings, "create_link", {**ids, "name": "Down Time"}))["result"]
        other = (await send(nc, settings, "issue_api_token", ids))["result"]
        auth = {"authorization": f"Bearer {account['token']}"}
        assert (await http.get("/v1/me", headers=auth)).status_code == 200  # the token is cached from here on
        await services.aclose()  # both services stop; NATS, Postgres and the gateway stay up

        answers = await asyncio.gather(
            timed(http.get(f"/v1/links/{link['id']}/slots", headers=auth)),
            timed(http.get("/v1/me", headers={"authorization": f"Bearer {other['token']}"})),
            timed(http.post("/v1/links", headers=auth, json={"name": "Not now"})),
            timed(http.get(urlsplit(link["url"]).path)))
    for response, waited in answers:
        assert response.status_code == 503, (response.request.url, response.status_code, response.text[:200])
        assert response.headers.get("retry-after") == "1", response.request.url
        assert waited <= CLIENT_BOUND, (response.request.url, waited)
    assert answers[3][0].headers["content-type"].startswith("text/html")


async def _link_ahead_of_the_reads(http: httpx.AsyncClient, nc: nats.NATS, settings: Settings,
                                   name: str) -> tuple[dict[str, Any], dict[str, str], httpx.Response]:
    """An account made while the projections ran (its token known to the gateway), then a link created once
    they stopped: the account, its auth header and the creation's response (its position out of the reads' reach)."""
    from projections.app import bootstrap as projections

    async with projections(settings):
        account = await new_account(nc, settings)
        auth = {"authorization": f"Bearer {account['token']}"}
        assert (await http.get("/v1/me", headers=auth)).status_code == 200
    created = await http.post("/v1/links", headers=auth, json={"name": name})
    assert created.status_code == 201, created.text
    return account, auth, created


async def test_a_read_behind_its_own_write_answers_503_with_retry_after_not_422(
    settings: Settings, settings_env: dict[str, str], nc: nats.NATS, command_service, query_service,
    tmp_path: Path
) -> None:
    """The projections stop; a write's position is then out of the read models' reach: 503 / `unavailable`."""

    async with gateway_client(settings_env, tmp_path) as http:
        account, auth, created = await _link_ahead_of_the_reads(http, nc, settings, "Ahead of the reads")
        position = created.headers["x-sched-position"]
        body = {"account_id": account["account_id"], "id": created.json()["id"], "min_position": int(position)}
        over_http, over_nats = await asyncio.gather(
            http.get(f"/v1/links/{created.json()['id']}", headers={**auth, "x-sched-position": position}),
            nc.request(f"{settings.query_subject_prefix}.link_get", msgspec.json.encode(body), timeout=9))
    assert over_http.status_code == 503, over_http.text
    assert over_http.headers.get("retry-after") == "1"
    assert "caught up" in over_http.text
    reply = msgspec.json.decode(over_nats.data)
    assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
    assert reply["error"]["fields"] == {"min_position": ["not reached in time"]}


async def test_a_read_behind_for_longer_than_one_query_wait_is_answered_once_the_reads_catch_up(
    settings: Settings, settings_env: dict[str, str], nc: nats.NATS, command_service, query_service,
    tmp_path: Path
) -> None:
    """The query service gives up after its own 3 s; the gateway asks again within its deadline, so a projection
    runner back after 4 s (a takeover) still answers the client, with its own write."""
    from projections.app import bootstrap as projections

    async with gateway_client(settings_env, tmp_path) as http:
        _, auth, created = await _link_ahead_of_the_reads(http, nc, settings, "Read me back")

        async def projections_back_after(seconds: float) -> None:
            await asyncio.sleep(seconds)
            async with projections(settings):
                await asyncio.sleep(3)

        back = asyncio.create_task(projections_back_after(4))
        read = await http.get(f"/v1/links/{created.json()['id']}",
                              headers={**auth, "x-sched-position": created.headers["x-sched-position"]})
        await back
    assert read.status_code == 200, read.text
    assert read.json()["name"] == "Read me back"
