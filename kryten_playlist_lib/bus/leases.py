"""Leases in the `kryten_playlist_locks` bucket: one holder per name across all replicas.

Taken with `create`, renewed with compare-and-set, released with a
revision-checked delete, and taken over only after `expires_at` has passed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow

log = logging.getLogger("kryten_playlist.leases")

BUCKET = "locks"


@dataclass
class Lease:
    name: str
    owner: str
    revision: int
    expires_at: str


class Leases:
    def __init__(self, kv: KvStore, owner: str) -> None:
        self._kv = kv
        self.owner = owner

    def _document(self, ttl_seconds: float) -> dict[str, object]:
        now = utcnow()
        return {"owner": self.owner, "acquired_at": iso(now), "expires_at": iso_in(ttl_seconds, now),
                "schema_version": 1}

    def acquire(self, name: str, ttl_seconds: float) -> Lease | None:
        """The lease, or None while someone else holds an unexpired one."""
        document = self._document(ttl_seconds)
        revision = self._kv.create(BUCKET, name, document)
        if revision is None:
            return None
        return Lease(name, self.owner, revision, str(document["expires_at"]))

    def renew(self, lease: Lease, ttl_seconds: float) -> bool:
        """Push the expiry out; False when the lease was lost (expired and taken by another)."""
        document = self._document(ttl_seconds)
        revision = self._kv.compare_and_set(BUCKET, lease.name, document, lease.revision)
        if revision is None:
            return False
        lease.revision = revision
        lease.expires_at = str(document["expires_at"])
        return True

    def release(self, lease: Lease) -> bool:
        """Give the lease back; False when it had already passed to someone else."""
        return self._kv.delete(BUCKET, lease.name, revision=lease.revision)


class LeaseKeeper:
    """Renews a lease on a thread while work runs; `lost` turns true once another holder took it."""

    def __init__(self, leases: Leases, lease: Lease, ttl_seconds: float, renew_every_seconds: float) -> None:
        self._leases = leases
        self._lease = lease
        self._ttl = ttl_seconds
        self._every = renew_every_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{lease.name}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.lost = not self._leases.renew(self._lease, self._ttl)
            except Exception as exc:  # NATS trouble: the lease expires by itself if this goes on
                log.warning("lease %s not renewed: %s", self._lease.name, exc)
            if self.lost:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
