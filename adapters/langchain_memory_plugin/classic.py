"""``MemoryPluginMemory``: a langchain-classic ``BaseMemory`` for chains such as ``ConversationChain``.

Needs the ``langchain-classic`` extra; ``langchain_memory_plugin`` imports this module only when
``MemoryPluginMemory`` is first used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from langchain_classic.base_memory import BaseMemory
    from langchain_classic.memory.utils import get_prompt_input_key
except ImportError as e:  # pragma: no cover - exercised in a subprocess without langchain-classic
    raise ImportError("MemoryPluginMemory needs langchain-classic: install memory-plugin[langchain-classic]") from e

from langchain_core.messages import AIMessage, HumanMessage
from pydantic import ConfigDict, Field, field_validator

from memory_plugin import DEFAULT_MIN_SCORE, Scope, binding
from memory_plugin.models import every_page
from memory_plugin.validation import MAX_LIMIT

from . import _recall
from ._messages import to_engine_messages
from ._recall import MemoryFormatter, format_memories
from ._stores import StoreField


class MemoryPluginMemory(BaseMemory):
    """Long-term memory for classic chains: each chain input recalls the most relevant memories (by default from
    every run of the tenant) into one prompt variable, and each turn is saved to the chain's scope.

    Args:
        store: the engine store (:class:`~memory_plugin.MemoryStore` or :class:`~memory_plugin.AsyncMemoryStore`).
        scope: the concrete scope turns are saved to (one run).
        read_scope: changes from ``scope`` to the recall scope (default ``{"run_id": "*"}``).
        memory_key: the prompt variable filled with memories (default ``"history"``, as ``ConversationChain``
            expects).
        input_key / output_key: the chain input used as query and user turn, and the output saved as the
            assistant turn (default: the only one there is).
        top_k, min_score, memory_types: what recall returns (see :class:`RecallOptions`).
        formatter: hits to prompt text (default: a ``<memories>`` block; empty when nothing is recalled).
        sync: extract before ``save_context`` returns (default ``True``, so the next turn can recall it).

    Raises:
        pydantic.ValidationError: a malformed or non-concrete ``scope``, or a bad option (a ``ValueError``).

    Example:
        >>> memory = MemoryPluginMemory(store=store, scope=Scope("app", "user-1", "assistant", "s1"))  # doctest: +SKIP
        >>> chain = ConversationChain(llm=llm, memory=memory)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: StoreField
    scope: Scope
    read_scope: Mapping[str, Any] = Field(default_factory=lambda: dict(binding.DEFAULT_READ_SCOPE))
    memory_key: str = "history"
    input_key: str | None = None
    output_key: str | None = None
    top_k: int = 5
    min_score: float = DEFAULT_MIN_SCORE
    memory_types: str | Sequence[str] | None = None
    formatter: MemoryFormatter = Field(default=format_memories, exclude=True)
    sync: bool = True

    @field_validator("scope", mode="before")
    @classmethod
    def _parse_scope(cls, value: object) -> Scope:
        return binding.write_scope(value, "MemoryPluginMemory", read_option="read_scope")

    @field_validator("read_scope")
    @classmethod
    def _check_read_scope(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return dict(binding.check_read_overrides(value))

    def model_post_init(self, context: Any, /) -> None:
        self._options()  # invalid options fail when the memory is built, not on the first chain call

    def _options(self) -> binding.RecallOptions:
        return binding.RecallOptions(self.top_k, self.min_score, self.memory_types)

    @property
    def memory_variables(self) -> list[str]:
        """The one prompt variable this memory fills."""
        return [self.memory_key]

    def _query(self, inputs: dict[str, Any]) -> str:
        key = self.input_key or get_prompt_input_key(inputs, self.memory_variables)
        return binding.recall_query(str(inputs[key]))

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``{memory_key: formatted memories}`` for the chain input (empty text when nothing is recalled)."""
        query = self._query(inputs)
        if not query:
            return {self.memory_key: ""}
        read = self.scope.with_(**self.read_scope)
        store, _ = binding.store_views(self.store)
        return {self.memory_key: self.formatter(_recall.search(store, read, query, self._options()))}

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.load_memory_variables, inputs)

    def _turn(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
        input_key = self.input_key or get_prompt_input_key(inputs, self.memory_variables)
        if self.output_key is None and len(outputs) != 1:
            raise ValueError(f"one output key expected, got {sorted(outputs)}; set output_key")
        output_key = self.output_key or next(iter(outputs))
        return to_engine_messages([HumanMessage(str(inputs[input_key])), AIMessage(str(outputs[output_key]))])

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Save the turn (the chain input and output) as a user and an assistant message of ``scope``."""
        messages = self._turn(inputs, outputs)
        if messages:
            store, _ = binding.store_views(self.store)
            store.add(self.scope, messages=messages, sync=self.sync)

    async def asave_context(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        await asyncio.to_thread(self.save_context, inputs, outputs)

    def clear(self) -> None:
        """Forget this run: delete the long-term memories of ``scope`` (after pending extraction) and its raw
        messages."""
        store, _ = binding.store_views(self.store)
        store.flush()
        store.clear_messages(self.scope)
        pages = every_page(lambda cursor: store.list(self.scope, limit=MAX_LIMIT, cursor=cursor))
        ids = [memory.id for page in pages for memory in page.items]  # all read before any is deleted
        for memory_id in ids:
            store.delete(self.scope, memory_id)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)
