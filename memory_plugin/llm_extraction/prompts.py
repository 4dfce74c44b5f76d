"""The prompts of :class:`LLMExtractor`, as ``string.Template`` texts the user can replace.

Placeholders of ``extraction``: ``$now`` (time of the new messages, ISO), ``$weekday``, ``$kinds`` (what to
extract, from the extractor's configuration), ``$existing`` (the most similar existing memories, ``id: text``),
``$conversation`` (earlier context and the new messages). Placeholders of ``retry``: ``$prompt``, ``$answer``,
``$error``. ``$`` in a template is written ``$$``; JSON braces need no escaping.
"""

from __future__ import annotations

from dataclasses import dataclass

EXTRACTION_PROMPT = """You keep the long-term memory of an assistant about its user and their world.
Read the conversation and decide what is worth remembering from the NEW messages (earlier messages are context).

The new messages were written on $now ($weekday).

What to extract:
$kinds

Write each memory as one short, self-contained statement in the language of the conversation (if the user writes
Chinese, write the memory in Chinese). Do not invent anything that was not said.

Existing memories, most similar first (id: text):
$existing

For each piece of information decide one action:
- ADD a new memory: {"action": "ADD", "type": "fact", "text": "..."}
- UPDATE an existing memory about the same thing that the new information refines or changes (merge them into
  one text): {"action": "UPDATE", "id": "<existing id>", "text": "<merged text>"}
- DELETE an existing memory that the new messages contradict: {"action": "DELETE", "id": "<existing id>"}
  (and ADD the new information if it is worth keeping)
- NOOP when it is already remembered: {"action": "NOOP", "id": "<existing id>"}
Events also have "event_time": the date they happened as YYYY-MM-DD, resolved from the date of the new messages
("yesterday", "last Saturday" ...).
Profile attributes: {"action": "ADD", "type": "profile", "profile": "<profile type>", "attribute": "<key>",
"text": "<value>"}.

Answer with JSON only, no prose: {"memories": [ ... ]}. If nothing is worth remembering: {"memories": []}.

Conversation:
$conversation
"""

RETRY_PROMPT = """$prompt

Your previous answer could not be used:
$answer

Problem: $error
Answer again with JSON only, exactly in the form {"memories": [ ... ]}.
"""

KIND_DESCRIPTIONS = {
    "fact": 'type "fact": lasting facts about the user or the world (preferences, relationships, plans, opinions)',
    "event": 'type "event": things that happened or will happen, with "event_time"',
}


@dataclass(frozen=True)
class PromptTemplates:
    """The prompts an :class:`LLMExtractor` sends; override either to change wording or language.

    Example:
        >>> templates = PromptTemplates(extraction=EXTRACTION_PROMPT.replace("short", "very short"))
    """

    extraction: str = EXTRACTION_PROMPT
    retry: str = RETRY_PROMPT
