"""Memory tools for agents: ``save_memory``, ``search_memories``, ``update_memory`` and ``delete_memory``.

Each tool resolves its scope from the agent's runtime context on every call (like :class:`MemoryMiddleware`), so
one set of tools serves every user. Mistakes the model can fix (an unknown memory id, empty text) come back as
the tool's answer; a missing scope id is a configuration error and is raised.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool

from memory_plugin import DEFAULT_MIN_SCORE, InvalidArgumentError, MemoryNotFoundError, Scope, SearchHit, binding
from memory_plugin.models import AddResult, Metadata
from memory_plugin.scope import SegmentValue

from . import _recall
from ._recall import one_line
from ._scope import ScopeResolver

_RECOVERABLE = (MemoryNotFoundError, InvalidArgumentError)
# Injected by the agent's tool node (never shown to the model); ``None`` when a tool is invoked directly, which
# works when every scope segment was fixed in create_memory_tools.
OptionalRuntime = Annotated[ToolRuntime[Any, Any] | None, InjectedToolArg]


def format_hits(hits: Sequence[SearchHit]) -> str:
    """Search results for a model: one line per memory with the ids ``update_memory``/``delete_memory`` need."""
    if not hits:
        return "No matching memories."
    return "\n".join(
        f"- id={h.memory.id} run_id={h.memory.scope.run_id} agent_id={h.memory.scope.agent_id} "
        f"score={h.score:.2f}: {one_line(h.memory.text)}"
        for h in hits
    )


def _saved(result: AddResult) -> str:
    if not result.memories:
        return "Nothing was saved (the store's extractor found nothing to remember)."
    return "Saved: " + "; ".join(f"id={m.id}: {m.text}" for m in result.memories)


class _MemoryToolkit:
    """What the four tools share: the store, how to resolve the scope of a call, and the search options."""

    def __init__(
        self,
        store: binding.StoreLike,
        scopes: ScopeResolver,
        search_overrides: Mapping[str, SegmentValue],
        options: binding.RecallOptions,
        metadata: Metadata,
    ) -> None:
        self.store, _ = binding.store_views(store, "create_memory_tools")
        self.scopes = scopes
        self.search_overrides = search_overrides
        self.options = options
        self.metadata = metadata

    def scope(self, runtime: ToolRuntime[Any, Any] | None) -> Scope:
        return self.scopes.resolve(getattr(runtime, "context", None), "memory tools")

    def owner(self, scope: Scope, run_id: str | None, agent_id: str | None) -> Scope:
        """The concrete scope of a memory found by ``search_memories`` (default: this call's own ``scope``).

        Raises:
            InvalidArgumentError: not a concrete scope, or outside what ``search_memories`` can see.
        """
        changes = {k: v for k, v in (("run_id", run_id), ("agent_id", agent_id)) if v}
        target = scope.with_(**changes).require_concrete("update_memory / delete_memory")
        if not binding.contains(scope.with_(**self.search_overrides), target):
            raise InvalidArgumentError("run_id", "that memory is outside the memories these tools can reach")
        return target

    def search(self, scope: Scope, query: str, top_k: int | None) -> list[SearchHit]:
        """The memories of the search scope for ``query``, with the model's ``top_k`` if it gave one.

        Raises:
            InvalidArgumentError: the model's ``top_k`` is out of range.
        """
        options = self.options if top_k is None else replace(self.options, top_k=top_k)
        return _recall.search(self.store, scope.with_(**self.search_overrides), query, options)


def create_memory_tools(
    store: binding.StoreLike,
    *,
    app_id: str | None = None,
    tenant_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    context_keys: Mapping[str, str] | None = None,
    search_scope: Mapping[str, SegmentValue] = binding.DEFAULT_READ_SCOPE,
    top_k: int = 5,
    min_score: float = DEFAULT_MIN_SCORE,
    memory_types: str | Sequence[str] | None = None,
    metadata: Metadata | None = None,
) -> list[BaseTool]:
    """Tools that let an agent manage its memory explicitly, bound to the scope of each call.

    - ``save_memory(text)``: remember a fact about the user (in this call's scope).
    - ``search_memories(query, top_k?)``: recall by query across the search scope (default every run of the
      tenant); each line carries the ``id``, ``run_id`` and ``agent_id`` the other tools take.
    - ``update_memory(memory_id, text, run_id?, agent_id?)`` / ``delete_memory(memory_id, run_id?, agent_id?)``:
      change or forget a memory found by ``search_memories`` (only within the search scope).

    Args:
        store: the engine store (sync or async API).
        app_id, tenant_id, agent_id, run_id, context_keys: the scope, as for :class:`MemoryMiddleware`.
        search_scope: changes from the call's scope to the scope searched (default ``{"run_id": "*"}``).
        top_k, min_score, memory_types: defaults for ``search_memories``.
        metadata: flat metadata put on memories saved by ``save_memory``.

    Returns:
        The four tools, sync and async, for ``create_agent(model, tools=...)``. Inside an agent the scope comes
        from the runtime context of each call; with all four segments fixed here, the tools also work when
        invoked directly (``tool.invoke({"query": ...})``), e.g. in an LCEL chain without an agent.

    Raises:
        InvalidScopeError: a bad fixed segment or search scope (at once), or a missing scope id (on use).

    Example:
        >>> tools = create_memory_tools(store, app_id="my-app", agent_id="assistant")  # doctest: +SKIP
        >>> agent = create_agent(model, tools=tools, context_schema=UserContext)  # doctest: +SKIP
    """
    kit = _MemoryToolkit(
        store,
        ScopeResolver(app_id, tenant_id, agent_id, run_id, context_keys or {}),
        binding.check_read_overrides(search_scope, "search_scope"),
        binding.RecallOptions(top_k, min_score, memory_types),
        dict(metadata or {}),
    )

    def save_memory(text: str, runtime: OptionalRuntime = None) -> str:
        """Save one self-contained fact about the user or the conversation, worth remembering in later
        conversations (e.g. "The user is allergic to peanuts")."""
        scope = kit.scope(runtime)
        try:
            return _saved(kit.store.add(scope, text=text, metadata=kit.metadata))
        except _RECOVERABLE as e:
            return f"Error: {e}"

    def search_memories(query: str, top_k: int | None = None, runtime: OptionalRuntime = None) -> str:
        """Search what is remembered about the user from earlier conversations, most relevant first."""
        scope = kit.scope(runtime)
        text = binding.recall_query(query)
        if not text:
            return "Error: query must not be empty."
        try:
            return format_hits(kit.search(scope, text, top_k))
        except _RECOVERABLE as e:
            return f"Error: {e}"

    def update_memory(
        memory_id: str,
        text: str,
        run_id: str | None = None,
        agent_id: str | None = None,
        runtime: OptionalRuntime = None,
    ) -> str:
        """Replace the text of a memory found by search_memories (pass its id, and its run_id and agent_id when
        they differ from this conversation's)."""
        scope = kit.scope(runtime)
        try:
            owner = kit.owner(scope, run_id, agent_id)
            memory = kit.store.update(owner, memory_id, text=text)
        except _RECOVERABLE as e:
            return f"Error: {e}"
        return f"Updated id={memory.id}: {memory.text}"

    def delete_memory(
        memory_id: str, run_id: str | None = None, agent_id: str | None = None, runtime: OptionalRuntime = None
    ) -> str:
        """Forget a memory found by search_memories that is wrong or that the user asked to forget (pass its id,
        and its run_id and agent_id when they differ from this conversation's)."""
        scope = kit.scope(runtime)
        try:
            kit.store.delete(kit.owner(scope, run_id, agent_id), memory_id)
        except _RECOVERABLE as e:
            return f"Error: {e}"
        return f"Deleted id={memory_id}."

    return [_tool(func) for func in (save_memory, search_memories, update_memory, delete_memory)]


def _tool(func: Callable[..., str]) -> BaseTool:
    """A tool with a sync and an async path; the async one runs the sync one on a worker thread, exactly as the
    engine's own async API does, so the two cannot drift apart."""

    @functools.wraps(func)
    async def coroutine(*args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(func, *args, **kwargs)

    return StructuredTool.from_function(func=func, coroutine=coroutine, name=func.__name__)
