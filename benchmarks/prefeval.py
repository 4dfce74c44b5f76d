"""PrefEval implicit recall through the public API, as a chatbot's memory would write and read.

A user mentions a preference in passing in one conversation; a later request's good answer depends on it, but shares
almost no word with it (see the data's README). For the topic files in ``--data``: all items are shuffled with a
fixed seed and dealt into users of 20 items; each item's conversation is written with one ``add(messages=...)`` as
one run of its user (turns in order, roles user/assistant, no names); then each item's ``question`` is asked with
``search(Scope(app, user, "*", "*"), question, top_k=10)`` over all of that user's runs.

The gold turn of an item is the user turn of its conversation sharing the most content words with the item's
``preference`` (the first such turn on a tie); a hit is gold when it was made from that message
(``source_message_ids``). The ``preference``, ``persona`` and ``explanation`` annotations are read only for that.
recall@k is the share of questions whose gold is in the top k. Prints recall@1/3/5/10 overall and per topic, the
shares of top-5 hits kept at ``memory_plugin.DEFAULT_MIN_SCORE`` (gold ones, and the others), search latency
p50/p95 (query embedding included) and ingest throughput; ``--json FILE`` writes the same figures, in the shape of
``benchmarks/locomo.py``'s.

Run::

    .venv/bin/python benchmarks/prefeval.py --data ../shared/data/prefeval [--json results.json] [--limit-items N]
        [--backend postgres]   # the same on a throwaway PostgreSQL cluster + Chroma server
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/prefeval.py` finds `benchmarks`

from benchmarks.deployments import memory_client
from benchmarks.locomo import Results, ThresholdShares, publish, recall_parser, render_table
from memory_plugin import DEFAULT_MIN_SCORE, MemoryStore, Scope
from memory_plugin.retrieval import STOP_WORDS, stem, terms

KS = (1, 3, 5, 10)
USER_ITEMS = 20
SEED = 12
APP = "prefeval"


@dataclass(frozen=True)
class Item:
    """One PrefEval item: its topic, conversation turns as ``(role, text)``, the later question, and which turn
    (index into ``turns``) states the preference."""

    topic: str
    key: str
    turns: list[tuple[str, str]]
    question: str
    gold: int


def content_words(text: str) -> set[str]:
    return {stem(t) for t in terms(text) if t not in STOP_WORDS}


def gold_turn(turns: list[tuple[str, str]], preference: str) -> int:
    """The user turn sharing the most content words with ``preference`` (the first on a tie)."""
    wanted = content_words(preference)
    shared = [(len(wanted & content_words(text)) if role == "user" else -1, -i) for i, (role, text) in enumerate(turns)]
    return -max(shared)[1]


def load_topic(path: Path) -> list[Item]:
    items = []
    for number, raw in enumerate(json.loads(path.read_text())):
        conversation = raw["conversation"]
        turns = [
            (role, conversation[exchange][role])
            for exchange in sorted(conversation, key=int)
            for role in ("user", "assistant")
            if conversation[exchange].get(role)
        ]
        gold = gold_turn(turns, raw["preference"])
        items.append(Item(path.stem, f"{path.stem}-{number}", turns, raw["question"], gold))
    return items


def load(data: Path, topics: Sequence[str] | None = None) -> list[Item]:
    """Every item of the topic files in ``data`` (or of the named topics), in file order."""
    files = sorted(data.glob("*.json"))
    if topics is not None:
        files = [f for f in files if f.stem in topics]
    if not files:
        raise SystemExit(f"no topic files (*.json) in {data}")
    return [item for file in files for item in load_topic(file)]


def users(items: Sequence[Item], seed: int = SEED) -> list[list[Item]]:
    """Items shuffled with a fixed seed and dealt into users of ``USER_ITEMS``."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[start : start + USER_ITEMS] for start in range(0, len(shuffled), USER_ITEMS)]


def ingest(store: MemoryStore, user: str, items: Sequence[Item], results: Results) -> dict[str, str]:
    """Each item as one run of ``user``; returns the id of each item's gold message."""
    gold: dict[str, str] = {}
    started = time.perf_counter()
    for item in items:
        scope = Scope(app_id=APP, tenant_id=user, agent_id="assistant", run_id=item.key)
        added = store.add(scope, messages=[{"role": role, "content": text} for role, text in item.turns])
        gold[item.key] = added.message_ids[item.gold]
        results.turns += len(item.turns)
    results.ingest_s += time.perf_counter() - started
    return gold


def ask(store: MemoryStore, user: str, items: Sequence[Item], gold: dict[str, str], results: Results) -> None:
    scope = Scope(app_id=APP, tenant_id=user, agent_id="*", run_id="*")
    for item in items:
        started = time.perf_counter()
        hits = store.search(scope, item.question, top_k=max(KS))
        results.search_ms.append((time.perf_counter() - started) * 1000)
        is_gold = [gold[item.key] in hit.memory.source_message_ids for hit in hits]
        results.score(item.topic, [1.0 if any(is_gold[:k]) else 0.0 for k in KS])
        results.shares.count([(hit.score, hit_is_gold) for hit, hit_is_gold in zip(hits, is_gold, strict=True)])


def named_users(items: Sequence[Item], limit_items: int | None = None) -> list[tuple[str, list[Item]]]:
    """The users the items are dealt into, named ``user-000``, ...; with ``limit_items``, only the first items
    as dealt (whole users first)."""
    dealt = [(f"user-{number:03d}", user_items) for number, user_items in enumerate(users(items))]
    if limit_items is None:
        return dealt
    kept: list[tuple[str, list[Item]]] = []
    for user, user_items in dealt:
        remaining = limit_items - sum(len(i) for _, i in kept)
        if remaining <= 0:
            break
        kept.append((user, user_items[:remaining]))
    return kept


def summary(results: Results) -> dict[str, Any]:
    figures = results.summary()
    figures["by_topic"] = figures.pop("by_category")
    return figures


def evaluate(
    data: Path, limit_items: int | None = None, path: Path | None = None, backend: str = "embedded"
) -> dict[str, Any]:
    """Run the whole benchmark on the topic files in ``data`` (the first ``limit_items`` dealt items only, if
    given); returns the figures."""
    results = Results(KS, ThresholdShares(DEFAULT_MIN_SCORE))
    with memory_client(backend, path) as client:
        store = client.create_memory_store("prefeval")
        store.search(Scope(APP, "warm-up", "*", "*"), "warm up", top_k=1)
        for user, user_items in named_users(load(data), limit_items):
            gold = ingest(store, user, user_items, results)
            ask(store, user, user_items, gold, results)
            print(f"{user}: {len(user_items)} questions", file=sys.stderr)
    return summary(results)


def render(figures: dict[str, Any]) -> str:
    return render_table(figures, "by_topic", KS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = recall_parser(__doc__, "folder of PrefEval topic files (<topic>.json)")
    parser.add_argument("--limit-items", type=int, help="only the first N items once dealt (whole users first)")
    args = parser.parse_args(argv)
    figures = evaluate(args.data, args.limit_items, backend=args.backend)
    publish(figures, render(figures), args.json)


if __name__ == "__main__":
    main()
