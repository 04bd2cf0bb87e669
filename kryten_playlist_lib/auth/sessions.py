"""Sessions in KV (`session/{id}`): made at sign-in, read on every request, deleted at logout."""

from __future__ import annotations

import re
from typing import Any

from kryten_playlist_lib.bus.kv import KvReader, KvStore
from kryten_playlist_lib.domain.otp import new_session_id
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow

BUCKET = "auth"
COOKIE_NAME = "kryten_playlist_session"
# token_urlsafe(32) is 43 characters; anything else is not one of ours and is never looked up.
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Sessions:
    def __init__(self, kv: KvStore, ttl_seconds: int, reads: KvReader | None = None) -> None:
        self._kv = kv
        self._reads = reads or kv  # the local mirror's reads keep signed-in people in during an outage
        self.ttl_seconds = ttl_seconds

    def create(self, username: str, role: str, ip: str) -> tuple[str, dict[str, Any]]:
        session_id = new_session_id()
        now = utcnow()
        document = {"username": username, "role": role, "created_at": iso(now),
                    "expires_at": iso_in(self.ttl_seconds, now), "ip": ip, "schema_version": 1}
        self._kv.put(BUCKET, f"session/{session_id}", document)
        return session_id, document

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or not SESSION_ID.match(session_id):
            return None
        entry = self._reads.get(BUCKET, f"session/{session_id}")
        return entry.value if entry else None

    def delete(self, session_id: str | None) -> None:
        if session_id and SESSION_ID.match(session_id):
            self._kv.delete(BUCKET, f"session/{session_id}")
