"""Property: whatever memories exist and whatever read scope is asked, list and search return exactly the
memories inside that scope (hypothesis, real SQLite and Chroma)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugin import MemoryClient, Scope
from memory_plugin import search as search_module
from tests.conftest import make_fake_embedder

APPS, TENANTS, AGENTS, RUNS = ["app1", "app2"], ["t1", "t2", "t3"], ["a1", "a2"], ["r1", "r2", "r3"]

concrete_scopes = st.builds(
    Scope, app_id=st.sampled_from(APPS), tenant_id=st.sampled_from(TENANTS), agent_id=st.sampled_from(AGENTS),
    run_id=st.sampled_from(RUNS),
)  # fmt: skip


def read_segment(ids: list[str]) -> st.SearchStrategy[str | list[str]]:
    return st.one_of(st.just("*"), st.sampled_from(ids), st.lists(st.sampled_from(ids), min_size=1, max_size=3))


read_scopes = st.builds(
    Scope, app_id=st.sampled_from(APPS), tenant_id=read_segment(TENANTS), agent_id=read_segment(AGENTS),
    run_id=read_segment(RUNS),
)  # fmt: skip


def inside(memory_scope: Scope, read: Scope) -> bool:
    for segment, wanted in read.segments().items():
        value = getattr(memory_scope, segment)
        if wanted != "*" and value != wanted and (isinstance(wanted, str) or value not in wanted):
            return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(concrete_scopes, min_size=1, max_size=25),
    reads=st.lists(read_scopes, min_size=1, max_size=5),
    use_index=st.booleans(),
)
def test_reads_return_exactly_the_memories_in_scope(writes: list[Scope], reads: list[Scope], use_index: bool) -> None:
    limit = search_module.EXACT_SCAN_LIMIT
    search_module.EXACT_SCAN_LIMIT = 0 if use_index else limit
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            MemoryClient(path=Path(folder), embedder=make_fake_embedder()) as c,
        ):
            store = c.create_memory_store("prop")
            written = {store.add(s, text=f"shared words memory {i}").memories[0].id: s for i, s in enumerate(writes)}
            for read in reads:
                expected = {i for i, s in written.items() if inside(s, read)}
                listed = {m.id for m in store.list(read, limit=100).items}
                found = {h.memory.id for h in store.search(read, "shared words memory", top_k=50)}
                assert listed == expected, read
                assert found == expected, read
    finally:
        search_module.EXACT_SCAN_LIMIT = limit
