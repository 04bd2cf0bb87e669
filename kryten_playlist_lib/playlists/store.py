"""Playlists in KV (storage.md): documents plus one index that owns name uniqueness.

A create or rename is one compare-and-set on the index (which refuses a
taken name, compared case-insensitively), then the document write; a crash
between the two is mended by `repair()` at start. A document's KV revision
is the playlist's `revision` (the HTTP `ETag`).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from kryten_playlist_lib.bus.kv import Entry, KvStore
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.errors import NatsUnavailable, NotFound, ServiceError
from kryten_playlist_lib.playlists.validate import NAME_MAX, check_playlist_body
from kryten_playlist_lib.timeutil import iso, utcnow

log = logging.getLogger("kryten_playlist.playlists")

BUCKET = "playlists"
INDEX_KEY = "playlists/index"
PLAYLIST_ID = re.compile(r"^[0-9a-f]{32}$")
SUMMARY_FIELDS = ("name", "created_by", "created_at", "updated_at", "item_count", "duration_seconds")


def doc_key(playlist_id: str) -> str:
    return f"playlists/{playlist_id}"


def summary(document: dict[str, Any]) -> dict[str, Any]:
    """The index entry of a document."""
    return {"name": document["name"], "created_by": document["created_by"], "created_at": document["created_at"],
            "updated_at": document["updated_at"], "item_count": len(document["items"]),
            "duration_seconds": sum(item.get("duration_seconds") or 0 for item in document["items"])}


def name_taken(index: dict[str, Any], name: str, except_id: str | None = None) -> bool:
    folded = name.casefold()
    return any(entry["name"].casefold() == folded for pid, entry in index["playlists"].items() if pid != except_id)


def empty_index() -> dict[str, Any]:
    return {"playlists": {}, "schema_version": 1}


class LocalView(Protocol):
    """Where playlists are read from while NATS is down or offline writes wait (playlists/offline.py)."""

    @property
    def active(self) -> bool: ...

    def get(self, bucket: str, key: str) -> Entry | None: ...


class PlaylistStore:
    def __init__(self, kv: KvStore, catalog: CatalogReader, max_items: int, local: LocalView | None = None) -> None:
        self._kv = kv
        self._catalog = catalog
        self._max_items = max_items
        self._local = local

    def _read(self, key: str) -> Entry | None:
        if self._local is not None and self._local.active:
            return self._local.get(BUCKET, key)
        try:
            return self._kv.get(BUCKET, key)
        except NatsUnavailable:
            if self._local is None:
                raise
            return self._local.get(BUCKET, key)

    # ---- reading -----------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        entry = self._read(INDEX_KEY)
        index = entry.value if entry else empty_index()
        rows = [{"playlist_id": pid, **{field: info.get(field) for field in SUMMARY_FIELDS}}
                for pid, info in index["playlists"].items()]
        return sorted(rows, key=lambda row: (row["name"].casefold(), row["playlist_id"]))

    def id_for_name(self, name: str) -> str:
        """The id of the playlist called `name` (case-insensitive); 404 when there is none."""
        for row in self.list():
            if row["name"].casefold() == name.strip().casefold():
                return str(row["playlist_id"])
        raise NotFound(f"no playlist named {name!r}")

    def get(self, playlist_id: str) -> tuple[dict[str, Any], int]:
        """The stored document and its revision; 404 for an unknown or malformed id."""
        entry = self._read(doc_key(playlist_id)) if PLAYLIST_ID.match(playlist_id) else None
        if entry is None:
            raise NotFound("No playlist with this id.")
        return entry.value, entry.revision

    def with_availability(self, document: dict[str, Any], revision: int) -> dict[str, Any]:
        """The GET form: the document, its revision, and `available` per item from the live snapshot."""
        live = self._catalog.items_if_built([item["video_id"] for item in document["items"]])
        items = [{**item, "available": item["video_id"] in live} for item in document["items"]]
        return {**document, "items": items, "revision": revision}

    # ---- writing -----------------------------------------------------------------

    def create(self, body: dict[str, Any], username: str) -> str:
        document = new_document(self._catalog, body, username, self._max_items)
        self.insert(document)
        return str(document["playlist_id"])

    def insert(self, document: dict[str, Any]) -> int:
        """Index a new document under its name (409 `name_taken`), then write it; its revision."""
        playlist_id = document["playlist_id"]
        self._change_index(lambda index: self._add_entry(index, playlist_id, document))
        return self._kv.put(BUCKET, doc_key(playlist_id), document)

    def update(self, playlist_id: str, body: dict[str, Any], if_match: int | None) -> tuple[dict[str, Any], int]:
        old, revision = self.get(playlist_id)
        if if_match is not None and if_match != revision:
            raise stale(revision)
        document = changed_document(self._catalog, old, body, self._max_items)
        return document, self.replace(old, revision, document)

    def replace(self, old: dict[str, Any], revision: int, document: dict[str, Any]) -> int:
        """Write `document` over `old` if it is still at `revision` (409 otherwise); the new revision."""
        playlist_id = old["playlist_id"]
        renamed = document["name"] != old["name"]
        if renamed:  # the new name is reserved first, so no one else can take it meanwhile
            self._change_index(lambda index: self._set_entry(index, playlist_id, document, check_name=True))
        written = self._kv.compare_and_set(BUCKET, doc_key(playlist_id), document, revision)
        if written is None:
            if renamed:
                self._change_index(lambda index: self._set_entry(index, playlist_id, old, check_name=False))
            current = self._kv.get(BUCKET, doc_key(playlist_id))
            if current is None:
                raise NotFound("This playlist was deleted meanwhile.")
            raise stale(current.revision)
        if not renamed:
            self._change_index(lambda index: self._set_entry(index, playlist_id, document, check_name=False))
        return written

    def delete(self, playlist_id: str, revision: int | None = None) -> bool:
        """The document goes first: a crash before the index follows leaves an entry that repair drops.

        With `revision`, only if the document is still at it; False when it is not.
        """
        self.get(playlist_id)
        if not self._kv.delete(BUCKET, doc_key(playlist_id), revision):
            return False
        self._change_index(lambda index: self._drop_entry(index, playlist_id))
        return True

    # ---- the index -----------------------------------------------------------------

    def _change_index(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._kv.update(BUCKET, INDEX_KEY, lambda old: change(old or empty_index()))

    @staticmethod
    def _add_entry(index: dict[str, Any], playlist_id: str, document: dict[str, Any]) -> dict[str, Any]:
        if name_taken(index, document["name"], except_id=playlist_id):
            raise ServiceError("name_taken", f"A playlist named {document['name']!r} already exists.")
        return {**index, "playlists": {**index["playlists"], playlist_id: summary(document)}}

    @staticmethod
    def _set_entry(index: dict[str, Any], playlist_id: str, document: dict[str, Any],
                   check_name: bool) -> dict[str, Any]:
        if playlist_id not in index["playlists"]:
            return index  # deleted meanwhile: never bring the entry back
        if check_name and name_taken(index, document["name"], except_id=playlist_id):
            raise ServiceError("name_taken", f"A playlist named {document['name']!r} already exists.")
        return {**index, "playlists": {**index["playlists"], playlist_id: summary(document)}}

    @staticmethod
    def _drop_entry(index: dict[str, Any], playlist_id: str) -> dict[str, Any]:
        return {**index, "playlists": {pid: e for pid, e in index["playlists"].items() if pid != playlist_id}}

    # ---- crash repair ------------------------------------------------------------------

    def repair(self) -> dict[str, int]:
        """Re-index orphan documents and drop index entries without a document (run at start)."""
        stored: dict[str, dict[str, Any]] = {}
        for key in self._kv.keys(BUCKET, "playlists/"):
            playlist_id = key.rsplit("/", 1)[1]
            entry = self._kv.get(BUCKET, key) if PLAYLIST_ID.match(playlist_id) else None
            if entry is not None:
                stored[playlist_id] = entry.value
        # A key listing can miss keys (nats-py's watch-based listing has been seen to come back
        # short), so an index entry is only dropped once its document is confirmed gone.
        index_entry = self._kv.get(BUCKET, INDEX_KEY)
        for playlist_id in (index_entry.value["playlists"] if index_entry else {}):
            if playlist_id not in stored and (found := self._kv.get(BUCKET, doc_key(playlist_id))) is not None:
                stored[playlist_id] = found.value
        counts = {"reindexed": 0, "dropped": 0}
        renamed: dict[str, str] = {}

        def mend(index: dict[str, Any]) -> dict[str, Any]:
            renamed.clear()
            entries = {pid: e for pid, e in index["playlists"].items() if pid in stored}
            counts.update(reindexed=0, dropped=len(index["playlists"]) - len(entries))
            for playlist_id, document in stored.items():
                if playlist_id not in entries:
                    name = _free_name(entries, document["name"])
                    entries[playlist_id] = {**summary(document), "name": name}
                    counts["reindexed"] += 1
                    if name != document["name"]:
                        renamed[playlist_id] = name
            return {**index, "playlists": entries}

        self._change_index(mend)
        for playlist_id, name in renamed.items():
            self._rename_document(playlist_id, name)
        if any(counts.values()):
            log.warning("playlist index repaired: %(reindexed)d re-indexed, %(dropped)d dropped", counts)
        return counts


    def _rename_document(self, playlist_id: str, name: str) -> None:
        def rename(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound("deleted meanwhile")
            return {**old, "name": name}

        try:
            self._kv.update(BUCKET, doc_key(playlist_id), rename)
        except NotFound:
            pass  # its index entry goes at the next repair


def _free_name(entries: dict[str, Any], name: str) -> str:
    """`name`, or `name (2)`, `(3)`… when another playlist has it (cut to fit NAME_MAX)."""
    candidate, n = name, 1
    while name_taken({"playlists": entries}, candidate):
        n += 1
        suffix = f" ({n})"
        candidate = name[:NAME_MAX - len(suffix)] + suffix
    return candidate


def new_document(catalog: CatalogReader, body: dict[str, Any], username: str, max_items: int,
                 playlist_id: str | None = None) -> dict[str, Any]:
    """A checked new playlist document from a request body (400/422 when the body is wrong)."""
    name, ids = check_playlist_body(body, max_items)
    now = iso(utcnow())
    return {"playlist_id": playlist_id or uuid.uuid4().hex, "name": name, "items": enrich(catalog, ids, []),
            "created_by": username, "created_at": now, "updated_at": now, "schema_version": 1}


def changed_document(catalog: CatalogReader, old: dict[str, Any], body: dict[str, Any],
                     max_items: int) -> dict[str, Any]:
    """`old` with the name and items of a request body (400/422 when the body is wrong)."""
    name, ids = check_playlist_body(body, max_items)
    return {**old, "name": name, "items": enrich(catalog, ids, old["items"]), "updated_at": iso(utcnow())}


def enrich(catalog: CatalogReader, ids: list[str], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Title, duration and categories as known at save time: from the catalog, else as saved before."""
    live = catalog.items_if_built(ids)
    known = {item["video_id"]: item for item in previous}
    items = []
    for video_id in ids:
        source = live.get(video_id) or known.get(video_id) or {}
        items.append({"video_id": video_id, "title": source.get("title"),
                      "duration_seconds": source.get("duration_seconds"),
                      "categories": list(source.get("categories") or [])})
    return items


def stale(current_revision: int) -> ServiceError:
    return ServiceError("conflict", "This playlist was changed meanwhile; reload it and try again.",
                        {"current_revision": current_revision})
