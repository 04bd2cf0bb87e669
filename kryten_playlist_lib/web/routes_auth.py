"""Sign-in routes (http-api.md, Auth): request and verify a code, IP blocks, logout, me."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from kryten_playlist_lib.auth.sessions import COOKIE_NAME
from kryten_playlist_lib.domain.rbac import capabilities
from kryten_playlist_lib.web.access import current_user, require, session_id
from kryten_playlist_lib.web.http import client_ip, request_body, request_is_https

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService


def register(app: bottle.Bottle, services: PlaylistService) -> None:
    def ip() -> str:
        return client_ip(bottle.request.environ, services.config.trusted_proxies)

    @app.post("/api/v1/auth/otp/request")
    def otp_request() -> dict[str, Any]:
        user_agent = bottle.request.get_header("User-Agent", "")
        return services.signin.request_code(request_body(), ip(), user_agent)

    @app.post("/api/v1/auth/otp/verify")
    def otp_verify() -> dict[str, Any]:
        answer, new_session = services.signin.verify_code(request_body(), ip())
        if new_session is not None:
            _set_session_cookie(services, new_session)
        return answer

    @app.post("/api/v1/auth/ipblock")
    def ipblock() -> dict[str, Any]:
        return services.signin.ip_block(request_body(), ip(), current_user(services))

    @app.post("/api/v1/auth/logout")
    def logout() -> dict[str, Any]:
        services.sessions.delete(session_id())
        bottle.response.set_cookie(COOKIE_NAME, "", path="/", max_age=0, httponly=True, samesite="lax",
                                   secure=_secure_cookie(services))
        return {"status": "logged_out"}

    @app.get("/api/v1/auth/me")
    def me() -> dict[str, Any]:
        user = require(services, "account.view")
        document = services.sessions.get(session_id()) or {}
        return {"username": user.username, "role": user.role, "expires_at": document.get("expires_at"),
                "can": capabilities(user.role, services.config.allow_hard_replace_for_blessed)}


def _secure_cookie(services: PlaylistService) -> bool:
    if services.config.cookie_secure == "auto":
        return request_is_https(bottle.request.environ, services.config.trusted_proxies)
    return bool(services.config.cookie_secure)


def _set_session_cookie(services: PlaylistService, value: str) -> None:
    bottle.response.set_cookie(COOKIE_NAME, value, path="/", max_age=services.config.session_ttl_seconds,
                               httponly=True, samesite="lax", secure=_secure_cookie(services))
