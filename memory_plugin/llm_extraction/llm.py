"""Calling an LLM given as a LangChain chat model, a LlamaIndex LLM or a plain callable, without importing
either framework (duck typing), and reading the token usage it reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError

_USAGE_KEYS = {
    "input_tokens": "input_tokens",
    "prompt_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "completion_tokens": "output_tokens",
    "total_tokens": "total_tokens",
}


def _as_mapping(value: object) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if value is not None and hasattr(value, "model_dump"):
        dumped = value.model_dump()
        return dumped if isinstance(dumped, Mapping) else None
    return None


def usage_of(response: object) -> dict[str, int]:
    """Token usage from a LangChain message (``usage_metadata``, ``response_metadata["token_usage"]``) or a
    LlamaIndex response (``raw["usage"]``, ``additional_kwargs``); empty when the LLM reports none."""
    sources: list[object] = [getattr(response, "usage_metadata", None)]
    metadata = _as_mapping(getattr(response, "response_metadata", None)) or {}
    sources += [metadata.get("token_usage"), metadata.get("usage")]
    raw = getattr(response, "raw", None)
    raw_map = _as_mapping(raw) or {}
    sources += [raw_map.get("usage"), getattr(raw, "usage", None), getattr(response, "additional_kwargs", None)]
    for source in sources:
        found = _as_mapping(source)
        if not found:
            continue
        usage: dict[str, int] = {}
        for key, name in _USAGE_KEYS.items():
            value = found.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                usage[name] = value
        if usage:
            return usage
    return {}


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # LangChain content blocks
        parts = [b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, (str, dict))]
        return "".join(parts)
    return "" if content is None else str(content)


def call_llm(llm: object, prompt: str) -> tuple[str, dict[str, int]]:
    """Send one prompt; returns the answer text and the token usage reported (possibly empty).

    A LangChain ``BaseChatModel`` is recognised by ``invoke``, a LlamaIndex ``LLM`` by ``complete``, anything else
    must be callable as ``llm(prompt) -> str``.
    """
    if hasattr(llm, "invoke"):
        response = llm.invoke(prompt)
        return _content_text(getattr(response, "content", response)), usage_of(response)
    if hasattr(llm, "complete"):
        response = llm.complete(prompt)
        return _content_text(getattr(response, "text", response)), usage_of(response)
    if callable(llm):
        response = llm(prompt)
        if isinstance(response, str):
            return response, {}
        text = getattr(response, "content", getattr(response, "text", response))
        return _content_text(text), usage_of(response)
    raise TypeError(
        f"{type(llm).__name__} is not an LLM: give a LangChain chat model, a LlamaIndex LLM or a callable "
        "(prompt: str) -> str"
    )


def check_llm(llm: object) -> None:
    """Fail early, at construction, for something that cannot be called as an LLM."""
    if not (hasattr(llm, "invoke") or hasattr(llm, "complete") or callable(llm)):
        raise InvalidArgumentError(
            "llm", f"{type(llm).__name__} is not an LLM: give a LangChain chat model, a LlamaIndex LLM or a callable"
        )
