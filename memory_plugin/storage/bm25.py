"""BM25 exactly as SQLite FTS5's ``bm25()`` computes it, for records that score keyword matches outside FTS5 (the
PostgreSQL record always; the SQLite record for candidates the vector side found, see
:mod:`.sqlite.keywords`).

- **The same terms.** Text is tokenized by SQLite's own ``porter unicode61 remove_diacritics 2`` tokenizer (an
  in-memory FTS5 table of this process): the same stems, case folding and diacritics as the full-text index, by
  construction rather than by a second stemmer kept in agreement.
- **The same formula** (``fts5_aux.c``): for each query term (a phrase in FTS5's query) ``idf = ln((N - n + 0.5) /
  (n + 0.5))``, at least ``1e-6``, with ``N`` the rows of the whole table and ``n`` those holding the term;
  ``score = sum idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * D / avgdl))`` with ``k1 = 1.2``, ``b = 0.75``, ``tf``
  the term's occurrences in the weighted column, ``D`` the row's tokens in every column and ``avgdl`` the average
  of ``D`` over the table.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence

K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
TOKENIZER = "porter unicode61 remove_diacritics 2"

_local = threading.local()


def _tokenizer() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute(f"CREATE VIRTUAL TABLE text USING fts5(body, tokenize = '{TOKENIZER}')")
        conn.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(text, 'instance')")
        _local.conn = conn
    return conn


def tokens(text: str) -> list[str]:
    """The tokens SQLite's full-text index makes of ``text``, in order (stemmed, case and diacritics folded)."""
    return token_lists([text])[0]


def token_lists(texts: Sequence[str]) -> list[list[str]]:
    """The :func:`tokens` of each of ``texts``, all tokenized in one transaction of the in-memory table (emptied
    again afterwards)."""
    found: list[list[str]] = [[] for _ in texts]
    conn = _tokenizer()
    conn.execute("BEGIN")
    try:
        conn.executemany("INSERT INTO text (rowid, body) VALUES (?, ?)", enumerate(texts))
        for doc, term in conn.execute("SELECT doc, term FROM tokens ORDER BY doc, offset"):
            found[int(doc)].append(str(term))
    finally:
        conn.execute("ROLLBACK")
    return found


def query_stems(terms: Sequence[str]) -> list[str]:
    """The stems a keyword search looks for, one per query term (FTS5 tokenizes each quoted term the same way).
    Duplicates are kept: two query terms with one stem are two phrases to FTS5, each scored."""
    return [stem for found in token_lists(terms) for stem in found]


# (stems) -> how many rows of a record's keyword index hold each (absent when none does).
StemRows = Callable[[Collection[str]], Mapping[str, int]]


def term_holding(terms: Sequence[str], stem_rows: StemRows) -> dict[str, int]:
    """How many rows hold each of ``terms``, by its stem, counted by the record's ``stem_rows``; a term the index
    reads as a phrase (more or fewer tokens than one) is left out."""
    stems = {term: found[0] for term, found in zip(terms, token_lists(terms), strict=True) if len(found) == 1}
    rows = stem_rows(stems.values())
    return {term: rows.get(stem, 0) for term, stem in stems.items()}


def idf(documents: int, holding: int) -> float:
    """FTS5's inverse document frequency of a term ``holding`` of ``documents`` rows contain, floored at 1e-6."""
    value = math.log((documents - holding + 0.5) / (holding + 0.5))
    return value if value > 0.0 else IDF_FLOOR


def score(weights: Sequence[float], stems: Sequence[str], counts: Mapping[str, int], length: int,
          average: float) -> float | None:  # fmt: skip
    """BM25 of a row whose weighted column holds ``counts`` of each stem and whose columns hold ``length`` tokens,
    for the query ``stems`` (``weights`` their idf); ``None`` when it holds none of them."""
    total, matched = 0.0, False
    for stem, weight in zip(stems, weights, strict=True):
        tf = counts.get(stem, 0)
        if tf:
            matched = True
            total += weight * (tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * length / average))
    return total if matched else None
