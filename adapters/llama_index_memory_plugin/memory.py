"""``MemoryPluginMemory``: a LlamaIndex ``BaseMemory`` for chat engines and agents, backed by a memory store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.types import BaseMemory
from llama_index.core.utils import get_tokenizer

from memory_plugin import DEFAULT_MIN_SCORE, AsyncMemoryStore, MemoryStore, Scope
from memory_plugin.models import MetadataValue

from ._calls import Plan, StoreCall, arun, run
from ._convert import fingerprint, from_engine, to_engine_all
from ._history import complete_tool_exchanges, count_tokens, read_plan, recent_window, write_plan
from ._recall import DEFAULT_RECALL_TEMPLATE, PromptMessages, query_for, recall_message
from ._scope import Binding

DEFAULT_TOKEN_LIMIT = 3000
DEFAULT_RECALL_TOKEN_LIMIT = 600
# Like LlamaIndex's ChatMemoryBuffer: given an LLM, use three quarters of its context window.
LLM_CONTEXT_SHARE = 0.75


class MemoryPluginMemory(BaseMemory):
    """Chat memory for LlamaIndex chat engines and agents: short-term history of the current run plus long-term
    memories recalled from earlier runs, all kept in a memory_plugin memory store.

    - ``put`` / ``put_messages`` (and ``aput`` / ``aput_messages``) write each turn to ``scope`` as it happens;
      long-term memories are extracted in the background by default (``sync=False``; ``store.flush()`` waits).
    - ``get(input=...)`` returns a system message with the long-term memories recalled from ``recall_scope``
      (default: every run of this tenant and agent, ``run_id="*"``) for ``input`` (or, without ``input``, for the
      latest user message), followed by the run's most recent messages. Everything fits in ``token_limit`` minus
      ``initial_token_count``: memories take at most ``recall_token_limit`` tokens; the run's messages are kept in
      whole turns (a user message and what follows it), oldest turns dropped first, so the window starts with a
      user message and a tool call is never separated from its result. The newest turn (the last user message
      and everything after it) is always kept, even when it alone is over the limit. Memories that repeat a
      message in the window (made from it, or with the same text) are left out.
    - ``get_all`` returns the run's messages; ``set(messages)`` makes them the run's history (if they extend the
      stored history only the new ones are written, otherwise the run's stored messages are deleted and replaced);
      ``reset()`` deletes the run's messages. Long-term memories are never touched, neither of this run nor of
      any other.
    - Every method has a native async twin running on the store's async API.

    Args:
        store: a ``MemoryStore`` or ``AsyncMemoryStore``.
        scope: the concrete ``Scope`` (or mapping of its four segments) of this run; every turn is written here.
        recall_scope: where long-term memories are recalled from; ``"*"`` and id lists allowed.
        recall_top_k: at most this many memories are recalled (0 turns recall off).
        min_score: memories scoring below this (scores are in ``[0, 1]``) are not recalled.
        rerank, memory_types, filters: passed to ``store.search`` for recall.
        metadata: flat metadata stored with every turn (at most 13 keys).
        token_limit: tokens for everything ``get`` returns (default 3000).
        recall_token_limit: tokens for the recalled memories, within ``token_limit`` (default 600).
        recall_template: the system message text; ``{memories}`` is replaced by one line per memory.
        sync: ``True`` extracts long-term memories before ``put`` returns.
        tokenizer_fn: counts tokens (default: LlamaIndex's global tokenizer).

    Raises:
        InvalidScopeError: ``scope`` misses a segment, has an invalid id, or uses ``"*"`` / a list of ids.
        InvalidArgumentError: an option is out of range or malformed (the message names it).
        TypeError: ``store`` is not a memory store.

    Example:
        >>> memory = MemoryPluginMemory(store, Scope("app", "user-1", "assistant", "session-2"))  # doctest: +SKIP
        >>> SimpleChatEngine.from_defaults(llm=llm, memory=memory).chat("What do I like to drink?")  # doctest: +SKIP
    """

    token_limit: int = Field(default=DEFAULT_TOKEN_LIMIT, gt=0, description="Tokens for everything get() returns.")
    recall_token_limit: int = Field(
        default=DEFAULT_RECALL_TOKEN_LIMIT, ge=0, description="Tokens for the recalled memories, within token_limit."
    )
    recall_template: str = Field(
        default=DEFAULT_RECALL_TEMPLATE, description="The recall system message; {memories} becomes the memories."
    )
    sync: bool = Field(default=False, description="Extract long-term memories before put() returns.")
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)

    _binding: Binding = PrivateAttr()

    def __init__(
        self,
        store: MemoryStore | AsyncMemoryStore,
        scope: Scope | Mapping[str, Any],
        *,
        recall_scope: Scope | Mapping[str, Any] | None = None,
        recall_top_k: int = 5,
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
            top_k=recall_top_k,
            top_k_field="recall_top_k",
            min_top_k=0,
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

    @field_validator("recall_template")
    @classmethod
    def _has_placeholder(cls, template: str) -> str:
        if "{memories}" not in template:
            raise ValueError("recall_template must contain '{memories}', where the recalled memories go")
        return template

    @classmethod
    def class_name(cls) -> str:
        return "MemoryPluginMemory"

    @classmethod
    def from_defaults(
        cls,
        store: MemoryStore | AsyncMemoryStore | None = None,
        scope: Scope | Mapping[str, Any] | None = None,
        chat_history: Sequence[ChatMessage] | None = None,
        llm: LLM | None = None,
        **kwargs: Any,
    ) -> MemoryPluginMemory:
        """Build the memory as LlamaIndex factories do: ``llm`` sets ``token_limit`` to 3/4 of its context window
        (unless given) and ``chat_history`` becomes the run's history (see :meth:`set`).

        Raises:
            TypeError: ``store`` or ``scope`` is missing.
        """
        if store is None or scope is None:
            raise TypeError(
                f"{cls.__name__}.from_defaults needs store= (a memory_plugin MemoryStore) and scope= (the Scope "
                "each turn is written to); build the memory yourself and pass it as memory="
            )
        if llm is not None and "token_limit" not in kwargs:
            kwargs["token_limit"] = int(llm.metadata.context_window * LLM_CONTEXT_SHARE)
        memory = cls(store, scope, **kwargs)
        if chat_history:
            memory.set(list(chat_history))
        return memory

    @property
    def scope(self) -> Scope:
        """The run this memory writes to."""
        return self._binding.scope

    @property
    def recall_scope(self) -> Scope:
        """Where long-term memories are recalled from."""
        return self._binding.recall.scope

    @property
    def store(self) -> MemoryStore:
        """The memory store (its sync API) this memory reads and writes; ``store.flush()`` waits for extraction."""
        return self._binding.store

    # ---- plans: the logic, written once for the sync and the async methods --------------------------------

    def _get_plan(self, input: str | ChatMessage | None, initial_token_count: int) -> Plan[list[ChatMessage]]:
        stored = yield from read_plan(self.scope)
        history = [from_engine(message) for message in stored]
        available = max(0, self.token_limit - initial_token_count)
        recall_budget = min(self.recall_token_limit, available)
        hits = []
        if recall_budget:
            # Messages sure to stay in the window whatever the memories take: their memories would be repeats.
            sure = recent_window(history, available - recall_budget, self.tokenizer_fn)
            in_window = PromptMessages.of(sure, (message.id for message in stored[len(stored) - len(sure) :]))
            hits = yield from self._binding.recall.plan(query_for(input, history), in_window)
        recalled = recall_message(hits, self.recall_template, recall_budget, self.tokenizer_fn)
        used = count_tokens(recalled, self.tokenizer_fn) if recalled else 0
        window = complete_tool_exchanges(recent_window(history, available - used, self.tokenizer_fn))
        return [recalled, *window] if recalled else window

    def _get_all_plan(self) -> Plan[list[ChatMessage]]:
        stored = yield from read_plan(self.scope)
        return [from_engine(message) for message in stored]

    def _put_plan(self, messages: Sequence[ChatMessage]) -> Plan[None]:
        yield from write_plan(self.scope, to_engine_all(messages), self._binding.metadata, self.sync)

    def _set_plan(self, messages: Sequence[ChatMessage]) -> Plan[None]:
        stored = yield from read_plan(self.scope)
        entries = to_engine_all(messages)
        old = [fingerprint(m.role, m.content, m.metadata) for m in stored]
        new = [fingerprint(e["role"], e["content"], e["metadata"]) for e in entries]
        # When the history only grew, write what is new; otherwise restart the history with the given messages.
        if new[: len(old)] == old:
            entries = entries[len(old) :]
        else:
            yield StoreCall("clear_messages", (self.scope,))
        yield from write_plan(self.scope, entries, self._binding.metadata, self.sync)

    # ---- BaseMemory ------------------------------------------------------------------------------------------

    def get(
        self, input: str | ChatMessage | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """Recalled memories (one system message, if any) and the run's recent messages, within the token limit.

        Args:
            input: what to recall memories for; default: the latest user message of the run.
            initial_token_count: tokens the caller already spends (e.g. its system prompt), taken off the limit.

        Returns:
            New ``ChatMessage`` objects, oldest first, the recall message first.
        """
        return run(self._get_plan(input, initial_token_count), self._binding.store)

    async def aget(
        self, input: str | ChatMessage | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async :meth:`get`."""
        return await arun(self._get_plan(input, initial_token_count), self._binding.astore)

    def get_all(self) -> list[ChatMessage]:
        """Every message of the run, oldest first (no recall, no token limit)."""
        return run(self._get_all_plan(), self._binding.store)

    async def aget_all(self) -> list[ChatMessage]:
        """Async :meth:`get_all`."""
        return await arun(self._get_all_plan(), self._binding.astore)

    def put(self, message: ChatMessage) -> None:
        """Write one turn to the run (``message`` is not modified)."""
        run(self._put_plan([message]), self._binding.store)

    async def aput(self, message: ChatMessage) -> None:
        """Async :meth:`put`."""
        await arun(self._put_plan([message]), self._binding.astore)

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Write several turns in order, in one store call per 100 messages."""
        run(self._put_plan(messages), self._binding.store)

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`put_messages`."""
        await arun(self._put_plan(messages), self._binding.astore)

    def set(self, messages: list[ChatMessage]) -> None:
        """Make ``messages`` the run's history: if they start with the stored history only the rest is written,
        otherwise the run's stored messages are deleted and replaced by them."""
        run(self._set_plan(messages), self._binding.store)

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`set`."""
        await arun(self._set_plan(messages), self._binding.astore)

    def reset(self) -> None:
        """Delete the run's messages (its chat history). Long-term memories, of this run or any other, are kept."""
        run(self._set_plan([]), self._binding.store)

    async def areset(self) -> None:
        """Async :meth:`reset`."""
        await arun(self._set_plan([]), self._binding.astore)
