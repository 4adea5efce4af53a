"""The soak's deployment: the real parts, each a process of its own on a free loopback port.

A private PostgreSQL cluster (`initdb` + `pg_ctl`, run as the `postgres` user when we are
root, since initdb refuses root) and a private `redis-server`, so the soak may restart both
without touching the machine's shared servers; the sandbox served by `python -m sandbox`; the
API under gunicorn as in production; `tinysync worker` and `tinysync beat`. Everything is
stopped by its own process id (a worker by its process group, which holds its pool).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import (
    ROOT,
    Proc,
    RedisServer,
    free_port,
    start_beat,
    tinysync,
    wait_until,
)

__all__ = [
    "Deployment",
    "PostgresCluster",
    "Proc",
    "RedisServer",
    "Unavailable",
    "free_port",
    "wait_until",
]


#: How long a restarted worker may take to be ready on a loaded machine.
STARTUP_SECONDS = 90.0


class Unavailable(RuntimeError):
    """A binary or account the soak needs is missing on this machine."""


def _pg_bindir() -> Path:
    """The directory of PostgreSQL's server binaries (initdb, pg_ctl, postgres)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb is None:
        raise Unavailable("PostgreSQL's initdb is not installed")
    return Path(os.path.realpath(initdb)).parent


class PostgresCluster:
    """A throwaway PostgreSQL cluster of our own, which the soak may stop and restart.

    Its data, socket and log live in a temporary folder owned by the user that runs the
    server. fsync is off: a clean `pg_ctl restart -m fast` is what the soak does, not a power
    cut, and the machine's disk is shared with other engineers' runs.
    """

    def __init__(self, port: int | None = None):
        self.bindir = _pg_bindir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tinysync-soak-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' user") from None
            if shutil.which("runuser") is None:
                raise Unavailable("running as root and runuser is missing")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")
        return result

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of `database` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PostgresCluster:
        """Create the cluster (trust authentication, loopback only)."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.root}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=400",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session at once, as a restart in production does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, down_seconds: float = 1.0) -> None:
        """Stop (fast), stay down a moment, start again on the same port."""
        self.stop("fast")
        time.sleep(down_seconds)
        self.start()

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Deployment:
    """The soak's processes, sharing one environment; `close()` stops what it started."""

    def __init__(self, env: Mapping[str, str], workdir: Path):
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        for name in ("CI", "PYTEST_CURRENT_TEST"):
            self.env.pop(name, None)
        self.workdir = workdir
        self.procs: dict[str, Proc] = {}
        self.died: dict[int, str] = {}  # pid -> what: processes that exited on their own
        self.killed: set[int] = set()
        self.api_url = ""
        self.sandbox_url = ""

    # -- the parts -----------------------------------------------------------------------
    def sandbox(self) -> str:
        """`python -m sandbox` on a free port; returns its base URL (admin under /_sandbox/)."""
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--quiet",
            "--strict-tokens",
            "--token",
            "soak-unused-account",
        ]
        proc = Proc("sandbox", args, self.env, self.workdir)
        self.procs["sandbox"] = proc
        proc.wait_for("Tiny API v2 sandbox on", timeout=30)
        self.sandbox_url = f"http://127.0.0.1:{port}"
        return self.sandbox_url

    def api(self, workers: int = 4, threads: int = 8) -> str:
        """gunicorn serving `cli:wsgi_app()`, as in production; returns its base URL."""
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "info",
            "cli:wsgi_app()",
        ]
        proc = Proc("api", args, self.env, self.workdir)
        self.procs["api"] = proc
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if proc.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{proc.output[-3000:]}")
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 60, "the API answering /healthz", interval=0.2)
        self.api_url = base
        return base

    def worker(self, name: str, concurrency: int) -> Proc:
        """A `tinysync worker` process, returned once ready (its log continues across kills)."""
        args = ["worker", f"--concurrency={concurrency}", f"--name={name}@%h"]
        proc = tinysync(name, args, self.env, self.workdir)
        self.procs[name] = proc
        proc.wait_for(" ready.", timeout=STARTUP_SECONDS)
        return proc

    def beat(self) -> Proc:
        """`tinysync beat`: the reaper and the periodic syncs."""
        proc = start_beat(self.env, self.workdir)
        self.procs["beat"] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children (a worker and its pool): no goodbye."""
        self.check_alive()
        self.killed.add(self.procs[name].process.pid)
        self.procs[name].kill(signal.SIGKILL)

    def check_alive(self) -> dict[int, str]:
        """Note every process that exited without being told to; returns all noted so far."""
        for name, proc in self.procs.items():
            code = proc.process.poll()
            pid = proc.process.pid
            if code is not None and pid not in self.died and pid not in self.killed:
                self.died[pid] = f"{name} (pid {pid}) exited with {code}"
        return self.died

    def log_files(self) -> list[Path]:
        """Every log our processes wrote."""
        return sorted(self.workdir.glob("*.log"))

    def close(self) -> None:
        """Stop every process (warm shutdown if quick, else SIGKILL)."""
        for proc in self.procs.values():
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others; say which one resisted
                print(f"could not stop {proc.name}: {exc}", file=sys.stderr)


def sandbox_admin(base: str, action: str, body: dict[str, Any] | None = None, **params: str) -> Any:
    """POST `body` (or GET with `params`) to the sandbox's /_sandbox/ admin surface."""
    url = f"{base}/_sandbox/{action}"
    if body is None:
        response = httpx.get(url, params=params, timeout=60)
    else:
        response = httpx.post(url, json=body, timeout=30)
    response.raise_for_status()
    return response.json()
