"""Issue 17: above the exact-scan threshold the engine used to take Chroma's HNSW candidates, and near-duplicate
clusters starve the HNSW graph of links to an isolated memory: at 4,600 fillers the needle below never came back
(``benchmarks/vector_recall.py`` measures that path at 10k and 100k). Now a store that fits
``Settings.vector_memory_limit`` is answered exactly from memory at any size. The threshold is a setting, so the
scope here is small and still takes the large-scope path: through the public API, with the real model, the one
distinctive memory comes first in one tenant and across all tenants."""

from __future__ import annotations

import random
from pathlib import Path

from memory_plugin import Embedder, MemoryClient, Scope, Settings

NEEDLE = "A zebra and a giraffe grazed beside the river."
QUERY = "striped wild animals on the savanna"
FILLERS = 600
PLEASANTRIES = ("ok", "thanks", "sounds good", "haha", "got it", "see you tomorrow", "no worries", "yes")


def test_the_distinctive_memory_among_near_duplicates_is_found_on_the_large_scope_path(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    rng = random.Random(17)
    texts = [
        rng.choice(PLEASANTRIES) if rng.random() < 0.1 else f"filler {b} {i} lorem ipsum"
        for b in range(FILLERS // 100)
        for i in range(100)
    ]
    texts.insert(rng.randrange(len(texts)), NEEDLE)
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
