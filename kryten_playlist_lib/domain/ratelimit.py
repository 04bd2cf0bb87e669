"""Fixed-window rate limits as a pure function over the stored window document.

The KV layer runs `count_hit` inside a compare-and-set, so every replica
counts into the same window (storage.md `ratelimit/{scope}/{id}`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kryten_playlist_lib.timeutil import iso, parse_iso


@dataclass(frozen=True)
class Limit:
    count: int
    window_seconds: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_seconds: int
    document: dict[str, Any]


def count_hit(document: dict[str, Any] | None, limit: Limit, now: datetime) -> Decision:
    """Count one hit in the current window, or refuse it when the window is full."""
    start = _window_start(document, limit, now)
    if start is None:
        start, count = now, 0
    else:
        count = int(document.get("count", 0)) if document else 0
    ends = start + timedelta(seconds=limit.window_seconds)
    if count >= limit.count:
        wait = max(1, math.ceil((ends - now).total_seconds()))
        return Decision(False, wait, dict(document or {}))
    updated = {"window_start": iso(start), "count": count + 1, "expires_at": iso(ends), "schema_version": 1}
    return Decision(True, 0, updated)


def _window_start(document: dict[str, Any] | None, limit: Limit, now: datetime) -> datetime | None:
    """The start of the stored window while it is still open, else None (a new window begins)."""
    if not document or not isinstance(document.get("window_start"), str):
        return None
    try:
        start = parse_iso(document["window_start"])
    except ValueError:
        return None
    if not start <= now < start + timedelta(seconds=limit.window_seconds):
        return None
    return start
