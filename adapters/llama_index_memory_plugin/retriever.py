"""``MemoryPluginRetriever``: long-term memories as LlamaIndex nodes, for query engines and context chat engines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from memory_plugin import DEFAULT_MIN_SCORE, AsyncMemoryStore, MemoryStore, Scope, SearchHit
from memory_plugin.binding import store_views

from ._calls import arun, run
from ._recall import Recall, node_metadata

# What the model sees of a node besides its text; ids and scope are for the application.
LLM_METADATA = frozenset({"event_time", "role"})


class MemoryPluginRetriever(BaseRetriever):
    """Search a memory store and return ``NodeWithScore``: the memory text as a ``TextNode`` (its id is the memory
    id), the search score (in ``[0, 1]``, higher is better), and metadata with ``memory_id``, ``memory_type``,
    ``scope`` (``app/tenant/agent/run``) and each scope segment, ``event_time``, ``created_at``, ``role`` when
    known, and the memory's own metadata. Only ``event_time`` and ``role`` are shown to the model.

    Args:
        store: a ``MemoryStore`` or ``AsyncMemoryStore``.
        scope: the read scope; ``"*"`` and id lists are allowed in tenant_id, agent_id and run_id.
        top_k: 1-50 memories per query. min_score: drop hits scoring below it.
        rerank, memory_types, filters, start_time, end_time: passed to ``store.search``.

    Raises:
        InvalidScopeError, InvalidArgumentError: a bad scope or option (the message names it).
        TypeError: ``store`` is not a memory store.

    Example:
        >>> retriever = MemoryPluginRetriever(store, Scope("app", "user-1", "*", "*"), top_k=3)  # doctest: +SKIP
        >>> [(n.score, n.text) for n in retriever.retrieve("what does the user drink?")]  # doctest: +SKIP
    """

    def __init__(
        self,
        store: MemoryStore | AsyncMemoryStore,
        scope: Scope | Mapping[str, Any],
        *,
        top_k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
        rerank: bool = True,
        memory_types: str | Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        start_time: datetime | str | float | None = None,
        end_time: datetime | str | float | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self._store, self._astore = store_views(store, type(self).__name__)
        self._recall = Recall.build(
            scope,
            top_k=top_k,
            rerank=rerank,
            min_score=min_score,
            memory_types=memory_types,
            filters=filters,
            start_time=start_time,
            end_time=end_time,
        )
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def scope(self) -> Scope:
        return self._recall.scope

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [to_node(hit) for hit in run(self._recall.plan(query_bundle.query_str), self._store)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [to_node(hit) for hit in await arun(self._recall.plan(query_bundle.query_str), self._astore)]


def to_node(hit: SearchHit) -> NodeWithScore:
    """One search hit as a LlamaIndex node with its score."""
    metadata = node_metadata(hit.memory)
    hidden = [key for key in metadata if key not in LLM_METADATA]
    node = TextNode(
        id_=hit.memory.id,
        text=hit.memory.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=list(metadata),
    )
    return NodeWithScore(node=node, score=hit.score)
