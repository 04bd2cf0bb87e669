"""Queue routes (http-api.md, Queue): apply a playlist, follow an apply, read the channel's queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.catalog.manifest import video_id_from_manifest
from kryten_playlist_lib.errors import NatsUnavailable, ValidationError
from kryten_playlist_lib.web.access import require
from kryten_playlist_lib.web.http import request_body

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    @app.post("/api/v1/queue/apply")
    def apply() -> dict[str, Any]:
        user = require(services, "queue.apply")
        body = request_body()
        playlist_id, run_async = body.get("playlist_id"), body.get("async", False)
        if not isinstance(playlist_id, str):
            raise ValidationError({"playlist_id": "must be a playlist id"})
        if not isinstance(run_async, bool):
            raise ValidationError({"async": "must be true or false"})
        job = services.queue.begin(playlist_id, body.get("mode", "preserve_current"), user)
        if run_async:
            services.queue.run_in_background(job)
            bottle.response.status = 202
            return {"apply_id": job.apply_id}
        return services.queue.run(job)

    @app.get("/api/v1/queue/apply/<apply_id>")
    def apply_progress(apply_id: str) -> dict[str, Any]:
        require(services, "queue.apply")
        return services.queue.status(apply_id)

    @app.get("/api/v1/queue")
    def queue() -> dict[str, Any]:
        require(services, "queue.view")
        state = services.robot.queue_from_kv()
        if state is None:
            raise NatsUnavailable("The robot has not reported the channel's queue.")
        items, current = state
        template = services.config.manifest_url_template
        return {"current_uid": current.get("uid") if current else None,
                "items": [_queue_item(item, template) for item in items]}


def _queue_item(item: dict[str, Any], template: str) -> dict[str, Any]:
    media = item.get("media") or {}
    media_id = media.get("id")
    return {"uid": item.get("uid"), "title": media.get("title"),
            "video_id": video_id_from_manifest(template, media_id) if isinstance(media_id, str) else None,
            "duration_seconds": media.get("seconds"), "temp": bool(item.get("temp"))}
