"""The README's recall examples hold with the README's own numbers, through the public API and the real model:
what a later request needs is recalled first and scores above ``DEFAULT_MIN_SCORE``, the threshold the framework
adapters use by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_plugin import DEFAULT_MIN_SCORE, MemoryClient, MemoryStore, Scope
from tests.conftest import turn

pytestmark = pytest.mark.model
MONDAY = Scope(app_id="app-001", tenant_id="user-001", agent_id="assistant", run_id="monday")
EVERY_RUN = MONDAY.with_(run_id="*")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryClient(path=tmp_path) as client:
        yield client.create_memory_store("agent_memory")


def test_quick_start_recalls_the_drink_not_the_answer_style(store: MemoryStore) -> None:
    added = store.add(MONDAY, messages=[turn("user", "I like coffee"), turn("assistant", "Noted")])
    assert [m.text for m in added.memories] == ["I like coffee"]  # "Noted" says nothing worth recalling
    store.add(MONDAY, text="The user prefers short answers")
    hits = store.search(EVERY_RUN, "what does the user drink?", top_k=5)
    assert hits[0].memory.text == "I like coffee" and hits[0].score >= DEFAULT_MIN_SCORE


@pytest.mark.parametrize(
    ("said", "asked_later", "needed"),
    [
        ("I'm allergic to peanuts.", "Suggest a snack?", "I'm allergic to peanuts."),
        (
            "I'm vegetarian, and I'm flying to Lisbon on the 14th.",
            "Can you suggest a dinner recipe?",
            "I'm vegetarian, and I'm flying to Lisbon on the 14th.",
        ),
        (
            "Thanks, that helps! I have a severe nut allergy, by the way. What should I pack for the hike?",
            "What Thai dishes should I try?",
            "I have a severe nut allergy, by the way.",
        ),
    ],
)
def test_a_later_request_recalls_what_it_depends_on(
    store: MemoryStore, said: str, asked_later: str, needed: str
) -> None:
    store.add(MONDAY, messages=[turn("user", said), turn("assistant", "Got it! Here are some ideas for you.")])
    store.add(MONDAY.with_(run_id="tuesday"), messages=[
        turn("user", "Can you recommend a good laptop for video editing?"),
        turn("assistant", "Sure! Look for a fast CPU, 32 GB of memory and a colour-accurate screen."),
    ])  # fmt: skip
    hits = store.search(EVERY_RUN, asked_later, top_k=5)
    assert hits[0].memory.text == needed, [(h.memory.text, h.score) for h in hits]
    assert hits[0].score >= DEFAULT_MIN_SCORE
