"""Recalling long-term memories: which query, which search, which hits, and how they read in a prompt.

Shared by the memory, the memory block and the retriever. A :class:`Recall` is a read scope and the
:class:`~memory_plugin.binding.RecallOptions` every adapter shares (a frozen value validated once: each search
gets freshly built arguments, so nothing a call does can leak into the next).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole

from memory_plugin import Memory, Scope, SearchHit
from memory_plugin.binding import RecallOptions, recall_query
from memory_plugin.validation import MAX_TOP_K, check_int

from ._calls import Plan, StoreCall
from ._convert import KEY_PREFIX, PLACEHOLDER_KEY, ROLE_KEY, text_of
from ._history import Tokenizer

DEFAULT_RECALL_TEMPLATE = (
    "Long-term memory: what you remember about this user, most relevant first. "
    "Use it when it helps; the user may not repeat it.\n{memories}"
)


@dataclass(frozen=True)
class PromptMessages:
    """The messages the model already sees verbatim, which recall must not repeat: stored message ids, and texts
    (a memory made from an earlier copy of a message, e.g. before ``set()`` rewrote the history, has the same text
    but another source id). Texts compare with surrounding whitespace stripped, as the LangChain adapter does."""

    message_ids: frozenset[str] = frozenset()
    texts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, messages: Iterable[ChatMessage], message_ids: Iterable[str] = ()) -> PromptMessages:
        texts = frozenset(stripped for m in messages if (stripped := text_of(m).strip()))
        return cls(frozenset(message_ids), texts)

    @property
    def size(self) -> int:
        """How many hits at most this can skip."""
        return max(len(self.message_ids), len(self.texts))

    def repeats(self, hit: SearchHit) -> bool:
        memory = hit.memory
        return not self.message_ids.isdisjoint(memory.source_message_ids) or memory.text.strip() in self.texts


@dataclass(frozen=True)
class Recall:
    """Where and how to search: a read scope (``"*"`` and id lists allowed) and the recall options. ``enabled`` is
    ``False`` when recall was turned off (a ``recall_top_k`` of 0): then there is nothing to search."""

    scope: Scope
    options: RecallOptions
    enabled: bool = True

    @classmethod
    def build(
        cls,
        scope: object,
        *,
        scope_field: str = "scope",
        top_k: object = 5,
        top_k_field: str = "top_k",
        min_top_k: int = 1,
        **options: Any,
    ) -> Recall:
        """Validate the scope and every option (see :class:`~memory_plugin.binding.RecallOptions`) now, so a
        mistake fails where it is made and not at the first chat turn; ``top_k`` is named ``top_k_field`` in
        errors, and may be 0 (recall off) when ``min_top_k`` is 0.

        Raises:
            InvalidScopeError, InvalidArgumentError: naming the option that is wrong.
        """
        read_scope = Scope.parse(scope, scope_field)
        count = check_int(top_k_field, top_k, min_top_k, MAX_TOP_K)
        # RecallOptions always asks for at least one memory; a count of 0 turns recall off instead.
        return cls(read_scope, RecallOptions(top_k=max(count, 1), **options), enabled=count > 0)

    def search_call(self, query: str, extra: int = 0) -> StoreCall:
        """The search for ``query``, asking for ``extra`` more hits than ``top_k`` to make up for skipped ones."""
        return StoreCall("search", (self.scope, recall_query(query)), self.options.search_arguments(extra))

    def select(self, hits: Iterable[SearchHit], in_prompt: PromptMessages = PromptMessages()) -> list[SearchHit]:
        """The hits worth showing, best first: scored at least ``min_score``, not a stand-in text, and not
        repeating a message already in the prompt (made from it, or with the same text)."""
        return self.options.keep(hits, lambda hit: is_stand_in(hit) or in_prompt.repeats(hit))

    def plan(self, query: str, in_prompt: PromptMessages = PromptMessages()) -> Plan[list[SearchHit]]:
        """Search for ``query`` and :meth:`select`; no call at all when recall is off or the query is blank."""
        if not self.enabled or not recall_query(query):
            return []
        hits = yield self.search_call(query, in_prompt.size)
        return self.select(hits, in_prompt)


def is_stand_in(hit: SearchHit) -> bool:
    """Whether a hit is a stand-in text (a message that had no text of its own): recall never shows one."""
    return bool(hit.memory.metadata.get(PLACEHOLDER_KEY))


def query_for(input: object, history: Sequence[ChatMessage]) -> str:
    """What to recall for: ``input`` (a string or message) if given, else the latest user message of ``history``."""
    if isinstance(input, ChatMessage):
        return text_of(input)
    if isinstance(input, str):
        return input
    return next((text_of(m) for m in reversed(history) if m.role == MessageRole.USER), "")


def memory_line(memory: Memory) -> str:
    """One memory as a prompt line: ``- [2024-03-01, user] I like coffee`` (date and, if known, who said it)."""
    label = memory.event_time.date().isoformat()
    role = memory.metadata.get(ROLE_KEY)
    if isinstance(role, str):
        label += f", {role}"
    return f"- [{label}] " + " ".join(memory.text.split())


def memory_lines(hits: Iterable[SearchHit]) -> str:
    return "\n".join(memory_line(hit.memory) for hit in hits)


def recall_message(hits: Iterable[SearchHit], template: str, budget: int, tokenizer: Tokenizer) -> ChatMessage | None:
    """The system message holding the recalled memories: ``template`` with ``{memories}`` replaced by as many of
    ``hits`` (best first) as fit in ``budget`` tokens; ``None`` when none fits."""
    lines: list[str] = []
    for hit in hits:
        candidate = [*lines, memory_line(hit.memory)]
        if len(tokenizer(template.replace("{memories}", "\n".join(candidate)))) > budget:
            break
        lines = candidate
    if not lines:
        return None
    return ChatMessage(role=MessageRole.SYSTEM, content=template.replace("{memories}", "\n".join(lines)))


def node_metadata(memory: Memory) -> dict[str, Any]:
    """Flat metadata for a LlamaIndex node: the memory's own metadata (without adapter bookkeeping), its id, type,
    scope (``app/tenant/agent/run`` and each segment), times and, if known, who said it."""
    own: Mapping[str, Any] = memory.metadata
    result: dict[str, Any] = {k: v for k, v in own.items() if not k.startswith(KEY_PREFIX)}
    if isinstance(own.get(ROLE_KEY), str):
        result["role"] = own[ROLE_KEY]
    scope = memory.scope
    result.update(
        memory_id=memory.id,
        memory_type=memory.memory_type,
        scope=str(scope),
        app_id=scope.app_id,
        tenant_id=scope.tenant_id,
        agent_id=scope.agent_id,
        run_id=scope.run_id,
        event_time=memory.event_time.isoformat(),
        created_at=memory.created_at.isoformat(),
    )
    return result
