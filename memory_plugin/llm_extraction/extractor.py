"""``LLMExtractor``: an LLM distils new messages into facts, events and profile attributes, consolidated with
the tenant's most similar existing memories (ADD / UPDATE / DELETE / NOOP), with deterministic safeguards that
work whatever the LLM answers: exact duplicates are never stored twice, near-duplicates are merged, a profile
attribute is one memory updated in place, and ids the LLM made up are ignored."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from string import Template

from ..errors import ExtractionError, InvalidArgumentError
from ..extraction import ExtractionInput, MemoryDeletion, MemoryOperation, MemoryUnchanged, MemoryUpdate, NewMemory
from ..models import Memory, Message, Metadata
from ..validation import MAX_METADATA_KEYS, MAX_TEXT_LENGTH
from .event_time import resolve_event_time
from .llm import call_llm, check_llm
from .llm_json import Decision, LLMOutputError, parse_decisions
from .prompts import KIND_DESCRIPTIONS, PromptTemplates

MEMORY_TYPES = ("fact", "event", "profile")
DEFAULT_PROFILE_ATTRIBUTES = ("name", "age", "city", "country", "language", "occupation", "diet", "hobbies")
RAW_OUTPUT_CHARACTERS = 4000


def normalize(text: str) -> str:
    """What makes two memory texts the same: case, width, spacing and final punctuation do not count."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).rstrip(".!。")  # NFKC already made full-width marks ASCII


@dataclass
class _Plan:
    """Operations decided so far for one call, and what they already cover."""

    sources: tuple[str, ...]
    operations: list[MemoryOperation] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)
    noops: int = 0

    def add(self, operation: MemoryOperation) -> None:
        self.operations.append(operation)
        if not isinstance(operation, NewMemory):
            self.touched.add(operation.memory_id)

    def keep(self, memory_id: str) -> None:
        """A NOOP about an existing memory: it stays as it is, and its history says these messages confirmed it."""
        self.noops += 1
        if memory_id not in self.touched:
            self.add(MemoryUnchanged(memory_id, source_message_ids=self.sources))


class LLMExtractor:
    """Turns conversations into durable memories with any LLM.

    Args:
        llm: a LangChain ``BaseChatModel``, a LlamaIndex ``LLM``, or a callable ``(prompt: str) -> str``.
        memory_types: what to extract, among ``fact``, ``event``, ``profile``.
        profile_type: the name of the profile (``metadata["profile_type"]`` of profile memories).
        profile_attributes: the attribute keys kept (one memory each, ``metadata["attribute"]``, updated in place);
            other attributes the LLM proposes are dropped.
        templates: the prompts (see :class:`PromptTemplates`).
        related_per_message: how many similar existing memories per new message the LLM sees.
        duplicate_threshold: cosine similarity from which a new memory merges into an existing one.
        context_messages: how many earlier messages of the run are shown as context.

    The LLM gets one retry with its parse error; if the second answer is unusable the call raises
    :class:`ExtractionError` (``retryable=False``, ``raw_output`` set), so a background job is marked failed at once
    and listed by ``store.extraction_status()``. Token usage the LLM reports goes to the request's audit counts
    (``input_tokens``, ``output_tokens``, ``total_tokens``, ``llm_calls``).

    Example:
        >>> extractor = LLMExtractor(lambda prompt: '{"memories": []}', memory_types=("fact", "profile"))
        >>> store = client.create_memory_store("chat", extractor=extractor)  # doctest: +SKIP
    """

    def __init__(
        self,
        llm: object,
        *,
        memory_types: Sequence[str] = MEMORY_TYPES,
        profile_type: str = "user_profile",
        profile_attributes: Sequence[str] = DEFAULT_PROFILE_ATTRIBUTES,
        templates: PromptTemplates | None = None,
        related_per_message: int = 5,
        duplicate_threshold: float = 0.95,
        context_messages: int = 6,
    ) -> None:
        check_llm(llm)
        unknown = [t for t in memory_types if t not in MEMORY_TYPES]
        if unknown or not memory_types:
            raise InvalidArgumentError("memory_types", f"must be a non-empty subset of {list(MEMORY_TYPES)}")
        self.llm = llm
        self.memory_types = tuple(memory_types)
        self.profile_type = profile_type
        self.profile_attributes = tuple(a.lower() for a in profile_attributes)
        self.templates = templates or PromptTemplates()
        self.related_per_message = related_per_message
        self.duplicate_threshold = duplicate_threshold
        self.context_messages = context_messages

    # ---- the Extractor protocol ------------------------------------------------------------------------------

    def extract(self, request: ExtractionInput) -> list[MemoryOperation]:
        new = [m for m in request.messages if m.role in ("user", "assistant") and m.content.strip()]
        inputs = [request.text] if request.text is not None else [m.content for m in new]
        if not any(text.strip() for text in inputs):
            return []
        existing = self._existing(request, inputs)
        prompt = self._prompt(request, new, existing)
        decisions = self._ask(prompt, request.usage)
        plan = _Plan(sources=tuple(m.id for m in request.messages))
        reference = new[-1].timestamp if new else request.timestamp
        for decision in decisions:
            self._decide(decision, existing, request, plan, reference)
        if plan.noops:
            request.usage["noops"] = request.usage.get("noops", 0) + plan.noops
        return plan.operations

    # ---- prompt and answer -----------------------------------------------------------------------------------

    def _existing(self, request: ExtractionInput, inputs: list[str]) -> dict[str, Memory]:
        """The most similar existing memories of the tenant, by short ids the LLM can copy without mistakes."""
        found: dict[str, Memory] = {}
        for text in inputs:
            for memory in request.related(text, self.related_per_message * 2):
                if memory.memory_type in self.memory_types and memory.id not in found:
                    found[memory.id] = memory
        return {str(i): memory for i, memory in enumerate(found.values(), start=1)}

    def _kinds(self) -> str:
        lines = [KIND_DESCRIPTIONS[t] for t in self.memory_types if t in KIND_DESCRIPTIONS]
        if "profile" in self.memory_types:
            lines.append(
                f'type "profile": attributes of the profile "{self.profile_type}", only these keys: '
                f"{', '.join(self.profile_attributes)}"
            )
        return "\n".join(f"- {line}" for line in lines)

    def _prompt(self, request: ExtractionInput, new: list[Message], existing: dict[str, Memory]) -> str:
        context = request.recent[-self.context_messages :] if self.context_messages else []
        lines = [f"[earlier] {_line(m)}" for m in context]
        lines += [f"[new] {_line(m)}" for m in new]
        if request.text is not None:
            lines.append(f"[new] {request.text}")
        known = "\n".join(f"{short}: {_shown(m)}" for short, m in existing.items()) or "(none)"
        moment = new[-1].timestamp if new else request.timestamp
        return Template(self.templates.extraction).safe_substitute(
            now=moment.isoformat(timespec="minutes"),
            weekday=moment.strftime("%A"),
            kinds=self._kinds(),
            existing=known,
            conversation="\n".join(lines),
        )

    def _call(self, prompt: str, usage: dict[str, int]) -> str:
        answer, reported = call_llm(self.llm, prompt)
        usage["llm_calls"] = usage.get("llm_calls", 0) + 1
        for key, value in reported.items():
            usage[key] = usage.get(key, 0) + value
        return answer

    def _ask(self, prompt: str, usage: dict[str, int]) -> list[Decision]:
        """Ask, parse, and on an unusable answer ask once more showing the problem."""
        first = self._call(prompt, usage)
        try:
            return parse_decisions(first)
        except LLMOutputError as e:
            retry = Template(self.templates.retry).safe_substitute(
                prompt=prompt, answer=first[:RAW_OUTPUT_CHARACTERS] or "(empty)", error=str(e)
            )
        second = self._call(retry, usage)
        try:
            return parse_decisions(second)
        except LLMOutputError as e:
            raw = f"--- answer 1 ---\n{first}\n--- answer 2 ---\n{second}"[:RAW_OUTPUT_CHARACTERS]
            raise ExtractionError(
                f"the LLM answered unusable output twice: {e}", raw_output=raw, retryable=False
            ) from e

    # ---- consolidation ---------------------------------------------------------------------------------------

    def _decide(
        self, d: Decision, existing: dict[str, Memory], request: ExtractionInput, plan: _Plan, reference: datetime
    ) -> None:
        target = existing.get(d.target or "")
        if target is not None and target.id in plan.touched:
            plan.noops += 1  # one change per memory and call: the first decision about it wins
            return
        text = d.text[:MAX_TEXT_LENGTH]
        if d.action == "NOOP" and target is not None:
            plan.keep(target.id)
            return
        if d.action == "NOOP" or (d.action == "DELETE" and target is None) or (target is None and not text):
            plan.noops += 1
            return
        if d.action == "DELETE":
            assert target is not None
            plan.add(MemoryDeletion(target.id, source_message_ids=plan.sources))
            return
        memory_type = d.memory_type if d.memory_type in MEMORY_TYPES else "fact"
        when = resolve_event_time(d.event_time, reference)
        if d.action == "UPDATE" and target is not None and target.memory_type == "profile":
            attribute = str(target.metadata.get("attribute", ""))  # keep "<attribute>: <value>" whatever the LLM wrote
            value = text.split(":", 1)[1].strip() if normalize(text).startswith(f"{attribute}:") else text
            self._profile(replace(d, attribute=attribute), value, request, plan, reference)
            return
        if d.action == "UPDATE" and target is not None:
            if normalize(target.text) == normalize(text):
                plan.keep(target.id)
            else:
                plan.add(MemoryUpdate(target.id, text=text, event_time=when, source_message_ids=plan.sources))
            return
        # ADD (or an UPDATE of an unknown id, which is new information all the same)
        if memory_type not in self.memory_types:
            return
        if memory_type == "profile":
            self._profile(d, text, request, plan, reference)
            return
        happened = (when if memory_type == "event" else None) or reference  # default: when it was said
        self._add(NewMemory(text=text, memory_type=memory_type, event_time=happened, source_message_ids=plan.sources,
                            metadata=dict(request.metadata)), request, plan)  # fmt: skip

    def _add(self, memory: NewMemory, request: ExtractionInput, plan: _Plan) -> None:
        """Store a new memory unless it is already there: exact duplicates are skipped, near-duplicates merged."""
        key = normalize(memory.text)
        if key in plan.texts:
            plan.noops += 1
            return
        plan.texts.add(key)
        for found, similarity in request.similar(memory.text, self.related_per_message):
            if found.memory_type not in self.memory_types:
                continue
            if normalize(found.text) == key:
                plan.keep(found.id)
                return
            if similarity >= self.duplicate_threshold and found.id not in plan.touched:
                plan.add(MemoryUpdate(found.id, text=memory.text, event_time=memory.event_time,
                                      source_message_ids=plan.sources))  # fmt: skip
                return
        plan.add(memory)

    def _profile(self, d: Decision, value: str, request: ExtractionInput, plan: _Plan, reference: datetime) -> None:
        """One memory per profile attribute, ``"<attribute>: <value>"``, updated in place when it changes."""
        attribute = (d.attribute or "").strip().lower().replace(" ", "_")
        if attribute not in self.profile_attributes:
            return
        profile_type = self.profile_type
        text = f"{attribute}: {value}"
        key = normalize(text)
        if key in plan.texts:
            plan.noops += 1
            return
        plan.texts.add(key)
        for found in request.related(f"{attribute}: {value}", 20):
            if (
                found.memory_type == "profile"
                and found.metadata.get("profile_type") == profile_type
                and found.metadata.get("attribute") == attribute
            ):
                if normalize(found.text) == key:
                    plan.keep(found.id)
                elif found.id in plan.touched:
                    plan.noops += 1
                else:
                    plan.add(MemoryUpdate(found.id, text=text, event_time=reference, source_message_ids=plan.sources))
                return
        metadata = _with(request.metadata, profile_type=profile_type, attribute=attribute)
        plan.add(NewMemory(text=text, memory_type="profile", source_message_ids=plan.sources, event_time=reference,
                           metadata=metadata))  # fmt: skip


def _with(call_metadata: Metadata, **keys: str) -> Metadata:
    """A profile memory's metadata: its keys, and the call's metadata when there is room for it."""
    merged: Metadata = {**call_metadata, **keys}
    return merged if len(merged) <= MAX_METADATA_KEYS else dict(keys)


def _line(message: Message) -> str:
    who = f"{message.role} {message.name}" if message.name else message.role
    return f"{who} ({message.timestamp.isoformat(timespec='minutes')}): {message.content}"


def _shown(memory: Memory) -> str:
    if memory.memory_type == "event":
        return f"[event {memory.event_time.date().isoformat()}] {memory.text}"
    return f"[{memory.memory_type}] {memory.text}"
