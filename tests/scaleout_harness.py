"""The scaled-out deployment for tests: one throwaway PostgreSQL cluster and one Chroma server per test session
(started by the first test that needs them), a new database per test, and memory servers on them."""

from __future__ import annotations

import threading

import pytest

from scripts.throwaway import ThrowawayChroma, ThrowawayPostgres, postgres_available

_lock = threading.Lock()
_servers: tuple[ThrowawayPostgres, ThrowawayChroma] | None = None


def servers() -> tuple[ThrowawayPostgres, ThrowawayChroma]:
    """The session's PostgreSQL cluster and Chroma server, started on first use."""
    global _servers
    with _lock:
        if _servers is None:
            if not postgres_available():
                pytest.fail("PostgreSQL binaries (initdb, pg_ctl) not found: install them or set MEMORY_PLUGIN_PG_BIN")
            postgres = ThrowawayPostgres(fast=True)
            try:
                _servers = (postgres, ThrowawayChroma())
            except BaseException:
                postgres.close()
                raise
        return _servers


def stop_servers() -> None:
    global _servers
    with _lock:
        if _servers is not None:
            for server in _servers:
                server.close()
            _servers = None
