"""The replica's own SQLite state file: mirrored KV values and the offline journal.

One connection shared by the threads behind a lock: writes are small and
few, and one connection keeps WAL checkpoints simple. `synchronous=FULL`
because an acknowledged offline write must survive a power cut.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kryten_playlist_lib.bus.kv import Entry
from kryten_playlist_lib.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS mirror (
  namespace TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
  value TEXT, revision INTEGER NOT NULL,
  PRIMARY KEY (namespace, bucket, key));
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, op TEXT NOT NULL,
  playlist_id TEXT NOT NULL, base_revision INTEGER NOT NULL, document TEXT,
  username TEXT NOT NULL, accepted_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rebase (
  namespace TEXT NOT NULL, playlist_id TEXT NOT NULL, base_revision INTEGER NOT NULL,
  target_id TEXT NOT NULL, target_revision INTEGER NOT NULL,
  PRIMARY KEY (namespace, playlist_id, base_revision));
"""


@dataclass(frozen=True)
class MirrorChange:
    """One key's new state as a KV watch saw it; `value` None means deleted."""
    bucket: str
    key: str
    value: bytes | None
    revision: int


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: str
    playlist_id: str
    base_revision: int
    document: dict[str, Any] | None
    username: str
    accepted_at: str


@dataclass(frozen=True)
class Rebase:
    target_id: str
    target_revision: int


@dataclass(frozen=True)
class ForcedRow:
    """A mirror row written by an offline write, whatever revision is stored."""
    bucket: str
    key: str
    value: Any
    revision: int


class StateFile:
    def __init__(self, path: str | Path, namespace: str) -> None:
        self.path = Path(path)
        self._namespace = namespace
        self._lock = threading.Lock()
        self._db = _open(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- the mirror ----------------------------------------------------------------

    def apply_changes(self, changes: Iterable[MirrorChange]) -> None:
        """Store each change whose revision is newer than what is stored."""
        with self._transaction() as db:
            for change in changes:
                text = None if change.value is None else change.value.decode("utf-8", "replace")
                db.execute(
                    "INSERT INTO mirror VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, bucket, key) DO UPDATE"
                    " SET value = excluded.value, revision = excluded.revision"
                    " WHERE excluded.revision > mirror.revision",
                    (self._namespace, change.bucket, change.key, text, change.revision))

    def get(self, bucket: str, key: str) -> Entry | None:
        with self._lock:
            row = self._db.execute("SELECT value, revision FROM mirror WHERE namespace = ? AND bucket = ? AND key = ?",
                                   (self._namespace, bucket, key)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return Entry(json.loads(row[0]), row[1])
        except ValueError:
            return None

    # ---- the journal ---------------------------------------------------------------

    def journal_append(self, op: str, playlist_id: str, base_revision: int, document: dict[str, Any] | None,
                       username: str, accepted_at: str, rows: Iterable[ForcedRow]) -> None:
        """The write and the mirror rows that show it, in one durable transaction."""
        with self._transaction() as db:
            db.execute("INSERT INTO journal (namespace, op, playlist_id, base_revision, document, username,"
                       " accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (self._namespace, op, playlist_id, base_revision, _json(document), username, accepted_at))
            for row in rows:
                db.execute("INSERT OR REPLACE INTO mirror VALUES (?, ?, ?, ?, ?)",
                           (self._namespace, row.bucket, row.key, _json(row.value), row.revision))

    def journal(self) -> list[JournalEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, op, playlist_id, base_revision, document, username, accepted_at FROM journal"
                " WHERE namespace = ? ORDER BY seq", (self._namespace,)).fetchall()
        return [JournalEntry(seq, op, pid, base, None if doc is None else json.loads(doc), user, accepted)
                for seq, op, pid, base, doc, user, accepted in rows]

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM journal WHERE namespace = ?",
                                        (self._namespace,)).fetchone()[0])

    def journal_done(self, seq: int, playlist_id: str, base_revision: int, went_to: Rebase | None) -> None:
        """Drop a replayed entry and remember where it went, together."""
        with self._transaction() as db:
            db.execute("DELETE FROM journal WHERE seq = ?", (seq,))
            if went_to is not None:
                db.execute("INSERT OR REPLACE INTO rebase VALUES (?, ?, ?, ?, ?)",
                           (self._namespace, playlist_id, base_revision, went_to.target_id,
                            went_to.target_revision))
            if db.execute("SELECT count(*) FROM journal WHERE namespace = ?",
                          (self._namespace,)).fetchone()[0] == 0:
                db.execute("DELETE FROM rebase WHERE namespace = ?", (self._namespace,))

    def rebase_of(self, playlist_id: str, base_revision: int) -> Rebase | None:
        with self._lock:
            row = self._db.execute("SELECT target_id, target_revision FROM rebase WHERE namespace = ?"
                                   " AND playlist_id = ? AND base_revision = ?",
                                   (self._namespace, playlist_id, base_revision)).fetchone()
        return None if row is None else Rebase(row[0], row[1])


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _open(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # it holds session documents
        os.close(fd)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError("state_path", f"the state file {path} cannot be opened: {exc}") from exc
    return db
