"""Search through the public API with embeddings chosen by the test: every candidate's signals are counted,
whichever retriever found it, and a turn is returned once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from memory_plugin import Embedder, MemoryClient, MemoryStore, Scope
from memory_plugin.service import search
from tests.conftest import turn

SCOPE = Scope(app_id="app", tenant_id="ann", agent_id="assistant", run_id="monday")
QUERY = "apple"


def chosen_vectors(texts: list[str]) -> list[list[float]]:
    """The query and the texts mentioning cream point one way, everything else another."""
    near, far = np.eye(8)[0], np.eye(8)[1]
    return [(near if (t == QUERY or "cream" in t) else far).tolist() for t in texts]


def test_a_candidate_found_by_meaning_keeps_its_keyword_match(tmp_path: Path) -> None:
    embedder = Embedder(chosen_vectors, name="chosen-8", dimension=8)
    with MemoryClient(path=tmp_path, embedder=embedder) as client:
        store = client.create_memory_store("s")
        # Enough strong keyword matches to fill the keyword pool, all far in meaning.
        for number in range(80):
            store.add(SCOPE, text=f"apple apple apple orchard {number}")
        # Two memories close in meaning, the same length; only one shares a word with the query.
        kiwi = store.add(SCOPE, text="a tart of peach with cream and sugar crust").memories[0]
        apple = store.add(SCOPE, text="a tart of apple with cream and sugar crust").memories[0]
        for rerank in (True, False):
            hits = store.search(SCOPE, QUERY, top_k=2, rerank=rerank)
            assert [h.memory.id for h in hits] == [apple.id, kiwi.id], rerank


def test_a_turn_said_in_several_sentences_is_returned_once(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("s")
        said = "I'm planning a trip to Rome next month. I have a severe nut allergy. My sister comes along."
        memories = store.add(SCOPE, messages=[turn("user", said)]).memories
        store.add(SCOPE, messages=[turn("user", "I went to Rome with a nut seller.")])
        hits = store.search(SCOPE, "Rome nut allergy trip", top_k=10)
    assert len(memories) == 4 and len({m.source_message_ids[0] for m in memories}) == 1
    sources = [h.memory.source_message_ids[0] for h in hits]
    assert len(hits) == 2 and len(set(sources)) == 2


def kiwi_and_orchards(store: MemoryStore, tenant_of: Callable[[int], str]) -> str:
    """``VECTOR_POOL - 1`` memories of cream and a kiwi (exactly the vector pool: close in meaning to the query
    "kiwi apple"), then four orchards only the keyword "apple" finds; returns the kiwi's id."""
    for number in range(search.VECTOR_POOL - 1):
        store.add(SCOPE.with_(tenant_id=tenant_of(number)), text=f"cream {number}")
    kiwi = store.add(SCOPE.with_(tenant_id=tenant_of(-1), run_id="kiwi"), text="a kiwi beside an apple in cream")
    for number in range(4):
        store.add(SCOPE.with_(tenant_id=tenant_of(-2), run_id="orchards"), text=f"apple orchard number {number}")
    return kiwi.memories[0].id


def kiwi_vectors(texts: list[str]) -> list[list[float]]:
    return chosen_vectors(["apple" if t == "kiwi apple" else t for t in texts])  # the query: near cream


def test_in_an_all_tenant_scope_a_common_term_does_not_nominate_but_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over every tenant, a term more than ``COMMON_TERM_ROWS`` memories hold nominates no keyword candidates (the
    full-text index would score all of its matches), but the BM25 of every candidate still counts it."""
    everyone = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")
    with MemoryClient(path=tmp_path, embedder=Embedder(kiwi_vectors, name="chosen-8", dimension=8)) as client:
        store = client.create_memory_store("s")
        kiwi = kiwi_and_orchards(store, lambda number: {-1: "cy", -2: "bob"}.get(number, f"user-{number % 3}"))

        def kiwi_lexical() -> tuple[float, int]:
            hits = store.search(everyone, "kiwi apple", top_k=10, rerank=False, explain=True)
            assert hits[0].memory.id == kiwi
            return (hits[0].signals or {})["lexical"], hits.usage.candidates

        lexical, candidates = kiwi_lexical()
        monkeypatch.setattr(search, "COMMON_TERM_ROWS", 4)  # "apple" is held by 5
        assert kiwi_lexical() == (lexical, candidates - 4)  # the orchards are not nominated; "apple" still counts
        monkeypatch.setattr(search, "COMMON_TERM_ROWS", 5)
        assert kiwi_lexical() == (lexical, candidates)


def test_in_one_large_tenant_a_common_term_does_not_nominate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant holding more than ``LARGE_SCOPE`` memories is searched like every tenant (one large user, or an
    agent's shared memory): only terms few memories hold nominate keyword candidates; up to that size, every term
    does."""
    whole_tenant = SCOPE.with_(agent_id="*", run_id="*")
    with MemoryClient(path=tmp_path, embedder=Embedder(kiwi_vectors, name="chosen-8", dimension=8)) as client:
        store = client.create_memory_store("s")
        kiwi = kiwi_and_orchards(store, lambda number: "ann")
        held = search.VECTOR_POOL + 4

        def candidates() -> int:
            hits = store.search(whole_tenant, "kiwi apple", top_k=10, rerank=False)
            assert hits[0].memory.id == kiwi
            return hits.usage.candidates

        monkeypatch.setattr(search, "COMMON_TERM_ROWS", 4)  # "apple" is held by 5
        monkeypatch.setattr(search, "LARGE_SCOPE", held)
        every_term = candidates()
        monkeypatch.setattr(search, "LARGE_SCOPE", held - 1)
        assert candidates() == every_term - 4  # the orchards are not nominated
        monkeypatch.setattr(search, "COMMON_TERM_ROWS", 5)
        assert candidates() == every_term
