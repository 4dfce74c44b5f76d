"""What an access key may do: pure rules, checked before anything is read or written.

- The scope's app must be the key's app.
- A tenant-bound key reaches only its tenants. For reads, ``"*"`` in ``tenant_id`` is narrowed to the key's
  tenants (an id list) and an id list must be a subset of them; for writes, the tenant must be one of them and
  ``"*"`` is refused. A scope is never widened: the authorised scope's tenants are always among those asked for.
- A read-only key cannot write; store administration (create, update, delete, prune, retrying extraction) and key
  administration need an admin key.

Refusals are :class:`ForbiddenError` (HTTP 403). They name what was asked for and the key's own binding, never
anything about other tenants or their data.
"""

from __future__ import annotations

from typing import Literal, overload

from ..errors import ForbiddenError
from ..keys import KeyRecord
from ..scope import WILDCARD, Scope

OperationKind = Literal["read", "write", "store-admin", "key-admin"]
OPERATION_KINDS: tuple[OperationKind, ...] = ("read", "write", "store-admin", "key-admin")


def _ids(values: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    return ", ".join(repr(value) for value in sorted(values))


def _tenants(key: KeyRecord, scope: Scope, kind: OperationKind) -> Scope:
    """``scope`` with ``tenant_id`` limited to the key's tenants, or :class:`ForbiddenError`."""
    allowed = key.tenant_ids
    if allowed is None:
        return scope
    asked = scope.tenant_id
    if asked == WILDCARD:
        if kind != "read":
            raise ForbiddenError(
                f"access key {key.key_id} is bound to tenants {_ids(allowed)}; a {kind} must name one of them, not '*'"
            )
        return scope.with_(tenant_id=tuple(sorted(allowed)))
    requested = (asked,) if isinstance(asked, str) else asked
    outside = [tenant for tenant in requested if tenant not in allowed]
    if outside:
        raise ForbiddenError(
            f"access key {key.key_id} may not reach tenant_id {_ids(outside)}; it is bound to {_ids(allowed)}"
        )
    return scope


@overload
def authorize(key: KeyRecord, kind: OperationKind, scope: Scope) -> Scope: ...


@overload
def authorize(key: KeyRecord, kind: OperationKind, scope: None = None) -> None: ...


def authorize(key: KeyRecord, kind: OperationKind, scope: Scope | None = None) -> Scope | None:
    """The scope ``key`` may use for an operation of ``kind`` on ``scope``, or :class:`ForbiddenError`.

    Args:
        key: the verified key (see :func:`memory_plugin.signing.verify`).
        kind: ``read`` (search, list, get, history, messages, requests, store info), ``write`` (add, update,
            delete, delete_all, clear_messages), ``store-admin`` (create / update / delete a store, prune, retry
            failed extraction) or ``key-admin`` (create, list, revoke keys).
        scope: the scope the request names; ``None`` for operations on a whole store or on keys.

    Returns:
        The scope to run the operation with: ``scope`` itself, or for a tenant-bound key's read with ``"*"`` in
        ``tenant_id``, the same scope with the key's tenants as an id list. ``None`` when ``scope`` is ``None``.

    Example:
        >>> key = KeyRecord("mpk_...", "app-001", frozenset({"u1", "u2"}), False, False, created_at)  # doctest: +SKIP
        >>> authorize(key, "read", Scope("app-001", "*", "*", "*")).tenant_id  # doctest: +SKIP
        ('u1', 'u2')
    """
    if kind not in OPERATION_KINDS:
        raise ValueError(f"kind must be one of {OPERATION_KINDS}, got {kind!r}")
    if key.revoked:
        raise ForbiddenError(f"access key {key.key_id} was revoked")
    if kind in ("store-admin", "key-admin") and not key.admin:
        what = "store create, update, delete, prune and retry" if kind == "store-admin" else "key management"
        raise ForbiddenError(f"{what} need an admin key; access key {key.key_id} is not one")
    if kind == "write" and key.read_only:
        raise ForbiddenError(f"access key {key.key_id} is read-only; writes need another key")
    if scope is None:
        return None
    if scope.app_id != key.app_id:
        raise ForbiddenError(
            f"access key {key.key_id} is bound to app_id {key.app_id!r}; scope.app_id {scope.app_id!r} is outside it"
        )
    return _tenants(key, scope, kind)
