from __future__ import annotations

import base64
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from memory_plugin import InvalidArgumentError
from memory_plugin import validation as v


def test_text_limits() -> None:
    assert v.check_text("text", "hello") == "hello"
    for bad, problem in [
        ("", "empty"),
        ("  \n", "empty"),
        ("x" * 32_001, "at most 32000"),
        (b"x", "string"),
        ("a\x00b", "NUL"),
    ]:
        with pytest.raises(InvalidArgumentError, match=f"text: .*{problem}"):
            v.check_text("text", bad)


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"nested": {"a": 1}}, "flat scalars"),
        ({"items": [1, 2]}, "flat scalars"),
        ({"none": None}, "flat scalars"),
        ({f"k{i}": i for i in range(17)}, "at most 16 keys"),
        ({"not-an-identifier": 1}, "identifiers"),
        ({"1abc": 1}, "identifiers"),
        ({"tenant_id": "other-user"}, "reserved"),
        ({"app_id": "x"}, "reserved"),
        ({"memory_type": "x"}, "reserved"),
        ({"score": 1.0}, "reserved"),
        ({"ratio": float("nan")}, "finite"),
        ({"big": 2**64}, "64 bits"),
        ({"s": "x" * 2001}, "at most 2000"),
        ("source=chat", "dict"),
    ],
)
def test_metadata_must_be_flat_small_and_never_touch_scope(metadata: object, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"metadata.*{problem}"):
        v.check_metadata(metadata)


def test_good_metadata_passes_through() -> None:
    assert v.check_metadata({"source": "chat", "n": 3, "pinned": True, "w": 0.5}) == {
        "source": "chat",
        "n": 3,
        "pinned": True,
        "w": 0.5,
    }
    assert v.check_metadata(None) == {}


def test_messages_accept_dicts_and_framework_style_objects() -> None:
    langchain_like = SimpleNamespace(type="human", content=[{"type": "text", "text": "hi"}], name=None)
    llama_like = SimpleNamespace(role=SimpleNamespace(value="assistant"), content="hello")
    stamp = datetime(2024, 5, 1, tzinfo=timezone.utc)
    result = v.check_messages(
        [
            {"role": "user", "content": "I like coffee", "name": "Ann", "timestamp": stamp, "metadata": {"turn": 1}},
            langchain_like,
            llama_like,
            {"role": "tool", "content": "42"},
            {"role": "system", "content": "be brief"},
        ]
    )
    assert [m.role for m in result] == ["user", "user", "assistant", "tool", "system"]
    assert result[0].name == "Ann" and result[0].timestamp == stamp and result[0].metadata == {"turn": 1}
    assert result[1].content == "hi"


@pytest.mark.parametrize(
    ("messages", "field", "problem"),
    [
        ([], "messages", "empty"),
        ("hello", "messages", "list"),
        ({"role": "user", "content": "x"}, "messages", "list"),
        ([{"role": "user", "content": "x"}] * 101, "messages", "at most 100"),
        ([{"role": "robot", "content": "x"}], r"messages\[0\].role", "one of"),
        ([{"content": "x"}], r"messages\[0\].role", "one of"),
        ([{"role": "user", "content": ""}], r"messages\[0\].content", "empty"),
        ([{"role": "user", "content": "x" * 32_001}], r"messages\[0\].content", "32000"),
        ([{"role": "user", "content": 5}], r"messages\[0\].content", "string"),
        ([{"role": "user", "content": "x", "name": ""}], r"messages\[0\].name", "empty"),
        ([{"role": "user", "content": "x", "timestamp": "yesterday"}], r"messages\[0\].timestamp", "ISO 8601"),
        ([{"role": "user", "content": "x", "metadata": {"run_id": "r2"}}], r"messages\[0\].metadata", "reserved"),
        ([None], r"messages\[0\]", "dict"),
    ],
)
def test_bad_messages_name_the_field(messages: object, field: str, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"{field}: .*{problem}"):
        v.check_messages(messages)


@pytest.mark.parametrize(("value", "ok"), [(1, True), (50, True), (0, False), (51, False), (True, False), ("5", False)])
def test_top_k_range(value: object, ok: bool) -> None:
    if ok:
        assert v.check_top_k(value) == value
    else:
        with pytest.raises(InvalidArgumentError, match="top_k: must be an integer from 1 to 50"):
            v.check_top_k(value)


@pytest.mark.parametrize("value", [0, 101, -1, 2.5, None])
def test_limit_range(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="limit: must be an integer from 1 to 100"):
        v.check_limit(value)


def test_query_rules() -> None:
    assert v.check_query("coffee?") == "coffee?"
    assert v.check_query("a\x00b") == "a\x00b"  # never stored: searched as plain text, as before the server
    for bad, problem in [("", "empty"), ("   ", "empty"), ("q" * 4001, "at most 4000"), (None, "string")]:
        with pytest.raises(InvalidArgumentError, match=f"query: .*{problem}"):
            v.check_query(bad)


def test_times_accept_datetimes_iso_strings_and_unix_seconds() -> None:
    expected = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert v.check_time("t", expected) == expected
    assert v.check_time("t", datetime(2024, 5, 1, 12, 0)) == expected
    assert v.check_time("t", "2024-05-01T12:00:00+00:00") == expected
    assert v.check_time("t", expected.timestamp()) == expected
    with pytest.raises(InvalidArgumentError, match="t: .*out of range"):
        v.check_time("t", 10**20)
    with pytest.raises(InvalidArgumentError, match="start_time: must not be later than end_time"):
        v.check_time_range(expected, datetime(2020, 1, 1, tzinfo=timezone.utc))


def test_memory_types_and_filters() -> None:
    assert v.check_memory_types("fact") == ("fact",)
    assert v.check_memory_types(["fact", "event", "fact"]) == ("event", "fact")
    assert v.check_memory_types(None) == ()
    for bad in ([], "", "has space", ["ok", 3]):
        with pytest.raises(InvalidArgumentError, match="memory_types"):
            v.check_memory_types(bad)
    assert v.check_filters({"source": ["a", "b"], "n": 1}) == {"source": ("a", "b"), "n": (1,)}
    with pytest.raises(InvalidArgumentError, match="filters.*reserved"):
        v.check_filters({"tenant_id": "u2"})
    with pytest.raises(InvalidArgumentError, match="filters.source"):
        v.check_filters({"source": []})
    with pytest.raises(InvalidArgumentError, match="filters.source"):
        v.check_filters({"source": {"$ne": ""}})


def test_cursor_round_trip_and_garbage() -> None:
    assert v.check_cursor(v.encode_cursor(42)) == 42
    assert v.check_cursor(None) is None
    forged = [base64.urlsafe_b64encode(raw.encode()).decode() for raw in ("p1:" + "9" * 40, "p1:-1", "p1:١٢")]
    for bad in ("", "garbage", "' OR 1=1 --", 7, "x" * 100, *forged):
        with pytest.raises(InvalidArgumentError, match="cursor"):
            v.check_cursor(bad)
    assert v.check_cursor(v.encode_cursor(2**63 - 1)) == 2**63 - 1


def test_store_names() -> None:
    assert v.check_store_name("agent_memory") == "agent_memory"
    for bad in ("", "-x", "a b", "x" * 65, None, "../etc"):
        with pytest.raises(InvalidArgumentError, match="name"):
            v.check_store_name(bad)
    with pytest.raises(InvalidArgumentError, match="description"):
        v.check_description("x" * 1001)


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (lambda value: v.check_text("text", value), "text"),
        (v.check_query, "query"),
        (v.check_description, "description"),
        (lambda value: v.check_metadata({"source": value}), "metadata.source"),
        (lambda value: v.check_filters({"source": value}), "filters.source"),
        (lambda value: v.check_message({"role": "user", "content": value}, "messages[0]"), "messages[0].content"),
    ],
)
def test_a_lone_surrogate_is_refused_by_name(check: Any, field: str) -> None:
    """Text that is not valid Unicode (a JSON "\\ud800" escape decodes to it) cannot be stored: a clear error, not
    an encoding crash deep in storage. Proper pairs (an emoji) are fine."""
    with pytest.raises(InvalidArgumentError, match="valid Unicode") as caught:
        check("coffee \ud800")
    assert caught.value.field == field
    check("coffee \U0001f600")
