"""``memory-plugin serve`` as a process of its own, as a process manager runs it: health, readiness and metrics
without a key; SIGTERM drains the request in flight and closes the folder cleanly; a non-loopback address
without access keys is refused; the CLI's store commands work against it with ``--endpoint``."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_plugin import MemoryClient, Scope
from memory_plugin.cli import main
from memory_plugin.embedding import Embedder
from memory_plugin.errors import StoreLockedError
from tests.server_harness import FAKE_STORES, ServedProcess, serving, start_serve, wait_ready

SCOPE = Scope("app-001", "user-001", "assistant", "s1")
SLOW_STORES = FAKE_STORES + 'extractor = "tests.server.slow_extraction:SlowTurns"\n'


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run the CLI in this process; its exit code and its JSON output."""
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def create_key(capsys: pytest.CaptureFixture[str], folder: Path, *flags: str) -> tuple[str, str]:
    code, out = cli(capsys, "keys", "create", "--path", str(folder), "--app", "app-001", *flags)
    assert code == 0, out
    return out["items"][0]["key_id"], out["items"][0]["secret"]


def test_health_readiness_and_metrics_then_sigterm_drains_and_closes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_embedder: Embedder
) -> None:
    folder, marker = tmp_path / "data", tmp_path / "extracting"
    key_id, secret = create_key(capsys, folder, "--admin")
    with serving(folder, SLOW_STORES, env={"SLOW_EXTRACTION_MARKER": str(marker)}) as served:
        assert httpx.get(served.url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(served.url + "/readyz").json() == {"status": "ready"}
        client = MemoryClient(endpoint=served.url, access_key_id=key_id, access_key_secret=secret)
        store = client.create_memory_store("notes")
        answers: list[Any] = []
        add = threading.Thread(
            target=lambda: answers.append(store.add(SCOPE, messages=[{"role": "user", "content": "I drink tea"}]))
        )
        add.start()
        while not marker.exists():  # the add is in flight, inside the extractor
            assert add.is_alive(), answers
            threading.Event().wait(0.05)
        metrics = httpx.get(served.url + "/metrics").text
        assert 'memory_plugin_requests_total{operation="CreateStore",status="200"} 1' in metrics
        assert "memory_plugin_request_duration_seconds_bucket" in metrics
        assert "# TYPE memory_plugin_pending_extraction_jobs gauge" in metrics
        assert served.terminate() == 0
        add.join(timeout=60)
        client.close()
    assert [m.text for m in answers[0].memories] == ["I drink tea"]  # answered, not cut off
    log = served.log.read_text()
    assert "Waiting for application shutdown" in log and "Traceback" not in log and secret not in log
    with MemoryClient(path=folder, embedder=fake_embedder) as embedded:  # the folder was let go, and kept the add
        assert [m.text for m in embedded.get_memory_store("notes").list(SCOPE).items] == ["I drink tea"]


def serve_on_every_address(folder: Path) -> subprocess.CompletedProcess[str] | ServedProcess:
    """``serve --host 0.0.0.0``: the finished process if it refused to start, else the running one."""
    served = start_serve(folder, host="0.0.0.0")
    try:
        served.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        return served
    return subprocess.CompletedProcess(served.process.args, served.process.returncode, served.log.read_text())


def test_a_non_loopback_address_needs_an_access_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    refused = serve_on_every_address(folder)
    assert isinstance(refused, subprocess.CompletedProcess) and refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without access keys" in refused.stdout
    key_id, _ = create_key(capsys, folder)
    assert cli(capsys, "keys", "revoke", "--path", str(folder), key_id)[0] == 0
    revoked_only = serve_on_every_address(folder)  # a revoked key is no key
    assert isinstance(revoked_only, subprocess.CompletedProcess) and revoked_only.returncode == 2
    create_key(capsys, folder)
    served = serve_on_every_address(folder)
    assert isinstance(served, ServedProcess)
    wait_ready(served)
    assert httpx.get(served.url + "/v1/stores").status_code == 401  # and every call needs the key
    assert served.terminate() == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServedProcess]]:
    folder = tmp_path_factory.mktemp("cli") / "data"
    with serving(folder) as served:
        yield folder, served


def test_the_cli_runs_against_a_server_that_owns_the_folder(
    server: tuple[Path, ServedProcess], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, served = server
    key_id, secret = create_key(capsys, folder, "--admin")  # keys work while the server owns the folder
    monkeypatch.setenv("MEMORY_PLUGIN_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("MEMORY_PLUGIN_ACCESS_KEY_SECRET", secret)
    code, added = cli(capsys, "--endpoint", served.url, "add", "--store", "cli", "--scope", str(SCOPE),
                      "--message", "user:My sister lives in Lisbon")  # fmt: skip
    assert code == 0 and [row["text"] for row in added["items"]] == ["My sister lives in Lisbon"]
    monkeypatch.setenv("MEMORY_PLUGIN_ENDPOINT", served.url)  # the environment alone names the server too
    code, found = cli(capsys, "search", "--store", "cli", "--scope", "app-001/*/*/*", "where does the sister live")
    assert code == 0 and found["items"][0]["text"] == "My sister lives in Lisbon"
    assert found["items"][0]["scope"] == str(SCOPE)
    code, stores = cli(capsys, "stores")
    assert code == 0 and [s["name"] for s in stores["items"]] == ["cli"]
    code, refused = cli(capsys, "--path", str(folder), "list", "--store", "cli", "--scope", str(SCOPE))
    assert code == 2 and refused["error"]["type"] == StoreLockedError.__name__  # --path: the folder, held


def test_the_cli_names_what_is_missing_to_reach_a_server(
    server: tuple[Path, ServedProcess], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEMORY_PLUGIN_ACCESS_KEY_ID", raising=False)
    code, refused = cli(capsys, "--endpoint", server[1].url, "stores")
    assert code == 2 and refused["error"]["field"] == "access_key_id"
    monkeypatch.setenv("MEMORY_PLUGIN_ACCESS_KEY_ID", "mpk_unknown")
    monkeypatch.setenv("MEMORY_PLUGIN_ACCESS_KEY_SECRET", "not-the-secret")
    code, refused = cli(capsys, "--endpoint", server[1].url, "stores")
    assert code == 2 and refused["error"]["type"] == "AuthenticationError"
    assert "not-the-secret" not in json.dumps(refused)
