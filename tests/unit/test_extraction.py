"""The default extractor's rules, pure: which turns make memories, how a turn is cut, what each piece keeps."""

from __future__ import annotations

from datetime import datetime, timezone

from memory_plugin import ExtractionInput, Message, NewMemory, Scope, TurnExtractor
from memory_plugin.extraction import carries_content, sentences, statements

SCOPE = Scope(app_id="app", tenant_id="ann", agent_id="assistant", run_id="monday")
WHEN = datetime(2026, 11, 18, 9, 30, tzinfo=timezone.utc)


def message(number: int, role: str, content: str, name: str | None = None) -> Message:
    return Message(id=f"msg_{number}", scope=SCOPE, role=role, content=content, name=name, timestamp=WHEN)  # type: ignore[arg-type]


def extract(*messages: Message, recent: tuple[Message, ...] = ()) -> list[NewMemory]:
    request = ExtractionInput(SCOPE, list(messages), None, {"source": "chat"}, WHEN, recent=list(recent))
    operations = TurnExtractor().extract(request)
    assert all(isinstance(op, NewMemory) for op in operations)
    return operations  # type: ignore[return-value]


def test_sentences_split_at_sentence_marks_but_keep_abbreviations_and_decimals() -> None:
    assert sentences("I met Dr. Smith at 3.30 today! Was it fun? Yes.\nSee you") == [
        "I met Dr. Smith at 3.30 today!",
        "Was it fun?",
        "Yes.",
        "See you",
    ]
    assert sentences("我喜歡喝咖啡。你呢\uff1fI like tea") == ["我喜歡喝咖啡。", "你呢\uff1f", "I like tea"]


def test_questions_and_courtesies_state_nothing() -> None:
    assert not carries_content("Thanks!") and not carries_content("Noted.") and not carries_content("Sounds good")
    assert not carries_content("You're welcome.") and not carries_content("Thanks, that helps!")
    assert carries_content("I'm vegan")
    assert carries_content("I like coffee") and carries_content("我喜歡喝咖啡")
    assert statements("Great, thanks! I'm vegan. Any ideas for dinner?") == ["I'm vegan."]


def test_a_short_statement_is_one_memory_said_by_its_role_and_acknowledgements_make_none() -> None:
    memories = extract(message(1, "user", "I like coffee"), message(2, "assistant", "Noted"))
    assert [(m.text, m.speaker, m.source_message_ids) for m in memories] == [("I like coffee", "user", ("msg_1",))]
    assert memories[0].memory_type == "message" and memories[0].event_time == WHEN
    assert memories[0].metadata == {"source": "chat"}


def test_a_turn_stating_several_things_is_kept_whole_and_sentence_by_sentence() -> None:
    said = "Great, thanks! I'm planning a trip to Rome. I have a severe nut allergy, by the way. Any ideas?"
    memories = extract(message(1, "user", said))
    assert [m.text for m in memories] == [
        "I'm planning a trip to Rome. I have a severe nut allergy, by the way.",
        "I'm planning a trip to Rome.",
        "I have a severe nut allergy, by the way.",
    ]
    assert {m.source_message_ids for m in memories} == {("msg_1",)}


def test_a_turn_of_questions_only_makes_no_long_term_memory() -> None:
    assert extract(message(1, "user", "What should I cook tonight?")) == []


def test_a_named_speaker_is_kept_and_context_holds_the_turns_around() -> None:
    before = (message(1, "user", "Where did you travel?", "Bob"), message(2, "user", "Anywhere warm?", "Bob"))
    memories = extract(
        message(3, "assistant", "To Rome, with my sister.", "Ann"),
        message(4, "user", "Wow, Rome! Tell me more.", "Bob"),
        recent=(message(0, "user", "Hi!", "Bob"), *before),
    )
    assert memories[0].speaker == "Ann"
    assert memories[0].context == "Bob: Where did you travel? Bob: Anywhere warm? Bob: Wow, Rome!"


def test_text_becomes_one_fact_as_given() -> None:
    request = ExtractionInput(SCOPE, [], "Thanks! The user is vegan.", {}, WHEN)
    operations = TurnExtractor().extract(request)
    assert [(op.text, op.memory_type) for op in operations if isinstance(op, NewMemory)] == [
        ("Thanks! The user is vegan.", "fact")
    ]
