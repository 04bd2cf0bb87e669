"""Keeps the state file's mirror in step with KV: fresh watches on every connect.

nats-py's watch first delivers the last value of every key (delete markers
too), then each change, so a new watch after a reconnect also brings the
mirror up to date with what happened during the outage. The callbacks run
on the NATS loop and only queue; one writer thread stores the changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import Any

import nats.errors

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.keys import namespace_prefix
from kryten_playlist_lib.bus.kv import BUCKETS
from kryten_playlist_lib.mirror.state_file import MirrorChange, StateFile

log = logging.getLogger("kryten_playlist.mirror")

# bucket → the relative key prefixes kept from it ("" keeps every key)
MIRRORED: dict[str, tuple[str, ...]] = {"playlists": ("playlists/",), "auth": ("session/",), "acl": ("",)}
DELETED = ("DEL", "PURGE")
BATCH_MAX = 500


QueueItem = MirrorChange | threading.Event | None  # a change, a "tell me when stored" marker, or stop


class MirrorWatcher:
    def __init__(self, bridge: NatsBridge, state: StateFile, namespace: str) -> None:
        self._bridge = bridge
        self._state = state
        self._prefix = namespace_prefix(namespace)
        self._queue: queue.Queue[QueueItem] = queue.Queue()
        self._pumps: list[asyncio.Future[None]] = []
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_changes, name="mirror-writer", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(5)
            self._writer = None

    def wait_stored(self, timeout: float) -> bool:
        """True once every change queued before this call is in the state file."""
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout)

    async def restart_watches(self) -> None:
        """A connect hook: drop the watches of the last connection and watch each bucket anew."""
        for pump in self._pumps:
            pump.cancel()  # its `finally` stops the watch
        self._pumps = []
        js = self._bridge.nc.jetstream()
        for name, prefixes in MIRRORED.items():
            kv = await js.key_value(BUCKETS[name])
            pump = asyncio.ensure_future(self._pump(name, prefixes, await kv.watch(">")))
            self._pumps.append(pump)
            self._bridge.track(pump)

    async def _pump(self, bucket: str, prefixes: tuple[str, ...], watcher: Any) -> None:
        try:
            async for entry in watcher:
                if entry is None or not entry.key.startswith(self._prefix):
                    continue
                key = entry.key[len(self._prefix):]
                if key.startswith(prefixes):
                    value = None if entry.operation in DELETED else entry.value
                    self._queue.put(MirrorChange(bucket, key, value, entry.revision))
        finally:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await watcher.stop()

    def _write_changes(self) -> None:
        """Store changes in batches; a marker is set once everything before it is stored."""
        while True:
            batch: list[MirrorChange] = []
            markers: list[threading.Event] = []
            item = self._queue.get()
            while True:
                if item is None:
                    self._store(batch, markers)
                    return
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= BATCH_MAX:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._store(batch, markers)

    def _store(self, batch: list[MirrorChange], markers: list[threading.Event]) -> None:
        try:
            if batch:
                self._state.apply_changes(batch)
        except Exception:
            log.exception("could not store %d mirrored change(s)", len(batch))
        for marker in markers:
            marker.set()
