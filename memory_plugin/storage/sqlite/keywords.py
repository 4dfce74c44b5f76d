"""The SQLite full-text index's entries, and BM25 of given rows computed here exactly as FTS5's ``bm25()`` would.

Search asks for the BM25 of every candidate the vector side found. FTS5 computes ``bm25()`` per statement, and each
time first counts the rows holding each query term by walking the term's whole posting list: asked one row at a
time, that walk was most of a search's time at 100k memories (about 1 ms a candidate for terms common in the store).
So the reader applies the formula of :mod:`..bm25` itself, to what FTS5 would read: the table's row count and token
total (the averages record FTS5 keeps in its data table), each query term's row count, and each candidate's
weighted terms and token count. A test holds the two scores equal on every candidate.

What FTS5 keeps no cheap way to read, the record keeps beside it, changed in the transaction that changes the index
(:func:`index`, :func:`unindex`), so that a search neither walks posting lists nor tokenizes its candidates again:

- ``keyword_terms``: how many rows hold each term (in any column), exactly what an ``fts5vocab`` table of type
  ``row`` counts (a test holds them equal after every kind of write). Counting a term 30,000 rows hold walks its
  posting list for about 1 ms, and both retrievers' scores need every query term's count.
- ``keyword_rows``: per row, the tokens of its weighted (terms) column in order, and its tokens in every column (FTS5's
  document length).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Sequence

from ..bm25 import idf, score, token_lists
from .sql import chunks

# FTS5's averages record: the row count, then the token total of each column, as varints.
_AVERAGES_ROWID = 1


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
    average, wanted = total / documents, set(stems)
    found: dict[int, float] = {}
    for position, terms, length in _kept_rows(conn, sorted(positions)):
        held = terms.split(" ")
        counts = {stem: n for stem in wanted if (n := held.count(stem))}
        value = score(weights, stems, counts, length, average)
        if value is not None:
            found[position] = value
    return found


def term_rows(conn: sqlite3.Connection, stems: Collection[str]) -> dict[str, int]:
    """How many rows of the full-text index hold each of ``stems`` (absent when none does)."""
    wanted = sorted(set(stems))
    marks = ",".join("?" * len(wanted))
    sql = f"SELECT term, documents FROM keyword_terms WHERE term IN ({marks})"
    return {str(term): int(rows) for term, rows in conn.execute(sql, wanted)}


def index(conn: sqlite3.Connection, entries: Sequence[tuple[int, str, str]]) -> None:
    """Add the full-text entries ``(position, terms, scope)`` to the index, with what the record keeps of them."""
    conn.executemany("INSERT INTO memories_fts (rowid, terms, scope) VALUES (?, ?, ?)", entries)
    keep(conn, entries)


def keep(conn: sqlite3.Connection, entries: Sequence[tuple[int, str, str]]) -> None:
    """Keep the tokens, lengths and term counts of full-text entries ``(position, terms, scope)`` the index holds
    (the migration that added them calls this for every entry)."""
    rows, counted = [], Counter[str]()
    for (position, _, _), (weighted, scoped) in zip(entries, _tokenized(entries), strict=True):
        rows.append((position, " ".join(weighted), len(weighted) + len(scoped)))
        counted.update(set(weighted) | set(scoped))
    conn.executemany("INSERT INTO keyword_rows (seq, terms, length) VALUES (?, ?, ?)", rows)
    _count_terms(conn, counted, 1)


def unindex(conn: sqlite3.Connection, positions: Sequence[int]) -> list[tuple[int, str, str]]:
    """Delete the full-text entries of the rows at ``positions`` and what the record keeps of them; return the
    entries ``(position, terms, scope)``."""
    gone: list[tuple[int, str, str]] = []
    for chunk in chunks(positions):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT id, c0, c1 FROM memories_fts_content WHERE id IN ({marks})"
        entries = [(int(position), str(terms), str(scope)) for position, terms, scope in conn.execute(sql, chunk)]
        _count_terms(conn, Counter(t for weighted, scoped in _tokenized(entries) for t in {*weighted, *scoped}), -1)
        conn.execute(f"DELETE FROM memories_fts WHERE rowid IN ({marks})", chunk)
        conn.execute(f"DELETE FROM keyword_rows WHERE seq IN ({marks})", chunk)
        gone.extend(entries)
    return gone


def _tokenized(entries: Sequence[tuple[int, str, str]]) -> list[tuple[list[str], list[str]]]:
    """The tokens of each entry's two columns, all tokenized at once."""
    columns = token_lists([text for _, terms, scope in entries for text in (terms, scope)])
    return list(zip(columns[::2], columns[1::2], strict=True))


def _count_terms(conn: sqlite3.Connection, counted: Counter[str], change: int) -> None:
    """Add ``change`` (1: inserted, -1: deleted) times ``counted`` to the terms' row counts."""
    conn.executemany(
        "INSERT INTO keyword_terms (term, documents) VALUES (?, ?)"
        " ON CONFLICT (term) DO UPDATE SET documents = documents + excluded.documents",
        [(term, change * rows) for term, rows in counted.items()],
    )
    if change < 0:
        conn.executemany("DELETE FROM keyword_terms WHERE term = ? AND documents <= 0", [(t,) for t in counted])


def _kept_rows(conn: sqlite3.Connection, positions: list[int]) -> Iterator[tuple[int, str, int]]:
    """Per row at ``positions``: its weighted tokens (space-separated) and its tokens in every column."""
    for chunk in chunks(positions):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT seq, terms, length FROM keyword_rows WHERE seq IN ({marks})"
        for position, terms, length in conn.execute(sql, chunk):
            yield int(position), str(terms), int(length)
