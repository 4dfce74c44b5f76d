"""LoCoMo turn-level recall through the public API, as an adapter would write and read.

For each conversation file in ``--data``: a fresh memory store; every session written with one
``add(messages=...)`` (the session's date as timestamp, the speaker as the message ``name``, each turn's
``dia_id`` in the message metadata; one tenant per conversation, one run per session); then every
non-adversarial question asked with ``search(scope with run_id="*", question, top_k=10)``.

recall@k of a question = |evidence ∩ top-k retrieved turns| / |evidence|, averaged over questions (see the data's
README). Prints recall@1/3/5/10 overall and per category, the shares of top-5 hits kept at
``memory_plugin.DEFAULT_MIN_SCORE`` (evidence, and the others), search latency p50/p95 (query embedding included)
and ingest throughput; ``--json FILE`` writes the same figures.

Run::

    .venv/bin/python benchmarks/locomo.py --data ../shared/data/locomo [--json results.json] [--limit-files N]
        [--backend postgres]   # the same on a throwaway PostgreSQL cluster + Chroma server
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/locomo.py` finds `benchmarks`

from benchmarks.deployments import add_backend_argument, memory_client
from memory_plugin import DEFAULT_MIN_SCORE, MemoryStore, Scope

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
ADVERSARIAL = 5
KS = (1, 3, 5, 10)
MAX_MESSAGES_PER_ADD = 100


@dataclass(frozen=True)
class Session:
    run_id: str
    when: datetime
    turns: list[dict[str, Any]]


@dataclass(frozen=True)
class Question:
    text: str
    evidence: frozenset[str]
    category: int


@dataclass(frozen=True)
class Conversation:
    name: str
    speakers: tuple[str, str]
    sessions: list[Session]
    questions: list[Question]


@dataclass
class ThresholdShares:
    """What a ``min_score`` threshold does to the top-5 hits: the share of gold hits it keeps and the share of the
    other hits it drops (see ``memory_plugin.DEFAULT_MIN_SCORE``)."""

    threshold: float
    gold_kept: int = 0
    gold: int = 0
    others_dropped: int = 0
    others: int = 0

    def count(self, hits: Sequence[tuple[float, bool]], top: int = 5) -> None:
        """Count the first ``top`` of one question's ``(score, is_gold)`` hits."""
        for score, is_gold in hits[:top]:
            if is_gold:
                self.gold += 1
                self.gold_kept += score >= self.threshold
            else:
                self.others += 1
                self.others_dropped += score < self.threshold

    def summary(self) -> dict[str, float]:
        return {
            "min_score": self.threshold,
            "gold_kept": round(self.gold_kept / max(1, self.gold), 4),
            "others_dropped": round(self.others_dropped / max(1, self.others), 4),
        }


@dataclass
class Results:
    """Recall@k per question, overall and per category (or topic), search latencies and ingest time."""

    ks: tuple[int, ...] = KS
    shares: ThresholdShares = field(default_factory=lambda: ThresholdShares(DEFAULT_MIN_SCORE))
    recalls: dict[int, list[float]] = field(default_factory=dict)
    by_category: dict[object, dict[int, list[float]]] = field(default_factory=dict)
    search_ms: list[float] = field(default_factory=list)
    turns: int = 0
    ingest_s: float = 0.0

    def score(self, category: object, recall_at: Sequence[float]) -> None:
        """Add one question's recall at each of ``ks``."""
        per_category = self.by_category.setdefault(category, {k: [] for k in self.ks})
        for k, recall in zip(self.ks, recall_at, strict=True):
            self.recalls.setdefault(k, []).append(recall)
            per_category[k].append(recall)

    def summary(self) -> dict[str, Any]:
        def means(per_k: dict[int, list[float]]) -> dict[str, float]:
            return {str(k): round(statistics.fmean(v), 4) for k, v in per_k.items()}

        return {
            "recall": means(self.recalls),
            "by_category": {
                CATEGORIES.get(c, str(c)) if isinstance(c, int) else str(c): means(per_k)
                for c, per_k in sorted(self.by_category.items(), key=lambda kv: str(kv[0]))
            },
            "threshold": self.shares.summary(),
            "search_ms": {
                "p50": round(percentile(self.search_ms, 0.5), 2),
                "p95": round(percentile(self.search_ms, 0.95), 2),
            },
            "ingest_per_s": round(self.turns / self.ingest_s, 1),
            "questions": len(self.recalls[self.ks[0]]),
        }


def parse_date(text: str) -> datetime:
    """LoCoMo session dates look like ``1:56 pm on 8 May, 2023``."""
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def turn_text(turn: dict[str, Any]) -> str:
    caption = turn.get("blip_caption")
    return f"{turn['text']} [shares {caption}]" if caption else str(turn["text"])


def load(path: Path) -> Conversation:
    data = json.loads(path.read_text())
    sessions = []
    number = 1
    while f"session_{number}_date_time" in data:
        turns = data.get(f"session_{number}") or []
        if turns:
            sessions.append(Session(f"session_{number}", parse_date(data[f"session_{number}_date_time"]), turns))
        number += 1
    questions = []
    for qa in data["qa"]:
        evidence = frozenset(e.strip() for item in qa.get("evidence", []) for e in item.split(";") if e.strip())
        if qa["category"] != ADVERSARIAL and evidence:
            questions.append(Question(qa["question"], evidence, qa["category"]))
    return Conversation(path.stem, (data["speaker_a"], data["speaker_b"]), sessions, questions)


def messages(conversation: Conversation, session: Session) -> list[dict[str, Any]]:
    """A two-person chat as an adapter would write it: the first speaker as the user, the other as the assistant."""
    roles = {conversation.speakers[0]: "user", conversation.speakers[1]: "assistant"}
    return [
        {"role": roles.get(t["speaker"], "user"), "content": turn_text(t), "name": t["speaker"],
         "metadata": {"dia_id": t["dia_id"]}}
        for t in session.turns
    ]  # fmt: skip


def chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ingest(store: MemoryStore, conversation: Conversation, results: Results) -> Scope:
    base = Scope(app_id="locomo", tenant_id=conversation.name, agent_id="assistant", run_id="setup")
    started = time.perf_counter()
    for session in conversation.sessions:
        for batch in chunks(messages(conversation, session), MAX_MESSAGES_PER_ADD):
            store.add(base.with_(run_id=session.run_id), messages=batch, timestamp=session.when)
        results.turns += len(session.turns)
    results.ingest_s += time.perf_counter() - started
    return base.with_(run_id="*")


def ask(store: MemoryStore, scope: Scope, conversation: Conversation, results: Results) -> None:
    for question in conversation.questions:
        started = time.perf_counter()
        hits = store.search(scope, question.text, top_k=max(KS))
        results.search_ms.append((time.perf_counter() - started) * 1000)
        retrieved = [str(h.memory.metadata.get("dia_id")) for h in hits]
        results.score(question.category, recall_at(question, retrieved))
        results.shares.count([(h.score, d in question.evidence) for h, d in zip(hits, retrieved, strict=True)])


def recall_at(question: Question, retrieved: Sequence[str]) -> list[float]:
    """|evidence ∩ top-k retrieved turns| / |evidence| for each k of ``KS``."""
    return [len(question.evidence & set(retrieved[:k])) / len(question.evidence) for k in KS]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(results: Results) -> dict[str, Any]:
    return results.summary()


def render_table(figures: dict[str, Any], groups: str, ks: Sequence[int]) -> str:
    """Recall per k overall and per group, the threshold shares, latency and ingest, as printed text."""
    lines = [f"{'':26}" + "".join(f"{'R@' + str(k):>8}" for k in ks)]
    rows = [("overall", figures["recall"]), *figures[groups].items()]
    lines += [f"{name:26}" + "".join(f"{recall[str(k)]:>8.3f}" for k in ks) for name, recall in rows]
    shares = figures["threshold"]
    lines.append(f"at min_score {shares['min_score']}: top-5 gold hits kept {shares['gold_kept']:.3f}, "
                 f"other top-5 hits dropped {shares['others_dropped']:.3f}")  # fmt: skip
    lines.append(f"questions {figures['questions']}, search p50 {figures['search_ms']['p50']} ms, "
                 f"p95 {figures['search_ms']['p95']} ms, ingest {figures['ingest_per_s']} turns/s")  # fmt: skip
    return "\n".join(lines)


def render(figures: dict[str, Any]) -> str:
    return render_table(figures, "by_category", KS)


def evaluate(
    data: Path, limit_files: int | None = None, path: Path | None = None, backend: str = "embedded"
) -> dict[str, Any]:
    """Run the whole benchmark on the conversation files in ``data``; returns the figures."""
    files = sorted(data.glob("*.json"))[:limit_files]
    if not files:
        raise SystemExit(f"no conversation files (*.json) in {data}")
    results = Results()
    with memory_client(backend, path) as client:
        for file in files:
            conversation = load(file)
            store = client.create_memory_store(f"locomo-{conversation.name}")
            scope = ingest(store, conversation, results)
            store.search(scope, "warm up", top_k=1)
            ask(store, scope, conversation, results)
            print(f"{file.name}: {len(conversation.questions)} questions", file=sys.stderr)
    return summary(results)


def recall_parser(doc: str | None, data_help: str) -> argparse.ArgumentParser:
    """The command line both recall benchmarks share: ``--data``, ``--json`` and ``--backend``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help=data_help)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    add_backend_argument(parser)
    return parser


def publish(figures: dict[str, Any], table: str, json_file: Path | None) -> None:
    """Print a benchmark's table and, when asked, write its figures as JSON."""
    print(table)
    if json_file:
        json_file.write_text(json.dumps(figures, indent=2))


def main(argv: Sequence[str] | None = None) -> None:
    parser = recall_parser(__doc__, "folder of LoCoMo-format conversation files")
    parser.add_argument("--limit-files", type=int, help="only the first N files (sorted by name)")
    args = parser.parse_args(argv)
    figures = evaluate(args.data, args.limit_files, backend=args.backend)
    publish(figures, render(figures), args.json)


if __name__ == "__main__":
    main()
