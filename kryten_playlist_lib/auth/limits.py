"""Rate limits shared by every replica: fixed windows in KV, counted with compare-and-set."""

from __future__ import annotations

from typing import Any

from kryten_playlist_lib.bus.keys import encode_segment
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.domain.ratelimit import Decision, Limit, count_hit
from kryten_playlist_lib.errors import RateLimited
from kryten_playlist_lib.timeutil import utcnow

BUCKET = "auth"
# scope -> the config key naming its count (its window is `<key>_window_seconds`)
SCOPES = {
    "otp_request_user": "otp_request_per_user",
    "otp_request_ip": "otp_request_per_ip",
    "otp_verify_user": "otp_verify_per_user",
    "otp_verify_ip": "otp_verify_per_ip",
    "like_user": "like_per_user",
}


class _Refused(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__("rate limited")
        self.decision = decision


class RateLimits:
    def __init__(self, kv: KvStore, config: Config) -> None:
        self._kv = kv
        self._limits = {scope: Limit(getattr(config, key), getattr(config, f"{key}_window_seconds"))
                        for scope, key in SCOPES.items()}

    def hit(self, scope: str, ident: str) -> None:
        """Count one request of `ident` (a lower-cased username or an IP); 429 when its window is full."""
        limit = self._limits[scope]

        def count(document: Any) -> dict[str, Any]:
            decision = count_hit(document, limit, utcnow())
            if not decision.allowed:
                raise _Refused(decision)
            return decision.document

        try:
            self._kv.update(BUCKET, f"ratelimit/{scope}/{encode_segment(ident)}", count)
        except _Refused as refused:
            raise RateLimited(refused.decision.retry_after_seconds, details={"scope": scope}) from None
