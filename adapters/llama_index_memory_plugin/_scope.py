"""What every adapter is bound to: a memory store (sync and async views of it), a scope, write metadata.

Validated once, when the adapter is built, with the errors the engine itself raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from memory_plugin import AsyncMemoryStore, InvalidArgumentError, InvalidScopeError, MemoryStore, Scope
from memory_plugin.binding import store_views
from memory_plugin.models import MetadataValue
from memory_plugin.validation import MAX_METADATA_KEYS, check_metadata

from ._convert import ADAPTER_KEYS, KEY_PREFIX

# Each message the adapter writes may carry its own bookkeeping keys next to the caller's metadata.
MAX_CALLER_METADATA_KEYS = MAX_METADATA_KEYS - len(ADAPTER_KEYS)


def resolve_stores(store: object, owner: str) -> tuple[MemoryStore, AsyncMemoryStore]:
    """The sync and the async API of one memory store, from either of them (see
    :func:`memory_plugin.binding.store_views`).

    Raises:
        TypeError: ``store`` is not a memory store (e.g. a client was passed instead).
    """
    return store_views(store, owner)


def write_scope(scope: object, owner: str) -> Scope:
    """``scope`` as a concrete Scope: the adapter writes every turn there.

    Raises:
        InvalidScopeError: a segment is missing or invalid, or is ``"*"`` / a list of ids.
    """
    parsed = Scope.parse(scope)
    try:
        return parsed.require_concrete(owner)
    except InvalidScopeError as e:
        raise InvalidScopeError(
            e.field, f"{e.problem}. {owner} writes to this scope; read across runs with recall_scope= instead"
        ) from None


def write_metadata(metadata: object) -> Mapping[str, MetadataValue]:
    """The caller's metadata for every write, validated and frozen.

    Raises:
        InvalidArgumentError: not flat scalars, too many keys, or a key the adapter reserves.
    """
    checked = check_metadata(metadata)
    if len(checked) > MAX_CALLER_METADATA_KEYS:
        raise InvalidArgumentError(
            "metadata",
            f"may have at most {MAX_CALLER_METADATA_KEYS} keys here (the adapter keeps "
            f"{len(ADAPTER_KEYS)} of the store's {MAX_METADATA_KEYS} for its own bookkeeping), got {len(checked)}",
        )
    reserved = sorted(key for key in checked if key.startswith(KEY_PREFIX))
    if reserved:
        raise InvalidArgumentError("metadata", f"keys starting with {KEY_PREFIX!r} are the adapter's own: {reserved}")
    return MappingProxyType(dict(checked))
