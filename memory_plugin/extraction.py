"""Extraction: how raw messages (or text) become long-term memories.

An :class:`Extractor` looks at what one ``add`` call brought and returns operations: :class:`NewMemory`,
:class:`MemoryUpdate` or :class:`MemoryDeletion`. The engine embeds and applies them in one transaction, with
history, so an extractor never touches storage. The default :class:`TurnExtractor` needs no LLM: each
user/assistant turn that states something becomes ``message`` memories (the turn, and each of its sentences when
it states several things) and ``text=`` becomes one ``fact``. An LLM extractor plugs in through the same
interface (``MemoryClient(extractor=...)`` or per store).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Union, runtime_checkable

from .models import Memory, Message, Metadata
from .retrieval import STOP_WORDS, terms
from .scope import Scope


@dataclass(frozen=True)
class ExtractionInput:
    """What one ``add`` call brought, and ways to look at what is already remembered.

    Attributes:
        scope: the concrete scope written to.
        messages: the new raw messages (empty when ``text`` was given).
        text: the pre-digested text of ``add(text=...)``, else ``None``.
        metadata: call-level metadata (per-message metadata is on each message).
        timestamp: when the call says this happened.
        recent: earlier messages of the same run, oldest first, for context.
        related: ``related(query, k)`` finds existing memories of the same app and tenant, best first.
        similar: ``similar(text, k)`` is ``related`` with each memory's cosine similarity to ``text`` (in
            ``[-1, 1]``, from the stored embeddings), for deterministic duplicate checks.
        usage: figures the extractor reports (e.g. ``input_tokens``, ``output_tokens``, ``llm_calls``); the
            engine adds them to the audit counts of the ``AddMemories`` request.
    """

    scope: Scope
    messages: list[Message]
    text: str | None
    metadata: Metadata
    timestamp: datetime
    recent: list[Message] = field(default_factory=list)
    related: Callable[[str, int], list[Memory]] = field(default=lambda query, k: [])
    similar: Callable[[str, int], list[tuple[Memory, float]]] = field(default=lambda text, k: [])
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NewMemory:
    """Store a new memory. ``event_time`` defaults to the call's timestamp.

    ``speaker`` is who said it (a message's ``name``, else its role); it is embedded with the text
    (``"Ann: I like tea"``) and searches that name the speaker rank it higher. ``context`` is text that helps find
    the memory without being part of it, e.g. the turn it answers; it is indexed for keyword search only.
    """

    text: str
    memory_type: str
    event_time: datetime | None = None
    metadata: Metadata = field(default_factory=dict)
    source_message_ids: tuple[str, ...] = ()
    speaker: str | None = None
    context: str = ""


@dataclass(frozen=True)
class MemoryUpdate:
    """Change an existing memory of the same app and tenant (``None`` keeps a field as it is).
    ``source_message_ids`` are the messages that caused the change; they are kept in its history."""

    memory_id: str
    text: str | None = None
    metadata: Metadata | None = None
    event_time: datetime | None = None
    source_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemoryDeletion:
    """Delete an existing memory of the same app and tenant (e.g. contradicted by new information)."""

    memory_id: str
    source_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemoryUnchanged:
    """Keep an existing memory as it is, and say so in its history (e.g. an LLM's NOOP on a duplicate)."""

    memory_id: str
    source_message_ids: tuple[str, ...] = ()


MemoryOperation = Union[NewMemory, MemoryUpdate, MemoryDeletion, MemoryUnchanged]


@runtime_checkable
class Extractor(Protocol):
    """Turns one ``add`` call into memory operations. Must be thread-safe: background extraction runs on a
    worker thread. Raising makes the call fail (``sync=True``) or the background job retry."""

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]: ...


# How much of each neighbouring turn is kept as search context.
CONTEXT_CHARACTERS = 2000
# How many earlier turns a turn is indexed with: a reply often continues what was said two turns before.
CONTEXT_TURNS = 2

# A sentence ends at . ! ? (or their full-width forms) followed by space and a capital, digit or quote, at a
# CJK sentence mark, or at a line break. Abbreviations such as "Dr." are put back together afterwards.
_CJK_SENTENCE_MARKS = "\u3002\uff01\uff1f"  # ideographic full stop, full-width ! and ?
_SENTENCE_END = re.compile(rf"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[{_CJK_SENTENCE_MARKS}])|\n+")
_ABBREVIATION = re.compile(r"\b(?:mr|mrs|ms|dr|prof|st|vs|etc|e\.g|i\.e|jr|sr|no|approx)\.$", re.IGNORECASE)
# Words that carry no content of their own in a chat: acknowledgements, greetings, courtesy, and what is left of
# a contraction once split ("you're" is "you" and "re").
COURTESY_WORDS = frozenset(
    """
    ok okay k thanks thank thx ty noted saved sure yes yeah yep yup no nope great cool nice got hi hello hey bye
    goodbye welcome please sounds good awesome perfect alright right wow fine lol haha oh ah hmm really indeed
    absolutely definitely appreciate wonderful amazing fantastic excellent congrats congratulations glad helps helpful
    re ll ve m s d t
    """.split()
)


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, in order (CJK sentence marks count; ``"Dr. Smith"`` stays whole)."""
    result: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if result and _ABBREVIATION.search(result[-1]):
            result[-1] = f"{result[-1]} {piece}"
        else:
            result.append(piece)
    return result


def is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith(("?", "\uff1f"))


def carries_content(sentence: str) -> bool:
    """False for a sentence of nothing but stop words and courtesy words ("Thanks!", "Noted.", "Sounds good")."""
    return any(term not in STOP_WORDS and term not in COURTESY_WORDS for term in terms(sentence))


def statements(text: str) -> list[str]:
    """The sentences of a turn worth remembering: those that state something (no questions, no courtesies)."""
    return [s for s in sentences(text) if not is_question(s) and carries_content(s)]


def spoken(message: Message) -> str:
    """A message as a line of conversation: ``"Ann: I like tea"``, or the bare content if it has no speaker."""
    return f"{message.name}: {message.content}" if message.name else message.content


def _turn_context(before: Sequence[Message], after: Message | None) -> str:
    """What a turn is indexed with for keyword search: the ends of the turns before it and the first sentence of
    the reply written with it."""
    parts = [spoken(m)[-CONTEXT_CHARACTERS:] for m in before[-CONTEXT_TURNS:]]
    if after is not None:
        first = sentences(after.content)[:1]
        parts += [f"{after.name}: {first[0]}" if after.name else first[0]] if first else []
    return " ".join(parts)


def _is_turn(message: Message) -> bool:
    return message.role in ("user", "assistant") and bool(message.content.strip())


class TurnExtractor:
    """The default extractor, no LLM: a user/assistant turn becomes ``message`` memories of what it states, and
    ``add(text=...)`` becomes one ``fact``. System and tool messages are kept as short-term messages only.

    A turn is cut into sentences; questions and courtesies ("Thanks!", "Noted.") are left out, so a turn that
    states nothing makes no long-term memory (it stays a short-term message). What remains is one memory (the
    turn as said when nothing was left out), and, when the turn states several things, each sentence is also a
    memory of its own, so that a preference said in passing ("I'm planning a trip. I'm vegetarian, by the way.")
    is found by a request it matters to. All memories of a turn keep its ``source_message_ids``, time, metadata
    and speaker (the message's ``name``, else its role: ``"user"`` or ``"assistant"``); a search returns the best
    of them only (see :mod:`memory_plugin.retrieval`). Each is indexed for keyword search with the two turns
    before it and the first sentence of the reply written with it, so an answer is found by its question.
    """

    def extract(self, request: ExtractionInput) -> list[MemoryOperation]:
        if request.text is not None:
            return [NewMemory(text=request.text, memory_type="fact", metadata=dict(request.metadata))]
        operations: list[MemoryOperation] = []
        earlier = [m for m in request.recent if _is_turn(m)]
        turns = [m for m in request.messages if _is_turn(m)]
        for number, message in enumerate(turns):
            said = statements(message.content)
            if said:
                following = turns[number + 1] if number + 1 < len(turns) else None
                whole = message.content if said == sentences(message.content) else " ".join(said)
                for text in [whole, *(said if len(said) > 1 else [])]:
                    operations.append(
                        NewMemory(
                            text=text,
                            memory_type="message",
                            event_time=message.timestamp,
                            metadata={**request.metadata, **message.metadata},
                            source_message_ids=(message.id,),
                            speaker=message.name or message.role,
                            context=_turn_context(earlier, following),
                        )
                    )
            earlier.append(message)
        return operations
