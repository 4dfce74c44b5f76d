"""What a LlamaIndex memory or memory block is bound to: a memory store (both of its APIs), the run it writes to,
how it recalls, and the metadata of every write.

Validated once, when the adapter is built, by the rules every adapter shares (:mod:`memory_plugin.binding`) and
with the errors the engine itself raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memory_plugin import AsyncMemoryStore, MemoryStore, Scope, binding
from memory_plugin.models import MetadataValue

from ._convert import ADAPTER_KEYS, KEY_PREFIX
from ._recall import Recall


@dataclass(frozen=True)
class Binding:
    """The store, the run ``scope`` written to, the recall, and the caller's ``metadata`` put on every write."""

    store: MemoryStore
    astore: AsyncMemoryStore
    scope: Scope
    recall: Recall
    metadata: Mapping[str, MetadataValue]

    @classmethod
    def build(
        cls, owner: str, store: object, scope: object, recall_scope: object, metadata: object, **recall: Any
    ) -> Binding:
        """Check everything ``owner`` (the adapter's class name, named in errors) is given.

        Args:
            recall_scope: where memories are recalled from; ``None``: every run of ``scope``'s tenant and agent.
            recall: the recall options, as :meth:`Recall.build` takes them.

        Raises:
            TypeError: ``store`` is not a memory store.
            InvalidScopeError: ``scope`` is not one concrete run, or ``recall_scope`` is not a valid read scope.
            InvalidArgumentError: a recall option, or the metadata (flat scalars, at most 13 keys, none starting
                with ``llama_index_``), is wrong.
        """
        sync_store, async_store = binding.store_views(store, owner)
        run = binding.write_scope(scope, owner, read_option="recall_scope")
        read_scope = run.with_(**binding.DEFAULT_READ_SCOPE) if recall_scope is None else recall_scope
        return cls(
            store=sync_store,
            astore=async_store,
            scope=run,
            recall=Recall.build(read_scope, scope_field="recall_scope", **recall),
            # Each message the adapter writes carries its own bookkeeping keys next to the caller's metadata.
            metadata=binding.write_metadata(metadata, KEY_PREFIX, own_keys=len(ADAPTER_KEYS)),
        )
