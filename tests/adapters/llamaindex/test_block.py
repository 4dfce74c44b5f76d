"""``MemoryPluginBlock`` inside LlamaIndex's ``Memory``, against the real engine and the real local model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import Memory

from llama_index_memory_plugin import MemoryPluginBlock
from memory_plugin import Embedder, InvalidScopeError, MemoryClient, MemoryStore, TurnExtractor
from memory_plugin.extraction import ExtractionInput, MemoryOperation
from tests.conftest import SCOPE

pytestmark = pytest.mark.model
RUN_1 = SCOPE.with_(run_id="run-1")
RUN_2 = SCOPE.with_(run_id="run-2")
OTHER_TENANT = SCOPE.with_(tenant_id="user-002")


def user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


TURNS = [
    user("I'm allergic to peanuts, please remember that."),
    assistant("Understood, no peanuts for you."),
    user("My sister Maria is visiting from Madrid next week."),
    assistant("How lovely, enjoy the visit!"),
    user("I usually run 5k along the river before work."),
    assistant("Great habit!"),
]


def small_memory(session_id: str, block: MemoryPluginBlock) -> Memory:
    """A ``Memory`` whose FIFO overflows after a few turns, so it hands older turns to the block."""
    return Memory.from_defaults(session_id=session_id, token_limit=60, token_flush_size=20, memory_blocks=[block])


def test_block_keeps_what_memory_flushes_and_recalls_it_in_a_later_session(real_store: MemoryStore) -> None:
    real_store.add(OTHER_TENANT, messages=[{"role": "user", "content": "I love peanut butter sandwiches."}])
    first = small_memory("run-1", MemoryPluginBlock(real_store, RUN_1))
    for turn in TURNS:
        first.put(turn)
    kept = [m.content for m in real_store.messages(RUN_1).items]
    assert kept and kept == [t.content for t in TURNS[: len(kept)]]  # the oldest turns, in order
    assert "I'm allergic to peanuts, please remember that." in kept

    second = small_memory("run-2", MemoryPluginBlock(real_store, RUN_2))
    second.put(user("Can you suggest a snack for me? Keep my allergies in mind."))
    system = second.get()[0]
    assert system.role == MessageRole.SYSTEM
    assert "<long_term_memory>" in (system.content or "") and "allergic to peanuts" in (system.content or "")
    assert "peanut butter sandwiches" not in (system.content or "")  # another tenant


async def test_block_recalls_for_the_latest_user_message(real_store: MemoryStore) -> None:
    real_store.add(RUN_1, messages=[{"role": "user", "content": "My cat Miso needs a sitter in August."}])
    real_store.add(RUN_1, text="The user prefers short answers")
    block = MemoryPluginBlock(real_store, RUN_2, top_k=1)
    content = await block.aget([user("Hi"), assistant("Hello!"), user("Who looks after my pet?")])
    assert content.startswith("- [") and "Miso" in content and content.count("\n") == 0
    assert await block.aget([]) == ""
    assert await block.aget([assistant("Nothing asked yet")]) == ""


async def test_block_writes_what_it_is_given_without_changing_it(real_store: MemoryStore) -> None:
    block = MemoryPluginBlock(real_store, RUN_1, metadata={"source": "li-memory"}, sync=True)
    given = [user("I work night shifts."), assistant("Noted.")]
    snapshot = [m.model_dump() for m in given]
    await block._aput(given)
    assert [m.model_dump() for m in given] == snapshot
    stored = real_store.messages(RUN_1).items
    assert [(m.role, m.content, m.metadata["source"]) for m in stored] == [
        ("user", "I work night shifts.", "li-memory"),
        ("assistant", "Noted.", "li-memory"),
    ]


async def test_truncation_drops_the_least_relevant_memories_first(real_store: MemoryStore) -> None:
    block = MemoryPluginBlock(real_store, RUN_1)
    content = "- [2024-03-01, user] best\n- [2024-03-01, user] second\n- [2024-03-01, user] worst"
    assert await block.atruncate(content, 1) == "- [2024-03-01, user] best\n- [2024-03-01, user] second"
    assert await block.atruncate(content, 10_000) is None


class HeldInBackground(TurnExtractor):
    """The default extractor, except that background extraction (on the engine's worker thread) waits until the
    test releases it: what a block wrote in the background is then certainly not extracted yet."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def extract(self, request: ExtractionInput) -> list[MemoryOperation]:
        if threading.current_thread().name.startswith("memory-plugin-worker"):
            self.release.wait(timeout=60)
        return super().extract(request)


def test_what_memory_flushes_to_the_block_is_recalled_on_the_very_next_get(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    """Issue 11: the block wrote in the background by default, so the turns ``Memory`` had just flushed out of
    its FIFO were not recalled by the next ``get``."""
    extractor = HeldInBackground()
    with MemoryClient(path=tmp_path / "held", embedder=real_embedder) as client:
        store = client.create_memory_store("held", extractor=extractor)
        try:
            memory = small_memory("run-1", MemoryPluginBlock(store, RUN_1))
            for turn in TURNS:
                memory.put(turn)
            flushed = [m.content for m in store.messages(RUN_1).items]
            assert flushed and flushed == [t.content for t in TURNS[: len(flushed)]]
            assert "I'm allergic to peanuts, please remember that." in flushed
            memory.put(user("Can you suggest a snack? Keep my allergies in mind."))
            system = memory.get()[0]
            assert system.role == MessageRole.SYSTEM and "allergic to peanuts" in (system.content or "")
            assert store.extraction_status() == []  # nothing was left to the background
        finally:
            extractor.release.set()


def test_block_scope_must_be_concrete(real_store: MemoryStore) -> None:
    with pytest.raises(InvalidScopeError, match=r"scope\.run_id: MemoryPluginBlock needs a concrete id"):
        MemoryPluginBlock(real_store, SCOPE.with_(run_id="*"))
    block = MemoryPluginBlock(real_store, RUN_1, recall_scope=SCOPE.with_(agent_id="*", run_id="*"))
    assert block.scope == RUN_1 and block.recall_scope == SCOPE.with_(agent_id="*", run_id="*")
    assert block.priority == 1 and block.name == "long_term_memory"
