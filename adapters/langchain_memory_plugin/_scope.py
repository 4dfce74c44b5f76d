"""Which scope a LangChain call writes to and reads from.

Every adapter that runs inside an agent resolves its scope the same way: segments fixed when the adapter is built
are defaults, and the agent's runtime context of each call (``Runtime.context`` / ``ToolRuntime.context``, e.g.
``agent.invoke(..., context={"tenant_id": "u1", "run_id": "s1"})``) supplies or overrides them. The result is a
fresh, concrete :class:`~memory_plugin.Scope` per call; nothing is kept between calls. How a call's read scope
follows from it (``read_scope`` overrides) is shared with every adapter: see :mod:`memory_plugin.binding`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from memory_plugin import InvalidScopeError, Scope
from memory_plugin.binding import write_scope
from memory_plugin.scope import SEGMENTS

_PROBE = Scope(app_id="probe", tenant_id="probe", agent_id="probe", run_id="probe")


def context_value(context: object, key: str) -> Any:
    """``key`` of a runtime context that is a mapping (dict, TypedDict) or an object (dataclass, pydantic)."""
    if context is None:
        return None
    if isinstance(context, Mapping):
        return context.get(key)
    return getattr(context, key, None)


@dataclass(frozen=True)
class ScopeResolver:
    """Builds the concrete scope of one call from fixed segments and the runtime context.

    Args:
        app_id, tenant_id, agent_id, run_id: segments fixed for every call (``None``: taken from the context).
        context_keys: where each segment is found in the runtime context when the name differs, e.g.
            ``{"tenant_id": "user_id", "run_id": "thread_id"}``.

    Raises:
        InvalidScopeError: a fixed segment is not a concrete id, or ``context_keys`` names an unknown segment.

    Example:
        >>> ScopeResolver(app_id="app", agent_id="bot").resolve({"tenant_id": "u1", "run_id": "s1"}, "add")
        Scope(app_id='app', tenant_id='u1', agent_id='bot', run_id='s1')
    """

    app_id: str | None = None
    tenant_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    context_keys: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.context_keys) - set(SEGMENTS))
        if unknown:
            raise InvalidScopeError("context_keys", f"unknown segment(s) {unknown}; allowed: {list(SEGMENTS)}")
        object.__setattr__(self, "context_keys", MappingProxyType(dict(self.context_keys)))
        fixed = {s: getattr(self, s) for s in SEGMENTS if getattr(self, s) is not None}
        if fixed:
            _PROBE.with_(**fixed).require_concrete("a fixed scope segment")

    def resolve(self, context: object, operation: str) -> Scope:
        """The concrete scope for one call: the context's value for each segment, else the fixed one.

        Args:
            context: the agent's runtime context (``None`` when the agent was given none).
            operation: what the scope is for, named in errors (e.g. ``"auto-write"``).

        Raises:
            InvalidScopeError: a segment is missing from both, or is ``"*"`` / a list / not an id.
        """
        values: dict[str, Any] = {}
        missing: list[str] = []
        for segment in SEGMENTS:
            key = self.context_keys.get(segment, segment)
            value = context_value(context, key)
            if value is None:
                value = getattr(self, segment)
            if value is None:
                missing.append(segment if key == segment else f"{segment} (context key {key!r})")
            values[segment] = value
        if missing:
            raise InvalidScopeError(
                f"scope.{missing[0].split()[0]}",
                f"{operation} needs {', '.join(missing)}: pass it in the agent's runtime context, e.g. "
                "agent.invoke(..., context={'tenant_id': ..., 'run_id': ...}) with "
                "create_agent(context_schema=...), or fix it when building the adapter",
            )
        return write_scope(values, operation)
