"""Retrieval logic, pure: lexical terms, the full-text query, and the one score every search returns.

Score contract
--------------
A search hit's ``score`` is in ``[0, 1]``, higher is more relevant: it estimates the probability that the memory
is one the query needs, as measured on the development data of two kinds of recall (explicit questions about a
past conversation, LoCoMo; requests whose good answer depends on something the user said in passing, PrefEval).
It is computed the same way whatever the vector index's distance metric, from these signals of a candidate:

- ``semantic``: cosine similarity of the query and memory embeddings (unit vectors from the record), below 0
  counted as 0;
- ``lexical``: the memory's BM25 relevance for the query's terms (its text, speaker and context, see
  :func:`index_text`), squashed into ``[0, 1)`` by ``b / (b + 20)``;
- ``speaker``: 1 when the query names the memory's speaker (every word of the name is in the query), else 0;
- ``date``: 1 when the memory's event time is inside a period the query names ("on 9 May, 2023", "in June
  2023", "yesterday"; see :mod:`memory_plugin.query_time`), decaying by ``exp(-days outside / 7)``; 0 when the
  query names no period;
- ``detail``: ``min(1, ln(1 + characters) / ln(301))`` of the memory's text: a two-word reply carries less than
  a sentence that states something;
- ``assistant``: 1 when the memory is something the assistant said (its speaker is ``"assistant"``: an unnamed
  assistant turn), else 0. What the user said is what a memory of the user is for; an assistant's reply echoes
  the topic of the request it answered.

``evidence = 4.61 semantic + 3.19 lexical + 0.91 speaker + 1.21 date + 2.4 detail - 2.8 assistant`` (the
weights of :data:`EVIDENCE_WEIGHTS`) orders the candidates; of the memories made from one turn (see
:class:`memory_plugin.TurnExtractor`), only the best is returned. The score is a logistic calibration of the
evidence: ``sigmoid(a + b * evidence + c * (evidence - best))``, where ``best`` is the evidence of the search's
first hit, so a memory far behind the best match of its query counts as less likely to be needed; without
rerank (``rerank=False``) the score is ``sigmoid(a' + b' * evidence)``, each memory judged on its own signals.
Both give the same order. The weights and the calibration were fitted on the development data by
``benchmarks/fit_ranking.py`` (a softmax over each question's candidates, then a logistic calibration of the
top 10 hits; it prints leave-one-conversation-out and leave-one-topic-out figures beside the in-sample ones); the
weights were then refined by its ``--refine`` search to hold LoCoMo recall@5 >= 0.72 and @10 >= 0.80 (PrefEval
recall@5 held at 0.665; its recall@10 fell from 0.788 to 0.772).

:data:`DEFAULT_MIN_SCORE` is the threshold the framework adapters use by default, chosen to keep nearly every
memory a query needs: of the wanted memories ranked in the top 5, it keeps 98% on LoCoMo and 96% on the PrefEval
development items. It drops only a small share of the other top-5 hits (18% on LoCoMo, 16% on PrefEval): a score
falls with its rank within a search, and a wanted memory often ranks below others.
``benchmarks/locomo.py`` and ``benchmarks/prefeval.py`` print both shares.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

# The weights of the evidence (a logit) and its calibrations: see the score contract above. The weights are the
# softmax fit refined toward LoCoMo's recall floors (``benchmarks/fit_ranking.py --refine``); the calibrations are
# fitted for them.
EVIDENCE_WEIGHTS = {"semantic": 4.61, "lexical": 3.19, "speaker": 0.91, "date": 1.21, "detail": 2.4, "assistant": -2.8}
CALIBRATION = (-2.51, 0.28, 2.43)  # intercept, evidence, evidence behind the best hit
ABSOLUTE_CALIBRATION = (-5.02, 0.49)  # intercept, evidence (rerank=False)
LEXICAL_SATURATION = 20.0
# Texts of this many characters or more count as fully detailed.
DETAIL_CHARACTERS = 300
ASSISTANT = "assistant"
# The score the framework adapters keep hits from by default: see the score contract above.
DEFAULT_MIN_SCORE = 0.02

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
    """A light English suffix stripper (the benchmarks match content words with it). Cached: a long CJK text has
    thousands of terms."""
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


@dataclass(frozen=True)
class Candidate:
    """A memory found by any retriever, with its signals: record position, cosine similarity, BM25 (``None`` if
    no query term matched), whether the query names its speaker, how close its event time is to a period the
    query names, whether the assistant said it, and the turn it was made from (``None`` when it stands alone)."""

    position: int
    cosine: float
    bm25: float | None
    speaker_named: bool = False
    date_match: float = 0.0
    by_assistant: bool = False
    turn: str | None = None


def signals(candidate: Candidate, text: str) -> dict[str, float]:
    """The signals of the score contract for one candidate whose memory text is ``text``."""
    return {
        "semantic": max(0.0, candidate.cosine),
        "lexical": lexical_relevance(candidate.bm25),
        "speaker": float(candidate.speaker_named),
        "date": candidate.date_match,
        "detail": detail(text),
        "assistant": float(candidate.by_assistant),
    }


def evidence(candidate: Candidate, text: str) -> float:
    """The weighted sum of a candidate's signals: larger is more relevant (a logit, any real number)."""
    return sum(EVIDENCE_WEIGHTS[name] * value for name, value in signals(candidate, text).items())


def explain(candidate: Candidate, text: str) -> dict[str, float]:
    """The signals behind one hit's score, as the score contract above combines them: each signal, the raw BM25
    and the evidence they add up to."""
    return {**signals(candidate, text), "bm25": candidate.bm25 or 0.0, "evidence": evidence(candidate, text)}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def calibrated(evidence_value: float, best: float | None) -> float:
    """The score in ``[0, 1]`` of a hit with this evidence, given the evidence of the search's best hit
    (``None`` to judge the hit on its own)."""
    if best is None:
        intercept, slope = ABSOLUTE_CALIBRATION
        return _sigmoid(intercept + slope * evidence_value)
    intercept, slope, behind = CALIBRATION
    return _sigmoid(intercept + slope * evidence_value + behind * (evidence_value - best))


def rank(candidates: Iterable[Candidate], texts: dict[int, str], top_k: int, rerank: bool) -> list[tuple[int, float]]:
    """Order candidates by the score contract; returns ``(position, score)`` best first, at most ``top_k``, with at
    most one memory per turn (its best). Ties are broken by position (older first) so results are deterministic.
    """
    best_of_turn: dict[object, tuple[float, int]] = {}
    for c in candidates:
        key = c.turn if c.turn is not None else c.position
        scored = (-evidence(c, texts[c.position]), c.position)
        if key not in best_of_turn or scored < best_of_turn[key]:
            best_of_turn[key] = scored
    ordered = sorted(best_of_turn.values())[:top_k]
    best = -ordered[0][0] if ordered and rerank else None
    return [(position, calibrated(-negative, best)) for negative, position in ordered]
