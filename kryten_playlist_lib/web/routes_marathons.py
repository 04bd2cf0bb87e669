"""Marathon routes (http-api.md, Marathons): the preview. Saving one is an ordinary playlist POST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.web.access import require
from kryten_playlist_lib.web.http import request_body

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    @app.post("/api/v1/marathons/preview")
    def preview() -> dict[str, Any]:
        require(services, "marathon.preview")
        return services.marathons.preview(request_body())
