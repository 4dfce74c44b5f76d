"""Reading JSON out of what a real LLM answers: fenced code blocks, prose before or after, ``<think>`` sections,
trailing commas, smart quotes, Python literals. Pure functions, no I/O."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

ACTIONS = ("ADD", "UPDATE", "DELETE", "NOOP")
_ACTION_ALIASES = {"NONE": "NOOP", "KEEP": "NOOP", "SKIP": "NOOP", "MERGE": "UPDATE", "REMOVE": "DELETE"}


class LLMOutputError(ValueError):
    """The LLM's answer is not usable; the message says why, in words the LLM can act on."""


@dataclass(frozen=True)
class Decision:
    """One thing the LLM decided. ``target`` is the short id of an existing memory (UPDATE, DELETE, NOOP)."""

    action: str
    text: str = ""
    memory_type: str = "fact"
    target: str | None = None
    event_time: str | None = None
    profile_type: str | None = None
    attribute: str | None = None


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})


def _balanced(text: str, start: int) -> str:
    """The JSON value starting at ``start``: up to its matching bracket, or to the last closing one."""
    opening = text[start]
    closing = "}" if opening == "{" else "]"
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    end = text.rfind(closing)
    return text[start : end + 1] if end > start else text[start:]


def _candidates(answer: str) -> list[str]:
    text = _THINK.sub("", answer).strip()
    found = [m.group(1).strip() for m in _FENCE.finditer(text)]
    if "```" in text and not found:  # an unclosed fence: drop the opening line
        found.append(text.split("```", 1)[1].split("\n", 1)[-1])
    found.append(text)
    result = []
    for chunk in found:
        starts = [i for i in (chunk.find("{"), chunk.find("[")) if i >= 0]
        if starts:
            result.append(_balanced(chunk, min(starts)))
    return result


def _loads(chunk: str) -> Any:
    attempts = [chunk, _TRAILING_COMMA.sub(r"\1", chunk.translate(_SMART_QUOTES))]
    error: Exception | None = None
    for attempt in attempts:
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError) as e:
            error = e
    try:  # single quotes, True/False/None: a Python literal
        pythonic = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", attempts[1])))
        return ast.literal_eval(pythonic)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise LLMOutputError(f"the JSON is invalid: {error}") from error


def parse_json(answer: str) -> Any:
    """The first JSON object or array in an LLM answer.

    Raises:
        LLMOutputError: the answer is empty or holds no readable JSON.
    """
    if not answer or not answer.strip():
        raise LLMOutputError("the answer was empty; answer with a JSON object")
    chunks = _candidates(answer)
    if not chunks:
        raise LLMOutputError("the answer holds no JSON object; answer with a JSON object only")
    error: LLMOutputError | None = None
    for chunk in chunks:
        try:
            return _loads(chunk)
        except LLMOutputError as e:
            error = error or e
    assert error is not None
    raise error


def _text(value: object) -> str:
    return "" if value is None else str(value).replace("\x00", "").strip()


def _decision(item: object, index: int) -> Decision:
    if not isinstance(item, dict):
        raise LLMOutputError(f"memories[{index}] must be an object, got {type(item).__name__}")
    raw_action = _text(item.get("action", item.get("event", "ADD"))).upper()
    action = _ACTION_ALIASES.get(raw_action, raw_action)
    if action not in ACTIONS:
        raise LLMOutputError(f"memories[{index}].action must be one of {list(ACTIONS)}, got {raw_action!r}")
    text = _text(item.get("text", item.get("memory", item.get("value", ""))))
    target = _text(item.get("id")) or None
    if action in ("ADD", "UPDATE") and not text:
        raise LLMOutputError(f"memories[{index}] ({action}) needs a non-empty text")
    if action in ("DELETE", "NOOP") and target is None:
        raise LLMOutputError(f"memories[{index}] ({action}) needs the id of an existing memory")
    return Decision(
        action=action,
        text=text,
        memory_type=_text(item.get("type", item.get("memory_type", "fact"))).lower() or "fact",
        target=target,
        event_time=_text(item.get("event_time", item.get("when"))) or None,
        profile_type=_text(item.get("profile", item.get("profile_type"))) or None,
        attribute=_text(item.get("attribute", item.get("key"))).lower() or None,
    )


def parse_decisions(answer: str) -> list[Decision]:
    """The memory decisions in an LLM answer: ``{"memories": [...]}``, a bare list, or one decision object.

    Raises:
        LLMOutputError: no JSON, or decisions without a valid action, text or id.
    """
    value = parse_json(answer)
    if isinstance(value, dict):
        items = next((value[k] for k in ("memories", "decisions", "facts") if k in value), None)
        if items is None:
            items = [value] if "action" in value or "text" in value else None
        if items is None:
            raise LLMOutputError('expected {"memories": [...]}, got an object without "memories"')
    else:
        items = value
    if not isinstance(items, list):
        raise LLMOutputError(f'"memories" must be a list, got {type(items).__name__}')
    return [_decision(item, i) for i, item in enumerate(items)]
