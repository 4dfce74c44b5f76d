"""Pure logic of the LlamaIndex adapters: message conversion, history windows, tool exchanges, recall formatting.
No storage here."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.utils import get_tokenizer

from llama_index_memory_plugin._convert import (
    EXTRAS_KEY,
    PLACEHOLDER_KEY,
    ROLE_KEY,
    fingerprint,
    from_engine,
    to_engine,
)
from llama_index_memory_plugin._history import complete_tool_exchanges, count_tokens, recent_window
from llama_index_memory_plugin._recall import PromptMessages, Recall, memory_line, query_for, recall_message
from memory_plugin import InvalidArgumentError, InvalidScopeError, Memory, Message, SearchHit
from memory_plugin.validation import MAX_METADATA_STRING, MAX_TEXT_LENGTH
from tests.conftest import SCOPE

TOKENS = get_tokenizer()
WHEN = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)


def stored(entry: dict[str, Any], index: int = 0) -> Message:
    """What the engine keeps for an entry :func:`to_engine` made."""
    return Message(id=f"msg_{index}", scope=SCOPE, timestamp=WHEN, **entry)


def round_trip(message: ChatMessage) -> ChatMessage:
    entry = to_engine(message)
    assert entry is not None
    return from_engine(stored(entry))


def user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


def call(call_id: str, text: str | None = None) -> ChatMessage:
    blocks: list[Any] = [TextBlock(text=text)] if text else []
    blocks.append(ToolCallBlock(tool_call_id=call_id, tool_name="lookup", tool_kwargs={"q": "x"}))
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)


def result(call_id: str, text: str = "42") -> ChatMessage:
    return ChatMessage(role=MessageRole.TOOL, content=text, additional_kwargs={"tool_call_id": call_id})


def memory(text: str, **metadata: Any) -> Memory:
    return Memory(
        id="mem_1", text=text, scope=SCOPE, memory_type="message", metadata=metadata,
        created_at=WHEN, updated_at=WHEN, event_time=WHEN,
    )  # fmt: skip


# ---- conversion ------------------------------------------------------------------------------------------------


def test_plain_turn_becomes_a_plain_engine_message_and_comes_back_equal() -> None:
    message = user("I like coffee")
    assert to_engine(message) == {"role": "user", "content": "I like coffee", "metadata": {ROLE_KEY: "user"}}
    assert round_trip(message) == message


def test_tool_calls_and_kwargs_survive_the_store() -> None:
    for message in (call("c1"), call("c2", "Let me look"), result("c1", "the answer is 42")):
        assert round_trip(message) == message


def test_a_turn_without_text_gets_a_flagged_stand_in_text() -> None:
    entry = to_engine(call("c1"))
    assert entry is not None
    assert entry["content"] == '[tool call lookup({"q":"x"})]'
    assert entry["metadata"][PLACEHOLDER_KEY] is True
    # Read back, the stand-in is not text the model would see as said.
    assert round_trip(call("c1")).content is None


def test_llama_index_roles_map_to_engine_roles_and_come_back() -> None:
    cases = {"chatbot": "assistant", "model": "assistant", "developer": "system", "function": "tool"}
    for role, engine_role in cases.items():
        message = ChatMessage(role=role, content="hello")
        entry = to_engine(message)
        assert entry is not None and entry["role"] == engine_role
        assert round_trip(message).role == MessageRole(role)


def test_llama_index_bookkeeping_is_not_stored_and_empty_turns_are_skipped() -> None:
    tagged = ChatMessage(role="user", content="hi", additional_kwargs={"session_id": "s-1"})
    assert round_trip(tagged) == user("hi")
    assert to_engine(ChatMessage(role="assistant", content="")) is None
    assert to_engine(ChatMessage(role="assistant", blocks=[])) is None


def test_too_large_extras_keep_what_fits_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    big_call = ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="write", tool_kwargs={"body": "x" * MAX_METADATA_STRING})],
        additional_kwargs={"tool_call_id": "kept"},
    )
    with caplog.at_level(logging.WARNING):
        entry = to_engine(big_call)
    assert entry is not None and json.loads(entry["metadata"][EXTRAS_KEY]) == {"kwargs": {"tool_call_id": "kept"}}
    assert "too large" in caplog.text
    image = ChatMessage(role="user", blocks=[ImageBlock(image=b"\x89PNG" + b"0" * 4000)])
    entry = to_engine(image)
    assert entry is not None and entry["content"] == "[image]" and EXTRAS_KEY not in entry["metadata"]
    assert round_trip(image).content == "[image]"  # the stand-in is all that is left, so the model sees that


def test_overlong_content_is_cut_to_the_store_limit() -> None:
    entry = to_engine(user("y" * (MAX_TEXT_LENGTH + 10)))
    assert entry is not None and len(entry["content"]) == MAX_TEXT_LENGTH
    assert entry["content"].endswith("[... truncated]")


def test_conversion_never_changes_the_callers_message() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[TextBlock(text="Let me check"), ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs={"a": 1})],
        additional_kwargs={"session_id": "s-1", "tool_call_id": "c0"},
    )
    before = message.model_dump()
    entry = to_engine(message)
    assert entry is not None
    entry["metadata"]["changed"] = True
    assert message.model_dump() == before


def test_fingerprints_match_between_an_entry_and_its_stored_message() -> None:
    entry = to_engine(call("c1", "checking"))
    assert entry is not None
    kept = stored({**entry, "metadata": {**entry["metadata"], "source": "call metadata"}})
    assert fingerprint(kept.role, kept.content, kept.metadata) == fingerprint(
        entry["role"], entry["content"], entry["metadata"]
    )


# ---- history window ------------------------------------------------------------------------------------------


def test_window_drops_the_oldest_first_and_starts_at_a_user_message() -> None:
    history = [user("one " * 50), assistant("two " * 50), user("three " * 50), assistant("four " * 50)]
    cost = count_tokens(history[-1], TOKENS)
    assert recent_window(history, 10_000, TOKENS) == history
    assert recent_window(history, cost * 2 + 5, TOKENS) == history[2:]
    # Three messages would fit, but the window would start with a reply: it starts at the question instead.
    assert recent_window(history, cost * 3 + 5, TOKENS) == history[2:]
    # The newest turn (the last user message and what follows) always stays, even alone over budget.
    assert recent_window(history, 1, TOKENS) == history[2:]
    assert recent_window(history[:3], 1, TOKENS) == history[2:3]


def test_window_never_starts_with_a_reply_or_cuts_the_newest_tool_exchange() -> None:
    """Issue 11: ``[user "x " * 100, assistant "ok"]`` over budget came back as ``[assistant "ok"]``, and a newest
    tool result whose call did not fit came back as nothing at all."""
    long_question = [user("x " * 100), assistant("ok")]
    assert recent_window(long_question, 100, TOKENS) == long_question
    exchange = [user("weather? " * 30), call("c1"), result("c1", "sunny " * 30)]
    window = complete_tool_exchanges(recent_window([user("hi"), assistant("hello"), *exchange], 10, TOKENS))
    assert window == exchange
    # Older turns come whole or not at all.
    older = [user("first " * 20), call("c0"), result("c0", "done " * 20), assistant("ok " * 20)]
    budget = sum(count_tokens(m, TOKENS) for m in [*older[1:], *exchange])
    assert recent_window([*older, *exchange], budget, TOKENS) == exchange


def test_a_history_without_user_messages_keeps_its_newest_messages() -> None:
    replies = [assistant("one " * 50), assistant("two " * 50)]
    assert recent_window(replies, count_tokens(replies[1], TOKENS), TOKENS) == replies[1:]
    assert recent_window(replies, 1, TOKENS) == replies[1:]


def test_window_keeps_a_leading_system_message_when_nothing_is_dropped() -> None:
    history = [ChatMessage(role="system", content="be brief"), user("hi"), assistant("hello")]
    assert recent_window(history, 10_000, TOKENS) == history


def test_tool_exchanges_are_kept_whole_or_not_at_all() -> None:
    complete = [user("q"), call("c1"), result("c1"), assistant("a")]
    assert complete_tool_exchanges(complete) == complete
    unanswered = [user("q"), call("c1", "Let me look"), call("c2"), assistant("a")]
    assert complete_tool_exchanges(unanswered) == [user("q"), assistant("Let me look"), assistant("a")]
    orphan = [result("c9"), user("q"), assistant("a")]
    assert complete_tool_exchanges(orphan) == [user("q"), assistant("a")]


# ---- recall --------------------------------------------------------------------------------------------------


def test_recall_query_is_the_input_else_the_latest_user_message() -> None:
    history = [user("first"), assistant("reply"), user("latest question"), assistant("answer")]
    assert query_for("given", history) == "given"
    assert query_for(user("as a message"), history) == "as a message"
    assert query_for(None, history) == "latest question"
    assert query_for(None, [assistant("no user yet")]) == ""


def test_memory_lines_say_when_and_who() -> None:
    assert memory_line(memory("I like\ncoffee", **{ROLE_KEY: "user"})) == "- [2024-03-01, user] I like coffee"
    assert memory_line(memory("Prefers short answers")) == "- [2024-03-01] Prefers short answers"


def test_recall_message_holds_the_best_memories_that_fit_its_budget() -> None:
    hits = [SearchHit(memory=memory(f"memory number {i} " * 5), score=1 - i / 10) for i in range(5)]
    template = "Known:\n{memories}"
    full = recall_message(hits, template, 10_000, TOKENS)
    assert full is not None and full.role == MessageRole.SYSTEM
    assert full.content is not None and full.content.count("\n- [") == 5
    two_lines = len(TOKENS(template.replace("{memories}", "\n".join(memory_line(h.memory) for h in hits[:2]))))
    cut = recall_message(hits, template, two_lines, TOKENS)
    assert cut is not None and cut.content is not None
    assert "number 0" in cut.content and "number 1" in cut.content and "number 2" not in cut.content
    assert recall_message(hits, template, 3, TOKENS) is None
    assert recall_message([], template, 10_000, TOKENS) is None


def test_recall_skips_memories_with_the_text_of_a_message_in_the_prompt() -> None:
    recall = Recall.build(SCOPE.with_(run_id="*"), top_k=5)
    hits = [SearchHit(memory=memory(" I like green tea"), score=0.9), SearchHit(memory=memory("I like tea"), score=0.8)]
    in_prompt = PromptMessages.of([user("I like green tea  "), assistant("Noted")])
    assert [h.memory.text for h in recall.select(hits, in_prompt)] == ["I like tea"]
    assert in_prompt.size == 2


def test_recall_skips_low_scores_stand_ins_and_memories_already_in_the_window() -> None:
    recall = Recall.build(SCOPE.with_(run_id="*"), top_k=2, min_score=0.3)
    in_window = memory("in window").model_copy(update={"id": "mem_w", "source_message_ids": ["msg_w"]})
    hits = [
        SearchHit(memory=in_window, score=0.9),
        SearchHit(memory=memory("stand-in", **{PLACEHOLDER_KEY: True}), score=0.8),
        SearchHit(memory=memory("kept one"), score=0.7),
        SearchHit(memory=memory("kept two"), score=0.5),
        SearchHit(memory=memory("kept three"), score=0.4),
        SearchHit(memory=memory("too weak"), score=0.1),
    ]
    assert [h.memory.text for h in recall.select(hits, PromptMessages(frozenset({"msg_w"})))] == [
        "kept one",
        "kept two",
    ]


def test_each_search_gets_fresh_arguments() -> None:
    recall = Recall.build(SCOPE, top_k=3, filters={"source": ["chat", "mail"]}, memory_types="fact")
    first = recall.search_call("coffee")
    first.kwargs["filters"]["source"].append("leaked")
    first.kwargs["memory_types"].append("leaked")
    second = recall.search_call("coffee", extra=2)
    assert second.kwargs == {
        "top_k": 5,
        "rerank": True,
        "memory_types": ["fact"],
        "filters": {"source": ["chat", "mail"]},
    }
    assert recall.search_call("q" * 5000).args[1] == "q" * 4000  # the store's query limit


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"min_score": 1.5}, "min_score"),
        ({"rerank": "yes"}, "rerank"),
        ({"memory_types": ["bad type!"]}, "memory_types"),
        ({"filters": {"run_id": "x"}}, "filters"),
        ({"start_time": "tomorrow"}, "start_time"),
    ],
)
def test_bad_recall_options_fail_at_once_naming_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        Recall.build(SCOPE, **options)
    assert error.value.field == field


def test_a_recall_scope_must_be_a_valid_scope() -> None:
    with pytest.raises(InvalidScopeError, match="app_id"):
        Recall.build({"app_id": "*", "tenant_id": "u", "agent_id": "*", "run_id": "*"})
    with pytest.raises(InvalidScopeError, match=r"missing segment\(s\) \['run_id'\]"):
        Recall.build({"app_id": "a", "tenant_id": "u", "agent_id": "*"})


def test_recall_holds_the_options_every_adapter_shares() -> None:
    from memory_plugin.binding import RecallOptions

    recall = Recall.build(SCOPE, top_k=3, memory_types="fact")
    assert recall.options == RecallOptions(top_k=3, memory_types="fact") and recall.enabled
    assert not Recall.build(SCOPE, top_k=0, min_top_k=0).enabled
