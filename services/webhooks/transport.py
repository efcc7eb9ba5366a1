"""One delivery attempt over HTTP: resolve, refuse forbidden addresses, POST, read a bounded response.

The host is resolved here and the request goes to the address that was checked (the Host header
and TLS SNI keep the original name), so a DNS answer that changes between check and connect
(DNS rebinding) cannot steer a webhook to a private or loopback address. Redirects are not
followed: a 3xx is a failed attempt like any other non-2xx. Nothing here logs a header or a body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import NamedTuple

import httpx

from shared.domain.webhooks import address_refusal, host_refusal, literal_address

RESPONSE_LIMIT = 64 * 1024
USER_AGENT = "sched-webhooks/1.0"
MAX_ERROR_LENGTH = 500


class AttemptOutcome(NamedTuple):
    """What one attempt got: a status code, or an error, and how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered with a 2xx status."""
        return self.status_code is not None and 200 <= self.status_code < 300


class RefusedTarget(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


class PinnedTarget(NamedTuple):
    """A URL pinned to one checked address of its host, with the Host header and TLS SNI to keep."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


async def pin_target(url: str, allow_loopback: bool) -> PinnedTarget:
    """The URL rewritten to a checked address of its host; raises RefusedTarget or OSError (DNS)."""
    parsed = httpx.URL(url)
    host = parsed.host
    refusal = host_refusal(host, allow_loopback)
    if refusal is not None:
        raise RefusedTarget(f"refused: {host} is a {refusal} address")
    if literal_address(host) is not None:
        return PinnedTarget(parsed, {}, {})
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        refusal = address_refusal(address, allow_loopback)
        if refusal is not None:
            raise RefusedTarget(f"refused: {host} resolves to a {refusal} address")
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return PinnedTarget(parsed.copy_with(host=str(addresses[0])), {"host": parsed.netloc.decode("ascii")},
                        extensions)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_ERROR_LENGTH]


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
               allow_loopback: bool) -> AttemptOutcome:
    """POST `body` once; never raises for anything the network or the receiver does."""
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout):
            target = await pin_target(url, allow_loopback)
            async with client.stream("POST", target.url, content=body, headers={**headers, **target.headers},
                                     extensions=target.extensions) as response:
                status = response.status_code
                received = 0
                async for chunk in response.aiter_raw():  # read a bounded amount, then drop the rest
                    received += len(chunk)
                    if received >= RESPONSE_LIMIT:
                        break
    except TimeoutError:
        status, error = None, f"timed out after {timeout:g} s"
    except RefusedTarget as exc:
        error = str(exc)
    except httpx.HTTPError as exc:
        status, error = None, _describe(exc)
    except OSError as exc:  # DNS failures and sockets the client did not wrap
        status, error = None, _describe(exc)
    return AttemptOutcome(status, error, (time.perf_counter() - started) * 1000.0)
