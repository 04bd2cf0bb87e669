"""Building catalog snapshot files (storage.md): one immutable SQLite file per snapshot.

This module only writes and inspects snapshot files; `catalog.search` reads
them. A file is built under a temporary name beside its final path and renamed
into place only when it is complete and checked, so a reader can never open a
half-built catalog.

Rows are stored in display order: `catalog_item.rowid` ascends with
(`title_fold`, `video_id`), and an FTS match's rowid is the item's rowid. The
reader relies on this to page through matches in order without sorting them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any

from kryten_playlist_lib.catalog.items import CatalogItem

SCHEMA_VERSION = 1
SNAPSHOT_FILE = re.compile(r"^catalog-(\d{8}T\d{6}Z-[0-9a-f]{6})\.sqlite3$")
EpisodeParser = Callable[[str], tuple[int, int] | None]

_BATCH_SIZE = 5000
# A file being built is `.{final name}.{random}.tmp` beside the final path.
_PARTIAL_SUFFIX = ".tmp"
# Temporary files of a build (`.tmp`) or of a replica's download (`.download`, follower.py).
LEFTOVER_FILE = re.compile(r"^\.catalog-.*\.(tmp|download)$")
LEFTOVER_SECONDS = 3600.0

_TABLES = (
    """CREATE TABLE catalog_item (
      video_id         TEXT PRIMARY KEY,
      title            TEXT NOT NULL,
      categories_json  TEXT NOT NULL,
      manifest_url     TEXT NOT NULL,
      duration_seconds INTEGER,
      thumbnail_url    TEXT,
      snapshot_id      TEXT NOT NULL,
      created_at       TEXT NOT NULL,
      season           INTEGER,
      episode          INTEGER,
      title_fold       TEXT NOT NULL
    )""",
    "CREATE TABLE catalog_category (category TEXT PRIMARY KEY)",
    """CREATE TABLE catalog_item_category (
      video_id TEXT REFERENCES catalog_item(video_id),
      category TEXT REFERENCES catalog_category(category),
      PRIMARY KEY (video_id, category)
    )""",
    """CREATE TABLE snapshot_meta (
      snapshot_id TEXT PRIMARY KEY, source TEXT, created_at TEXT, item_count INTEGER, schema_version INTEGER
    )""",
    # Contentless: the titles already live in catalog_item and the index only
    # has to hand back rowids. Titles are folded before indexing, so the
    # tokenizer must not fold again (its folding is not str.casefold).
    """CREATE VIRTUAL TABLE catalog_fts USING fts5(
      title_fold, content='', columnsize=0, tokenize='trigram case_sensitive 1'
    )""",
)

# Created after the rows are in: building an index from sorted data is much
# faster than growing it by a million random inserts.
_INDEXES = (
    "CREATE INDEX idx_catalog_title ON catalog_item(title_fold, video_id)",
    "CREATE INDEX idx_catalog_snapshot ON catalog_item(snapshot_id)",
    # Not in storage.md's listing: the category filter and the category counts
    # look rows up by category, which the (video_id, category) key cannot serve.
    "CREATE INDEX idx_catalog_item_category_category ON catalog_item_category(category, video_id)",
)

# Items arrive in source order; they are staged first so that catalog_item
# can be filled in display order (see the module docstring).
_CREATE_STAGING = """CREATE TEMP TABLE staged_item (
  video_id, title, categories_json, manifest_url, duration_seconds, thumbnail_url, season, episode, title_fold
)"""
_INSERT_STAGED = "INSERT INTO staged_item VALUES (?,?,?,?,?,?,?,?,?)"
_FILL_ITEMS = """INSERT INTO catalog_item (video_id, title, categories_json, manifest_url, duration_seconds,
  thumbnail_url, snapshot_id, created_at, season, episode, title_fold)
SELECT video_id, title, categories_json, manifest_url, duration_seconds,
  thumbnail_url, ?, ?, season, episode, title_fold
FROM staged_item ORDER BY title_fold, video_id"""


def require_trigram_sqlite() -> None:
    """Fail at start, with what to do, when SQLite cannot serve the catalog search."""
    found = sqlite3.sqlite_version
    advice = (
        f"The catalog needs SQLite >= 3.34 with FTS5 (trigram tokenizer); Python's sqlite3 module uses "
        f"SQLite {found}. Run the service with a Python whose sqlite3 links a newer SQLite "
        f"(python.org builds, Debian 12, Ubuntu 22.04 or later), or point LD_LIBRARY_PATH at a newer libsqlite3."
    )
    if sqlite3.sqlite_version_info < (3, 34, 0):
        raise RuntimeError(advice)
    try:
        with closing(sqlite3.connect(":memory:")) as conn:
            conn.execute("CREATE VIRTUAL TABLE trigram_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error as exc:
        raise RuntimeError(f"{advice} Creating an FTS5 trigram table failed: {exc}.") from exc


def snapshot_path(sqlite_path: str | Path, snapshot_id: str) -> Path:
    """Where snapshot `snapshot_id` lives: beside the `sqlite_path` link."""
    return Path(sqlite_path).parent / f"catalog-{snapshot_id}.sqlite3"


def build_snapshot(
    path: Path,
    *,
    snapshot_id: str,
    source: str,
    created_at: str,
    items: Iterable[CatalogItem],
    manifest_url_template: str,
    on_progress: Callable[[int], None] | None = None,
    episode_parser: EpisodeParser | None = None,
) -> int:
    """Write the snapshot file for `items` (already cleaned) at `path`; return the item count.

    The file appears at `path` complete or not at all: any failure removes the
    partial file and the exception propagates.
    """
    if episode_parser is None:
        # Imported here so the store does not depend on the episode rules at import time.
        from kryten_playlist_lib.domain.episodes import parse_episode as episode_parser
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_PARTIAL_SUFFIX}")
    try:
        with closing(sqlite3.connect(temporary, isolation_level=None)) as conn:
            _configure_for_build(conn)
            conn.execute("BEGIN")
            # Statement by statement: executescript() would commit the open transaction.
            for statement in (*_TABLES, _CREATE_STAGING):
                conn.execute(statement)
            count = _stage_items(conn, items, manifest_url_template, episode_parser, on_progress)
            _fill_tables(conn, snapshot_id, created_at)
            conn.execute("INSERT INTO snapshot_meta VALUES (?, ?, ?, ?, ?)",
                         (snapshot_id, source, created_at, count, SCHEMA_VERSION))
            conn.execute("ANALYZE")
            conn.execute("COMMIT")
            _check_integrity(conn)
        fsync_path(temporary)
        os.replace(temporary, path)
        fsync_path(path.parent)  # makes the rename itself durable
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def partial_build_files(path: Path) -> list[Path]:
    """What a build of `path` that was killed (a failure cleans up itself) can leave: the file and its journal."""
    return list(path.parent.glob(f".{path.name}.*{_PARTIAL_SUFFIX}*"))


def read_snapshot_meta(path: str | Path) -> dict[str, Any]:
    """The `snapshot_meta` row of a snapshot file, to verify a downloaded or linked file.

    Raises `FileNotFoundError` for a missing file and `ValueError` for a file
    that is not a catalog snapshot.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no snapshot file at {path}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT snapshot_id, source, created_at, item_count, schema_version FROM snapshot_meta"
            ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a catalog snapshot: {exc}") from exc
    if len(rows) != 1:
        raise ValueError(f"{path} is not a catalog snapshot: snapshot_meta has {len(rows)} rows")
    keys = ("snapshot_id", "source", "created_at", "item_count", "schema_version")
    return dict(zip(keys, rows[0], strict=True))


def replace_link(link: Path, target: str) -> None:
    """Point `link` at `target` atomically: a new link under a temporary name, then a rename.

    A reader resolving the link meanwhile sees the old target or the new one, never no file.
    """
    temporary = link.with_name(f".{link.name}.{secrets.token_hex(4)}.link")
    os.symlink(target, temporary)
    os.replace(temporary, link)


def prune_snapshot_files(folder: Path, keep: set[str]) -> None:
    """Delete the snapshot files in `folder` whose snapshot id is not in `keep`, and old leftovers.

    A build or download cut short by a killed process leaves its temporary
    file; one untouched for an hour belongs to no running job.
    """
    stale_before = time.time() - LEFTOVER_SECONDS
    for path in folder.iterdir():
        match = SNAPSHOT_FILE.match(path.name)
        if match and match.group(1) not in keep:
            path.unlink(missing_ok=True)
        elif LEFTOVER_FILE.match(path.name) and _modified_before(path, stale_before):
            path.unlink(missing_ok=True)


def _modified_before(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime < moment
    except FileNotFoundError:
        return False


def _configure_for_build(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=DELETE")
    # A crash leaves only the temporary file, which is never renamed into
    # place, so the build need not sync; the finished file is synced once.
    conn.execute("PRAGMA synchronous=OFF")


def _stage_items(
    conn: sqlite3.Connection,
    items: Iterable[CatalogItem],
    manifest_url_template: str,
    episode_parser: EpisodeParser,
    on_progress: Callable[[int], None] | None,
) -> int:
    count = 0
    for batch in _batches(items, _BATCH_SIZE):
        conn.executemany(_INSERT_STAGED, (_staged_row(item, manifest_url_template, episode_parser) for item in batch))
        conn.executemany("INSERT INTO catalog_item_category (video_id, category) VALUES (?, ?)",
                         ((item.video_id, category) for item in batch for category in item.categories))
        count += len(batch)
        if on_progress is not None:
            on_progress(count)
    return count


def _staged_row(item: CatalogItem, manifest_url_template: str, episode_parser: EpisodeParser) -> tuple[Any, ...]:
    title, video_id = item.title, item.video_id
    if title is None or video_id is None:
        raise ValueError(f"catalog items must be cleaned before the build: {item!r}")
    season, episode = episode_parser(title) or (None, None)
    return (
        video_id, title, json.dumps(list(item.categories), ensure_ascii=False),
        manifest_url_template.format(video_id=video_id), item.duration_seconds,
        item.thumbnail_url, season, episode, title.casefold(),
    )


def _fill_tables(conn: sqlite3.Connection, snapshot_id: str, created_at: str) -> None:
    # Rowids are handed out in insert order (max + 1), so this puts rows in display order.
    conn.execute(_FILL_ITEMS, (snapshot_id, created_at))
    conn.execute("DROP TABLE staged_item")
    conn.execute("INSERT INTO catalog_fts (rowid, title_fold) SELECT rowid, title_fold FROM catalog_item")
    conn.execute("INSERT INTO catalog_category (category) SELECT DISTINCT category FROM catalog_item_category")
    for statement in _INDEXES:
        conn.execute(statement)
    # One merged FTS b-tree instead of many segments: every later query reads less.
    conn.execute("INSERT INTO catalog_fts (catalog_fts) VALUES ('optimize')")


def _check_integrity(conn: sqlite3.Connection) -> None:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise RuntimeError(f"catalog snapshot failed its integrity check: {'; '.join(result[:5])}")


def fsync_path(path: Path) -> None:
    """Make a written file (or a folder's renames) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _batches(items: Iterable[CatalogItem], size: int) -> Iterator[list[CatalogItem]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
