"""The jsonl connector: one JSON object a line with the CatalogItem fields, from a file or standard input.

A line that cannot be read (not JSON, not an object, not UTF-8) is yielded as
an empty item, so the cleaner counts it as skipped and one bad line never
costs the whole import.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import BinaryIO

from kryten_playlist_lib.catalog.clean import clean_duration
from kryten_playlist_lib.catalog.connectors.base import ConnectorError, string_or_none
from kryten_playlist_lib.catalog.items import CatalogItem

log = logging.getLogger("kryten_playlist.catalog.jsonl")

STDIN = "-"
# Enough to find the problem in a file; a file of garbage must not flood the log.
BAD_LINES_LOGGED = 5
_UNREADABLE = CatalogItem(None, None)


class JsonlConnector:
    """Reads `source`: a file path, or `-` for standard input."""

    def __init__(self, source: str) -> None:
        self._source = source

    def iter_catalog_items(self) -> Iterator[CatalogItem]:
        if self._source == STDIN:
            yield from self._read(sys.stdin.buffer)
            return
        try:
            stream = open(self._source, "rb")
        except OSError as exc:
            raise ConnectorError(f"cannot open the jsonl file {self._source}: {exc.strerror or exc}") from exc
        with stream:
            yield from self._read(stream)

    def _read(self, stream: BinaryIO) -> Iterator[CatalogItem]:
        bad = 0
        # Bytes, not text: one line in another encoding is one skipped item, not a failed import.
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            item = _item_from_line(line)
            if item is _UNREADABLE:
                bad += 1
                if bad <= BAD_LINES_LOGGED:
                    log.warning("%s line %d is not a JSON object; skipped", self._source, number)
            yield item


def _item_from_line(line: bytes) -> CatalogItem:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return _UNREADABLE
    if not isinstance(data, dict):
        return _UNREADABLE
    categories = data.get("categories")
    return CatalogItem(
        string_or_none(data.get("video_id")),
        string_or_none(data.get("title")),
        tuple(name for name in categories if isinstance(name, str)) if isinstance(categories, list) else (),
        clean_duration(data.get("duration_seconds")),
        string_or_none(data.get("thumbnail_url")),
    )
