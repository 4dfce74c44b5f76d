"""Keyword relevance on PostgreSQL with the scores of the SQLite record: BM25 exactly as SQLite FTS5's ``bm25()``.

PostgreSQL's ``ts_rank`` is not BM25 (it scores a match around 0.2 where BM25 gives 2 to 10), which would change
every search score. So the record keeps what FTS5 keeps and the score is computed the way FTS5 computes it:

- **The same terms.** Each memory's terms are :func:`memory_plugin.retrieval.index_text`, tokenized by SQLite's own
  ``porter unicode61 remove_diacritics 2`` tokenizer (an in-memory FTS5 table of this process): the same stems,
  case folding and diacritics as the embedded record, by construction rather than by a second stemmer kept in
  agreement. A memory row holds its distinct stems, their counts, and its length in tokens.
- **The same statistics.** FTS5 ranks over the whole table (every store): the number of rows ``N``, the total of
  their token counts (for the average length) and, per stem, how many rows hold it. The record keeps these in
  ``keyword_totals`` and ``keyword_terms``, changed in the transaction that changes a memory, spread over a few
  shard rows so that concurrent writers rarely wait on each other.
- **The same formula** (``fts5_aux.c``): for each query term (a phrase in FTS5's query) ``idf = ln((N - n + 0.5) /
  (n + 0.5))``, at least ``1e-6``; ``score = sum idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * D / avgdl))`` with
  ``k1 = 1.2``, ``b = 0.75``, ``D`` the row's tokens in every column. The SQLite table has a second column holding
  three scope tokens per row (weight 0, so they never score, but they count in ``D`` and in the average): the
  length kept here adds those three.

Known difference: a query term that SQLite's tokenizer splits in two (21 New Tai Lue vowel signs, which Python
counts as letters and Unicode 6.1 as separators) is a phrase to FTS5 and separate terms here.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ...retrieval import index_text

K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
# The scope column of the SQLite full-text table: three tokens in every row (see ``storage/sqlite/sql.py``).
SCOPE_TOKENS = 3
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
    conn = _tokenizer()
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO text (rowid, body) VALUES (1, ?)", (text,))
        return [str(row[0]) for row in conn.execute("SELECT term FROM tokens ORDER BY offset")]
    finally:
        conn.execute("ROLLBACK")


@dataclass(frozen=True)
class IndexedTerms:
    """What the record keeps of one memory for keyword search: distinct stems, how often each occurs, and the
    row's length in tokens as FTS5 counts it (scope tokens included)."""

    terms: list[str]
    counts: list[int]
    length: int

    @classmethod
    def of(cls, text: str, speaker: str | None, context: str) -> IndexedTerms:
        found = tokens(index_text(text, speaker, context))
        counted = Counter(found)
        return cls(list(counted), list(counted.values()), len(found) + SCOPE_TOKENS)


def query_stems(terms: Sequence[str]) -> list[str]:
    """The stems a keyword search looks for, one per query term (FTS5 tokenizes each quoted term the same way).
    Duplicates are kept: two query terms with one stem are two phrases to FTS5, each scored."""
    return [stem for term in terms for stem in tokens(term)]


def idf(documents: int, holding: int) -> float:
    """FTS5's inverse document frequency of a term ``holding`` of ``documents`` rows contain, floored at 1e-6."""
    value = math.log((documents - holding + 0.5) / (holding + 0.5))
    return value if value > 0.0 else IDF_FLOOR
