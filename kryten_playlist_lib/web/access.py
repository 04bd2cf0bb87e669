"""Who is asking, and may they: the one place routes ask for a session and a role.

The role is decided on every request from current data (RoleResolver), never
taken from the session document (behaviour.md section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bottle

from kryten_playlist_lib.auth.sessions import COOKIE_NAME
from kryten_playlist_lib.domain.rbac import User, can, required_role
from kryten_playlist_lib.errors import ServiceError

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

LOCAL_ADMIN = User("local", "admin")


def session_id() -> str | None:
    return bottle.request.get_cookie(COOKIE_NAME)


def current_user(services: PlaylistService) -> User | None:
    if services.config.disable_auth:
        return LOCAL_ADMIN
    document = services.sessions.get(session_id())
    if document is None:
        return None
    return User(document["username"], services.roles.role_of(document["username"]))


def require(services: PlaylistService, action: str) -> User:
    """The signed-in user if their role allows `action` (rbac.PERMISSIONS); else 401 or 403."""
    user = current_user(services)
    if user is None:
        raise ServiceError("unauthenticated", "Sign in first.")
    if not can(user.role, action, services.config.allow_hard_replace_for_blessed):
        needed = required_role(action, services.config.allow_hard_replace_for_blessed)
        raise ServiceError("forbidden", f"This needs the {needed} role.", {"required_role": needed})
    return user
