"""examples/langchain_agent_chatbot.py: the scripted demo runs offline and shows recall across sessions; the
interactive chat falls back to the offline model when no LLM is configured."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from memory_plugin import Embedder, MemoryClient

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langchain_agent_chatbot.py"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("langchain_agent_chatbot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(__import__("sys").modules, spec.name, module)  # dataclasses resolve names through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.model
def test_demo_recalls_across_sessions_and_never_across_users(
    example: ModuleType, tmp_path: Path, real_embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert example.main(["--demo", "--path", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    friday, bob = out.split("== alice, session 'friday'")[1].split("== bob, session 'monday'")
    recalled = [line for line in friday.splitlines() if "[recalled]" in line]
    assert any("I'm allergic to peanuts" in line for line in recalled)
    assert any("I live in Lisbon" in line for line in recalled)
    assert "From our earlier chats I remember:" in friday
    assert "[recalled]" not in bob and "I don't know anything about you yet." in bob
    assert "4 messages kept for alice's monday session" in out


def test_interactive_chat_falls_back_to_the_offline_model(
    example: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_embedder: Embedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("OPENAI_API_KEY", "OLLAMA_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert example.real_model() is None
    lines = iter(["I live in Porto.", "/session two", "Where do I live?", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(lines))
    monkeypatch.setattr(example, "MemoryClient", lambda path: MemoryClient(path=path, embedder=fake_embedder))
    assert example.main(["--path", str(tmp_path / "chat"), "--user", "zoe"]) == 0
    out = capsys.readouterr().out
    assert "using the scripted offline model" in out
    assert "bot> From our earlier chats I remember: I live in Porto." in out
