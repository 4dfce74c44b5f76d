"""The 4-segment scope every memory belongs to, and its validation.

A :class:`Scope` is a value: frozen, validated once when it is built, never changed afterwards. Writes need four
concrete ids; reads may use ``"*"`` (any) or a list of ids in ``tenant_id``, ``agent_id`` and ``run_id``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from .errors import InvalidArgumentError, InvalidScopeError

WILDCARD = "*"
MAX_ID_LENGTH = 128
MAX_IDS_PER_SEGMENT = 100
SEGMENTS = ("app_id", "tenant_id", "agent_id", "run_id")
# Tablestore spells the segments in camelCase; accept that spelling in mappings too.
_CAMEL = {"appId": "app_id", "tenantId": "tenant_id", "agentId": "agent_id", "runId": "run_id"}

SegmentValue = Union[str, tuple[str, ...]]


def check_string(
    field: str, value: object, max_length: int, error: type[InvalidArgumentError] = InvalidArgumentError
) -> str:
    """Return ``value`` if it is a string of at most ``max_length`` characters that is not only whitespace, else
    raise ``error`` naming ``field``. The first check of ids here, and of texts and queries in :mod:`.validation`."""
    if not isinstance(value, str):
        raise error(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise error(field, "must not be empty")
    if len(value) > max_length:
        raise error(field, f"must be at most {max_length} characters, got {len(value)}")
    return value


def check_id(field: str, value: object) -> str:
    """Return ``value`` if it is a valid concrete id, else raise :class:`InvalidScopeError` naming ``field``.

    A valid id is a string of 1 to 128 characters, not only whitespace, with no control characters and no ``*``.
    """
    value = check_string(field, value, MAX_ID_LENGTH, InvalidScopeError)
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029" for ch in value):
        raise InvalidScopeError(field, "must not contain control characters")
    if WILDCARD in value:
        raise InvalidScopeError(field, "must not contain '*' (use '*' alone as a wildcard where reads allow it)")
    return value


def _check_segment(field: str, value: object) -> SegmentValue:
    if value == WILDCARD:
        if field == "app_id":
            raise InvalidScopeError(field, "must be a concrete id; '*' is allowed only in tenant_id, agent_id, run_id")
        return WILDCARD
    if isinstance(value, str):
        return check_id(field, value)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if field == "app_id":
            raise InvalidScopeError(
                field, "must be a single id; id lists are allowed only in tenant_id, agent_id, run_id"
            )
        if not value:
            raise InvalidScopeError(field, "id list must not be empty")
        if len(value) > MAX_IDS_PER_SEGMENT:
            raise InvalidScopeError(field, f"id list may hold at most {MAX_IDS_PER_SEGMENT} ids, got {len(value)}")
        ids = tuple(dict.fromkeys(check_id(f"{field}[{i}]", item) for i, item in enumerate(value)))
        return ids[0] if len(ids) == 1 else ids
    raise InvalidScopeError(field, f"must be an id string, '*' or a list of ids, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a memory belongs to: ``app_id / tenant_id / agent_id / run_id``.

    - ``app_id``: the application; always one concrete id.
    - ``tenant_id``: the end user (or organisation) the memory is about.
    - ``agent_id``: the assistant / agent that holds the memory.
    - ``run_id``: one session or conversation.

    For reads (``search``, ``list``, ``requests``) ``tenant_id``, ``agent_id`` and ``run_id`` may also be ``"*"``
    (any) or a list of ids (any of them). Writes and single-memory operations need all four concrete.

    Raises:
        InvalidScopeError: a segment is empty, longer than 128 characters, has control characters, or uses
            ``"*"`` / a list where not allowed.

    Example:
        >>> Scope(app_id="app-001", tenant_id="user-001", agent_id="*", run_id=["s1", "s2"]).is_concrete
        False
    """

    app_id: str
    tenant_id: SegmentValue
    agent_id: SegmentValue
    run_id: SegmentValue

    def __post_init__(self) -> None:
        for field in SEGMENTS:
            object.__setattr__(self, field, _check_segment(field, getattr(self, field)))

    @classmethod
    def parse(cls, value: object, field: str = "scope") -> Scope:
        """Return ``value`` as a Scope: a Scope, a mapping with the four segments (snake_case or camelCase), or
        the text form that ``str(scope)`` and the CLI print (see :meth:`from_text`)."""
        if isinstance(value, Scope):
            return value
        if isinstance(value, str):
            return cls.from_text(value, field)
        if isinstance(value, Mapping):
            data = {_CAMEL.get(str(k), str(k)): v for k, v in value.items()}
            unknown = sorted(set(data) - set(SEGMENTS))
            if unknown:
                raise InvalidScopeError(field, f"unknown segment(s) {unknown}; allowed: {list(SEGMENTS)}")
            missing = [s for s in SEGMENTS if s not in data]
            if missing:
                raise InvalidScopeError(field, f"missing segment(s) {missing}; a scope names all four {list(SEGMENTS)}")
            return cls(**data)
        allowed = "a Scope, a mapping of its four segments or 'app/tenant/agent/run'"
        raise InvalidScopeError(field, f"must be {allowed}, got {type(value).__name__}")

    @classmethod
    def from_text(cls, text: str, field: str = "scope") -> Scope:
        """Parse ``app/tenant/agent/run``, the form ``str(scope)`` prints: ``*`` is any id, ``[a,b]`` (or ``a,b``)
        a list of ids. Ids containing ``/`` or ``,`` cannot be written this way; use a Scope or a mapping.

        Example:
            >>> Scope.from_text("app-001/user-001/*/[s1,s2]").run_id
            ('s1', 's2')
        """
        parts = text.split("/")
        if len(parts) != len(SEGMENTS):
            raise InvalidScopeError(
                field,
                f"must be app/tenant/agent/run (4 segments separated by '/'), e.g. app-001/user-001/*/*; got "
                f"{len(parts)} segment(s); ids containing '/' need a Scope or a mapping",
            )
        values: list[SegmentValue | list[str]] = []
        for part in parts:
            bracketed = len(part) >= 2 and part[0] == "[" and part[-1] == "]"
            inner = part[1:-1] if bracketed else part
            values.append(inner.split(",") if bracketed or "," in inner else inner)
        return cls(**dict(zip(SEGMENTS, values, strict=True)))  # type: ignore[arg-type]

    @property
    def is_concrete(self) -> bool:
        """True when all four segments are single concrete ids (no wildcard, no list)."""
        return all(isinstance(v, str) and v != WILDCARD for v in self.segments().values())

    def require_concrete(self, operation: str) -> Scope:
        """Return self, or raise :class:`InvalidScopeError` if any segment is ``"*"`` or a list."""
        for field, value in self.segments().items():
            if not isinstance(value, str) or value == WILDCARD:
                raise InvalidScopeError(
                    f"scope.{field}",
                    f"{operation} needs a concrete id in every segment; '*' and id lists are allowed only for reads",
                )
        return self

    def segments(self) -> dict[str, SegmentValue]:
        """The four segments as a dict, in order."""
        return {field: getattr(self, field) for field in SEGMENTS}

    def with_(self, **changes: SegmentValue) -> Scope:
        """A copy with some segments replaced, e.g. ``scope.with_(run_id="*")`` for a tenant-wide read."""
        return Scope(**{**self.segments(), **changes})  # type: ignore[arg-type]

    def __str__(self) -> str:
        return "/".join(v if isinstance(v, str) else "[" + ",".join(v) + "]" for v in self.segments().values())
