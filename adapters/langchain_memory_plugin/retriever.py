"""``MemoryRetriever``: recall by query as LangChain ``Document``s, for any LCEL chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, field_validator, model_validator

from memory_plugin import DEFAULT_MIN_SCORE, InvalidArgumentError, Scope, SearchHit
from memory_plugin.binding import RecallOptions, recall_query, store_views

from . import _recall
from ._stores import StoreField

# What invoke(query, **options) may change for one call: every recall option the retriever takes.
PER_CALL_OPTIONS = ("top_k", "min_score", "memory_types", "filters", "rerank")
# Keyword arguments LangChain's own invoke() reads and still passes on to the retriever.
_LANGCHAIN_KWARGS = frozenset({"verbose"})


def with_top_k_alias(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with LangChain's conventional ``k`` renamed ``top_k``.

    Raises:
        InvalidArgumentError: ``k`` and ``top_k`` are both given and differ.
    """
    result = dict(options)
    if "k" in result:
        k = result.pop("k")
        if "top_k" in result and result["top_k"] != k:
            raise InvalidArgumentError("top_k", f"k={k!r} and top_k={result['top_k']!r} disagree; give one of them")
        result["top_k"] = k
    return result


def to_document(hit: SearchHit) -> Document:
    """A search hit as a ``Document``: ``page_content`` is the memory text; ``metadata`` holds the memory's own
    metadata plus ``id``, ``score``, ``memory_type``, the four scope ids and ``created_at`` / ``updated_at`` /
    ``event_time`` (ISO 8601, UTC). The engine reserves those names, so they never clash with user metadata."""
    memory = hit.memory
    metadata: dict[str, Any] = {
        **memory.metadata,
        "id": memory.id,
        "score": hit.score,
        "memory_type": memory.memory_type,
        **{segment: str(value) for segment, value in memory.scope.segments().items()},
        "created_at": memory.created_at.isoformat(),
        "updated_at": memory.updated_at.isoformat(),
        "event_time": memory.event_time.isoformat(),
    }
    return Document(id=memory.id, page_content=memory.text, metadata=metadata)


class MemoryRetriever(BaseRetriever):
    """Retrieves the memories most relevant to a query, best first, as ``Document``s (see :func:`to_document`).

    Args:
        store: the engine store (:class:`~memory_plugin.MemoryStore` or :class:`~memory_plugin.AsyncMemoryStore`).
        scope: the read scope; ``"*"`` and id lists allowed in ``tenant_id``, ``agent_id``, ``run_id`` (a
            :class:`~memory_plugin.Scope` or a mapping of its four segments). To choose it per call, make it
            configurable: ``retriever.configurable_fields(scope=ConfigurableField(id="memory_scope"))``.
        top_k, min_score, memory_types, filters, rerank: see :class:`RecallOptions`; ``k`` is accepted for
            ``top_k``, as LangChain's retrievers conventionally name it.

    Every option can also be given for one call: ``retriever.invoke(query, k=3)``, ``top_k=3``,
    ``min_score=0.2``, ``memory_types="fact"``, ``filters={...}`` or ``rerank=False`` (sync and async).

    Raises:
        pydantic.ValidationError: a malformed ``scope`` or option (a ``ValueError``), at construction.
        InvalidArgumentError: an unknown per-call option, or ``k`` and ``top_k`` that disagree.
        TypeError: ``store`` is not a memory store.

    Example:
        >>> retriever = MemoryRetriever(store=store, scope=Scope("app", "user-1", "*", "*"), top_k=3)  # doctest: +SKIP
        >>> retriever.invoke("what should I cook?", k=1)  # doctest: +SKIP
        >>> chain = {"context": retriever, "question": RunnablePassthrough()} | prompt | model  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: StoreField
    scope: Scope
    top_k: int = 5
    min_score: float = DEFAULT_MIN_SCORE
    memory_types: str | Sequence[str] | None = None
    filters: Mapping[str, Any] | None = None
    rerank: bool = True

    @model_validator(mode="before")
    @classmethod
    def _accept_k(cls, data: Any) -> Any:
        return with_top_k_alias(data) if isinstance(data, Mapping) else data

    @field_validator("scope", mode="before")
    @classmethod
    def _parse_scope(cls, value: object) -> Scope:
        return Scope.parse(value)

    def model_post_init(self, context: Any, /) -> None:
        self._options()  # invalid options fail when the retriever is built, not on its first query

    def _options(self, per_call: Mapping[str, Any] | None = None) -> RecallOptions:
        """The recall options of this retriever, changed by the options of one call (``k`` / ``top_k`` ...)."""
        options = RecallOptions(self.top_k, self.min_score, self.memory_types, self.filters, self.rerank)
        changes = {k: v for k, v in with_top_k_alias(per_call or {}).items() if k not in _LANGCHAIN_KWARGS}
        unknown = sorted(set(changes) - set(PER_CALL_OPTIONS))
        if unknown:
            raise InvalidArgumentError(
                unknown[0], f"is not a MemoryRetriever option; allowed per call: k, {', '.join(PER_CALL_OPTIONS)}"
            )
        return replace(options, **changes) if changes else options

    def _search_query(self, query: str, per_call: Mapping[str, Any]) -> tuple[str, RecallOptions] | None:
        """The search query and options of one call, or ``None`` when the query is blank."""
        options, text = self._options(per_call), recall_query(query)
        return (text, options) if text else None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        recall = self._search_query(query, options)
        hits = _recall.search(store_views(self.store)[0], self.scope, *recall) if recall else []
        return [to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        recall = self._search_query(query, options)
        hits = await _recall.asearch(store_views(self.store)[1], self.scope, *recall) if recall else []
        return [to_document(h) for h in hits]
