"""What the framework adapters bind to, in one place for all of them: a memory store (its sync and async views),
the scopes a call writes to and reads from, the metadata it writes, and the options of recall by query.
Framework-neutral: the adapters translate framework types; the rules of which store and scope a call uses, and of
which memories recall returns, live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Union

from .aio import AsyncMemoryClient, AsyncMemoryStore
from .client import MemoryClient, MemoryStore
from .errors import InvalidArgumentError, InvalidScopeError
from .models import MetadataValue, SearchHit
from .retrieval import DEFAULT_MIN_SCORE
from .scope import SEGMENTS, WILDCARD, Scope, SegmentValue
from .validation import (
    MAX_METADATA_KEYS,
    MAX_QUERY_LENGTH,
    MAX_TOP_K,
    check_bool,
    check_filters,
    check_int,
    check_memory_types,
    check_metadata,
    check_time_range,
)

StoreLike = Union[MemoryStore, AsyncMemoryStore]
# Recall reads every run of the tenant (same app and agent) unless told otherwise.
DEFAULT_READ_SCOPE: Mapping[str, SegmentValue] = MappingProxyType({"run_id": WILDCARD})
_PROBE = Scope(app_id="probe", tenant_id="probe", agent_id="probe", run_id="probe")


def store_views(store: object, owner: str = "store") -> tuple[MemoryStore, AsyncMemoryStore]:
    """The sync and the async API of one memory store, from either of them: the same store reached two ways
    (sync hooks use the first, async hooks the second).

    Raises:
        TypeError: ``store`` is not a memory store (e.g. a client was passed instead); the message names ``owner``.
    """
    if isinstance(store, MemoryStore):
        return store, AsyncMemoryStore(store.transport.twin(), store.name)
    if isinstance(store, AsyncMemoryStore):
        return MemoryStore(store.transport.twin(), store.name), store
    hint = ""
    if isinstance(store, (MemoryClient, AsyncMemoryClient)):
        hint = "; a client holds stores: pass client.get_memory_store(name) or client.create_memory_store(name)"
    raise TypeError(
        f"{owner}: store must be a memory_plugin MemoryStore or AsyncMemoryStore, got {type(store).__name__}{hint}"
    )


# ---- scopes ------------------------------------------------------------------------------------------------------


def write_scope(scope: object, owner: str, read_option: str | None = None) -> Scope:
    """``scope`` (a Scope, a mapping or ``app/tenant/agent/run``) as the concrete scope ``owner`` writes to.

    Args:
        read_option: the option of ``owner`` that reads across runs, suggested in the error (e.g. ``"recall_scope"``).

    Raises:
        InvalidScopeError: a segment is missing or invalid, or is ``"*"`` / a list of ids; the message names ``owner``.
    """
    parsed = Scope.parse(scope)
    try:
        return parsed.require_concrete(owner)
    except InvalidScopeError as e:
        if read_option is None:
            raise
        raise InvalidScopeError(
            e.field, f"{e.problem}. {owner} writes to this scope; read across runs with {read_option}= instead"
        ) from None


def check_read_overrides(
    overrides: Mapping[str, SegmentValue], field_name: str = "read_scope"
) -> Mapping[str, SegmentValue]:
    """Validate read-scope overrides such as ``{"run_id": "*"}`` (the changes from the scope a call writes to, to
    the scope it reads) once, when an adapter is built.

    Raises:
        InvalidScopeError: an unknown segment, or a value a read scope cannot hold.
    """
    unknown = sorted(set(overrides) - set(SEGMENTS))
    if unknown:
        raise InvalidScopeError(field_name, f"unknown segment(s) {unknown}; allowed: {list(SEGMENTS)}")
    _PROBE.with_(**overrides)
    return MappingProxyType(dict(overrides))


def contains(read_scope: Scope, scope: Scope) -> bool:
    """Whether the concrete ``scope`` lies within ``read_scope`` (``"*"`` matches any id, a list any of its ids)."""
    for segment, wanted in read_scope.segments().items():
        value = getattr(scope, segment)
        if wanted == WILDCARD:
            continue
        if isinstance(wanted, str) and value != wanted:
            return False
        if isinstance(wanted, tuple) and value not in wanted:
            return False
    return True


def write_metadata(metadata: object, own_prefix: str, own_keys: int = 0) -> Mapping[str, MetadataValue]:
    """The caller's metadata for every write of an adapter, validated and frozen.

    Args:
        own_prefix: keys starting with it are the adapter's own bookkeeping; the caller may not use them.
        own_keys: how many keys the adapter adds to each write; the caller gets the rest of the store's 16.

    Raises:
        InvalidArgumentError: not flat scalars, too many keys, or a key the adapter or the store reserves.
    """
    checked = check_metadata(metadata)
    allowed = MAX_METADATA_KEYS - own_keys
    if len(checked) > allowed:
        raise InvalidArgumentError(
            "metadata",
            f"may have at most {allowed} keys here (the adapter keeps {own_keys} of the store's "
            f"{MAX_METADATA_KEYS} for its own bookkeeping), got {len(checked)}",
        )
    reserved = sorted(key for key in checked if key.startswith(own_prefix))
    if reserved:
        raise InvalidArgumentError("metadata", f"keys starting with {own_prefix!r} are the adapter's own: {reserved}")
    return MappingProxyType(dict(checked))


# ---- recall ------------------------------------------------------------------------------------------------------


def recall_query(text: str | None) -> str:
    """A search query from free text (e.g. the latest user message): stripped, and cut to the store's query limit
    when longer; empty when there is nothing to search for."""
    return (text or "").strip()[:MAX_QUERY_LENGTH]


@dataclass(frozen=True)
class RecallOptions:
    """How many memories to recall and which: a frozen value, validated once when it is made. Each search gets
    freshly built arguments from it (:meth:`search_arguments`), so nothing a call does can leak into the next.

    Args:
        top_k: at most this many (1-50).
        min_score: drop hits scoring below this (``[0, 1]``, an estimate of relevance: see the engine's score
            contract); by default :data:`memory_plugin.DEFAULT_MIN_SCORE`, which keeps nearly every memory a query
            needs and drops the loosest matches; 0 keeps every hit.
        memory_types: only these types (e.g. ``"fact"``), or any.
        filters: metadata filters, ``{key: value or [values]}``.
        rerank: let the engine re-score the best candidates (default on).
        start_time, end_time: only memories whose event time lies in this range (a ``datetime``, ISO 8601 text or
            Unix seconds).

    Raises:
        InvalidArgumentError: an option is out of range or malformed; the message names it.

    Example:
        >>> options = RecallOptions(top_k=3, memory_types="fact")
        >>> options.search_arguments()
        {'top_k': 3, 'rerank': True, 'memory_types': ['fact']}
    """

    top_k: int = 5
    min_score: float = DEFAULT_MIN_SCORE
    memory_types: str | Sequence[str] | None = None
    filters: Mapping[str, Any] | None = None
    rerank: bool = True
    start_time: datetime | str | float | None = None
    end_time: datetime | str | float | None = None

    def __post_init__(self) -> None:
        min_score = self.min_score
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0.0 <= min_score <= 1.0:
            raise InvalidArgumentError("min_score", f"must be a number from 0 to 1, got {min_score!r:.40}")
        start, end = check_time_range(self.start_time, self.end_time)
        # Kept in their checked, immutable form: a caller's list or dict changed later cannot change recall.
        checked = {
            "top_k": check_int("top_k", self.top_k, 1, MAX_TOP_K),
            "min_score": float(min_score),
            "memory_types": check_memory_types(self.memory_types) or None,
            "filters": MappingProxyType(check_filters(self.filters)) or None,
            "rerank": check_bool("rerank", self.rerank),
            "start_time": start,
            "end_time": end,
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def search_arguments(self, extra: int = 0) -> dict[str, Any]:
        """Keyword arguments of ``store.search``, new on every call; ``extra`` asks for that many more hits than
        ``top_k`` (at most 50), to make up for those :meth:`keep` will skip."""
        arguments: dict[str, Any] = {"top_k": min(MAX_TOP_K, self.top_k + extra), "rerank": self.rerank}
        if self.memory_types:
            arguments["memory_types"] = list(self.memory_types)
        if self.filters:
            arguments["filters"] = {key: list(values) for key, values in self.filters.items()}
        if self.start_time is not None:
            arguments["start_time"] = self.start_time
        if self.end_time is not None:
            arguments["end_time"] = self.end_time
        return arguments

    def keep(self, hits: Iterable[SearchHit], skip: Callable[[SearchHit], bool] | None = None) -> list[SearchHit]:
        """The hits worth showing, best first: scored at least ``min_score``, not ``skip``-ped (e.g. an adapter's
        stand-in texts, or memories repeating what the model already sees), at most ``top_k``."""
        kept = [hit for hit in hits if hit.score >= self.min_score and not (skip is not None and skip(hit))]
        return kept[: self.top_k]
