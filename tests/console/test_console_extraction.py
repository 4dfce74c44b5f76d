"""The console's Extraction view end to end: background jobs an LLM extractor could not do show as failed, with the
error and the LLM's raw output; an admin key queues them again; a tenant-bound key sees only its tenants' jobs.
A real memory server with the real LLM extractor over a scripted LLM, and headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from memory_plugin import Scope
from memory_plugin.llm_extraction import LLMExtractor
from tests.console.browser import Console
from tests.server_harness import RunningServer, running_server

pytestmark = pytest.mark.model
APP = "app-001"
STORE = "support"
UNUSABLE = "Sorry, I cannot answer in JSON today."


class SwitchableLLM:
    """An LLM that answers unusable text until it is mended, then one fact."""

    def __init__(self) -> None:
        self.mended = False

    def __call__(self, prompt: str) -> str:
        if not self.mended:
            return UNUSABLE
        return json.dumps({"memories": [{"action": "ADD", "type": "fact", "text": "The user likes green tea"}]})


@pytest.fixture(scope="module")
def llm() -> SwitchableLLM:
    return SwitchableLLM()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any, llm: SwitchableLLM) -> Iterator[RunningServer]:
    extractor = LLMExtractor(llm)
    with running_server(tmp_path_factory.mktemp("jobs"), real_embedder, extractor=extractor) as server:
        client = server.client()
        store = client.create_memory_store(STORE)
        for tenant in ("erin", "frank"):
            store.add(Scope(APP, tenant, "bot", "r1"), messages=[{"role": "user", "content": f"{tenant} likes tea"}],
                      sync=False)  # fmt: skip
        store.flush(timeout=60)
        client.close()
        yield server


def test_failed_jobs_show_their_error_and_raw_output_and_an_admin_retries_them(
    server: RunningServer, console: Console, llm: SwitchableLLM
) -> None:
    console.sign_in(server.key.key_id, server.secret)
    console.open(f"jobs?store={STORE}")
    failed = console.wait_for("main", "Failed (2)")
    assert "unusable output" in failed and f"{APP}/erin/bot/r1" in failed and f"{APP}/frank/bot/r1" in failed
    console.find("main details summary").click()
    console.wait_for("main details pre", UNUSABLE)
    console.screenshot("10-extraction-failed")

    llm.mended = True
    console.find("#retry-failed button").click()
    console.wait_for("main", "2 failed jobs queued again.")
    client = server.client()
    store = client.get_memory_store(STORE)
    assert store.flush(timeout=60)
    assert store.extraction_status() == []
    assert [m.text for m in store.list(Scope(APP, "erin", "*", "*")).items] == ["The user likes green tea"]
    client.close()
    console.open(f"jobs?store={STORE}")
    assert "Failed (0)" in console.wait_for("main", "Failed (0)")


def test_a_tenant_bound_key_sees_only_its_tenants_jobs_and_cannot_retry(
    server: RunningServer, console: Console, llm: SwitchableLLM
) -> None:
    llm.mended = False
    client = server.client()
    store = client.get_memory_store(STORE)
    for tenant in ("erin", "frank"):
        store.add(Scope(APP, tenant, "bot", "r2"), messages=[{"role": "user", "content": "more"}], sync=False)
    store.flush(timeout=60)
    client.close()
    key_id, secret = server.new_key(APP, ["erin"])
    console.sign_in(key_id, secret)
    console.open(f"jobs?store={STORE}")
    shown = console.wait_for("main", "Failed (1)")
    assert f"{APP}/erin/bot/r2" in shown and "frank" not in shown
    assert "Retrying failed jobs needs an admin key." in shown
    assert not console.driver.find_elements(By.ID, "retry-failed")
