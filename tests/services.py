"""Real servers for tests: a throwaway PostgreSQL cluster and a Dask scheduler with workers.

Both run as child processes on 127.0.0.1, on random free ports, in temporary directories; every
wait is bounded and teardown is by PID (SIGTERM, then SIGKILL). When the binaries are missing
the tests that need them are skipped with a message saying what to install.

* PostgreSQL: Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin/initdb`` and
  ``postgres``). The server refuses to run as root, so under root it runs as the ``postgres``
  system user (created by the package); the data directory and the unix-socket directory live in a
  temporary directory owned by that user; authentication ``trust`` on 127.0.0.1 only.
* Dask: ``python -m distributed.cli.dask_scheduler`` and ``python -m distributed.cli.dask_worker
  --no-nanny`` (so a worker's PID is the worker itself and SIGKILL really loses it), with
  ``PYTHONPATH=<repo>/src`` so workers import this checkout's alertlab.
"""

from __future__ import annotations

import contextlib
import glob
import json
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

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this checkout's ``src`` first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def stop(proc: subprocess.Popen, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop one child by its PID: ``sig``, wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --------------------------------------------------------------------------------------- PostgreSQL


def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` holding initdb and postgres, or None."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        p = Path(d)
        if (p / "initdb").exists() and (p / "postgres").exists():
            with contextlib.suppress(ValueError):
                found.append((float(p.parent.name), p))
    return max(found)[1] if found else None


class PostgresServer:
    """A PostgreSQL server in a temp dir on a random port; ``url`` is a SQLAlchemy URL (no driver)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="alertlab-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._user = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and no 'postgres' user to run the server as") from None
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)

    def _popen(self, args: list[str], **kw) -> subprocess.Popen:
        if self._user is not None:
            kw.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return subprocess.Popen(args, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        data = self.root / "data"
        p = self._popen(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise RuntimeError(f"initdb did not finish in {timeout:g} s") from None
        if p.returncode != 0:
            raise RuntimeError(f"initdb failed: {err.decode(errors='replace')[-500:]}")
        self.proc = self._popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited: {self.proc.stderr.read().decode(errors='replace')[-500:]}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                if self._ready():
                    return self
            time.sleep(0.2)
        self.close()
        raise RuntimeError(f"postgres did not accept connections within {timeout:g} s")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
            ) as con:
                con.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """A fresh database; returns its URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=15, sig=signal.SIGINT)  # "fast shutdown"
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------------------- Dask


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class DaskCluster:
    """A real ``dask scheduler`` plus worker processes on 127.0.0.1 (see the module docstring)."""

    def __init__(self, n_workers: int = 2, threads: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="alertlab-dask-"))
        self.threads = threads
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._n = n_workers

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(self.root / log, "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=self.root,
            env=child_env(ALERTLAB_THREADS="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        return p

    def start(self, timeout: float = 60.0) -> DaskCluster:
        self.scheduler = self._spawn(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-dashboard",
                "--no-show",
            ],
            "scheduler.log",
        )
        for _ in range(self._n):
            self.add_worker()
        self.wait_workers(self._n, timeout)
        return self

    def add_worker(self) -> subprocess.Popen:
        k = len(self.workers)
        p = self._spawn(
            [
                "distributed.cli.dask_worker",
                self.address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                str(self.threads),
                "--no-nanny",
                "--no-dashboard",
                "--memory-limit",
                "0",
                "--death-timeout",
                "60",
                "--local-directory",
                str(self.root / f"w{k}"),
                "--name",
                f"w{k}",
            ],
            f"worker{k}.log",
        )
        self.workers.append(p)
        return p

    def alive_workers(self) -> list[subprocess.Popen]:
        return [p for p in self.workers if p.poll() is None]

    def wait_workers(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as c:
            c.wait_for_workers(n, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        """Scheduler's view: worker address → PID."""
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            return c.run(os.getpid)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.root.glob("*.log")
        )

    def close(self) -> None:
        for p in self.workers:  # throwaway processes: no graceful close needed
            stop(p, sig=signal.SIGKILL)
        if self.scheduler is not None:
            stop(self.scheduler)
        shutil.rmtree(self.root, ignore_errors=True)


def dump(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
