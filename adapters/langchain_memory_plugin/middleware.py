"""``MemoryMiddleware``: long-term memory for agents built with ``langchain.agents.create_agent``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.agents.middleware.types import ModelCallResult, PrivateStateAttr
from langchain_core.messages import BaseMessage, SystemMessage
from langgraph.runtime import Runtime

from memory_plugin import DEFAULT_MIN_SCORE, Scope, SearchHit, binding
from memory_plugin.models import Metadata
from memory_plugin.scope import SegmentValue

from . import _recall
from ._messages import MESSAGE_ID_KEY, EngineMessage, in_batches, latest_user_text, message_key, to_engine_messages
from ._recall import MemoryFormatter, format_memories
from ._scope import ScopeResolver

HANDLED_KEY = "memory_handled_ids"


class MemoryState(AgentState[Any]):
    """Agent state plus the ids of the messages auto-write has already handled (private to the middleware; it is
    checkpointed with the thread, so a message is written once however many turns and tool loops follow)."""

    memory_handled_ids: NotRequired[Annotated[list[str], PrivateStateAttr]]


def plan_writes(
    messages: Sequence[BaseMessage], handled: Collection[str], *, include_tool_messages: bool
) -> tuple[list[EngineMessage], list[str]]:
    """Which messages of the state to write now, and the handled ids to keep afterwards.

    Every message not handled before is considered once: user and assistant messages with text are written
    (tool calls and tool results only when ``include_tool_messages``), the rest are skipped for good. The ids kept
    are those of the messages still in the state, so the list never outgrows the conversation.
    """
    seen = set(handled)
    new = [m for m in messages if message_key(m) not in seen]
    to_write = to_engine_messages(new, include_tool_messages=include_tool_messages, include_system=False)
    return to_write, [message_key(m) for m in messages]


def drop_repeats(hits: Sequence[SearchHit], messages: Sequence[BaseMessage]) -> list[SearchHit]:
    """Hits that do not repeat a message the model already sees (same LangChain message id, or same text)."""
    ids = {str(m.id) for m in messages if m.id}
    texts = {m.text.strip() for m in messages}
    return [
        hit
        for hit in hits
        if hit.memory.metadata.get(MESSAGE_ID_KEY) not in ids and hit.memory.text.strip() not in texts
    ]


def with_section(system_message: SystemMessage | None, section: str) -> SystemMessage:
    """A new system message: the agent's own system prompt (if any) followed by the memory section."""
    if system_message is None:
        return SystemMessage(content=section)
    content = system_message.content
    if isinstance(content, str):
        return SystemMessage(content=f"{content}\n\n{section}" if content else section)
    return SystemMessage(content=[*content, {"type": "text", "text": section}])


class MemoryMiddleware(AgentMiddleware[MemoryState, Any]):
    """Recall and auto-write of long-term memory for ``create_agent``.

    - **Recall**: before each model call, the latest user message is the query; the best memories of the read
      scope (by default every run of the same app, tenant and agent: ``run_id="*"``) are added to the model's
      system prompt as one delimited section. The agent's state is not changed, so memories are never written
      back as messages. Recall runs before every model call, tool loops included (a search takes milliseconds),
      so what a tool saved is seen by the next call; memories repeating a message already in the conversation
      are left out.
    - **Auto-write**: when the agent finishes a turn, the user and assistant messages that are new in the state
      are written to the call's scope as short-term messages, from which the store extracts long-term memories;
      by default in the background (``sync=False``), so the answer is never delayed by extraction. A message is
      written once: the ids already handled are kept in the agent's (checkpointed) state, so tool loops and later
      turns of the same thread never write it again. Without a checkpointer each ``invoke`` is a new thread:
      pass only the new messages each time.
    - **Scope**: segments given here are fixed; the agent's runtime context supplies or overrides them per call
      (``create_agent(..., context_schema=...)`` and ``agent.invoke(..., context={"tenant_id": ..., "run_id": ...})``).

    Args:
        store: the engine store (:class:`~memory_plugin.MemoryStore` or :class:`~memory_plugin.AsyncMemoryStore`).
        app_id, tenant_id, agent_id, run_id: fixed scope segments (``None``: from the runtime context).
        context_keys: context key per segment when the names differ, e.g. ``{"tenant_id": "user_id"}``.
        read_scope: changes from the call's scope to the recall scope (default ``{"run_id": "*"}``; e.g. also
            ``{"agent_id": "*"}`` to recall what any agent learned about the tenant).
        top_k, min_score, memory_types, filters, rerank: what recall returns (see :class:`RecallOptions`).
        formatter: turns the recalled hits into the system section (default: a ``<memories>`` block); return
            ``""`` to add nothing.
        recall / auto_write: switch either half off.
        include_tool_messages: also write tool calls and tool results (default off).
        sync: extract before the turn ends (default ``False``: background extraction).
        metadata: flat metadata put on every message written.

    Raises:
        InvalidScopeError: at construction for a bad fixed segment or read scope; during a run when a scope
            segment is missing from both the constructor and the runtime context, or is a wildcard.

    Example:
        >>> agent = create_agent(  # doctest: +SKIP
        ...     model, tools=[], context_schema=UserContext,
        ...     middleware=[MemoryMiddleware(store, app_id="my-app", agent_id="assistant")],
        ... )
        >>> agent.invoke({"messages": [{"role": "user", "content": "I live in Lisbon"}]},  # doctest: +SKIP
        ...              context={"tenant_id": "user-1", "run_id": "session-1"})
    """

    state_schema = MemoryState

    def __init__(
        self,
        store: binding.StoreLike,
        *,
        app_id: str | None = None,
        tenant_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        context_keys: Mapping[str, str] | None = None,
        read_scope: Mapping[str, SegmentValue] = binding.DEFAULT_READ_SCOPE,
        top_k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
        memory_types: str | Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool = True,
        formatter: MemoryFormatter = format_memories,
        recall: bool = True,
        auto_write: bool = True,
        include_tool_messages: bool = False,
        sync: bool = False,
        metadata: Metadata | None = None,
    ) -> None:
        super().__init__()
        self._store, self._astore = binding.store_views(store, "MemoryMiddleware")
        self._scopes = ScopeResolver(app_id, tenant_id, agent_id, run_id, context_keys or {})
        self._read_overrides = binding.check_read_overrides(read_scope)
        self._options = binding.RecallOptions(top_k, min_score, memory_types, filters, rerank)
        self._formatter = formatter
        self._recall = recall
        self._auto_write = auto_write
        self._include_tool_messages = include_tool_messages
        self._sync = sync
        self._metadata = dict(metadata or {})

    # ---- recall ----------------------------------------------------------------------------------------------

    def _recall_plan(self, request: ModelRequest[Any]) -> tuple[Scope, str] | None:
        """The read scope and query for this model call, or ``None`` when there is nothing to recall for."""
        if not self._recall:
            return None
        scope = self._scopes.resolve(getattr(request.runtime, "context", None), "recall")
        query = binding.recall_query(latest_user_text(request.messages))
        return (scope.with_(**self._read_overrides), query) if query else None

    def _with_memories(self, request: ModelRequest[Any], hits: Sequence[SearchHit]) -> ModelRequest[Any]:
        section = self._formatter(drop_repeats(hits, request.messages)) if hits else ""
        if not section.strip():
            return request
        return request.override(system_message=with_section(request.system_message, section))

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelCallResult[Any]:
        """Add the recalled memories to the system prompt of this model call (sync agents)."""
        plan = self._recall_plan(request)
        if plan is None:
            return handler(request)
        hits = _recall.search(self._store, *plan, self._options)
        return handler(self._with_memories(request, hits))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ModelCallResult[Any]:
        """Add the recalled memories to the system prompt of this model call (async agents)."""
        plan = self._recall_plan(request)
        if plan is None:
            return await handler(request)
        hits = await _recall.asearch(self._astore, *plan, self._options)
        return await handler(self._with_memories(request, hits))

    # ---- auto-write ------------------------------------------------------------------------------------------

    def _write_plan(
        self, state: MemoryState, runtime: Runtime[Any]
    ) -> tuple[Scope, list[list[EngineMessage]], list[str]] | None:
        if not self._auto_write:
            return None
        scope = self._scopes.resolve(getattr(runtime, "context", None), "auto-write")
        messages = state.get("messages", [])
        to_write, handled = plan_writes(
            messages, state.get("memory_handled_ids", []), include_tool_messages=self._include_tool_messages
        )
        return scope, in_batches(to_write), handled

    def after_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Write the turn's new user and assistant messages (sync agents)."""
        plan = self._write_plan(state, runtime)
        if plan is None:
            return None
        scope, chunks, handled = plan
        for chunk in chunks:
            self._store.add(scope, messages=chunk, metadata=self._metadata, sync=self._sync)
        return {HANDLED_KEY: handled}

    async def aafter_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Write the turn's new user and assistant messages (async agents)."""
        plan = self._write_plan(state, runtime)
        if plan is None:
            return None
        scope, chunks, handled = plan
        for chunk in chunks:
            await self._astore.add(scope, messages=chunk, metadata=self._metadata, sync=self._sync)
        return {HANDLED_KEY: handled}
