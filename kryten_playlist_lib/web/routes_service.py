"""Service routes: health for load balancers and people, metrics for Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

if TYPE_CHECKING:
    from kryten_playlist_lib.web.app import WebServices

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def register(app: bottle.Bottle, services: WebServices) -> None:
    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        # Always 200: "degraded" is reported in the body, not by failing the probe.
        return services.health()

    @app.get("/metrics")
    def metrics() -> str:
        bottle.response.content_type = PROMETHEUS_CONTENT_TYPE
        return services.metrics.render()
