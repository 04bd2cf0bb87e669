"""Playlist routes (http-api.md, Playlists): list, create, read, replace, delete."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.errors import ValidationError
from kryten_playlist_lib.web.access import require
from kryten_playlist_lib.web.http import request_body

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    @app.get("/api/v1/playlists")
    def list_playlists() -> dict[str, Any]:
        require(services, "playlists.view")
        return {"playlists": services.playlists.list()}

    @app.post("/api/v1/playlists")
    def create_playlist() -> dict[str, Any]:
        user = require(services, "playlists.edit")
        if services.offline_playlists.active:
            return _pending(services, services.offline_playlists.create(request_body(), user.username))
        playlist_id = services.playlists.create(request_body(), user.username)
        bottle.response.status = 201
        return {"playlist_id": playlist_id}

    @app.get("/api/v1/playlists/<playlist_id>")
    def get_playlist(playlist_id: str) -> dict[str, Any]:
        require(services, "playlists.view")
        document, revision = services.playlists.get(playlist_id)
        bottle.response.set_header("ETag", f'"{revision}"')
        return services.playlists.with_availability(document, revision)

    @app.put("/api/v1/playlists/<playlist_id>")
    def replace_playlist(playlist_id: str) -> dict[str, Any]:
        user = require(services, "playlists.edit")
        if services.offline_playlists.active:
            services.offline_playlists.update(playlist_id, request_body(), _if_match(), user.username)
            return _pending(services, playlist_id)
        document, revision = services.playlists.update(playlist_id, request_body(), _if_match())
        bottle.response.set_header("ETag", f'"{revision}"')
        return services.playlists.with_availability(document, revision)

    @app.delete("/api/v1/playlists/<playlist_id>")
    def delete_playlist(playlist_id: str) -> dict[str, Any] | None:
        user = require(services, "playlists.edit")
        if services.offline_playlists.active:
            services.offline_playlists.delete(playlist_id, user.username)
            return _pending(services, playlist_id)
        services.playlists.delete(playlist_id)
        bottle.response.status = 204
        return None


def _pending(services: PlaylistService, playlist_id: str) -> dict[str, Any]:
    """202: the write is in the offline journal; the replay takes it to KV once NATS is back."""
    services.journal_replay.wake()
    bottle.response.status = 202
    return {"playlist_id": playlist_id, "status": "pending_sync"}


def _if_match() -> int | None:
    raw = bottle.request.get_header("If-Match")
    if raw is None:
        return None
    match = IF_MATCH.match(raw)
    if match is None:
        raise ValidationError({"If-Match": 'must be a revision in quotes, as the ETag gave it: "12"'})
    return int(match.group(1))
