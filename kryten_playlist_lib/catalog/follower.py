"""SnapshotFollower: keep this replica's live catalog on the snapshot that KV `current` names.

The replica that refreshes the catalog builds the file itself and swaps its
link before `current` moves; every other replica learns of the move from a
KV watch and takes the file from the object store `kryten_playlist_catalog`
(storage.md): download beside the link under a temporary name, verify its
`snapshot_meta`, rename to `catalog-{id}.sqlite3`, swap the link, prune.

The watch callback runs on the NATS loop, so it only wakes one worker
thread; the download and the file work happen there, one at a time. While a
download runs, a newer `current` wins: the finished download is dropped if
`current` moved meanwhile, and the worker starts over. Any failure is
logged, the old snapshot stays live, and the worker tries again on the next
change or after a doubling pause.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.catalog.search import SNAPSHOT_ID_PATTERN
from kryten_playlist_lib.catalog.store import (
    SCHEMA_VERSION,
    SNAPSHOT_FILE,
    fsync_path,
    prune_snapshot_files,
    read_snapshot_meta,
    replace_link,
    snapshot_path,
)
from kryten_playlist_lib.config import Config

log = logging.getLogger("kryten_playlist.follower")

BUCKET = "snapshot"
CURRENT_KEY = "current"
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
# A safety net under the watch: a missed change, or a link a failed local
# refresh moved back, is mended within this time.
RECHECK_SECONDS = 300.0


class SnapshotStale(Exception):
    """`current` moved on while its snapshot was downloading; the newer one is fetched next."""


class SnapshotFollower:
    def __init__(self, config: Config, kv: KvStore, objects: SnapshotObjects,
                 local_refresh_running: Callable[[], bool] = lambda: False) -> None:
        self._link = Path(config.sqlite_path)
        self._local_refresh_running = local_refresh_running
        self._keep = config.keep_snapshots
        self._kv = kv
        self._objects = objects
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # What the last attempt ended with, for logs and tests: None after a success.
        self.last_error: str | None = None

    # ---- on the loop ---------------------------------------------------------

    async def subscribe(self) -> None:
        """Start the worker and watch the snapshot bucket; the watch's first replay of `current` is a change too."""
        self._start_worker()
        await self._kv.watch(BUCKET, self._on_change)

    def _on_change(self, key: str) -> None:
        if key == CURRENT_KEY:
            self._wake.set()

    # ---- any thread ------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to end; it never holds up the caller (which may be the NATS loop)."""
        self._stopping.set()
        self._wake.set()

    def _start_worker(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._work, name="snapshot-follower", daemon=True)
        self._thread.start()

    # ---- the worker thread -------------------------------------------------------

    def _work(self) -> None:
        pause = FIRST_RETRY_SECONDS
        wait = RECHECK_SECONDS
        while True:
            self._wake.wait(wait)
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                self.follow()
            except SnapshotStale:
                continue  # the wake flag is set: go again at once for the newer one
            except Exception as exc:
                self.last_error = _describe(exc)
                log.warning("catalog snapshot not taken over (%s); the old one stays live, next try in %.0f s",
                            self.last_error, pause)
                wait, pause = pause, min(pause * 2, MAX_RETRY_SECONDS)
                continue
            self.last_error = None
            wait, pause = RECHECK_SECONDS, FIRST_RETRY_SECONDS

    def follow(self) -> None:
        """Make the local live file the snapshot `current` names (blocking; the worker's one step)."""
        entry = self._kv.get(BUCKET, CURRENT_KEY)
        if entry is None:
            return  # no snapshot built yet anywhere
        document = entry.value
        snapshot_id = str(document.get("snapshot_id"))
        # The id becomes a file name: never trust it further than the pattern.
        if not SNAPSHOT_ID_PATTERN.fullmatch(snapshot_id):
            raise ValueError(f"current names an invalid snapshot id {snapshot_id!r}")
        if self._live_id() == snapshot_id:
            return  # this replica built it, or took it over already
        if self._local_refresh_running():
            return  # its link swap comes before `current` moves, and that move wakes us again
        path = snapshot_path(self._link, snapshot_id)
        if not _is_snapshot(path, document):
            self._download(snapshot_id, path, document)
        replace_link(self._link, path.name)
        log.info("catalog snapshot %s is live (%s items)", snapshot_id, document.get("item_count"))
        self._prune(snapshot_id)

    def _live_id(self) -> str | None:
        """The snapshot the link serves, read from the file itself (a broken file counts as none)."""
        try:
            return str(read_snapshot_meta(self._link)["snapshot_id"])
        except (OSError, ValueError):
            return None

    def _download(self, snapshot_id: str, path: Path, document: dict[str, Any]) -> None:
        """Fetch into a temporary file beside the link, check it, and rename it to `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.download")
        try:
            self._objects.download(snapshot_id, temporary)
            verify_snapshot(temporary, document)
            if self._wake.is_set() and self._current_id() != snapshot_id:
                raise SnapshotStale(snapshot_id)
            fsync_path(temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def _current_id(self) -> str | None:
        entry = self._kv.get(BUCKET, CURRENT_KEY)
        return None if entry is None else str(entry.value.get("snapshot_id"))

    def _prune(self, live_id: str) -> None:
        """Keep the live file and the newest `keep_snapshots - 1` built before it, as the refresh does.

        Age is the build time each file records (milliseconds; ids only carry
        whole seconds). Files built after the live one are kept: a refresh on
        this replica may be about to publish one.
        """
        built = {match.group(1): _built_at(self._link.parent / name) for name in os.listdir(self._link.parent)
                 if (match := SNAPSHOT_FILE.match(name))}
        live_at = built.get(live_id, "")
        older = sorted((at, snapshot_id) for snapshot_id, at in built.items()
                       if at <= live_at and snapshot_id != live_id)
        keep = {snapshot_id for _at, snapshot_id in older[max(0, len(older) - (self._keep - 1)):]}
        keep |= {snapshot_id for snapshot_id, at in built.items() if at > live_at} | {live_id}
        try:
            prune_snapshot_files(self._link.parent, keep)
        except OSError as exc:
            log.warning("old snapshot files were not pruned: %s", exc)


def verify_snapshot(path: Path, document: dict[str, Any]) -> None:
    """Raise ValueError unless the file at `path` is the snapshot `document` describes."""
    meta = read_snapshot_meta(path)
    if meta["snapshot_id"] != document.get("snapshot_id"):
        raise ValueError(f"the file holds snapshot {meta['snapshot_id']}, not {document.get('snapshot_id')}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"snapshot schema {meta['schema_version']} is not {SCHEMA_VERSION}")
    expected = document.get("item_count")
    if isinstance(expected, int) and meta["item_count"] != expected:
        raise ValueError(f"the file holds {meta['item_count']} items, current says {expected}")


def _is_snapshot(path: Path, document: dict[str, Any]) -> bool:
    """True when a good copy of the snapshot is already here (built or fetched before)."""
    try:
        verify_snapshot(path, document)
    except (OSError, ValueError):
        return False
    return True


def _built_at(path: Path) -> str:
    """The file's own `created_at`; an unreadable file sorts first, so it is the first to go."""
    try:
        return str(read_snapshot_meta(path)["created_at"])
    except (OSError, ValueError):
        return ""


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message or type(exc).__name__
