"""Reads that come from KV while NATS is there and from the local mirror while it is not."""

from __future__ import annotations

from kryten_playlist_lib.bus.kv import Entry, KvStore
from kryten_playlist_lib.errors import NatsUnavailable
from kryten_playlist_lib.mirror.state_file import StateFile
from kryten_playlist_lib.timeutil import is_expired


class MirroredReads:
    def __init__(self, kv: KvStore, state: StateFile) -> None:
        self._kv = kv
        self._state = state

    @property
    def offline(self) -> bool:
        return not self._kv.ready

    def get(self, bucket: str, key: str) -> Entry | None:
        """Like `KvStore.get`; from the mirror when NATS is down or a read fails for lack of it."""
        if not self.offline:
            try:
                return self._kv.get(bucket, key)
            except NatsUnavailable:
                pass
        return self.from_mirror(bucket, key)

    def from_mirror(self, bucket: str, key: str) -> Entry | None:
        entry = self._state.get(bucket, key)
        if entry is None or is_expired(entry.value):
            return None
        return entry
