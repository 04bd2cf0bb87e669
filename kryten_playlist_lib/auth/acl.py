"""The ACL documents in KV: admins, blessed users, per-user role overrides (storage.md)."""

from __future__ import annotations

import re
from typing import Any

from kryten_playlist_lib.bus.keys import user_segment
from kryten_playlist_lib.bus.kv import KvReader, KvStore
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import NatsUnavailable, ValidationError

BUCKET = "acl"
USERNAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def check_username(value: Any, field: str = "username") -> str:
    if not isinstance(value, str) or not USERNAME.match(value):
        raise ValidationError({field: "must be a CyTube name: 1-20 letters, digits, _ or -"})
    return value


class Acl:
    def __init__(self, kv: KvStore, config: Config, reads: KvReader | None = None) -> None:
        self._kv = kv
        self._config = config
        self._reads = reads or kv  # the local mirror's reads keep roles known during an outage

    def admins(self) -> list[str]:
        """Config admins and KV admins, lower-cased and sorted."""
        entry = self._reads.get(BUCKET, "admins")
        stored = entry.value if entry and isinstance(entry.value, list) else []
        return sorted({name.lower() for name in [*self._config.initial_admins, *stored]})

    def blessed(self) -> list[str]:
        """KV `blessed`, seeded once from config `blessed_users` when the key does not exist yet."""
        entry = self._reads.get(BUCKET, "blessed")
        if entry is None:
            seed = sorted({name.lower() for name in self._config.blessed_users})
            try:
                if self._kv.create(BUCKET, "blessed", seed) is not None:
                    return seed
            except NatsUnavailable:
                return seed  # offline: the config's list, never written from here
            entry = self._kv.get(BUCKET, "blessed")
        return sorted(entry.value) if entry and isinstance(entry.value, list) else []

    def override(self, username: str) -> str | None:
        entry = self._reads.get(BUCKET, f"roles/{user_segment(username)}")
        return entry.value.get("role") if entry and isinstance(entry.value, dict) else None

    def bless(self, username: str) -> list[str]:
        name = check_username(username).lower()
        self.blessed()  # the seed comes first, so a first bless cannot drop it
        return self._kv.update(BUCKET, "blessed", lambda old: sorted({*(old or []), name})).value

    def unbless(self, username: str) -> list[str]:
        name = check_username(username).lower()
        self.blessed()
        return self._kv.update(BUCKET, "blessed", lambda old: sorted(set(old or []) - {name})).value
