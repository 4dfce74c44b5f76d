"""Pure logic of LLM extraction: tolerant JSON parsing, decisions, relative event times, LLM usage reading."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_plugin.llm_extraction.event_time import resolve_event_time
from memory_plugin.llm_extraction.extractor import normalize
from memory_plugin.llm_extraction.llm import call_llm, usage_of
from memory_plugin.llm_extraction.llm_json import LLMOutputError, parse_decisions, parse_json

WEDNESDAY = datetime(2026, 11, 18, 15, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "answer",
    [
        '{"memories": [{"action": "ADD", "text": "likes tea"}]}',
        'Sure! Here is the JSON:\n```json\n{"memories": [{"action": "ADD", "text": "likes tea"}]}\n```\nDone.',
        '```\n{"memories": [{"action": "ADD", "text": "likes tea"},]}\n```',
        '<think>the user said tea</think>{"memories": [{"action": "add", "text": "likes tea",},],}',
        "{'memories': [{'action': 'ADD', 'text': 'likes tea'}]}",
        '[{"action": "ADD", "text": "likes tea"}]',
        "I found one: {\u201cmemories\u201d: [{\u201caction\u201d: \u201cADD\u201d,"
        " \u201ctext\u201d: \u201clikes tea\u201d}]}",
        '```json\n{"memories": [{"action": "ADD", "text": "likes tea"}]}',
    ],
)
def test_real_llm_answers_parse(answer: str) -> None:
    [decision] = parse_decisions(answer)
    assert (decision.action, decision.text, decision.memory_type) == ("ADD", "likes tea", "fact")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I could not find anything worth remembering.", "no JSON"),
        ('{"memories": [{"action": "ADD", "text": "unterminated}', "invalid"),
        ('{"result": 1}', "memories"),
        ('{"memories": "none"}', "list"),
        ('{"memories": [{"action": "FORGET", "text": "x"}]}', "action"),
        ('{"memories": [{"action": "ADD", "text": ""}]}', "text"),
        ('{"memories": [{"action": "DELETE"}]}', "id"),
    ],
)
def test_unusable_answers_say_why(answer: str, problem: str) -> None:
    with pytest.raises(LLMOutputError, match=problem):
        parse_decisions(answer)


def test_decision_fields_and_aliases() -> None:
    decisions = parse_decisions(
        '{"memories": [{"event": "NONE", "id": 3}, {"action": "ADD", "type": "Event", "text": "hiked",'
        ' "when": "last Saturday"}, {"action": "ADD", "type": "profile", "profile": "user_profile",'
        ' "key": "City", "value": "Berlin"}, {"action": "ADD", "text": "我喜歡喝咖啡"}]}'
    )
    assert [d.action for d in decisions] == ["NOOP", "ADD", "ADD", "ADD"]
    assert decisions[0].target == "3"
    assert (decisions[1].memory_type, decisions[1].event_time) == ("event", "last Saturday")
    assert (decisions[2].attribute, decisions[2].text, decisions[2].profile_type) == ("city", "Berlin", "user_profile")
    assert decisions[3].text == "我喜歡喝咖啡"
    assert parse_decisions('{"memories": []}') == []
    assert parse_json('text {"a": [1, 2,]} more {"b": 2}') == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("phrase", "day"),
    [
        ("last Saturday", "2026-11-14"),
        ("on Saturday", "2026-11-14"),
        ("Wednesday", "2026-11-11"),
        ("yesterday", "2026-11-17"),
        ("today", "2026-11-18"),
        ("3 days ago", "2026-11-15"),
        ("two weeks ago", "2026-11-04"),
        ("2026-10-01", "2026-10-01"),
        ("2026-10-01T08:00:00Z", "2026-10-01"),
        ("昨天", "2026-11-17"),
        ("上週六", "2026-11-14"),
        ("上周一", "2026-11-09"),
        ("星期六", "2026-11-14"),
    ],
)
def test_event_times_resolve_against_the_message_time(phrase: str, day: str) -> None:
    resolved = resolve_event_time(phrase, WEDNESDAY)
    assert resolved is not None and resolved.tzinfo is not None
    assert resolved.date().isoformat() == day


def test_unreadable_event_times_are_none() -> None:
    assert resolve_event_time(None, WEDNESDAY) is None
    assert resolve_event_time("some day", WEDNESDAY) is None


def test_normalize_ignores_case_width_spacing_and_final_stop() -> None:
    assert normalize("  User likes  TEA. ") == normalize("user likes tea")
    assert normalize("我喜歡喝咖啡。") == normalize("我喜歡喝咖啡")
    assert normalize("user likes tea") != normalize("user likes coffee")


def test_usage_is_read_from_langchain_and_llamaindex_shapes() -> None:
    langchain = SimpleNamespace(
        content="x", usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    )
    openai_style = SimpleNamespace(content="x", response_metadata={"token_usage": {"prompt_tokens": 7}})
    llamaindex = SimpleNamespace(text="x", raw={"usage": {"prompt_tokens": 5, "completion_tokens": 2}})
    assert usage_of(langchain) == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert usage_of(openai_style) == {"input_tokens": 7}
    assert usage_of(llamaindex) == {"input_tokens": 5, "output_tokens": 2}
    assert usage_of("plain text") == {}


def test_call_llm_accepts_a_callable() -> None:
    assert call_llm(lambda prompt: prompt.upper(), "hi") == ("HI", {})


@given(st.text(alphabet=st.sampled_from(list("{}[]\",:' \n`abc1ADtrue\u201c我")), max_size=80) | st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_answer_parses_or_raises_llm_output_error(answer: str) -> None:
    try:
        decisions = parse_decisions(answer)
    except LLMOutputError:
        return
    assert all(d.action in ("ADD", "UPDATE", "DELETE", "NOOP") for d in decisions)


def test_deeply_nested_answers_are_an_llm_output_error() -> None:
    with pytest.raises(LLMOutputError):
        parse_decisions("[" * 5000 + "]" * 4999)
    with pytest.raises(LLMOutputError):
        parse_decisions("{[1]: 2}")
