"""Likes of the current item (behaviour.md section 6), exact under concurrent likes.

Order: what plays now (409 `no_current_item`), the per-user rate limit (429),
then, with a dedupe window, the claim of `dedupe/{video_id}/{user}` with
`create` (an expired claim is taken over), and only then the count. A claim is
released again if the count cannot be raised, so a failed like can be retried.

Every like of the playing item raises the same two keys (its count and the
day's counts), so concurrent likes in this process share their writes through
`CombinedUpdates`: one compare-and-set carries every like that arrived while
the previous one was in flight, each like still getting the count it produced.
"""

from __future__ import annotations

import logging
from typing import Any

from kryten_playlist_lib.activity.plays import Plays
from kryten_playlist_lib.activity.stats import add_to_daily
from kryten_playlist_lib.auth.limits import RateLimits
from kryten_playlist_lib.bus.keys import encode_segment, user_segment
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.kv_combined import CombinedUpdates
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow

log = logging.getLogger("kryten_playlist.likes")

BUCKET = "likes"


def count_key(video_id: str) -> str:
    return f"items/{encode_segment(video_id)}/likes"


def dedupe_key(video_id: str, username: str) -> str:
    return f"dedupe/{encode_segment(video_id)}/{user_segment(username)}"


class Likes:
    def __init__(self, kv: KvStore, limits: RateLimits, plays: Plays, config: Config) -> None:
        self._kv = kv
        self._shared_writes = CombinedUpdates(kv)
        self._limits = limits
        self._plays = plays
        self._window = config.like_dedupe_window_seconds

    def count(self, video_id: str) -> int:
        entry = self._kv.get(BUCKET, count_key(video_id))
        return entry.value.get("like_count", 0) if entry is not None and isinstance(entry.value, dict) else 0

    def like_current(self, username: str) -> dict[str, Any]:
        """`username` likes what plays now: `{"status":"ok"|"duplicate","video_id","like_count"}`."""
        playing = self._plays.current()
        video_id = playing.get("video_id") if playing is not None else None
        if not isinstance(video_id, str):
            raise ServiceError("no_current_item", "Nothing from the catalog is known to be playing right now.")
        self._limits.hit("like_user", username.lower())
        if self._window > 0:
            key = dedupe_key(video_id, username)
            now = utcnow()
            revision = self._kv.create(BUCKET, key, {"liked_at": iso(now), "expires_at": iso_in(self._window, now),
                                                     "schema_version": 1})
            if revision is None:
                return {"status": "duplicate", "video_id": video_id, "like_count": self.count(video_id)}
            like_count = self._raise_or_release(video_id, key, revision)
        else:
            like_count = self._raise_count(video_id)
        self._count_today(video_id)
        return {"status": "ok", "video_id": video_id, "like_count": like_count}

    def _raise_or_release(self, video_id: str, key: str, revision: int) -> int:
        try:
            return self._raise_count(video_id)
        except Exception:
            self._release(key, revision)
            raise

    def _raise_count(self, video_id: str) -> int:
        entry = self._shared_writes.update(BUCKET, count_key(video_id), lambda old: {
            "video_id": video_id, "like_count": (old or {}).get("like_count", 0) + 1,
            "updated_at": iso(utcnow()), "schema_version": 1})
        return int(entry.value["like_count"])

    def _count_today(self, video_id: str) -> None:
        try:
            add_to_daily(self._shared_writes, BUCKET, "likes", utcnow().date(), video_id)
        except ServiceError as exc:
            # The like itself counted and keeps its claim; only top-liked misses it.
            log.warning("like of %s not added to the daily count: %s", video_id, exc.message)

    def _release(self, key: str, revision: int) -> None:
        try:
            if not self._kv.delete(BUCKET, key, revision=revision):
                log.warning("like claim %s changed before it could be released", key)
        except ServiceError as exc:
            # Left in place it only stops this user liking this item again until it expires.
            log.warning("like claim %s not released: %s", key, exc.message)
