"""``MemoryPluginBlock``: a memory block for LlamaIndex's ``Memory`` (``Memory.from_defaults(memory_blocks=[...])``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from memory_plugin import DEFAULT_MIN_SCORE, AsyncMemoryStore, MemoryStore, Scope
from memory_plugin.models import MetadataValue

from ._calls import arun
from ._convert import to_engine_all
from ._history import write_plan
from ._recall import PromptMessages, memory_lines, query_for
from ._scope import Binding


class MemoryPluginBlock(BaseMemoryBlock[str]):
    """Long-term memory as a block of LlamaIndex's ``Memory``.

    ``Memory`` keeps recent messages in its own FIFO and hands this block only the messages that overflow it, so
    the block writes what it is given (``_aput``) and, on every ``Memory.get``, recalls the memories relevant to the
    current messages (``_aget``: a search for the latest user message, one ``- [date, role] text`` line per memory,
    best first, leaving out memories that repeat a message ``Memory`` already shows). By default the block
    extracts what it is given before ``_aput`` returns (``sync=True``), so a message ``Memory`` flushes out of its
    FIFO is recallable on the very next ``get``. To write *every* turn as it happens, use
    :class:`MemoryPluginMemory` instead.

    Args:
        store: a ``MemoryStore`` or ``AsyncMemoryStore``.
        scope: the concrete ``Scope`` the block writes to.
        recall_scope: where memories are recalled from (default: every run of ``scope``'s tenant and agent).
        top_k, min_score, rerank, memory_types, filters: recall options, as for :class:`MemoryPluginMemory`.
        metadata: flat metadata stored with every message written (at most 13 keys).
        name, description, priority, accept_short_term_memory: as for any ``BaseMemoryBlock``; ``priority``
            defaults to 1, so ``Memory`` may drop the least relevant memories when it runs out of tokens.
        sync: extract long-term memories before ``aput`` returns (default ``True``, so what was flushed is recalled
            at once); ``False`` extracts in the background, e.g. to keep a slow ``LLMExtractor`` off the chat path
            (what was flushed is then recalled once extraction is done; ``store.flush()`` waits).

    Raises:
        InvalidScopeError, InvalidArgumentError, TypeError: as for :class:`MemoryPluginMemory`.

    Example:
        >>> block = MemoryPluginBlock(store, scope, name="user_memories")  # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="session-2", memory_blocks=[block])  # doctest: +SKIP
    """

    name: str = Field(default="long_term_memory", description="The name of the memory block.")
    description: str | None = Field(
        default="What the user said in earlier conversations, most relevant first.",
        description="A description of the memory block.",
    )
    priority: int = Field(default=1, description="Memory truncates blocks of priority > 0, lowest first.")
    sync: bool = Field(
        default=True, description="Extract before aput() returns, so what was flushed is recalled on the next get()."
    )
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)

    _binding: Binding = PrivateAttr()

    def __init__(
        self,
        store: MemoryStore | AsyncMemoryStore,
        scope: Scope | Mapping[str, Any],
        *,
        recall_scope: Scope | Mapping[str, Any] | None = None,
        top_k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
        rerank: bool = True,
        memory_types: str | Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        **fields: Any,
    ) -> None:
        bound = Binding.build(
            type(self).__name__,
            store,
            scope,
            recall_scope,
            metadata,
            top_k=top_k,
            rerank=rerank,
            min_score=min_score,
            memory_types=memory_types,
            filters=filters,
        )
        super().__init__(**fields)
        self._binding = bound

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # The store is a handle on a data folder this process owns: copies share it, as they would share a database
        # client. Everything else here is immutable, so a shallow copy is a full one.
        return self.model_copy()

    @property
    def scope(self) -> Scope:
        return self._binding.scope

    @property
    def recall_scope(self) -> Scope:
        return self._binding.recall.scope

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The memories relevant to the latest user message in ``messages``, one line each ("" if none)."""
        given = messages or []
        recall = self._binding.recall.plan(query_for(None, given), PromptMessages.of(given))
        hits = await arun(recall, self._binding.astore)
        return memory_lines(hits)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Write ``messages`` to the block's scope (they are not modified)."""
        bound = self._binding
        await arun(write_plan(bound.scope, to_engine_all(messages), bound.metadata, self.sync), bound.astore)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant memories (the last lines) until about ``tokens_to_truncate`` tokens are saved."""
        lines = content.splitlines()
        saved = 0
        while lines and saved < tokens_to_truncate:
            saved += len(self.tokenizer_fn(lines.pop() + "\n"))
        return "\n".join(lines) or None
