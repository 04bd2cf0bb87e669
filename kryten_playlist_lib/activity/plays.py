"""Now playing and play counts, counted once per (uid, media id) however many replicas hear the event.

The count-once rule (nats.md section 4): every replica tries to move
`nowplaying` to the new media with compare-and-set; the one whose write sticks
counts the play. A replica that finds the same (uid, media id) already there
(the other replica won, or the robot reconnected and resent the current media)
changes nothing. A replica that finds a newer media there (it was slow, and a
later change already landed) changes nothing either, so now playing never moves
backwards and a late replica never counts an old play a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kryten_playlist_lib.activity.stats import GLOBAL_KEY, GLOBAL_ZERO, add_to_daily, item_zero
from kryten_playlist_lib.bus.keys import encode_segment
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.timeutil import iso, parse_iso, utcnow

BUCKET = "analytics"
NOWPLAYING_KEY = "nowplaying"


@dataclass(frozen=True)
class MediaChange:
    """One `changemedia`, with the uid of the `setcurrent` before it and the catalog's verdict."""

    uid: int | None
    media_type: str
    media_id: str
    title: str | None
    duration_seconds: int | None
    video_id: str | None  # None: not a catalog item
    at: datetime  # when the robot saw the change (the envelope's timestamp)


class _Unchanged(Exception):
    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class Plays:
    def __init__(self, kv: KvStore) -> None:
        self._kv = kv

    def current(self) -> dict[str, Any] | None:
        """The `nowplaying` document, or None when nothing is known to play."""
        entry = self._kv.get(BUCKET, NOWPLAYING_KEY)
        return entry.value if entry is not None and isinstance(entry.value, dict) else None

    def media_changed(self, change: MediaChange) -> str:
        """Record a media change: `counted`, `not_catalog` (moved, nothing to count), `repeat` or `stale`."""
        document = _nowplaying(change)

        def move(old: Any) -> dict[str, Any]:
            if isinstance(old, dict):
                if (old.get("uid"), old.get("media_id")) == (change.uid, change.media_id):
                    raise _Unchanged("repeat")
                if _started(old) > change.at:
                    raise _Unchanged("stale")
            return document

        try:
            self._kv.update(BUCKET, NOWPLAYING_KEY, move)
        except _Unchanged as unchanged:
            return unchanged.outcome
        if change.video_id is None:
            return "not_catalog"
        self._count(change.video_id, change)
        return "counted"

    def _count(self, video_id: str, change: MediaChange) -> None:
        seconds = change.duration_seconds or 0
        played_at = iso(change.at)
        self._kv.update(BUCKET, GLOBAL_KEY, lambda old: {
            **GLOBAL_ZERO, **(old or {}), "updated_at": iso(utcnow()),
            "items_played": (old or {}).get("items_played", 0) + 1,
            "duration_played_seconds": (old or {}).get("duration_played_seconds", 0) + seconds})
        self._kv.update(BUCKET, f"items/{encode_segment(video_id)}", lambda old: {
            **item_zero(video_id), **(old or {}), "play_count": (old or {}).get("play_count", 0) + 1,
            "last_played_at": played_at,
            "duration_seconds": change.duration_seconds or (old or {}).get("duration_seconds")})
        add_to_daily(self._kv, BUCKET, "plays", change.at.date(), video_id)


def _nowplaying(change: MediaChange) -> dict[str, Any]:
    return {"video_id": change.video_id, "uid": change.uid, "media_type": change.media_type,
            "media_id": change.media_id, "title": change.title, "duration_seconds": change.duration_seconds,
            "started_at": iso(change.at), "schema_version": 1}


def _started(document: dict[str, Any]) -> datetime:
    try:
        return parse_iso(str(document.get("started_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)  # unreadable: anything new replaces it

