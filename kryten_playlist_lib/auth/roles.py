"""Deciding a user's role on every request (behaviour.md section 1), cached for at most 5 s.

The cache is also dropped whenever the ACL bucket changes (a KV watch), so
blessing or unblessing someone takes effect at once on every replica.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kryten_playlist_lib.auth.acl import Acl
from kryten_playlist_lib.config import Config

CACHE_SECONDS = 5.0
RankLookup = Callable[[str], "int | None"]


class RoleResolver:
    def __init__(self, acl: Acl, config: Config, rank_of: RankLookup | None = None) -> None:
        self._acl = acl
        self._config = config
        self._rank_of = rank_of
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def role_of(self, username: str) -> str:
        name = username.lower()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        role = self._decide(name)
        with self._lock:
            self._cache[name] = (now, role)
        return role

    def invalidate(self, _changed_key: str = "") -> None:
        with self._lock:
            self._cache.clear()

    def _decide(self, name: str) -> str:
        override = self._acl.override(name)
        if name in self._acl.admins() or override == "admin" or self._rank_reaches(name, self._config.admin_min_rank):
            return "admin"
        if name in self._acl.blessed() or override == "blessed" or \
                self._rank_reaches(name, self._config.blessed_min_rank):
            return "blessed"
        return "viewer"

    def _rank_reaches(self, name: str, minimum: int | None) -> bool:
        if minimum is None or self._rank_of is None:
            return False
        rank = self._rank_of(name)
        return rank is not None and rank >= minimum
