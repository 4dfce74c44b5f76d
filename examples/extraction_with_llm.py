"""Turning a conversation into long-term memories with an LLM: facts, an event with its date, a profile updated
in place, a contradiction retired, a duplicate skipped; then every memory with its history.

Offline (no API key, no network: a scripted LLM, the local embedding model, a temporary data folder):

    .venv/bin/python examples/extraction_with_llm.py

With a real model: ``pip install langchain-openai``, ``export OPENAI_API_KEY=...`` (optional ``OPENAI_MODEL``,
default ``gpt-4o-mini``). Any LangChain chat model, LlamaIndex LLM or ``(prompt: str) -> str`` callable works.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone

from memory_plugin import LLMExtractor, MemoryClient, Scope

CONVERSATION = [
    (datetime(2026, 11, 16, 9, 0, tzinfo=timezone.utc), "Hi, I'm Ann. I live in Berlin and I love green tea."),
    (datetime(2026, 11, 18, 18, 0, tzinfo=timezone.utc), "Last Saturday I ran my first half marathon!"),
    (datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc), "I moved to Munich, and I switched from tea to coffee."),
    (datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc), "我喜歡喝咖啡"),
    (datetime(2026, 11, 21, 8, 5, tzinfo=timezone.utc), "Did I tell you I drink coffee now?"),
]


def memories(*items: dict[str, str]) -> str:
    return json.dumps({"memories": list(items)}, ensure_ascii=False)


def existing_id(prompt: str, words: str) -> str:
    """The short id the prompt gives to the existing memory containing ``words``."""
    for line in prompt.split("Conversation:")[0].splitlines():
        match = re.match(r"(\d+): \[\w+[^\]]*\] (.*)", line)
        if match and words in match.group(2):
            return match.group(1)
    return "?"


class ScriptedLLM:
    """Answers as a good LLM would for this conversation, one turn after the other (some answers in the messy
    shapes real models produce: prose before the JSON, a fenced block, a trailing comma)."""

    def __init__(self) -> None:
        profile = {"action": "ADD", "type": "profile", "profile": "user_profile"}
        self.turns: list[Callable[[str], str]] = [
            lambda p: "Here is what I found:\n```json\n" + memories(
                {**profile, "attribute": "name", "text": "Ann"},
                {**profile, "attribute": "city", "text": "Berlin"},
                {"action": "ADD", "type": "fact", "text": "Ann loves green tea"},
            ) + "\n```",
            lambda p: memories({"action": "ADD", "type": "event", "text": "Ann ran her first half marathon",
                                "event_time": "last Saturday"})[:-2] + ",]}",
            lambda p: memories(
                {**profile, "attribute": "city", "text": "Munich"},
                {"action": "DELETE", "id": existing_id(p, "green tea")},
                {"action": "ADD", "type": "fact", "text": "Ann drinks coffee now"},
            ),
            lambda p: memories({"action": "UPDATE", "id": existing_id(p, "coffee"),
                                "text": "Ann drinks coffee now (她喜歡喝咖啡)"}),
            lambda p: memories({"action": "ADD", "type": "fact", "text": "Ann drinks coffee now (她喜歡喝咖啡)"}),
        ]  # fmt: skip

    def __call__(self, prompt: str) -> str:
        return self.turns.pop(0)(prompt) if self.turns else memories()


def make_llm() -> object:
    if not os.environ.get("OPENAI_API_KEY"):
        return ScriptedLLM()
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as e:
        raise SystemExit(
            "OPENAI_API_KEY is set: pip install langchain-openai (or unset it for the offline demo)"
        ) from e
    return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), temperature=0)


def main() -> None:
    scope = Scope(app_id="demo", tenant_id="ann", agent_id="assistant", run_id="chat-1")
    extractor = LLMExtractor(make_llm(), profile_attributes=("name", "city", "diet"))
    with tempfile.TemporaryDirectory() as folder, MemoryClient(path=folder) as client:
        store = client.create_memory_store("assistant_memory", extractor=extractor)
        seen: dict[str, None] = {}  # every memory id ever listed, in order, to show the history of retired ones
        for when, text in CONVERSATION:
            print(f"user ({when:%a %Y-%m-%d}): {text}")
            store.add(scope, messages=[{"role": "user", "content": text, "timestamp": when}], sync=False)
            store.flush()  # extraction runs in the background, in order; flush waits for it
            seen.update((m.id, None) for m in store.list(scope, limit=100).items)
        print("\nMemories:")
        for memory in store.list(scope, limit=100).items:
            print(f"- [{memory.memory_type}] {memory.text}  (event_time {memory.event_time:%Y-%m-%d})")
        print("\nHistory (old -> new text, and how many source messages):")
        for memory_id in seen:
            for event in store.history(scope, memory_id):
                old = f"{event.old_text!r} -> " if event.event != "created" else ""
                print(f"  {memory_id[-6:]} {event.event:8} {old}{event.new_text!r} ({len(event.source_message_ids)})")
        # Background extractions are audited as ExtractMemories, under the request id of the add that queued them.
        audit = list(reversed(store.requests(scope, operation="ExtractMemories").items))
        print(
            f"\nLLM calls per extraction: {[r.counts.get('llm_calls', 0) for r in audit]}, "
            f"tokens: {sum(r.counts.get('total_tokens', 0) for r in audit)} (0: the scripted LLM reports none)"
        )
        print(f"Unfinished extraction jobs: {store.extraction_status()}")


if __name__ == "__main__":
    main()
