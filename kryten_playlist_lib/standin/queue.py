"""The pretend CyTube queue behind the robot stand-in, and what the robot's KV shows of it.

Plain state without I/O: the stand-in changes it on its loop thread and then
publishes the events and writes the KV itself.
"""

from __future__ import annotations

import copy
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

TOO_QUICKLY = "You are adding videos too quickly"


class AddRecord(NamedTuple):
    """One `addvideo` the stand-in answered: when (monotonic), which URL, and how it ended."""

    at: float
    url: str
    outcome: str  # added, refused, too_quickly, silent, silent_added, bad_pos


def format_duration(seconds: int) -> str:
    """CyTube's `formatTime`: `MM:SS`, or `HH:MM:SS` from an hour on."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def title_from_url(url: str) -> str:
    """The last path segment without its extensions: `…/cytube/abc123.json?format=json` → `abc123`."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return last.split(".", 1)[0] or url


class AddRateLimit:
    """CyTube's per-user token bucket on adds; burst and rate are passed in so they stay live knobs."""

    def __init__(self, burst: int) -> None:
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def take(self, burst: int, rate_per_second: float) -> bool:
        """Spend one token if there is one; a refused add spends nothing, as in CyTube."""
        now = time.monotonic()
        self._tokens = min(float(burst), self._tokens + (now - self._updated) * rate_per_second)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class PretendQueue:
    """The channel's queue as CyTube holds it (`items`) and as the robot's KV holds it (`kv_items`).

    The two differ only by the robot's uid-0 quirk (nats.md section 3): its KV
    never applies a delete of uid 0, so that item lingers there, also through a clear.
    """

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.kv_items: list[dict[str, Any]] = []
        self.current_uid: int | None = None
        self._next_uid = 0  # CyTube's first uid is 0
        self._media: dict[str, tuple[str, int]] = {}

    def set_media(self, url: str, title: str, seconds: int) -> None:
        self._media[url] = (title, seconds)

    def add(self, url: str, media_type: str, pos: str, temp: bool, queueby: str) -> tuple[dict[str, Any], Any]:
        """Add at the end, or right after the current item for `next`; returns the item and the `after` of
        the `queue` event (the previous item's uid, or "prepend" when it went first)."""
        title, seconds = self._media.get(url, (title_from_url(url), 0))
        media = {"id": url, "title": title, "seconds": seconds, "duration": format_duration(seconds),
                 "type": media_type, "meta": {}}
        item = {"media": media, "uid": self._next_uid, "temp": temp, "queueby": queueby}
        self._next_uid += 1
        index = len(self.items) if pos == "end" else self._index(self.current_uid) + 1
        self.items.insert(index, item)
        after = self.items[index - 1]["uid"] if index > 0 else "prepend"
        # The KV holds every true item, so `after` is there too; "prepend" is found nowhere and gives 0.
        self.kv_items.insert(_index_in(self.kv_items, after) + 1, copy.deepcopy(item))
        return item, after

    def delete(self, uid: int) -> bool:
        """Remove `uid`; False when CyTube has no such item. Deleting the current item stops playback."""
        index = self._index(uid)
        if index < 0:
            return False
        del self.items[index]
        if self.current_uid == uid:
            self.current_uid = None
        if uid != 0:
            self.kv_items = [item for item in self.kv_items if item["uid"] != uid]
        return True

    def clear(self) -> None:
        self.items = []
        self.current_uid = None
        self.kv_items = [item for item in self.kv_items if item["uid"] == 0]

    def item(self, uid: int) -> dict[str, Any] | None:
        index = self._index(uid)
        return self.items[index] if index >= 0 else None

    def next_uid(self) -> int | None:
        """The item after the current one (the first one when nothing plays), None at the end."""
        index = self._index(self.current_uid) + 1
        return self.items[index]["uid"] if index < len(self.items) else None

    def change_media(self) -> dict[str, Any]:
        """The `changeMedia` payload of the current item (which must exist)."""
        current = self.item(self.current_uid) if self.current_uid is not None else None
        if current is None:
            raise LookupError("nothing is playing")
        return {**copy.deepcopy(current["media"]), "currentTime": 0, "paused": False}

    def resync_kv(self) -> None:
        """What a (re)starting robot writes: the whole playlist, so the KV is right again."""
        self.kv_items = copy.deepcopy(self.items)

    def _index(self, uid: int | None) -> int:
        return _index_in(self.items, uid)


def _index_in(items: list[dict[str, Any]], uid: Any) -> int:
    """The position of `uid` in `items`, -1 when absent."""
    return next((index for index, item in enumerate(items) if item["uid"] == uid), -1)
