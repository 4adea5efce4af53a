"""Real processes for the worker tests and the benchmarks: a private Redis, and worker, beat and
Flower processes started with the `tinysync` CLI, as docker-compose does, and stopped by their
own ids. Like `celery.contrib.testing`, this is for tests: nothing here ships in the product.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The repository's root (tests/support/ is two levels down).
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `condition()` until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g}s")
        time.sleep(interval)


class RedisServer:
    """A private `redis-server` on a free port, without persistence, that can be restarted."""

    def __init__(self, workdir: Path, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not on PATH")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The redis:// URL of database `db`."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers."""
        import redis

        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / f"redis-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, 10, f"redis-server on port {self.port} answering")
        client.close()
        return self

    def stop(self) -> None:
        """Stop the server (its data is gone: no persistence)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop, stay down a moment, start again on the same port."""
        self.stop()
        time.sleep(down_seconds)
        self.start()


class Proc:
    """A process started in its own session, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], workdir: Path):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                env=dict(env),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a kill reaches its pool processes
            )

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the output contains `text`; fail early with the log if the process died."""

        def seen() -> bool:
            if text in self.output:
                return True
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.output[-3000:]}")
            return False

        try:
            wait_until(seen, timeout, f"{self.name} printing {text!r}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; its output:\n{self.output[-3000:]}") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process and its children (its process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """A warm shutdown if it comes quickly, else SIGKILL."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def tinysync(name: str, command: list[str], env: Mapping[str, str], workdir: Path) -> Proc:
    """Run `tinysync COMMAND…` (the CLI of docker-compose) as a process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return Proc(name, [sys.executable, "-m", "cli", *command], full_env, workdir)


def start_worker(
    env: Mapping[str, str],
    workdir: Path,
    name: str = "worker",
    concurrency: int = 1,
    pool: str = "threads",
) -> Proc:
    """A `tinysync worker` process (threads, as documented, or prefork), once ready for tasks."""
    proc = tinysync(
        name,
        ["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--name={name}@%h"],
        env,
        workdir,
    )
    proc.wait_for(" ready.")
    return proc


def start_beat(env: Mapping[str, str], workdir: Path, name: str = "beat") -> Proc:
    """A `tinysync beat` process, returned once it is ticking."""
    proc = tinysync(name, ["beat", f"--schedule={workdir / (name + '.schedule')}"], env, workdir)
    proc.wait_for("beat: Starting")
    return proc


def start_flower(env: Mapping[str, str], workdir: Path, port: int, name: str = "flower") -> Proc:
    """A `tinysync flower` process with its API open, returned once it serves."""
    env = {**env, "FLOWER_UNAUTHENTICATED_API": "true"}
    proc = tinysync(name, ["flower", f"--port={port}"], env, workdir)
    proc.wait_for("Visit me at")
    return proc
