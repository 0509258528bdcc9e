"""A throwaway PostgreSQL server that a test (or a benchmark) owns and may break.

``PrivatePostgres`` runs ``initdb`` and ``pg_ctl`` on a temporary directory, on a free
loopback port, with ``fsync=off`` and trust authentication. The test can then stop the
server cleanly, crash it (SIGKILL to the postmaster and its children), freeze it
(SIGSTOP: it accepts TCP connections but never answers), thaw, restart and finally
remove it::

    pg = PrivatePostgres()
    pg.start()
    try:
        pool = ConnectionPool(pg.url, ...)
        pg.kill9()
        pg.start()           # crash recovery, same port, same data
    finally:
        pg.remove()          # thaws, stops (immediate) and deletes the directory

API: ``start()``, ``stop(mode="fast"|"immediate"|"smart")``, ``restart()``, ``kill9()``,
``freeze()``/``thaw()`` (or ``with pg.frozen():``), ``remove()``; ``url``, ``port``,
``pid``, ``running``, ``is_frozen``; ``init()`` makes the data directory only.

Run as root, every server command goes through ``runuser -u postgres --`` (the server
refuses to run as root) and the directory is handed to that user (a ``root`` you pass
must be reachable by it). After ``kill9()`` the stale lock files are removed when the
postmaster is gone or a zombie (a container's PID 1 may never reap it, and the server
refuses to start while the pid in ``postmaster.pid`` exists).

``template=`` copies an already initialised data directory instead of running
``initdb`` (about 0.3 s instead of 1 to 3 s): make one with ``PrivatePostgres().init()``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

__all__ = ["PostgresUnavailableError", "PrivatePostgres", "find_bindir"]

PG_ROOT = Path("/usr/lib/postgresql")
OS_USER = "postgres"  # the account the server runs as when we are root


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries (or the account to run them as) are missing."""


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``,
    else the directory of ``initdb`` on the PATH; ``None`` if there is neither."""
    if PG_ROOT.is_dir():
        versions = sorted(
            (d for d in PG_ROOT.iterdir() if (d / "bin" / "initdb").exists()),
            key=lambda d: tuple(int(p) if p.isdigit() else 0 for p in d.name.split(".")),
        )
        if versions and (versions[-1] / "bin" / "pg_ctl").exists():
            return versions[-1] / "bin"
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: in a container whose PID 1 does not
    reap, a killed postmaster stays a zombie for ever)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    state = stat.rpartition(")")[2].split()[0]  # the name, in parentheses, may hold spaces
    return state not in ("Z", "X")


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


class PrivatePostgres:
    """A private PostgreSQL server in a temporary directory (see the module docstring).

    Args:
        root: the directory to use (created if needed); by default a new one under
            the system's temporary directory (short, so the Unix socket path fits).
        port: the TCP port on 127.0.0.1; by default a free one, kept across restarts.
        template: a data directory made by ``init()`` to copy instead of ``initdb``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        template: str | os.PathLike[str] | None = None,
    ) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailableError("no initdb/pg_ctl found (install postgresql)")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            if shutil.which("runuser") is None:
                raise PostgresUnavailableError("running as root, and runuser is missing")
            try:
                pwd.getpwnam(OS_USER)
            except KeyError:
                raise PostgresUnavailableError(
                    f"running as root, and no {OS_USER!r} user"
                ) from None
        self.bindir = bindir
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="lgr-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self.data = self.root / "data"
        self.log = self.root / "log"
        self.port = port or _free_port()
        self.template = None if template is None else Path(template)
        self._frozen: list[int] = []

    # ---- what tests use

    @property
    def url(self) -> str:
        """The server's URL: user ``postgres`` (no password), database ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, from ``postmaster.pid``, if that process runs."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid is not None and _alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def is_frozen(self) -> bool:
        return bool(self._frozen)

    def init(self) -> Path:
        """Create the data directory (copy ``template``, or ``initdb``) if there is none."""
        if not (self.data / "PG_VERSION").exists():
            if self.template is not None:
                self._run("cp", "-a", str(self.template), str(self.data))
            else:
                self._run(
                    str(self.bindir / "initdb"),
                    *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
                    "--no-sync",
                )
        return self.data

    def start(self) -> PrivatePostgres:
        """Start the server (after ``init()`` if needed) and wait until it accepts
        connections; after ``kill9()`` this is the crash recovery."""
        self.init()
        if self.running:
            return self
        self._drop_stale_pidfile()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.log), "-w", "-t", "30", "start", "-o", options)
        return self

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """``pg_ctl stop -m <mode>``: "fast" disconnects every client and shuts down
        cleanly, "immediate" quits without a checkpoint (recovery at the next start)."""
        self.thaw()  # a frozen server cannot stop
        if self.running:
            self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> PrivatePostgres:
        """Thaw, stop ("fast") if running, and start again on the same port."""
        self.stop("fast")
        return self.start()

    def kill9(self) -> None:
        """SIGKILL the postmaster and every child, as a crash would: clients see their
        connections drop and new connections refused, until ``start()``."""
        pid = self.pid
        if pid is None:
            return
        _signal(pid, signal.SIGKILL)  # first, so that it forks nothing more
        children = self._children(pid)
        for child in children:
            _signal(child, signal.SIGKILL)
        self._frozen = []
        self._wait_dead([pid, *children])

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every child: the kernel still accepts TCP
        connections, but nothing answers. Always ``thaw()`` in a ``finally``."""
        pid = self.pid
        if pid is None:
            raise RuntimeError("the server is not running")
        _signal(pid, signal.SIGSTOP)  # first: a stopped postmaster forks no new backend
        self._frozen = [pid, *self._children(pid)]
        for child in self._frozen[1:]:
            _signal(child, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what ``freeze()`` stopped (a no-op if it is not frozen)."""
        frozen, self._frozen = self._frozen, []
        for pid in reversed(frozen):  # children first, the postmaster last
            _signal(pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """``freeze()`` for the ``with`` block, thawed whatever happens."""
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    def remove(self) -> None:
        """Thaw, stop ("immediate", SIGKILL if that fails) and delete the directory."""
        self.thaw()
        try:
            if self.running:
                self._pg_ctl("-m", "immediate", "-w", "-t", "10", "stop")
        except subprocess.CalledProcessError:
            self.kill9()
        finally:
            if self.running:
                self.kill9()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "frozen" if self.is_frozen else "running" if self.running else "stopped"
        return f"PrivatePostgres(port={self.port}, root={str(self.root)!r}, {state})"

    # ---- internals

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", OS_USER, "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise subprocess.CalledProcessError(
                done.returncode, argv, done.stdout, f"{done.stderr}\n--- server log ---\n{log}"
            )

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def _chown(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, OS_USER, OS_USER)

    def _children(self, pid: int) -> list[int]:
        found = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in found.stdout.split()]

    def _wait_dead(self, pids: list[int]) -> None:
        gone = threading.Event()
        for _ in range(500):
            if not any(_alive(p) for p in pids):
                break
            gone.wait(0.01)  # SIGKILL lands within milliseconds; bounded at 5 s
        else:
            raise RuntimeError(f"postgres processes {pids} survived SIGKILL")
        self._drop_stale_pidfile()

    def _drop_stale_pidfile(self) -> None:
        # After SIGKILL postmaster.pid and the socket's lock file stay behind. The server
        # ignores stale ones, but not ones naming a zombie (a container's PID 1 may never
        # reap): it would refuse to start ("lock file already exists"). A dead
        # postmaster's lock files go.
        if self.pid is None:
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            (self.root / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)
