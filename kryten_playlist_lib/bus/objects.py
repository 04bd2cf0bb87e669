"""Snapshot files in the JetStream object store `kryten_playlist_catalog`.

One object per snapshot, named `{namespace}/{snapshot_id}`, so replicas that
did not build a snapshot can fetch it (storage.md).
"""

from __future__ import annotations

from pathlib import Path

import nats.js.errors

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.kv import OBJECT_STORE
from kryten_playlist_lib.errors import NotFound, ServiceError

TRANSFER_TIMEOUT_SECONDS = 600.0


class SnapshotObjects:
    def __init__(self, bridge: NatsBridge, namespace: str) -> None:
        self._bridge = bridge
        self._namespace = namespace

    def _name(self, snapshot_id: str) -> str:
        return f"{self._namespace}/{snapshot_id}"

    def upload(self, snapshot_id: str, path: Path) -> None:
        async def put() -> None:
            store = await self._bridge.nc.jetstream().object_store(OBJECT_STORE)
            with open(path, "rb") as data:
                await store.put(self._name(snapshot_id), data)

        self._bridge.run(put, timeout=TRANSFER_TIMEOUT_SECONDS)

    def download(self, snapshot_id: str, path: Path) -> None:
        """Write the snapshot's object into `path` (created or truncated).

        NotFound when the store has no such object; a ServiceError when the
        bytes do not match the digest stored with it or cannot be written.
        Either way `path` may hold a partial file: the caller removes it.
        """
        async def fetch() -> None:
            store = await self._bridge.nc.jetstream().object_store(OBJECT_STORE)
            try:
                with open(path, "wb") as out:
                    # writeinto streams chunk by chunk instead of holding the whole file in memory.
                    await store.get(self._name(snapshot_id), writeinto=out)
            except nats.js.errors.ObjectNotFoundError:
                raise NotFound(f"snapshot {snapshot_id} is not in the object store") from None
            except nats.js.errors.DigestMismatchError:
                raise ServiceError("internal", f"snapshot {snapshot_id} did not match its digest") from None
            except OSError as exc:
                # Said here: the bridge would report any OSError as "NATS unavailable".
                raise ServiceError("internal", f"cannot write {path}: {exc.strerror or exc}") from exc

        self._bridge.run(fetch, timeout=TRANSFER_TIMEOUT_SECONDS)

    def snapshot_ids(self) -> list[str]:
        """The snapshot ids of this namespace held in the store."""
        async def names() -> list[str]:
            store = await self._bridge.nc.jetstream().object_store(OBJECT_STORE)
            try:
                infos = await store.list(ignore_deletes=True)
            except nats.js.errors.NotFoundError:
                return []
            prefix = f"{self._namespace}/"
            return [info.name[len(prefix):] for info in infos if info.name.startswith(prefix)]

        return self._bridge.run(names, timeout=30.0)

    def delete(self, snapshot_id: str) -> None:
        async def remove() -> None:
            store = await self._bridge.nc.jetstream().object_store(OBJECT_STORE)
            try:
                await store.delete(self._name(snapshot_id))
            except nats.js.errors.NotFoundError:
                pass

        self._bridge.run(remove, timeout=30.0)
