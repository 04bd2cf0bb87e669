"""Playlist writes while NATS is down: journaled in the state file, shown from the mirror (spec/mirror.md).

Checked exactly like online writes, then appended to the journal together
with the mirror rows that show them, and answered `202 pending_sync`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.errors import NatsUnavailable, NotFound, ServiceError
from kryten_playlist_lib.mirror.reads import MirroredReads
from kryten_playlist_lib.mirror.state_file import ForcedRow, StateFile
from kryten_playlist_lib.playlists.store import (
    BUCKET,
    INDEX_KEY,
    PLAYLIST_ID,
    changed_document,
    doc_key,
    empty_index,
    name_taken,
    new_document,
    stale,
    summary,
)
from kryten_playlist_lib.timeutil import iso, utcnow

log = logging.getLogger("kryten_playlist.offline")

OFFLINE_REVISION = 0  # the revision of a document made offline, until it reaches KV


class OfflinePlaylists:
    def __init__(self, state: StateFile, reads: MirroredReads, catalog: CatalogReader, max_items: int) -> None:
        self._state = state
        self._reads = reads
        self._catalog = catalog
        self._max_items = max_items

    @property
    def active(self) -> bool:
        """Writes go to the journal while NATS is down or older offline writes still wait."""
        return self._reads.offline or self.pending() > 0

    def pending(self) -> int:
        return self._state.pending_count()

    def get(self, bucket: str, key: str) -> Any:
        return self._reads.from_mirror(bucket, key)

    # ---- writes ------------------------------------------------------------------

    def create(self, body: dict[str, Any], username: str) -> str:
        document = new_document(self._catalog, body, username, self._max_items)
        index = self._index()
        if name_taken(index, document["name"]):
            raise ServiceError("name_taken", f"A playlist named {document['name']!r} already exists.")
        playlist_id = document["playlist_id"]
        self._journal("create", playlist_id, OFFLINE_REVISION, document, username, [
            ForcedRow(BUCKET, doc_key(playlist_id), document, OFFLINE_REVISION),
            self._index_row(index, {playlist_id: summary(document)})])
        return str(playlist_id)

    def update(self, playlist_id: str, body: dict[str, Any], if_match: int | None, username: str) -> None:
        old, revision = self._document(playlist_id)
        if if_match is not None and if_match != revision:
            raise stale(revision)
        document = changed_document(self._catalog, old, body, self._max_items)
        index = self._index()
        if name_taken(index, document["name"], except_id=playlist_id):
            raise ServiceError("name_taken", f"A playlist named {document['name']!r} already exists.")
        self._journal("update", playlist_id, revision, document, username, [
            ForcedRow(BUCKET, doc_key(playlist_id), document, revision),
            self._index_row(index, {playlist_id: summary(document)})])

    def delete(self, playlist_id: str, username: str) -> None:
        _old, revision = self._document(playlist_id)
        index = self._index()
        self._journal("delete", playlist_id, revision, None, username, [
            ForcedRow(BUCKET, doc_key(playlist_id), None, revision),
            self._index_row(index, {}, drop=playlist_id)])

    # ---- helpers -----------------------------------------------------------------

    def _document(self, playlist_id: str) -> tuple[dict[str, Any], int]:
        entry = self.get(BUCKET, doc_key(playlist_id)) if PLAYLIST_ID.match(playlist_id) else None
        if entry is None:
            raise NotFound("No playlist with this id.")
        return entry.value, entry.revision

    def _index(self) -> dict[str, Any]:
        entry = self.get(BUCKET, INDEX_KEY)
        return entry.value if entry else empty_index()

    def _index_row(self, index: dict[str, Any], entries: dict[str, Any], drop: str | None = None) -> ForcedRow:
        revision_entry = self.get(BUCKET, INDEX_KEY)
        playlists = {pid: e for pid, e in index["playlists"].items() if pid != drop}
        return ForcedRow(BUCKET, INDEX_KEY, {**index, "playlists": {**playlists, **entries}},
                         revision_entry.revision if revision_entry else 0)

    def _journal(self, op: str, playlist_id: str, base_revision: int, document: dict[str, Any] | None,
                 username: str, rows: list[ForcedRow]) -> None:
        try:
            self._state.journal_append(op, playlist_id, base_revision, document, username, iso(utcnow()), rows)
        except sqlite3.Error as exc:
            log.error("offline %s of playlist %s not saved: %s", op, playlist_id, exc)
            raise NatsUnavailable("NATS is unreachable and this change could not be saved offline "
                                  "either; try again later.") from exc
