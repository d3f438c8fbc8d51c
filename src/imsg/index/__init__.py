"""The optional full-text search index: SQLite FTS5 beside chat.db, never inside it.

``search(db, query, …)`` answers exactly what ``ChatDB.search`` answers (same messages, same
order), in milliseconds at any size: the index proposes candidate rows, the reader re-checks and
orders them. The index lives in the per-user cache directory (``$IMSG_CACHE_DIR/search-index``
when set), one file per database named by its real path; it is built on first use or by
``imsg index``, caught up before each search, and rebuilt when chat.db was replaced or rolled
back. Without FTS5 (or with ``IMSG_INDEX=0``) searches scan chat.db as before.
"""

from imsg.index.searcher import IndexInfo, close_all, enabled, index_path, search, update

__all__ = ["IndexInfo", "close_all", "enabled", "index_path", "search", "update"]
