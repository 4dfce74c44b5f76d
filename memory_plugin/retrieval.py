"""Retrieval logic, pure: lexical terms, the full-text query, and the one score every search returns.

Score contract
--------------
A search hit's ``score`` is in ``[0, 1]``; higher is more relevant. It is computed the same way whatever the
vector index's distance metric, from these signals of the candidate:

- ``semantic``: cosine similarity of the query and memory embeddings (unit vectors from the record), below 0
  counted as 0;
- ``lexical``: the memory's BM25 relevance for the query terms, squashed into ``[0, 1)`` by ``b / (b + 10)``;
- ``speaker``: 1 when the query names the memory's speaker (every word of the name is in the query), else 0;
- ``date``: 1 when the memory's event time is inside a period the query names ("on 9 May, 2023", "in June
  2023", "yesterday"; see :mod:`memory_plugin.query_time`), decaying by ``exp(-days outside / 7)``; 0 when the
  query names no period;
- ``detail``: ``min(1, ln(1 + characters) / ln(301))`` of the memory's text: a two-word reply carries less than
  a sentence that states something;
- ``coverage`` (rerank only): the share of the query's content terms that the memory contains.

``relevance = 0.3 * semantic + 0.45 * lexical + 0.1 * speaker + 0.15 * date`` and
``fused = relevance * (0.5 + 0.5 * detail)``: a memory matching nothing scores 0 however long it is, and a short
one keeps at least half its relevance. Without rerank the score is ``fused``; with rerank (default) the best
candidates are re-scored as ``0.9 * fused + 0.1 * coverage``. Scores are comparable across queries and stores
that share an embedder; they are not probabilities. The weights were chosen on the LoCoMo development
conversations (benchmarks/locomo.py), where they lifted recall@5 from 0.39 to 0.70; the surface is flat around
them (neighbouring weights give the same recall within a point).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

VECTOR_WEIGHT = 0.3
LEXICAL_WEIGHT = 0.45
SPEAKER_WEIGHT = 0.1
DATE_WEIGHT = 0.15
LEXICAL_SATURATION = 10.0
# Texts of this many characters or more count as fully detailed; shorter ones keep at least DETAIL_FLOOR.
DETAIL_CHARACTERS = 300
DETAIL_FLOOR = 0.5
RERANK_COVERAGE_WEIGHT = 0.1

_ALNUM_RUN = re.compile(r"[^\W_]+")
# Scripts written without spaces between words: kana, CJK ideographs, Hangul syllables.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_PIECES = re.compile(f"[{_CJK}]+|[^{_CJK}]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)


def terms(text: str) -> list[str]:
    """Lower-cased word terms of ``text``; runs of CJK characters become overlapping character bigrams, so that
    unsegmented Chinese and Japanese match on shared words: ``喜歡`` is in both ``我喜歡喝咖啡`` and
    ``使用者喜歡什麼``."""
    result: list[str] = []
    for run in _ALNUM_RUN.findall(text.lower()):
        for piece in _CJK_PIECES.findall(run):
            if _CJK_CHAR.match(piece) and len(piece) > 1:
                result.extend(piece[i : i + 2] for i in range(len(piece) - 1))
            else:
                result.append(piece)
    return result


def index_text(text: str, speaker: str | None = None, context: str = "") -> str:
    """What the full-text index stores for a memory: the terms of its context, speaker and text, joined by spaces
    (the index stems them)."""
    return " ".join(terms(" ".join(part for part in (context, speaker or "", text) if part)))


def embedding_text(text: str, speaker: str | None = None) -> str:
    """What is embedded for a memory: its text, said by its speaker when it has one (``"Ann: I like tea"``)."""
    return f"{speaker}: {text}" if speaker else text


def names_speaker(query_terms: set[str], speaker: str | None) -> bool:
    """True when every word of the speaker's name is among the query's terms."""
    name = terms(speaker) if speaker else []
    return bool(name) and all(word in query_terms for word in name)


def query_terms(query: str) -> list[str]:
    """Distinct terms of a query without stop words (all terms if the query is nothing but stop words)."""
    all_terms = list(dict.fromkeys(terms(query)))
    content = [t for t in all_terms if t not in STOP_WORDS]
    return content or all_terms


def match_expression(query_terms: Iterable[str]) -> str | None:
    """An FTS5 ``MATCH`` expression: any of the terms, each quoted. Terms are alphanumeric, so no query syntax
    can get through; ``None`` when there is nothing to match."""
    quoted = [f'"{t}"' for t in query_terms if t]
    return " OR ".join(quoted) if quoted else None


@functools.lru_cache(maxsize=65536)
def stem(term: str) -> str:
    """A light English suffix stripper, for the coverage signal only. Cached: rerank stems every query term once
    per candidate, and a long CJK query has thousands of terms."""
    for suffix in ("ings", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if len(term) > len(suffix) + 2 and term.endswith(suffix):
            return term[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return term


def lexical_relevance(bm25: float | None) -> float:
    """BM25 (positive, larger is better; ``None`` when the memory did not match) squashed into ``[0, 1)``."""
    if bm25 is None or bm25 <= 0:
        return 0.0
    return bm25 / (bm25 + LEXICAL_SATURATION)


def detail(text: str) -> float:
    """How much a text of this length can say, in ``[0, 1]``: logarithmic in its characters, 1 from
    ``DETAIL_CHARACTERS`` on."""
    return min(1.0, math.log1p(len(text)) / math.log1p(DETAIL_CHARACTERS))


def fused_score(
    cosine: float, bm25: float | None, speaker_named: bool = False, date_match: float = 0.0, detail_share: float = 1.0
) -> float:
    relevance = (
        VECTOR_WEIGHT * max(0.0, cosine)
        + LEXICAL_WEIGHT * lexical_relevance(bm25)
        + SPEAKER_WEIGHT * float(speaker_named)
        + DATE_WEIGHT * date_match
    )
    return relevance * (DETAIL_FLOOR + (1 - DETAIL_FLOOR) * detail_share)


def coverage(query_terms: list[str], text: str) -> float:
    """Share of the query terms (stemmed) found in ``text``."""
    if not query_terms:
        return 0.0
    wanted = {stem(t) for t in query_terms}
    present = {stem(t) for t in terms(text)}
    return len(wanted & present) / len(wanted)


def reranked_score(fused: float, coverage_share: float) -> float:
    return (1 - RERANK_COVERAGE_WEIGHT) * fused + RERANK_COVERAGE_WEIGHT * coverage_share


@dataclass(frozen=True)
class Candidate:
    """A memory found by any retriever: its record position, cosine similarity, BM25 (if matched), whether the
    query names its speaker, and how close its event time is to a period the query names (``date`` signal)."""

    position: int
    cosine: float
    bm25: float | None
    speaker_named: bool = False
    date_match: float = 0.0


def explain(candidate: Candidate, text: str, query: str, rerank: bool) -> dict[str, float]:
    """The signals behind one candidate's score, as the score contract above combines them."""
    detail_share = detail(text)
    fused = fused_score(candidate.cosine, candidate.bm25, candidate.speaker_named, candidate.date_match, detail_share)
    signals = {
        "semantic": max(0.0, candidate.cosine),
        "lexical": lexical_relevance(candidate.bm25),
        "bm25": candidate.bm25 or 0.0,
        "speaker": float(candidate.speaker_named),
        "date": candidate.date_match,
        "detail": detail_share,
        "fused": fused,
    }
    if rerank:
        signals["coverage"] = coverage(query_terms(query), text)
    return signals


def rank(
    candidates: Iterable[Candidate],
    texts: dict[int, str],
    query: str,
    top_k: int,
    rerank: bool,
) -> list[tuple[int, float]]:
    """Order candidates by the score contract; returns ``(position, score)`` best first, at most ``top_k``.

    Ties are broken by position (older first) so results are deterministic.
    """
    scored = sorted(
        (
            (fused_score(c.cosine, c.bm25, c.speaker_named, c.date_match, detail(texts[c.position])), c.position)
            for c in candidates
        ),
        key=lambda s: (-s[0], s[1]),
    )
    if rerank:
        q_terms = query_terms(query)
        head = scored[: max(top_k * 4, 40)]
        scored = sorted(
            ((reranked_score(score, coverage(q_terms, texts[pos])), pos) for score, pos in head),
            key=lambda s: (-s[0], s[1]),
        )
    return [(pos, min(1.0, max(0.0, score))) for score, pos in scored[:top_k]]
