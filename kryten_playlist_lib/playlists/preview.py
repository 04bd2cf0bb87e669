"""A marathon preview request: resolve its sources to items, then let `domain.marathon` order them."""

from __future__ import annotations

from string import ascii_uppercase
from typing import Any

from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.domain.marathon import MAX_SOURCES, Source, SourceItem, generate
from kryten_playlist_lib.errors import ValidationError
from kryten_playlist_lib.playlists.store import PlaylistStore

# A category source is every item of the category; this bounds one preview's reading of the catalog.
CATEGORY_ITEMS_MAX = 100_000


class MarathonPreview:
    def __init__(self, store: PlaylistStore, catalog: CatalogReader) -> None:
        self._store = store
        self._catalog = catalog

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        sources = body.get("sources")
        if not isinstance(sources, list) or not 1 <= len(sources) <= MAX_SOURCES:
            raise ValidationError({"sources": f"must be a list of 1 to {MAX_SOURCES} sources"})
        resolved = [Source(ascii_uppercase[n], self._items(n, source)) for n, source in enumerate(sources)]
        result = generate(resolved, method=body.get("method", "concatenate"),
                          shuffle_seed=body.get("shuffle_seed"), interleave_pattern=body.get("interleave_pattern"),
                          preserve_episode_order=body.get("preserve_episode_order", True),
                          max_duration_seconds=body.get("max_duration_seconds"))
        return result.to_json()

    def _items(self, position: int, source: Any) -> list[SourceItem]:
        kind = source.get("type") if isinstance(source, dict) else None
        if kind == "playlist":
            return self._playlist_items(position, source.get("playlist_id"))
        if kind == "category":
            return self._category_items(position, source.get("category"))
        raise ValidationError({f"sources.{position}.type": "must be playlist or category"})

    def _playlist_items(self, position: int, playlist_id: Any) -> list[SourceItem]:
        if not isinstance(playlist_id, str):
            raise ValidationError({f"sources.{position}.playlist_id": "must be a playlist id"})
        document, _revision = self._store.get(playlist_id)
        live = self._catalog.items_if_built(item["video_id"] for item in document["items"])
        items = []
        for item in document["items"]:
            current = live.get(item["video_id"])
            # Items not in the snapshot keep the title and duration stored in the playlist (behaviour.md 4).
            known = current or item
            items.append(SourceItem(item["video_id"], known.get("title"), known.get("duration_seconds"),
                                    available=current is not None))
        return items

    def _category_items(self, position: int, category: Any) -> list[SourceItem]:
        if not isinstance(category, str) or not category.strip():
            raise ValidationError({f"sources.{position}.category": "must be a category name"})
        page = self._catalog.search(None, [category], limit=CATEGORY_ITEMS_MAX)
        return [SourceItem(item["video_id"], item["title"], item["duration_seconds"]) for item in page.items]
