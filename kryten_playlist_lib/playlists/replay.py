"""Replaying the offline journal into KV, in order, without overwriting anyone (spec/mirror.md)."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.errors import NatsUnavailable, NotFound, ServiceError
from kryten_playlist_lib.mirror.state_file import JournalEntry, Rebase, StateFile
from kryten_playlist_lib.playlists.store import BUCKET, PlaylistStore, doc_key
from kryten_playlist_lib.playlists.validate import NAME_MAX

log = logging.getLogger("kryten_playlist.replay")

COPY_SUFFIX = " (offline copy)"
RETRY_SECONDS = 5.0
GIVE_UP_AFTER_COPIES = 1000


def offline_copy_name(name: str, n: int) -> str:
    """`<name> (offline copy)`, then `… 2`, `… 3`, with `name` cut so the whole fits NAME_MAX."""
    suffix = COPY_SUFFIX if n == 1 else f"{COPY_SUFFIX} {n}"
    return name[:NAME_MAX - len(suffix)] + suffix


class JournalReplay:
    def __init__(self, state: StateFile, store: PlaylistStore, kv: KvStore) -> None:
        self._state = state
        self._store = store
        self._kv = kv
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the thread ------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="journal-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    async def on_connect(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RETRY_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._kv.ready and self._state.pending_count():
                self.replay()

    # ---- replaying -------------------------------------------------------------

    def replay(self) -> int:
        """Replay the journal in order until it is empty or NATS fails; how many entries were done."""
        done = 0
        for entry in self._state.journal():
            try:
                went_to = self._replay_one(entry)
            except NatsUnavailable:
                log.info("journal replay paused after %d entr(ies): NATS is unavailable", done)
                return done
            except Exception:
                log.exception("journal entry %d (%s of %s) could not be replayed; will retry",
                              entry.seq, entry.op, entry.playlist_id)
                return done
            self._state.journal_done(entry.seq, entry.playlist_id, entry.base_revision, went_to)
            done += 1
        if done:
            log.info("journal replayed: %d offline write(s) are in KV", done)
        return done

    def _replay_one(self, entry: JournalEntry) -> Rebase | None:
        target = self._state.rebase_of(entry.playlist_id, entry.base_revision) \
            or Rebase(entry.playlist_id, entry.base_revision)
        if entry.op == "create":
            return self._create(entry)
        if entry.op == "update":
            return self._update(entry, target)
        self._delete(entry, target)
        return None

    def _create(self, entry: JournalEntry) -> Rebase:
        document = _document_of(entry)
        try:
            return Rebase(entry.playlist_id, self._store.insert(document))
        except ServiceError as exc:
            if exc.code != "name_taken":
                raise
        return self._save_copy(entry, document)

    def _update(self, entry: JournalEntry, target: Rebase) -> Rebase:
        document = _document_of(entry)
        current = self._kv.get(BUCKET, doc_key(target.target_id))
        if current is None or current.revision != target.target_revision:
            return self._save_copy(entry, document)
        name = document["name"] if target.target_id == entry.playlist_id else current.value["name"]
        changed = {**current.value, "name": name, "items": document["items"], "updated_at": document["updated_at"]}
        try:
            return Rebase(target.target_id, self._store.replace(current.value, current.revision, changed))
        except ServiceError as exc:
            if exc.code not in ("name_taken", "conflict", "not_found"):
                raise
        return self._save_copy(entry, document)

    def _delete(self, entry: JournalEntry, target: Rebase) -> None:
        current = self._kv.get(BUCKET, doc_key(target.target_id))
        if current is None:
            return
        deleted = False
        if current.revision == target.target_revision:
            try:
                deleted = self._store.delete(target.target_id, revision=target.target_revision)
            except NotFound:
                return
        if not deleted:
            log.warning("offline delete of playlist %s by %s dropped: it was changed meanwhile",
                        target.target_id, entry.username)

    def _save_copy(self, entry: JournalEntry, document: dict[str, Any]) -> Rebase:
        """The offline version as a new playlist, so nobody's work is overwritten."""
        for n in range(1, GIVE_UP_AFTER_COPIES + 1):
            copy = {**document, "playlist_id": uuid.uuid4().hex, "name": offline_copy_name(document["name"], n),
                    "created_by": entry.username}
            try:
                revision = self._store.insert(copy)
            except ServiceError as exc:
                if exc.code != "name_taken":
                    raise
                continue
            log.warning("offline %s of playlist %s by %s saved as %r: the playlist had changed meanwhile",
                        entry.op, entry.playlist_id, entry.username, copy["name"])
            return Rebase(copy["playlist_id"], revision)
        raise ServiceError("internal", f"no free name for an offline copy of {document['name']!r}")


def _document_of(entry: JournalEntry) -> dict[str, Any]:
    if entry.document is None:
        raise ValueError(f"journal entry {entry.seq} ({entry.op}) has no document")
    return entry.document
