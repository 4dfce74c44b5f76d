"""Reading a seed's request dict, and naming fields in errors as the seed spells them.

Shared by the Tablestore client (:mod:`memory_plugin.compat.tablestore`) and the VikingDB search shape
(:mod:`memory_plugin.server.vikingdb`): a caller who wrote ``topK`` should read ``topK`` in the error, not ``top_k``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidArgumentError


def read_request(
    request: object, operation: str, required: tuple[str, ...], optional: tuple[str, ...] = (), prefix: str = ""
) -> dict[str, Any]:
    """``request`` as a dict, after checking it is a mapping with every ``required`` field and no unknown one.

    ``prefix`` is put before field names in errors, for a nested object (``"filter."``).

    Raises:
        InvalidArgumentError: naming the missing or unknown field (a typo such as ``topk`` is refused, not ignored).
    """
    if not isinstance(request, Mapping):
        problem = "must be" if prefix else f"{operation} takes"
        raise InvalidArgumentError(prefix.rstrip(".") or "request", f"{problem} a dict, got {type(request).__name__}")
    allowed = (*required, *optional)
    for key in request:
        if key not in allowed:
            raise InvalidArgumentError(
                prefix + str(key)[:80], f"is not a field of {operation}; allowed: {sorted(allowed)}"
            )
    for key in required:
        if key not in request:
            raise InvalidArgumentError(prefix + key, f"is required by {operation}")
    return dict(request)


def rename_field(field: str, names: Mapping[str, str]) -> str:
    """``field`` with its longest prefix found in ``names`` replaced: ``tenant_id[2]`` -> ``scope.tenantId[2]``."""
    for ours in sorted(names, key=len, reverse=True):
        if field == ours or field.startswith((ours + ".", ours + "[")):
            return names[ours] + field[len(ours) :]
    return field


@contextmanager
def seed_field_names(names: Mapping[str, str]) -> Iterator[None]:
    """Re-raise :class:`InvalidArgumentError` (and :class:`InvalidScopeError`) with the field in the seed's
    spelling; ``names`` maps our field names to the seed's."""
    try:
        yield
    except InvalidArgumentError as e:
        renamed = rename_field(e.field, names)
        if renamed == e.field:
            raise
        raise type(e)(renamed, e.problem) from e
