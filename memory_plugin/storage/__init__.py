"""Storage: the SQLite system of record, the Chroma vector index derived from it, and the data-folder lock."""
