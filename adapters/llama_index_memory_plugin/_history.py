"""The short-term history of one run: reading and writing it through the store, and cutting it to a token budget.

Pure functions, apart from the plans, which only yield store calls (see :mod:`._calls`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock

from memory_plugin import Message, Scope
from memory_plugin.models import MetadataValue
from memory_plugin.validation import MAX_LIMIT, MAX_MESSAGES

from ._calls import Plan, StoreCall
from ._convert import text_of

Tokenizer = Callable[[str], Sequence[Any]]
# A rough, fixed cost for an image, audio or document block, whose real cost depends on the model.
MEDIA_BLOCK_TOKENS = 256
_TOOL_ROLES = (MessageRole.TOOL, MessageRole.FUNCTION)


def read_plan(scope: Scope) -> Plan[list[Message]]:
    """All stored messages of the run ``scope``, oldest first."""
    messages: list[Message] = []
    cursor = None
    while True:
        page = yield StoreCall("messages", (scope,), {"limit": MAX_LIMIT, "cursor": cursor})
        messages += page.items
        if page.next_cursor is None:
            return messages
        cursor = page.next_cursor


def write_plan(
    scope: Scope, entries: Sequence[Mapping[str, Any]], metadata: Mapping[str, MetadataValue], sync: bool
) -> Plan[None]:
    """Add ``entries`` (engine-form messages) to the run ``scope``, at most 100 per call as the store allows."""
    for start in range(0, len(entries), MAX_MESSAGES):
        batch = [dict(entry) for entry in entries[start : start + MAX_MESSAGES]]
        yield StoreCall("add", (scope,), {"messages": batch, "metadata": dict(metadata) or None, "sync": sync})


def count_tokens(message: ChatMessage, tokenizer: Tokenizer) -> int:
    """Tokens of a message as the model will roughly see it: text, tool calls, kwargs, media blocks."""
    total = len(tokenizer(text_of(message)))
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            total += len(tokenizer(f"{block.tool_name} {block.tool_kwargs}"))
        elif not isinstance(block, TextBlock):
            total += MEDIA_BLOCK_TOKENS
    if message.additional_kwargs:
        total += len(tokenizer(str(message.additional_kwargs)))
    return total


def recent_window(messages: Sequence[ChatMessage], budget: int, tokenizer: Tokenizer) -> list[ChatMessage]:
    """The most recent messages that fit ``budget`` tokens, in whole turns (a turn is a user message and every
    message after it up to the next user message), so the window starts with a user message and never separates
    a tool call from its result.

    The **newest turn** (the last user message and everything after it) is always kept, even alone over budget:
    the model must see the question and what was done for it (a too-long one fails loudly at the model rather
    than silently here). Older turns are added whole, newest first, while they fit. When the whole history fits
    it is returned as it is, including what comes before the first user message (a system prompt, a greeting).
    A history without any user message keeps its newest messages that fit, at least the last one.
    """
    costs = [count_tokens(message, tokenizer) for message in messages]
    if sum(costs) <= budget:
        return list(messages)
    starts = [i for i, message in enumerate(messages) if message.role == MessageRole.USER]
    if not starts:
        start, used = len(messages) - 1, costs[-1]
        while start > 0 and used + costs[start - 1] <= budget:
            start, used = start - 1, used + costs[start - 1]
        return list(messages[start:])
    start = starts[-1]
    used = sum(costs[start:])
    for earlier in reversed(starts[:-1]):
        cost = sum(costs[earlier:start])
        if used + cost > budget:
            break
        start, used = earlier, used + cost
    return list(messages[start:])


def complete_tool_exchanges(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Keep tool calls only together with their results, as model APIs require.

    An assistant message whose calls are not all answered in ``messages`` loses its calls (and is left out if
    nothing else remains); a tool result whose call is not kept is left out. Returns new messages where changed.
    """
    answered = {_answer_id(m) for m in messages if m.role in _TOOL_ROLES}
    kept_calls: set[str] = set()
    result: list[ChatMessage] = []
    for message in messages:
        calls = _call_ids(message)
        if calls and all(call in answered for call in calls):
            kept_calls.update(calls)
            result.append(message)
        elif calls:
            stripped = _without_calls(message)
            if stripped is not None:
                result.append(stripped)
        elif message.role in _TOOL_ROLES:
            if _answer_id(message) in kept_calls:
                result.append(message)
        else:
            result.append(message)
    return result


def _call_ids(message: ChatMessage) -> list[str]:
    ids = [block.tool_call_id or "" for block in message.blocks if isinstance(block, ToolCallBlock)]
    for call in message.additional_kwargs.get("tool_calls") or []:
        ids.append(str((call.get("id") if isinstance(call, Mapping) else getattr(call, "id", "")) or ""))
    return ids


def _answer_id(message: ChatMessage) -> str:
    return str(message.additional_kwargs.get("tool_call_id") or "")


def _without_calls(message: ChatMessage) -> ChatMessage | None:
    if not text_of(message).strip():
        return None
    return ChatMessage(
        role=message.role,
        blocks=[block.model_copy() for block in message.blocks if not isinstance(block, ToolCallBlock)],
        additional_kwargs={k: v for k, v in message.additional_kwargs.items() if k != "tool_calls"},
    )
