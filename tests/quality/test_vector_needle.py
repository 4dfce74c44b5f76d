"""Issue 17: above the exact-scan threshold the engine used to take Chroma's HNSW candidates, and near-duplicate
clusters starve the HNSW graph of links to an isolated memory: at 4,600 fillers the needle below never came back
(``benchmarks/vector_recall.py`` measures that path at 10k and 100k). Now a store that fits
``Settings.vector_memory_limit`` is answered exactly from memory at any size. The threshold is a setting, so the
scope here is small and still takes the large-scope path: through the public API, with the real model, the one
distinctive memory comes first in one tenant and across all tenants."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from memory_plugin import Embedder, MemoryClient, Scope, Settings
from memory_plugin.filters import ReadFilter
from memory_plugin.storage.vector_matrix import MatrixRows, VectorMatrix

NEEDLE = "A zebra and a giraffe grazed beside the river."
QUERY = "striped wild animals on the savanna"
FILLERS = 600
PLEASANTRIES = ("ok", "thanks", "sounds good", "haha", "got it", "see you tomorrow", "no worries", "yes")


def needle_texts(fillers: int, seed: int = 17) -> list[str]:
    """``fillers`` near-duplicates (a tenth of them pleasantries) with the needle somewhere among them."""
    rng = random.Random(seed)
    texts = [
        rng.choice(PLEASANTRIES) if rng.random() < 0.1 else f"filler {b} {i} lorem ipsum"
        for b in range(fillers // 100)
        for i in range(100)
    ]
    texts.insert(rng.randrange(len(texts)), NEEDLE)
    return texts


def test_the_distinctive_memory_among_near_duplicates_is_found_on_the_large_scope_path(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    texts = needle_texts(FILLERS)
    settings = Settings(exact_scan_limit=50)  # 601 memories in scope: far past the exact scan of the record
    scope = Scope("zoo", "ann", "assistant", "*")
    with MemoryClient(tmp_path, embedder=real_embedder, settings=settings) as client:
        store = client.create_memory_store("needle")
        for start in range(0, len(texts), 100):
            turns = [{"role": "user", "content": text} for text in texts[start : start + 100]]
            store.add(Scope("zoo", "ann", "assistant", f"run-{start}"), messages=turns, sync=True)
        for other in ("bob", "cy"):  # other tenants: the all-tenant scope is larger still
            store.add(Scope("zoo", other, "assistant", "r"), messages=[{"role": "user", "content": "ok"}], sync=True)
        for searched in (scope, Scope("zoo", "*", "*", "*")):
            hits = store.search(searched, QUERY, top_k=5, rerank=False)
            assert hits, searched
            assert hits[0].memory.text == NEEDLE, [h.memory.text for h in hits]
            assert hits[0].score > 0


def test_a_scan_long_enough_for_a_shortlist_still_finds_the_needle_first(real_embedder: Embedder) -> None:
    """A scan of more than ``Settings.vector_shortlist_above`` memories ranks them on a projection first and scores
    only its shortlist exactly (1,000 of these 40,000 rows for k=10): the needle must survive the projection. The
    601 texts above embedded by the real model, the fillers repeated (as near-duplicates are in a real store), over
    40 tenants."""
    texts = needle_texts(FILLERS)
    vectors = np.asarray(real_embedder.embed_documents(texts), dtype=np.float32)
    needle = texts.index(NEEDLE)
    fillers = [i for i in range(len(texts)) if i != needle]
    order = [*(fillers[i % len(fillers)] for i in range(39_999)), needle]
    count = len(order)
    rows = MatrixRows(
        seqs=np.arange(1, count + 1, dtype=np.int64),
        memory_ids=[f"m{i}" for i in range(count)],
        app_ids=["zoo"] * count,
        tenant_ids=[f"t{i % 40}" for i in range(count)],
        agent_ids=["assistant"] * count,
        run_ids=["r"] * count,
        memory_types=["message"] * count,
        event_times=np.zeros(count),
        vectors=vectors[order],
    )
    matrix = VectorMatrix(1, vectors.shape[1], shortlist_above=5000)
    matrix.replace_all([rows])
    query = np.asarray(real_embedder.embed_query(QUERY), dtype=np.float32)
    found = matrix.nearest(ReadFilter(1, Scope("zoo", "*", "*", "*")), query, 10)
    best = max(found, key=found.__getitem__)
    assert best == count  # the needle's position
    assert abs(found[best] - float(vectors[needle] @ query)) < 1e-5  # scored exactly
