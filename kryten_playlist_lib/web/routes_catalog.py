"""Catalog routes (http-api.md, Catalog): search, categories, items, refresh and its job status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.catalog.connectors import CONNECTORS
from kryten_playlist_lib.errors import NotFound, ValidationError
from kryten_playlist_lib.web.access import require
from kryten_playlist_lib.web.http import request_body

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

VIDEO_ID_RULE = r"[A-Za-z0-9_-]{1,64}"
SEARCH_LIMIT_MAX = 200
# Connectors the API may start: jsonl reads a local file or standard input, which only the host's CLI may name.
HTTP_CONNECTORS = tuple(name for name in CONNECTORS if name != "jsonl")


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    def require_reader() -> None:
        if not services.config.catalog_public:
            require(services, "catalog.search")

    @app.get("/api/v1/catalog/search")
    def search() -> dict[str, Any]:
        require_reader()
        query = bottle.request.query
        limit = _int_param(query, "limit", 50, 1, SEARCH_LIMIT_MAX)
        offset = _int_param(query, "offset", 0, 0, None)
        page = services.catalog.search(query.getunicode("q") or None, query.getall("category"),
                                       limit=limit, offset=offset,
                                       snapshot_id=query.getunicode("snapshot_id") or None)
        return {"snapshot_id": page.snapshot_id, "items": page.items, "total": page.total}

    @app.get("/api/v1/catalog/categories")
    def categories() -> dict[str, Any]:
        require_reader()
        snapshot_id, names, counts = services.catalog.categories()
        return {"snapshot_id": snapshot_id, "categories": names, "counts": counts}

    @app.get(f"/api/v1/catalog/items/<video_id:re:{VIDEO_ID_RULE}>")
    def item(video_id: str) -> dict[str, Any]:
        require_reader()
        found = services.catalog.item(video_id)
        if found is None:
            raise NotFound("This video is not in the current catalog snapshot.")
        return found

    @app.post("/api/v1/catalog/refresh")
    def refresh() -> dict[str, Any]:
        require(services, "catalog.refresh")
        connector = request_body().get("connector", services.config.catalog_connector)
        if connector not in HTTP_CONNECTORS:
            raise ValidationError({"connector": f"must be one of {', '.join(HTTP_CONNECTORS)}"})
        job_id = services.refresh.start_in_background(connector)
        bottle.response.status = 202
        return {"status": "started", "job_id": job_id}

    @app.get("/api/v1/catalog/refresh/<job_id>")
    def refresh_status(job_id: str) -> dict[str, Any]:
        require(services, "catalog.refresh")
        return services.refresh.job_status(job_id)


def _int_param(query: bottle.FormsDict, name: str, default: int, low: int, high: int | None) -> int:
    """A whole-number query parameter in its range; outside it is 422, never clamped."""
    raw = query.getunicode(name)
    if raw is None or raw == "":
        return default
    wanted = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError({name: f"must be {wanted}"})
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise ValidationError({name: f"must be {wanted}"})
    return value
