"""The cleaning rules of behaviour.md section 7, applied to a stream of connector items.

`clean_items` never holds the catalog in memory: it yields usable items one by
one and keeps only the set of ids already seen, so a refresh of a million
items costs a set of strings, not a list of objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from kryten_playlist_lib.catalog.items import CatalogItem

VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# SQLite INTEGER is 64-bit; anything near that is a broken source, not a film.
MAX_DURATION_SECONDS = 2**31 - 1


@dataclass
class CleanCounts:
    """Why items were left out; keys of `as_dict` are the reasons the refresh reports."""

    skipped_missing: int = 0
    skipped_invalid_id: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CleanResult:
    """The usable items of one connector run, counting the rest as they stream past.

    Iterate it once; the counts are final when the iteration has ended.
    """

    def __init__(self, items: Iterable[CatalogItem]) -> None:
        # One iterator for the whole life of the result, so iterating again cannot count twice.
        self._source = iter(items)
        self._seen: set[str] = set()
        self.skipped = CleanCounts()

    def __iter__(self) -> Iterator[CatalogItem]:
        for raw in self._source:
            item = self._accept(raw)
            if item is not None:
                yield item

    def counts(self) -> dict[str, int]:
        return self.skipped.as_dict()

    def _accept(self, raw: CatalogItem) -> CatalogItem | None:
        video_id = _text(raw.video_id)
        title = _text(raw.title)
        if video_id is None or title is None:
            self.skipped.skipped_missing += 1
            return None
        if not VIDEO_ID_RE.fullmatch(video_id):
            self.skipped.skipped_invalid_id += 1
            return None
        if video_id in self._seen:
            self.skipped.duplicates += 1
            return None
        self._seen.add(video_id)
        return CatalogItem(video_id, title, clean_categories(raw.categories),
                           clean_duration(raw.duration_seconds), clean_thumbnail(raw.thumbnail_url))


def clean_items(items: Iterable[CatalogItem]) -> CleanResult:
    """Stream `items` through the cleaning rules; see `CleanResult`."""
    return CleanResult(items)


def clean_categories(categories: object) -> tuple[str, ...]:
    """Trimmed names, first occurrence kept, empties and non-strings dropped."""
    if isinstance(categories, str):
        categories = (categories,)
    if not isinstance(categories, Iterable):
        return ()
    # A dict keeps insertion order, so it de-duplicates without reordering.
    kept = dict.fromkeys(name for value in categories if (name := _text(value)) is not None)
    return tuple(kept)


def clean_duration(value: object) -> int | None:
    """Whole non-negative seconds; anything else (negative, NaN, bool, text) is unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not 0 <= value <= MAX_DURATION_SECONDS:  # also false for NaN
        return None
    # Half up rather than round()'s half-to-even: 0.5 s of a clip is still playing time.
    return math.floor(value + 0.5) if isinstance(value, float) else value


def clean_thumbnail(value: object) -> str | None:
    """An absolute http(s) URL, or None: anything else would be a broken or unsafe <img src>."""
    url = _text(value)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _text(value: object) -> str | None:
    """`value` trimmed, or None when it is not a string or nothing is left."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None
