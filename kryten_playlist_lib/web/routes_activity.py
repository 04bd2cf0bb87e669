"""Now playing, likes and statistics routes (http-api.md, "Now playing, likes, statistics")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.errors import ServiceError, ValidationError
from kryten_playlist_lib.web.access import require
from kryten_playlist_lib.web.http import request_body

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

# query parameter -> (default, lowest, highest)
TOP_LIST_QUERY = {"window_days": (30, 1, 366), "limit": (50, 1, 200)}


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    @app.get("/api/v1/nowplaying")
    def now_playing() -> dict[str, Any]:
        require(services, "nowplaying.view")
        playing = services.plays.current() or {}
        video_id = playing.get("video_id")
        return {"video_id": video_id, "title": playing.get("title"), "started_at": playing.get("started_at"),
                "like_count": services.likes.count(video_id) if isinstance(video_id, str) else 0}

    @app.post("/api/v1/likes/current")
    def like_current() -> dict[str, Any]:
        user = require(services, "likes.like")
        _check_username(request_body(), user.username)
        return services.likes.like_current(user.username)

    @app.get("/api/v1/stats/top-played")
    def top_played() -> dict[str, Any]:
        require(services, "stats.view")
        return services.stats.top("played", **_top_list_query())

    @app.get("/api/v1/stats/top-liked")
    def top_liked() -> dict[str, Any]:
        require(services, "stats.view")
        return services.stats.top("liked", **_top_list_query())

    @app.get("/api/v1/stats/summary")
    def summary() -> dict[str, Any]:
        require(services, "stats.view")
        return services.stats.summary()


def _check_username(body: dict[str, Any], username: str) -> None:
    """The optional `username` of the body names the session's user, or the like is refused."""
    claimed = body.get("username")
    if claimed is None:
        return
    if not isinstance(claimed, str):
        raise ValidationError({"username": "must be a string: the signed-in user's name"})
    if claimed.lower() != username.lower():
        raise ServiceError("forbidden", "You can only like as yourself.", {"reason": "username_mismatch"})


def _top_list_query() -> dict[str, int]:
    """`window_days` and `limit` from the query; out of range is a 422, never clamped (http-api.md)."""
    values: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name, (default, lowest, highest) in TOP_LIST_QUERY.items():
        raw = bottle.request.query.get(name)
        value = default if raw is None else _whole_number(raw)
        if value is None or not lowest <= value <= highest:
            errors[name] = f"must be a whole number from {lowest} to {highest}"
        else:
            values[name] = value
    if errors:
        raise ValidationError(errors)
    return values


def _whole_number(raw: str) -> int | None:
    # Plain ASCII digits only (int() also takes "1_0", " 7" and other scripts' digits), and
    # few of them: int() refuses strings of thousands of digits with an error of its own.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
