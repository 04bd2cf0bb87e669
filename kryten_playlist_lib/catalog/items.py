"""CatalogItem: one video of the catalog, as connectors yield it and the store keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CatalogItem:
    """As a connector read it; `catalog.clean` decides whether it is usable."""

    video_id: str | None
    title: str | None
    categories: tuple[str, ...] = ()
    duration_seconds: int | None = None
    thumbnail_url: str | None = None


class Connector(Protocol):
    """A catalog source. Adding one is writing one class with this method."""

    def iter_catalog_items(self) -> Iterator[CatalogItem]: ...
