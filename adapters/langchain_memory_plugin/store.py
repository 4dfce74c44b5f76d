"""``MemoryPluginStore``: a LangGraph ``BaseStore`` on the memory engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from memory_plugin import ExtractionError, Memory, Scope
from memory_plugin.binding import StoreLike, recall_query, store_views
from memory_plugin.models import Metadata, every_page
from memory_plugin.scope import check_id
from memory_plugin.validation import MAX_LIMIT, MAX_TOP_K

from . import _namespaces as ns


class MemoryPluginStore(BaseStore):
    """A persistent LangGraph store whose items are memories of a memory_plugin store, so that
    ``create_agent(..., store=...)``, LangGraph graphs and langmem-style tools keep their data in the engine.

    **Namespace -> scope.** ``app_id`` is fixed by this store. One namespace label is the ``tenant_id`` of the
    item's scope: the first by default, the one at index ``tenant_label`` if given. The other labels, in order,
    are its ``agent_id`` and ``run_id``; a namespace with fewer labels fills the rest with ``"."`` (a label
    LangGraph forbids, so it never collides). Labels beyond those (up to 17 in all) are kept in metadata
    ``lg_ns<index>``. For example, with ``app_id="my-app"``:

    ======================================  ================  ==============================================
    namespace                               ``tenant_label``  scope (app / tenant / agent / run) + metadata
    ======================================  ================  ==============================================
    ``("user-1",)``                         0 (default)       ``my-app / user-1 / . / .``
    ``("user-1", "memories")``              0                 ``my-app / user-1 / memories / .``
    ``("user-1", "assistant", "s1")``       0                 ``my-app / user-1 / assistant / s1``
    ``("user-1", "assistant", "s1", "x")``  0                 ``my-app / user-1 / assistant / s1``, ``lg_ns3="x"``
    ``("memories", "user-1")``              1                 ``my-app / user-1 / memories / .``
    ``("memories",)``                       1                 ``my-app / . / memories / .``
    ======================================  ================  ==============================================

    The tenant is the engine's unit of isolation, audit and ``tenant_id`` filters, so make the user id the
    tenant: put it first, or name its index with ``tenant_label`` (``tenant_label=1`` for langmem's usual
    ``("memories", "{user_id}")``). A search or ``list_namespaces`` prefix that stops before the tenant label, or
    has ``"*"`` there, reads across tenants, as in LangGraph's own stores.

    **Items.** An item is one memory: its text is the value as JSON (what the engine embeds and indexes), its
    metadata ``lg_ref`` the exact namespace and key (``lg_item=True`` marks it), ``created_at`` / ``updated_at``
    the memory's. ``put`` on an existing key updates that memory in place (same id, history recorded); ``None``
    deletes it.

    **Supported**: ``batch`` / ``abatch`` and every ``BaseStore`` method built on them; ``get``; ``put``;
    ``delete``; ``search`` with a namespace prefix, ``query`` (the engine's hybrid search; ``score`` is its
    ``[0, 1]`` score), ``filter`` (exact values, nested dicts, dotted keys, ``$eq $ne $gt $gte $lt $lte``),
    ``limit`` and ``offset``; ``list_namespaces`` with ``prefix`` / ``suffix`` (``"*"`` wildcards), ``max_depth``,
    ``limit``, ``offset``. Like LangGraph's own stores, a batch answers its reads before applying its writes, and
    the last write to a key in a batch wins.

    **Not supported**: TTL (``supports_ttl`` is False); the per-item ``index`` argument (the whole value is
    always indexed); values that are not JSON objects or are over 32,000 characters as JSON; labels containing
    ``"*"`` or longer than 128 characters. Searches without a query, with a filter, or reaching past the 50th
    ranked result scan the items under the prefix, so their cost grows with the namespace. The memory store's
    extractor must keep ``add(text=...)`` as one memory (the default ``TurnExtractor`` does); use one
    ``MemoryPluginStore`` per memory store so that writes to a key are serialized.

    Args:
        store: the engine store (:class:`~memory_plugin.MemoryStore` or :class:`~memory_plugin.AsyncMemoryStore`).
        app_id: the ``app_id`` of every item's scope.
        tenant_label: the index of the namespace label that is the tenant (default 0, the first).

    Raises:
        InvalidArgumentError: ``app_id`` or ``tenant_label`` is invalid (at construction).
        InvalidNamespaceError: a namespace the engine cannot hold (on use).
        InvalidArgumentError: a value that is not a JSON object or is too large (on use).

    Example:
        >>> lg_store = MemoryPluginStore(client.get_memory_store("agent_memory"), app_id="my-app")  # doctest: +SKIP
        >>> lg_store.put(("user-1", "preferences"), "drink", {"text": "likes espresso"})  # doctest: +SKIP
        >>> lg_store.search(("user-1",), query="coffee")[0].value  # doctest: +SKIP
        {'text': 'likes espresso'}
        >>> per_user = MemoryPluginStore(store, tenant_label=1)  # namespaces ("memories", user_id)  # doctest: +SKIP
    """

    supports_ttl = False

    def __init__(self, store: StoreLike, *, app_id: str = "langgraph", tenant_label: int = 0) -> None:
        self._store, _ = store_views(store, "MemoryPluginStore")
        self._app_id = check_id("app_id", app_id)
        self._tenant_label = ns.check_tenant_label(tenant_label)
        # The engine has no upsert: finding a key and writing it must not interleave with another put to it.
        self._write_lock = threading.RLock()

    # ---- batch -----------------------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations in order; reads see the store as it was before this batch's writes."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise ValueError(f"unknown store operation {type(op).__name__}")
        results: list[Result] = []
        writes: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:
                writes[(tuple(op.namespace), op.key)] = op
                results.append(None)
        for op in writes.values():
            self._put(op)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` on a worker thread (the engine's own async API works the same way)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # ---- operations ------------------------------------------------------------------------------------------

    def _memories(self, target: ns.ReadTarget, extra: dict[str, Any] | None = None) -> Iterator[Memory]:
        scope, filters = target
        read_filters = {**filters, **(extra or {})}
        for page in every_page(
            lambda cursor: self._store.list(scope, limit=MAX_LIMIT, cursor=cursor, filters=read_filters)
        ):
            yield from page.items

    def _find(self, namespace: tuple[str, ...], key: str) -> list[Memory]:
        target = ns.read_target(self._app_id, namespace, exact=True, tenant_label=self._tenant_label)
        if target is None or not namespace:
            return []
        return list(self._memories(target, {ns.REF_KEY: ns.ref_of(namespace, key)}))

    def _get(self, op: GetOp) -> Item | None:
        found = self._find(tuple(op.namespace), op.key)
        if not found:
            return None
        namespace, key, value = ns.decode_item(newest := max(found, key=lambda m: m.updated_at))
        return Item(
            value=value, key=key, namespace=namespace, created_at=newest.created_at, updated_at=newest.updated_at
        )

    def _put(self, op: PutOp) -> None:
        if op.ttl is not None:
            raise NotImplementedError("MemoryPluginStore does not support TTL; pass ttl=None")
        namespace = tuple(op.namespace)
        scope, metadata = ns.write_target(self._app_id, namespace, op.key, self._tenant_label)
        text = None if op.value is None else ns.encode_value(op.value)
        with self._write_lock:
            found = sorted(self._find(namespace, op.key), key=lambda m: m.updated_at, reverse=True)
            keep = found[0] if found and text is not None else None
            for memory in found:
                if memory is not keep:
                    self._store.delete(scope, memory.id)
            if keep is not None:
                self._store.update(scope, keep.id, text=text)
            elif text is not None:
                self._add(scope, metadata, text)

    def _add(self, scope: Scope, metadata: Metadata, text: str) -> None:
        result = self._store.add(scope, text=text, metadata=metadata, sync=True)
        if [m.text for m in result.memories] != [text]:
            for memory in result.memories:
                self._store.delete(scope, memory.id)
            raise ExtractionError(
                f"memory store {self._store.name!r} turned the item into {len(result.memories)} memories; "
                "MemoryPluginStore needs an extractor that keeps add(text=...) as one memory (the default "
                "TurnExtractor does): use a store created without a custom extractor"
            )

    def _search(self, op: SearchOp) -> list[SearchItem]:
        target = ns.read_target(self._app_id, op.namespace_prefix, tenant_label=self._tenant_label)
        if target is None or op.limit <= 0:
            return []
        query = recall_query(op.query)
        end = op.offset + op.limit
        if query and not op.filter and end <= MAX_TOP_K:
            scope, filters = target
            hits = self._store.search(scope, query, top_k=end, filters=filters)
            return [_search_item(h.memory, h.score) for h in hits[op.offset :]]
        matching: list[Memory] = []
        for memory in self._memories(target):
            if ns.matches_filter(ns.decode_item(memory)[2], op.filter):
                matching.append(memory)
                if not query and len(matching) >= end:
                    break
        if not query:
            return [_search_item(m) for m in matching[op.offset : end]]
        return self._rank(target, query, matching)[op.offset : end]

    def _rank(self, target: ns.ReadTarget, query: str, memories: list[Memory]) -> list[SearchItem]:
        """Order ``memories`` by the engine's score for ``query``, scoring at most 50 of them per search."""
        scope, filters = target
        scores: dict[str, float] = {}
        for start in range(0, len(memories), MAX_TOP_K):
            chunk = memories[start : start + MAX_TOP_K]
            refs = [str(m.metadata[ns.REF_KEY]) for m in chunk]
            hits = self._store.search(scope, query, top_k=len(chunk), filters={**filters, ns.REF_KEY: refs})
            scores.update({h.memory.id: h.score for h in hits})
        ranked = sorted(memories, key=lambda m: -scores.get(m.id, -1.0))
        return [_search_item(m, scores.get(m.id)) for m in ranked]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = tuple(op.match_conditions or ())
        prefix = next((c.path for c in conditions if c.match_type == "prefix"), ())
        target = ns.read_target(self._app_id, tuple(prefix), tenant_label=self._tenant_label)
        if target is None:
            return []
        found = {ns.decode_item(m)[0] for m in self._memories(target)}
        selected = {n for n in found if all(ns.matches_condition(c, n) for c in conditions)}
        if op.max_depth is not None:
            selected = {n[: op.max_depth] for n in selected}
        return sorted(selected)[op.offset : op.offset + op.limit]


def _search_item(memory: Memory, score: float | None = None) -> SearchItem:
    namespace, key, value = ns.decode_item(memory)
    return SearchItem(
        namespace=namespace,
        key=key,
        value=value,
        created_at=memory.created_at,
        updated_at=memory.updated_at,
        score=score,
    )
