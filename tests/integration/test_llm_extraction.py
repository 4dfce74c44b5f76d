"""LLMExtractor end to end on real SQLite and Chroma, with scripted LLMs of each kind: a LangChain chat model
(``GenericFakeChatModel``), a LlamaIndex ``MockLLM`` subclass and a plain callable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from llama_index.core.llms import CompletionResponse, MockLLM

from memory_plugin import (
    AsyncMemoryClient,
    Embedder,
    ExtractionError,
    InvalidArgumentError,
    LLMExtractor,
    MemoryClient,
    MemoryStore,
    PromptTemplates,
)
from tests.conftest import SCOPE, turn

WEDNESDAY = datetime(2026, 11, 18, 15, 30, tzinfo=timezone.utc)


def answer(*items: dict[str, Any]) -> str:
    return json.dumps({"memories": list(items)}, ensure_ascii=False)


class ScriptedLLM:
    """A callable LLM answering from a script, keeping the prompts it was sent."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0) if self.answers else answer()


class ScriptedLlamaIndexLLM(MockLLM):
    """A LlamaIndex LLM answering from a script and reporting usage in ``raw`` as OpenAI does."""

    def __init__(self, script: list[str]) -> None:
        super().__init__()
        object.__setattr__(self, "_script", list(script))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        script: list[str] = object.__getattribute__(self, "_script")
        text = script.pop(0) if script else answer()
        return CompletionResponse(text=text, raw={"usage": {"prompt_tokens": 40, "completion_tokens": 9}})


def langchain_llm(*answers: str) -> GenericFakeChatModel:
    usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    return GenericFakeChatModel(messages=iter([AIMessage(content=a, usage_metadata=usage) for a in answers]))


@pytest.fixture
def make_store(tmp_path: Path, fake_embedder: Embedder) -> Iterator[Any]:
    clients: list[MemoryClient] = []

    def make(llm: object, **options: Any) -> MemoryStore:
        client = MemoryClient(path=tmp_path / f"data{len(clients)}", embedder=fake_embedder)
        clients.append(client)
        return client.create_memory_store("chat", extractor=LLMExtractor(llm, **options))

    yield make
    for client in clients:
        client.close()


def texts(store: MemoryStore) -> list[str]:
    return sorted(m.text for m in store.list(SCOPE, limit=100).items)


def test_add_with_a_langchain_chat_model_records_sources_and_tokens(make_store: Any) -> None:
    llm = langchain_llm(answer({"action": "ADD", "type": "fact", "text": "The user likes green tea"}))
    store = make_store(llm)
    result = store.add(SCOPE, messages=[turn("user", "I really like green tea"), turn("assistant", "Noted!")])
    [memory] = result.memories
    assert (memory.text, memory.memory_type) == ("The user likes green tea", "fact")
    assert memory.source_message_ids == result.message_ids
    [created] = store.history(SCOPE, memory.id)
    assert (created.event, created.new_text, created.source_message_ids) == ("created", memory.text, result.message_ids)
    counts = store.requests(SCOPE, operation="AddMemories").items[0].counts
    assert counts["input_tokens"] == 100 and counts["output_tokens"] == 20 and counts["llm_calls"] == 1
    assert len(store.messages(SCOPE).items) == 2  # the raw messages stay as short-term memory


def test_update_keeps_the_id_and_history_has_old_and_new_text(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "text": "The user drinks coffee"}),
        answer({"action": "UPDATE", "id": "1", "text": "The user drinks coffee with oat milk"}),
    )
    store = make_store(llm)
    first = store.add(SCOPE, messages=[turn("user", "I drink coffee")]).memories[0]
    second = store.add(SCOPE, messages=[turn("user", "Coffee, with oat milk please")])
    assert "1: [fact] The user drinks coffee" in llm.prompts[1]  # the LLM saw the similar memory
    assert [m.id for m in second.memories] == [first.id]
    assert texts(store) == ["The user drinks coffee with oat milk"]
    updated = store.history(SCOPE, first.id)[-1]
    assert (updated.event, updated.old_text, updated.new_text) == (
        "updated", "The user drinks coffee", "The user drinks coffee with oat milk",
    )  # fmt: skip
    assert updated.source_message_ids == second.message_ids


def test_a_contradiction_deletes_the_old_memory(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "text": "The user is vegetarian"}),
        answer({"action": "DELETE", "id": "1"}, {"action": "ADD", "text": "The user eats fish again"}),
    )
    store = make_store(llm)
    old = store.add(SCOPE, messages=[turn("user", "I am vegetarian")]).memories[0]
    result = store.add(SCOPE, messages=[turn("user", "I am not vegetarian any more, I eat fish")])
    assert texts(store) == ["The user eats fish again"]
    deleted = store.history(SCOPE, old.id)[-1]
    assert (deleted.event, deleted.old_text, deleted.new_text) == ("deleted", "The user is vegetarian", None)
    assert deleted.source_message_ids == result.message_ids


def test_duplicates_are_never_stored_twice_whatever_the_llm_says(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "text": "The user likes green tea"}),
        answer({"action": "ADD", "text": "the user likes GREEN tea."}, {"action": "NOOP", "id": "1"}),
        answer({"action": "ADD", "text": "User likes the green tea"}),
        answer({"action": "ADD", "text": "Walks the dog"}, {"action": "ADD", "text": "walks the dog"}),
    )
    store = make_store(llm)
    first = store.add(SCOPE, messages=[turn("user", "I like green tea")]).memories[0]
    confirming = store.add(SCOPE, messages=[turn("user", "Did I say I like green tea?")])
    assert texts(store) == ["The user likes green tea"]
    assert store.requests(SCOPE, operation="AddMemories").items[0].counts["noops"] == 2
    # The NOOP decisions are in the memory's history, with the messages that confirmed it, recorded once.
    created, unchanged = store.history(SCOPE, first.id)
    assert (unchanged.event, unchanged.old_text, unchanged.new_text) == ("unchanged", first.text, first.text)
    assert unchanged.source_message_ids == confirming.message_ids and created.event == "created"
    merged = store.add(SCOPE, messages=[turn("user", "green tea is my favourite")]).memories
    assert [m.id for m in merged] == [first.id]  # a near-duplicate merges into the same memory
    assert texts(store) == ["User likes the green tea"]
    store.add(SCOPE, messages=[turn("user", "I walk the dog")])
    assert texts(store) == ["User likes the green tea", "Walks the dog"]


def test_profile_attributes_are_updated_in_place(make_store: Any) -> None:
    profile = {"action": "ADD", "type": "profile", "profile": "user_profile"}
    llm = ScriptedLLM(
        answer({**profile, "attribute": "city", "text": "Berlin"}, {**profile, "attribute": "name", "text": "Ann"},
               {**profile, "attribute": "shoe_size", "text": "38"}),
        answer({**profile, "attribute": "city", "text": "Munich"}, {**profile, "attribute": "name", "text": "Ann"}),
    )  # fmt: skip
    store = make_store(llm, profile_attributes=("name", "city", "diet"))
    created = {
        m.metadata["attribute"]: m for m in store.add(SCOPE, messages=[turn("user", "I'm Ann from Berlin")]).memories
    }
    assert sorted(created) == ["city", "name"]  # shoe_size is not a configured attribute
    assert created["city"].metadata == {"profile_type": "user_profile", "attribute": "city"}
    store.add(SCOPE, messages=[turn("user", "I moved to Munich")])
    profiles = store.list(SCOPE, memory_types=["profile"]).items
    assert sorted(m.text for m in profiles) == ["city: Munich", "name: Ann"]
    city = next(m for m in profiles if m.metadata["attribute"] == "city")
    assert city.id == created["city"].id
    assert [e.event for e in store.history(SCOPE, city.id)] == ["created", "updated"]


def test_event_times_are_resolved_from_the_message_time(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer(
            {"action": "ADD", "type": "event", "text": "The user hiked Mount Tam", "event_time": "last Saturday"},
            {"action": "ADD", "type": "event", "text": "The user flew to Rome", "event_time": "2026-10-01"},
            {"action": "ADD", "type": "event", "text": "The user had a cold", "event_time": "some time"},
        )
    )
    store = make_store(llm)
    result = store.add(SCOPE, messages=[turn("user", "Last Saturday I hiked Mount Tam", timestamp=WEDNESDAY)])
    days = {m.text: m.event_time.date().isoformat() for m in result.memories}
    assert days == {"The user hiked Mount Tam": "2026-11-14", "The user flew to Rome": "2026-10-01",
                    "The user had a cold": "2026-11-18"}  # fmt: skip
    assert "2026-11-18T15:30+00:00 (Wednesday)" in llm.prompts[0]


def test_configured_memory_types_limit_what_is_stored(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "type": "event", "text": "Went to Paris"}, {"action": "ADD", "text": "Likes Paris"})
    )
    store = make_store(llm, memory_types=("fact",))
    assert [m.text for m in store.add(SCOPE, messages=[turn("user", "I went to Paris, loved it")]).memories] == [
        "Likes Paris"
    ]
    assert 'type "event"' not in llm.prompts[0] and 'type "profile"' not in llm.prompts[0]
    with pytest.raises(InvalidArgumentError, match="memory_types"):
        LLMExtractor(llm, memory_types=("opinion",))
    with pytest.raises(InvalidArgumentError, match="llm"):
        LLMExtractor(42)


def test_malformed_answers_are_read_or_retried_once_with_the_error(make_store: Any) -> None:
    fenced = 'Here you go:\n```json\n{"memories": [{"action": "ADD", "text": "Plays chess",},]}\n```'
    llm = ScriptedLLM(fenced, "", answer({"action": "ADD", "text": "Plays the piano"}))
    store = make_store(llm)
    assert [m.text for m in store.add(SCOPE, messages=[turn("user", "I play chess")]).memories] == ["Plays chess"]
    assert [m.text for m in store.add(SCOPE, messages=[turn("user", "I play piano")]).memories] == ["Plays the piano"]
    assert len(llm.prompts) == 3 and "the answer was empty" in llm.prompts[2]
    assert store.requests(SCOPE, operation="AddMemories").items[0].counts["llm_calls"] == 2


def test_unusable_output_twice_fails_a_sync_add_without_writing(make_store: Any) -> None:
    store = make_store(ScriptedLLM("I cannot help with that.", '{"memories": [{"action": "ADD", "text": "x"'))
    with pytest.raises(ExtractionError, match="unusable output twice") as caught:
        store.add(SCOPE, messages=[turn("user", "hello")])
    assert caught.value.raw_output is not None and "I cannot help with that." in caught.value.raw_output
    assert store.list(SCOPE).items == [] and store.messages(SCOPE).items == []


def test_background_failure_is_recorded_listed_and_retried_without_losing_messages(make_store: Any) -> None:
    llm = ScriptedLLM("no json here", "still no json")
    store = make_store(llm)
    result = store.add(SCOPE, messages=[turn("user", "I like sailing")], sync=False)
    assert store.flush(timeout=30)
    [job] = store.extraction_status()
    assert (job.state, job.attempts, job.message_ids, job.scope) == ("failed", 1, result.message_ids, SCOPE)
    assert job.error is not None and "unusable output twice" in job.error
    assert job.raw_output is not None and "still no json" in job.raw_output
    assert [m.content for m in store.messages(SCOPE).items] == ["I like sailing"]
    llm.answers = [answer({"action": "ADD", "text": "The user likes sailing"})]
    assert store.retry_failed() == 1
    assert store.flush(timeout=30)
    assert store.extraction_status() == []
    assert texts(store) == ["The user likes sailing"]
    [memory] = store.list(SCOPE).items
    assert memory.source_message_ids == result.message_ids
    assert [m.content for m in store.messages(SCOPE).items] == ["I like sailing"]  # not duplicated
    # Each background attempt is audited on its own under the request id of the AddMemories call that queued it.
    attempts = store.requests(SCOPE, operation="ExtractMemories").items
    assert [(r.outcome, r.request_id, r.counts["llm_calls"]) for r in attempts] == [
        ("ok", result.request_id, 1),
        ("ExtractionError", result.request_id, 2),
    ]
    assert [r.operation for r in store.requests(SCOPE, operation="RetryExtraction").items] == ["RetryExtraction"]


def test_background_jobs_pending_at_a_restart_resume(tmp_path: Path, fake_embedder: Embedder) -> None:
    def unreachable(prompt: str) -> str:
        raise ConnectionError("the LLM server is down")

    with MemoryClient(path=tmp_path, embedder=fake_embedder, extractor=LLMExtractor(unreachable)) as client:
        store = client.create_memory_store("chat")
        ids = store.add(SCOPE, messages=[turn("user", "I am learning Rust")], sync=False).message_ids
        assert not store.flush(timeout=0.5)
        [job] = store.extraction_status()
        assert job.state in ("pending", "running")
    llm = langchain_llm(answer({"action": "ADD", "text": "The user is learning Rust"}))
    with MemoryClient(path=tmp_path, embedder=fake_embedder, extractor=LLMExtractor(llm)) as client:
        store = client.get_memory_store("chat")
        assert store.flush(timeout=30)
        assert [(m.text, m.source_message_ids) for m in store.list(SCOPE).items] == [("The user is learning Rust", ids)]
        assert [m.id for m in store.messages(SCOPE).items] == ids
        *_, failed, done = reversed(store.requests(SCOPE, operation="ExtractMemories").items)
        assert failed.outcome == "ExtractionError" and "the LLM server is down" in (failed.error or "")
        assert done.outcome == "ok" and done.counts["input_tokens"] == 100 and done.counts["memories"] == 1


def test_a_chinese_conversation_with_a_llamaindex_llm(make_store: Any) -> None:
    script = [
        answer({"action": "ADD", "type": "fact", "text": "用戶喜歡喝咖啡"},
               {"action": "ADD", "type": "event", "text": "用戶上週六去了台北", "event_time": "上週六"}),
        "好的: \n```json\n{\"memories\": [{\"action\": \"NOOP\", \"id\": \"1\"}]}\n```",
    ]  # fmt: skip
    store = make_store(ScriptedLlamaIndexLLM(script=script))
    store.add(SCOPE, messages=[turn("user", "我喜歡喝咖啡。上週六我去了台北。", timestamp=WEDNESDAY)])
    store.add(SCOPE, messages=[turn("user", "我真的很喜歡咖啡")])
    memories = {m.text: m for m in store.list(SCOPE).items}
    assert sorted(memories) == ["用戶上週六去了台北", "用戶喜歡喝咖啡"]
    assert memories["用戶上週六去了台北"].event_time.date().isoformat() == "2026-11-14"
    assert store.search(SCOPE, "咖啡")[0].memory.text == "用戶喜歡喝咖啡"
    counts = store.requests(SCOPE, operation="AddMemories").items[-1].counts
    assert (counts["input_tokens"], counts["output_tokens"]) == (40, 9)


def test_prompts_are_templates_the_user_can_override(make_store: Any) -> None:
    llm = ScriptedLLM()
    templates = PromptTemplates(
        extraction="請記住重要的事。時間: $now\n已有: $existing\n對話: \n$conversation\n只回答 JSON。"
    )
    store = make_store(llm, templates=templates)
    store.add(SCOPE, messages=[turn("user", "我住在台北", timestamp=WEDNESDAY)])
    assert llm.prompts == [
        "請記住重要的事。時間: 2026-11-18T15:30+00:00\n已有: (none)\n對話: \n"
        "[new] user (2026-11-18T15:30+00:00): 我住在台北\n只回答 JSON。"
    ]


def test_the_async_api_lists_and_retries_failed_jobs(tmp_path: Path, fake_embedder: Embedder) -> None:
    import asyncio

    llm = ScriptedLLM("nope", "nope again")

    async def scenario() -> None:
        async with AsyncMemoryClient(path=tmp_path, embedder=fake_embedder) as client:
            store = await client.create_memory_store("chat", extractor=LLMExtractor(llm))
            await store.add(SCOPE, messages=[turn("user", "I like jazz")], sync=False)
            assert await store.flush(timeout=30)
            assert [job.state for job in await store.extraction_status()] == ["failed"]
            llm.answers = [answer({"action": "ADD", "text": "Likes jazz"})]
            assert await store.retry_failed() == 1
            assert await store.flush(timeout=30)
            assert [m.text for m in (await store.list(SCOPE)).items] == ["Likes jazz"]

    asyncio.run(scenario())


def test_an_llm_update_of_a_profile_attribute_keeps_its_shape(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "type": "profile", "profile": "user_profile", "attribute": "city", "text": "Berlin"}),
        answer({"action": "UPDATE", "id": "1", "text": "Hamburg"}),
    )
    store = make_store(llm)
    [city] = store.add(SCOPE, messages=[turn("user", "I live in Berlin")]).memories
    store.add(SCOPE, messages=[turn("user", "Now my city is Hamburg")])
    assert [(m.id, m.text, m.metadata["attribute"]) for m in store.list(SCOPE).items] == [
        (city.id, "city: Hamburg", "city")
    ]


def test_a_failed_sync_add_still_audits_the_tokens_spent(make_store: Any) -> None:
    store = make_store(langchain_llm("no json", "no json either"))
    with pytest.raises(ExtractionError):
        store.add(SCOPE, messages=[turn("user", "hello")])
    [record] = store.requests(SCOPE, operation="AddMemories").items
    assert record.outcome == "ExtractionError"
    assert (record.counts["llm_calls"], record.counts["input_tokens"]) == (2, 200)


def test_llm_memories_carry_the_call_metadata(make_store: Any) -> None:
    llm = ScriptedLLM(
        answer({"action": "ADD", "text": "Likes chess"},
               {"action": "ADD", "type": "profile", "profile": "user_profile", "attribute": "name", "text": "Bo"})
    )  # fmt: skip
    store = make_store(llm)
    store.add(SCOPE, messages=[turn("user", "I'm Bo, I like chess")], metadata={"channel": "web"})
    assert sorted(m.metadata.get("channel", "") for m in store.list(SCOPE, filters={"channel": "web"}).items) == [
        "web",
        "web",
    ]


@pytest.mark.model
def test_the_example_runs_offline_with_its_scripted_llm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    example = Path(__file__).resolve().parents[2] / "examples" / "extraction_with_llm.py"
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "[profile] city: Munich" in out and "updated  'city: Berlin' -> 'city: Munich'" in out
    assert "unchanged" in out and "Unfinished extraction jobs: []" in out
