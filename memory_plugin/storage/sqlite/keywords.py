"""BM25 of given rows of the SQLite full-text index, computed here exactly as FTS5's ``bm25()`` would.

Search asks for the BM25 of every candidate the vector side found. FTS5 computes ``bm25()`` per statement, and each
time first counts the rows holding each query term by walking the term's whole posting list: asked one row at a
time, that walk was most of a search's time at 100k memories (about 1 ms a candidate for terms common in the store).
So the reader reads what FTS5 reads and applies the formula of :mod:`..bm25` itself: the table's row count and token
total (the averages record FTS5 keeps in its data table), each query term's row count, and each candidate's indexed
terms and token count (FTS5's content and docsize tables). A test holds the two scores equal on every candidate.

Row counts per term. FTS5 keeps none: counting them walks the term's whole posting list (about 1 ms for a term
30,000 rows hold), which both retrievers' scores need on every search. So the record keeps them in ``keyword_terms``,
changed by the writer in the transaction that changes the full-text index (:func:`count_terms`), exactly the count an
``fts5vocab`` table of type ``row`` gives (a test holds them equal after every kind of write).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Sequence

from ..bm25 import distinct_tokens, idf, score, stem_counts, token_lists

# FTS5's averages record: the row count, then the token total of each column, as varints.
_AVERAGES_ROWID = 1
_CHUNK = 500


def varints(data: bytes) -> Iterator[int]:
    """The SQLite varints (big-endian, 7 bits a byte, the ninth byte whole) packed in ``data``."""
    position = 0
    while position < len(data):
        value = 0
        for index in range(9):
            byte = data[position]
            position += 1
            if index == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        yield value


def table_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """The full-text table's row count and its tokens in every column."""
    row = conn.execute("SELECT block FROM memories_fts_data WHERE id = ?", (_AVERAGES_ROWID,)).fetchone()
    if row is None:
        return 0, 0
    documents, *columns = varints(bytes(row[0]))
    return documents, sum(columns)


def scores(conn: sqlite3.Connection, terms: Sequence[str], positions: Collection[int]) -> dict[int, float] | None:
    """BM25 (weight 1 on the terms column, 0 on the scope column) of those of ``positions`` holding any of
    ``terms``; ``None`` when a term is a phrase to FTS5 (it tokenizes into more or fewer than one token), which
    only FTS5 itself scores."""
    query = token_lists(terms)
    if any(len(stems) != 1 for stems in query):
        return None
    stems = [found[0] for found in query]
    documents, total = table_totals(conn)
    if not stems or not positions or documents <= 0:
        return {}
    holding = term_rows(conn, stems)
    weights = [idf(documents, holding.get(stem, 0)) for stem in stems]
    average = total / documents
    rows = list(_indexed(conn, sorted(positions)).items())
    found: dict[int, float] = {}
    counted = stem_counts([text for _, (_, text) in rows], stems)
    for (position, (size, _)), counts in zip(rows, counted, strict=True):
        value = score(weights, stems, counts, size, average)
        if value is not None:
            found[position] = value
    return found


def term_rows(conn: sqlite3.Connection, stems: Collection[str]) -> dict[str, int]:
    """How many rows of the full-text index hold each of ``stems`` (absent when none does)."""
    wanted = sorted(set(stems))
    marks = ",".join("?" * len(wanted))
    sql = f"SELECT term, documents FROM keyword_terms WHERE term IN ({marks})"
    return {str(term): int(rows) for term, rows in conn.execute(sql, wanted)}


def count_terms(conn: sqlite3.Connection, indexed: Sequence[tuple[str, str]], change: int) -> None:
    """Add ``change`` (1: inserted, -1: deleted) to the row count of every term of each full-text entry of
    ``indexed`` (its ``terms`` and ``scope`` columns), in the transaction that inserts or deletes the entries."""
    held = distinct_tokens([f"{terms} {scope}" for terms, scope in indexed])  # the columns' tokens, together
    counted = Counter(term for row in held for term in row)
    conn.executemany(
        "INSERT INTO keyword_terms (term, documents) VALUES (?, ?)"
        " ON CONFLICT (term) DO UPDATE SET documents = documents + excluded.documents",
        [(term, change * rows) for term, rows in counted.items()],
    )
    if change < 0:
        conn.executemany("DELETE FROM keyword_terms WHERE term = ? AND documents <= 0", [(t,) for t in counted])


def entries(conn: sqlite3.Connection, positions: Sequence[int]) -> list[tuple[str, str]]:
    """The full-text entries (``terms``, ``scope``) of the rows at ``positions``."""
    found: list[tuple[str, str]] = []
    for start in range(0, len(positions), _CHUNK):
        chunk = positions[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT c0, c1 FROM memories_fts_content WHERE id IN ({marks})"
        found.extend((str(terms), str(scope)) for terms, scope in conn.execute(sql, chunk))
    return found


def _indexed(conn: sqlite3.Connection, positions: list[int]) -> dict[int, tuple[int, str]]:
    """Per row: its tokens in every column (FTS5's docsize record) and its indexed terms column."""
    found: dict[int, tuple[int, str]] = {}
    for start in range(0, len(positions), _CHUNK):
        chunk = positions[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for rowid, text, size in conn.execute(
            "SELECT c.id, c.c0, d.sz FROM memories_fts_content c JOIN memories_fts_docsize d ON d.id = c.id"
            f" WHERE c.id IN ({marks})",
            chunk,
        ):
            found[int(rowid)] = (sum(varints(bytes(size))), str(text))
    return found
