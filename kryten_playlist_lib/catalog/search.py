"""Reading the live catalog snapshot: search, categories and item lookups.

Every thread keeps its own read-only connection to the file the `sqlite_path`
link points at. Each call first checks the link: after a swap the next call
opens the new file, while a call already running finishes on the connection
it started with, so one answer never mixes two snapshots.

Searches lean on the build order (see `catalog.store`): rowids ascend in
display order, so every plan walks its matches in order and stops at the end
of the page instead of sorting all of them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from kryten_playlist_lib.catalog.store import snapshot_path
from kryten_playlist_lib.errors import NotFound, ServiceError

log = logging.getLogger("kryten_playlist.catalog")


class DamagedSnapshot(ServiceError):
    """The snapshot file is not SQLite, is cut short, or holds no `snapshot_meta` row."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("no_snapshot", "The catalog file is damaged or is not a catalog snapshot; "
                         "run a catalog refresh to rebuild it.")
        self.path = path
        self.reason = reason


GATE_WAIT_SECONDS = 0.05
SNAPSHOT_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")

_ITEM_COLUMNS = "ci.video_id, ci.title, ci.categories_json, ci.duration_seconds, ci.thumbnail_url, ci.manifest_url"
# Well under SQLITE_MAX_VARIABLE_NUMBER, which is 999 on builds before 3.32.
_LOOKUP_CHUNK = 500
# Bigger than any rowid, offset or limit a catalog can need, small enough to bind.
_UNBOUNDED = 2**62
# The trigram index cannot look up shorter words; they are matched with GLOB on title_fold.
_MIN_FTS_WORD = 3
_GLOB_SPECIAL = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SearchPage:
    snapshot_id: str
    items: list[dict[str, Any]]
    total: int


@dataclass(frozen=True)
class _Snapshot:
    path: str
    conn: sqlite3.Connection
    snapshot_id: str
    item_count: int


class _ThreadConnections(threading.local):
    live: _Snapshot | None = None
    pinned: _Snapshot | None = None


class CatalogReader:
    """Read-only access to the catalog snapshot behind `sqlite_path`, safe to share between threads."""

    def __init__(self, sqlite_path: str | Path) -> None:
        self._link = os.path.abspath(sqlite_path)
        self._threads = _ThreadConnections()
        self._reported_damaged: set[str] = set()
        self._search_lock = threading.Lock()

    def search(
        self,
        q: str | None,
        categories: Sequence[str] = (),
        limit: int = 50,
        offset: int = 0,
        snapshot_id: str | None = None,
    ) -> SearchPage:
        """One page of the items matching `q` and every category, in the order of http-api.md."""
        snapshot = self._snapshot(snapshot_id)
        query = _Query.parse(q, categories)
        if query is None:
            return SearchPage(snapshot.snapshot_id, [], 0)
        search = _Search(snapshot.conn, query)
        with self._gate():
            rows = search.page(_clamp(limit), _clamp(offset))
            total = search.total(snapshot.item_count)
        return SearchPage(snapshot.snapshot_id, [_item(row) for row in rows], total)

    @contextmanager
    def _gate(self) -> Iterator[None]:
        """One search at a time, waiting at most GATE_WAIT_SECONDS for the one before.

        SQLite lets go of the GIL at every step, so several threads searching
        at once on a small machine mostly trade the GIL back and forth (8
        parallel searches ran at half the rate of one after another). A slow
        search (a one-letter query over a million titles) holds the gate only
        that long: the others then go ahead side by side.
        """
        acquired = self._search_lock.acquire(timeout=GATE_WAIT_SECONDS)
        try:
            yield
        finally:
            if acquired:
                self._search_lock.release()

    def categories(self, snapshot_id: str | None = None) -> tuple[str, list[str], dict[str, int]]:
        """(snapshot id, category names sorted case-insensitively, item count per category)."""
        snapshot = self._snapshot(snapshot_id)
        counts = dict(snapshot.conn.execute(
            "SELECT c.category, count(ic.video_id) FROM catalog_category c"
            " LEFT JOIN catalog_item_category ic ON ic.category = c.category GROUP BY c.category"
        ).fetchall())
        names = sorted(counts, key=lambda name: (name.casefold(), name))
        return snapshot.snapshot_id, names, counts

    def item(self, video_id: str) -> dict[str, Any] | None:
        """The item of the live snapshot with this id, or None."""
        conn = self._snapshot(None).conn
        if not _encodable(video_id):
            return None
        row = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM catalog_item ci WHERE ci.video_id = ?", (video_id,)).fetchone()
        return None if row is None else _item(row)

    def items_by_id(self, video_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The live snapshot's items for these ids, by id; unknown ids are left out."""
        # Taken before the ids are read, so a long iterable is answered from one snapshot.
        conn = self._snapshot(None).conn
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks((video_id for video_id in video_ids if _encodable(video_id)), _LOOKUP_CHUNK):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM catalog_item ci WHERE ci.video_id IN ({marks})", chunk)
            found.update((row[0], _item(row)) for row in rows)
        return found

    def items_if_built(self, video_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Like `items_by_id`, but empty (not 503) before the first snapshot: then no id is known."""
        try:
            return self.items_by_id(video_ids)
        except ServiceError as exc:
            if exc.code == "no_snapshot":
                return {}
            raise

    def snapshot_info(self) -> dict[str, Any]:
        """The live snapshot's id and size, for the health report."""
        snapshot = self._snapshot(None)
        return {"snapshot_id": snapshot.snapshot_id, "item_count": snapshot.item_count}

    def close_thread_connection(self) -> None:
        """Close this thread's connections (they reopen on the next call)."""
        for snapshot in (self._threads.live, self._threads.pinned):
            if snapshot is not None:
                snapshot.conn.close()
        self._threads.live = self._threads.pinned = None

    def _snapshot(self, snapshot_id: str | None) -> _Snapshot:
        if snapshot_id is None:
            return self._live()
        return self._pinned(snapshot_id)

    def _link_target(self) -> str:
        """The file the link names: one readlink per search (realpath would stat every folder of the path)."""
        try:
            return os.path.join(os.path.dirname(self._link), os.readlink(self._link))
        except OSError:
            return self._link  # a plain file put there by hand, or nothing: isfile() decides

    def _live(self) -> _Snapshot:
        target = self._link_target()
        live = self._threads.live
        if live is not None and live.path == target:
            return live
        if not os.path.isfile(target):
            raise ServiceError("no_snapshot", "No catalog snapshot has been built yet; run a catalog refresh.")
        # A swap is also when old snapshots get pruned: let go of this thread's
        # pinned file too, so a deleted file's disk space is not held open.
        self.close_thread_connection()
        try:
            self._threads.live = _open(target)
        except DamagedSnapshot as exc:
            if exc.path not in self._reported_damaged:  # once, not on every search
                self._reported_damaged.add(exc.path)
                log.error("catalog file %s cannot be read (%s); a catalog refresh will replace it",
                          exc.path, exc.reason)
            raise
        return self._threads.live

    def _pinned(self, snapshot_id: str) -> _Snapshot:
        if not SNAPSHOT_ID_PATTERN.fullmatch(snapshot_id):
            raise NotFound(f"There is no catalog snapshot {snapshot_id!r}.")
        path = str(snapshot_path(self._link, snapshot_id))
        if path == self._link_target():
            return self._live()
        # Checked on every call: a pruned snapshot is gone for callers even
        # while this thread still holds a connection to its deleted file.
        if not os.path.isfile(path):
            raise NotFound(f"Catalog snapshot {snapshot_id} is no longer kept; search the current one instead.")
        pinned = self._threads.pinned
        if pinned is not None and pinned.path == path:
            return pinned
        self._threads.pinned = _open(path)
        if pinned is not None:
            pinned.conn.close()
        return self._threads.pinned


@dataclass(frozen=True)
class _Query:
    fold: str
    fts_words: tuple[str, ...]
    short_words: tuple[str, ...]
    categories: tuple[str, ...]

    @classmethod
    def parse(cls, q: str | None, categories: Sequence[str]) -> _Query | None:
        """The folded query; None when it cannot match anything (text that is not valid Unicode)."""
        fold = (q or "").strip().casefold()
        # SQLite's FTS and GLOB parsers stop at a NUL, so it separates words like a space.
        words = tuple(dict.fromkeys(fold.replace("\0", " ").split()))
        wanted = tuple(dict.fromkeys(categories))
        if not all(_encodable(text) for text in (*words, *wanted)):
            return None
        return cls(
            fold=fold if words else "",
            fts_words=tuple(word for word in words if len(word) >= _MIN_FTS_WORD),
            short_words=tuple(word for word in words if len(word) < _MIN_FTS_WORD),
            categories=wanted,
        )

    def fts_match(self) -> str:
        # Each word as an FTS5 string, so no character in it is query syntax.
        return " ".join('"' + word.replace('"', '""') + '"' for word in self.fts_words)


@dataclass(frozen=True)
class _Segment:
    """The rows whose `title_fold` is in [low, high) (None: open) and whose rowid is above `after`."""

    low: str | None
    high: str | None
    after: int = 0

    def past(self, row: tuple[Any, ...]) -> _Segment:
        """The part of this segment after `row` (a page row: it ends with title_fold, rowid)."""
        return _Segment(row[-2], self.high, row[-1])


class _Search:
    """One query on one snapshot connection.

    Rows come from the trigram index when the query has a word of three or
    more characters, otherwise from a walk of `idx_catalog_title`; either way
    in display order, so paging stops at the end of the page, and counting
    the total only has to cover what the page walk has not seen.
    """

    def __init__(self, conn: sqlite3.Connection, query: _Query) -> None:
        self._conn = conn
        self._query = query
        self._filters = " AND ci.title_fold GLOB ?" * len(query.short_words) + _has_categories("ci", query.categories)
        patterns = [_glob_containing(word) for word in query.short_words]
        self._filter_params: list[Any] = [*patterns, *query.categories]
        self._counted = 0
        self._unseen = self._segments()

    def page(self, limit: int, offset: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        skip = offset
        while self._unseen and len(rows) < limit:
            segment = self._unseen.pop(0)
            found = self._rows(segment, limit - len(rows), skip)
            if found:
                skip = 0
            elif skip:
                # The whole segment lies before the page: only its size matters.
                skip -= self._count(segment)
            rows.extend(found)
            if found and len(rows) == limit:
                self._unseen.insert(0, segment.past(found[-1]))
        self._counted = offset - skip + len(rows)
        return rows

    def total(self, item_count: int) -> int:
        """The number of matches; after `page()`, which has counted those it walked past."""
        query = self._query
        if not self._unseen:
            return self._counted
        if query.fts_words and not self._filters:
            sql = "SELECT count(*) FROM catalog_fts WHERE catalog_fts MATCH ?"
            return int(self._conn.execute(sql, (query.fts_match(),)).fetchone()[0])
        if query.fts_words or query.short_words:
            return self._counted + sum(self._count(segment) for segment in self._unseen)
        if query.categories:
            # Driven by the category index: far fewer rows than a walk of every item.
            sql = "SELECT count(*) FROM catalog_item_category ic0 WHERE ic0.category = ?"
            sql += _has_categories("ic0", query.categories[1:])
            return int(self._conn.execute(sql, query.categories).fetchone()[0])
        return item_count

    def _segments(self) -> list[_Segment]:
        """Titles starting with the whole query first, then the rest, each in title order."""
        prefix = self._query.fold
        if not prefix:
            return [_Segment(None, None)]
        above = _prefix_successor(prefix)
        segments = [_Segment(prefix, above), _Segment(None, prefix)]
        return segments if above is None else [*segments, _Segment(above, None)]

    def _rows(self, segment: _Segment, limit: int, offset: int) -> list[tuple[Any, ...]]:
        source, params, order = self._source(segment)
        sql = f"SELECT {_ITEM_COLUMNS}, ci.title_fold, ci.rowid FROM {source} ORDER BY {order} LIMIT ? OFFSET ?"
        return self._conn.execute(sql, [*params, limit, offset]).fetchall()

    def _count(self, segment: _Segment) -> int:
        source, params, _ = self._source(segment)
        return int(self._conn.execute(f"SELECT count(*) FROM {source}", params).fetchone()[0])

    def _source(self, segment: _Segment) -> tuple[str, list[Any], str]:
        """FROM…WHERE text, its parameters and the ORDER BY that matches the source's own order."""
        if self._query.fts_words:
            # CROSS JOIN keeps the FTS table as the outer loop, which yields rowids in order.
            sql = ("catalog_fts f CROSS JOIN catalog_item ci ON ci.rowid = f.rowid"
                   " WHERE f.catalog_fts MATCH ? AND f.rowid >= ? AND f.rowid < ?")
            bounds = [max(self._rowid_at(segment.low, 0), segment.after + 1), self._rowid_at(segment.high, _UNBOUNDED)]
            return sql + self._filters, [self._query.fts_match(), *bounds, *self._filter_params], "f.rowid"
        # The planner cannot tell how rare a GLOB match is, so a walk in title order is forced.
        sql = "catalog_item ci INDEXED BY idx_catalog_title" if self._query.short_words else "catalog_item ci"
        sql += " WHERE ci.title_fold >= ?"
        params: list[Any] = [segment.low or ""]
        if segment.high is not None:
            sql += " AND ci.title_fold < ?"
            params.append(segment.high)
        if segment.after:
            sql += " AND ci.rowid > ?"
            params.append(segment.after)
        return sql + self._filters, params + self._filter_params, "ci.title_fold, ci.video_id"

    def _rowid_at(self, title_fold: str | None, unbounded: int) -> int:
        """The rowid of the first row at or after `title_fold` in display order."""
        if title_fold is None:
            return unbounded
        row = self._conn.execute(
            "SELECT rowid FROM catalog_item WHERE title_fold >= ? ORDER BY title_fold, video_id LIMIT 1",
            (title_fold,),
        ).fetchone()
        return _UNBOUNDED if row is None else int(row[0])


def _open(path: str) -> _Snapshot:
    conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        snapshot_id, item_count = conn.execute("SELECT snapshot_id, item_count FROM snapshot_meta").fetchone()
    except (sqlite3.DatabaseError, TypeError) as exc:  # not SQLite, truncated, or no snapshot_meta row
        conn.close()
        raise DamagedSnapshot(path, str(exc)) from exc
    except BaseException:
        conn.close()
        raise
    return _Snapshot(path=path, conn=conn, snapshot_id=snapshot_id, item_count=int(item_count))


def _has_categories(alias: str, categories: Sequence[str]) -> str:
    """SQL requiring the row `alias` to have each category; one `?` per category.

    A probe of the (video_id, category) key per candidate row: cheap next to
    materialising every member of a large category for each query.
    """
    return (
        f" AND EXISTS (SELECT 1 FROM catalog_item_category ic WHERE ic.video_id = {alias}.video_id AND ic.category = ?)"
        * len(categories)
    )


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    video_id, title, categories_json, duration_seconds, thumbnail_url, manifest_url = row[:6]
    return {
        "video_id": video_id,
        "title": title,
        "categories": json.loads(categories_json),
        "duration_seconds": duration_seconds,
        "thumbnail_url": thumbnail_url,
        "manifest_url": manifest_url,
    }


def _prefix_successor(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`; None when there is none.

    SQLite compares text by its UTF-8 bytes, which orders like code points, so
    `prefix <= title < successor` is exactly "title starts with prefix".
    """
    while prefix:
        following = ord(prefix[-1]) + 1
        if following <= 0x10FFFF:
            # Surrogates cannot be stored as UTF-8, so no title holds one.
            return prefix[:-1] + chr(0xE000 if 0xD800 <= following <= 0xDFFF else following)
        prefix = prefix[:-1]
    return None


def _glob_containing(word: str) -> str:
    """A GLOB pattern for text containing `word` (in SQLite, GLOB scans faster than instr())."""
    return "*" + _GLOB_SPECIAL.sub(lambda special: f"[{special.group()}]", word) + "*"


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates: SQLite cannot take them and no stored text holds them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clamp(number: int) -> int:
    return min(max(int(number), 0), _UNBOUNDED)


def _chunks(values: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
