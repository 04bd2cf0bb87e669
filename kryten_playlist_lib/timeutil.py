"""UTC timestamps as the API and KV write them: ISO 8601 with a `Z` suffix."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """`2026-11-24T12:34:56.123Z`: millisecond precision, so short leases and windows compare right."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def iso_in(seconds: float, now: datetime | None = None) -> str:
    return iso((now or utcnow()) + timedelta(seconds=seconds))


def is_expired(value: Any, now: datetime | None = None) -> bool:
    """A stored value with an `expires_at` in the past counts as absent (storage.md)."""
    if not isinstance(value, dict) or not isinstance(value.get("expires_at"), str):
        return False
    try:
        return parse_iso(value["expires_at"]) <= (now or utcnow())
    except ValueError:
        return False
