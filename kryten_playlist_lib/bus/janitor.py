"""The janitor: deletes expired KV values of one namespace, elected by a lease.

Readers already treat an expired value as absent; this only keeps buckets
from growing. The lease is not released after a sweep, so across all
replicas one sweep runs per interval.
"""

from __future__ import annotations

import logging

from kryten_playlist_lib.bus.kv import BUCKETS, KvStore
from kryten_playlist_lib.bus.leases import Leases
from kryten_playlist_lib.timeutil import is_expired

log = logging.getLogger("kryten_playlist.janitor")

JANITOR_INTERVAL_SECONDS = 300.0


class Janitor:
    def __init__(self, kv: KvStore, leases: Leases, interval_seconds: float = JANITOR_INTERVAL_SECONDS) -> None:
        self._kv = kv
        self._leases = leases
        self.interval_seconds = interval_seconds

    def sweep(self) -> int | None:
        """Delete expired keys if this replica wins the election; the count, or None when another ran."""
        if self._leases.acquire("janitor", self.interval_seconds) is None:
            return None
        deleted = 0
        for bucket in BUCKETS:
            if bucket == "locks":
                continue  # leases expire by takeover, and deleting one here could race its holder
            for key in self._kv.keys(bucket):
                entry = self._kv.get_raw(bucket, key)
                if entry is not None and is_expired(entry.value):
                    deleted += self._kv.delete(bucket, key, revision=entry.revision)
        if deleted:
            log.info("janitor deleted %d expired keys", deleted)
        return deleted
