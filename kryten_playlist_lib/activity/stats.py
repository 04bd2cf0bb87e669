"""Statistics: the per-day documents plays and likes write, and the top lists and summary read from them.

A daily document is `daily/{YYYY-MM-DD}` → `{"date", <field>: {video_id: n}, "expires_at", "schema_version"}`
(`plays` in the analytics bucket, `likes` in the likes bucket), kept 400 days.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.kv_combined import CombinedUpdates
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.timeutil import iso, utcnow

DAILY_KEEP_DAYS = 400
GLOBAL_KEY = "counters/global"
GLOBAL_ZERO: dict[str, Any] = {"items_queued": 0, "items_played": 0, "duration_queued_seconds": 0,
                               "duration_played_seconds": 0, "updated_at": None, "schema_version": 1}


def item_zero(video_id: str) -> dict[str, Any]:
    """A fresh `items/{video_id}` document of the analytics bucket (plays and queue apply both write it)."""
    return {"video_id": video_id, "play_count": 0, "queue_count": 0, "last_played_at": None,
            "last_queued_at": None, "duration_seconds": None, "schema_version": 1}


# top list kind -> (bucket, field of the daily document, count name in the answer)
TOP_LISTS = {"played": ("analytics", "plays", "play_count"), "liked": ("likes", "likes", "like_count")}


def daily_key(day: date) -> str:
    return f"daily/{day.isoformat()}"


def add_to_daily(kv: KvStore | CombinedUpdates, bucket: str, field: str, day: date, video_id: str) -> None:
    """Raise one video's count of `day` by one, with compare-and-set (`CombinedUpdates` for a busy key)."""
    expires_at = iso(datetime.combine(day, time(), timezone.utc) + timedelta(days=DAILY_KEEP_DAYS))

    def bump(old: Any) -> dict[str, Any]:
        counts = dict(old.get(field) or {}) if isinstance(old, dict) else {}
        counts[video_id] = _count(counts.get(video_id)) + 1
        return {"date": day.isoformat(), field: counts, "expires_at": expires_at, "schema_version": 1}

    kv.update(bucket, daily_key(day), bump)


class Stats:
    def __init__(self, kv: KvStore, catalog: CatalogReader) -> None:
        self._kv = kv
        self._catalog = catalog

    def summary(self) -> dict[str, Any]:
        """The global counters document, with zeros for whatever has not been counted yet."""
        entry = self._kv.get("analytics", GLOBAL_KEY)
        stored = entry.value if entry is not None and isinstance(entry.value, dict) else {}
        return {**GLOBAL_ZERO, **stored}

    def top(self, kind: str, window_days: int, limit: int) -> dict[str, Any]:
        """The `limit` most played or liked items of the last `window_days` days (today included)."""
        bucket, field, count_name = TOP_LISTS[kind]
        totals = self._window_totals(bucket, field, window_days)
        titles = self._titles(totals)
        ranked = sorted(totals, key=lambda video_id: _rank(totals[video_id], titles.get(video_id), video_id))
        items = [{"video_id": video_id, "title": titles.get(video_id), count_name: totals[video_id]}
                 for video_id in ranked[:limit]]
        return {"window_days": window_days, "items": items}

    def _window_totals(self, bucket: str, field: str, window_days: int) -> Counter[str]:
        today = utcnow().date()
        totals: Counter[str] = Counter()
        for back in range(window_days):
            entry = self._kv.get(bucket, daily_key(today - timedelta(days=back)))
            counts = entry.value.get(field) if entry is not None and isinstance(entry.value, dict) else None
            if isinstance(counts, dict):
                totals.update({video_id: _count(n) for video_id, n in counts.items()})
        return +totals

    def _titles(self, video_ids: Counter[str]) -> dict[str, str]:
        try:
            items = self._catalog.items_by_id(video_ids)
        except ServiceError as exc:
            if exc.code != "no_snapshot":
                raise
            return {}  # counts outlive the catalog: without a snapshot the titles are just unknown
        return {video_id: item["title"] for video_id, item in items.items()}


def _rank(count: int, title: str | None, video_id: str) -> tuple[int, bool, str, str]:
    # Count first; ties by title as people read it, untitled ones last, the id keeps the order total.
    return -count, title is None, (title or "").casefold(), video_id


def _count(value: Any) -> int:
    # A hand-edited or damaged document must not break a top list: non-counts count as zero.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
