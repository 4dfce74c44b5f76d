"""Fixtures for the LangChain adapter tests: real engine stores in temp folders (fake or real embedder) and the
runtime context agents are invoked with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory_plugin import Embedder, MemoryClient, MemoryStore, Scope, Settings
from tests.conftest import opened

APP = "app-lc"
AGENT = "assistant"


@dataclass
class UserContext:
    """The runtime context schema the test agents use."""

    tenant_id: str
    run_id: str


def scope(tenant: str = "alice", run: str = "s1", agent: str = AGENT) -> Scope:
    return Scope(app_id=APP, tenant_id=tenant, agent_id=agent, run_id=run)


@pytest.fixture
def store(tmp_path: Path, fake_embedder: Embedder) -> Iterator[MemoryStore]:
    """A memory store on the deterministic fake embedder, for logic tests."""
    with MemoryClient(path=tmp_path / "data", embedder=fake_embedder) as client:
        yield client.create_memory_store("langchain", description="adapter tests")


@pytest.fixture
def real_store(
    request: pytest.FixtureRequest, tmp_path: Path, real_embedder: Embedder, backend: str
) -> Iterator[MemoryStore]:
    """A memory store on the real local model (loaded once per session), for end-to-end and quality tests: in this
    process, and on a memory server reached with the remote client (the adapters work over either unchanged). The
    server's key is of the test module's ``SERVER_APP``, else of ``APP``."""
    app_id = getattr(request.module, "SERVER_APP", APP)
    with opened(backend, tmp_path / "real", real_embedder, Settings(), app_id=app_id) as client, client:
        yield client.create_memory_store("langchain_real", description="adapter end-to-end tests")
