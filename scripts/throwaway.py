"""Throwaway PostgreSQL and Chroma servers for tests, benchmarks and ``make scaleout-demo``: started from this
machine's binaries in a temp folder, on loopback, and stopped (their folders removed) when done.

PostgreSQL refuses to run as root, so when this process is root the cluster runs as the unprivileged ``nobody``
(through ``runuser``), in a folder it owns; otherwise it runs as the current user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("MEMORY_PLUGIN_PG_BIN", "/usr/lib/postgresql/15/bin"))
UNPRIVILEGED = "nobody"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_available() -> bool:
    return (POSTGRES_BIN / "initdb").exists() and (POSTGRES_BIN / "pg_ctl").exists()


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp folder, listening on ``127.0.0.1:port`` only (no Unix socket), trusting
    local connections as ``postgres``. ``fast=True`` turns off fsync (tests: the cluster dies with them anyway)."""

    def __init__(self, fast: bool = False) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="memory-plugin-pg-"))
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.folder, user=UNPRIVILEGED)
        self.data = self.folder / "data"
        unsafe = " -c fsync=off -c synchronous_commit=off" if fast else ""
        self._options = f"-p {self.port} -h 127.0.0.1 -k ''{unsafe}"
        self._run(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "-N")  # fmt: skip
        self.start()
        self._databases = 0

    def _run(self, *command: str) -> None:
        full = ["runuser", "-u", UNPRIVILEGED, "--", *command] if self._as_root else list(command)
        done = subprocess.run(full, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t",
                  "60", "-o", self._options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def new_database(self) -> str:
        """A new empty database; returns its connection string."""
        import psycopg

        self._databases += 1
        name = f"memory_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayChroma:
    """``chroma run`` (from the installed chromadb wheel) in a temp folder on ``127.0.0.1:port``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="memory-plugin-chroma-"))
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = ("import sys; from chromadb.cli.cli import app; "
                   f"sys.argv = ['chroma', 'run', '--path', {str(self.folder / 'data')!r}, '--host', '127.0.0.1', "
                   f"'--port', '{self.port}']; app()")  # fmt: skip
        log = open(self.folder / "log", "ab")  # noqa: SIM115  (the child writes it for its whole life)
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        self._process = subprocess.Popen([sys.executable, "-c", command], stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError as e:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "log").read_text()[-2000:]
                    raise RuntimeError(f"chroma run did not start: {log}") from e
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=30)
            self._process = None

    def wipe(self) -> None:
        """Stop the server, lose everything it held, and start it again empty on the same port."""
        self.stop()
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
