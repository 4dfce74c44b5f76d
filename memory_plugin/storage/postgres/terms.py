"""Keyword relevance on PostgreSQL with the scores of the SQLite record: BM25 exactly as SQLite FTS5's ``bm25()``
(see :mod:`memory_plugin.storage.bm25` for the terms and the formula).

PostgreSQL's ``ts_rank`` is not BM25 (it scores a match around 0.2 where BM25 gives 2 to 10), which would change
every search score. So the record keeps what FTS5 keeps and the score is computed the way FTS5 computes it:

- **The same terms.** A memory row holds the distinct stems of :func:`memory_plugin.retrieval.index_text`, their
  counts, and its length in tokens.
- **The same statistics.** FTS5 ranks over the whole table (every store): the number of rows ``N``, the total of
  their token counts (for the average length) and, per stem, how many rows hold it. The record keeps these in
  ``keyword_totals`` and ``keyword_terms``, changed in the transaction that changes a memory, spread over a few
  shard rows so that concurrent writers rarely wait on each other. The SQLite table has a second column holding
  three scope tokens per row (weight 0, so they never score, but they count in ``D`` and in the average): the
  length kept here adds those three.

Known difference: a query term that SQLite's tokenizer splits in two (21 New Tai Lue vowel signs, which Python
counts as letters and Unicode 6.1 as separators) is a phrase to FTS5 and separate terms here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ...retrieval import index_text
from ..bm25 import tokens

# The scope column of the SQLite full-text table: three tokens in every row (see ``storage/sqlite/sql.py``).
SCOPE_TOKENS = 3


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
