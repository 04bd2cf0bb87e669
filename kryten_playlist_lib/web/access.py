"""Who is asking, and may they: the one place routes ask for a role.

Sessions arrive with the sign-in issue; until then the only signed-in user
is the admin `local` of `disable_auth` (loopback only, config.py checks).
"""

from __future__ import annotations

from typing import Any

from kryten_playlist_lib.domain.rbac import User, role_at_least
from kryten_playlist_lib.errors import ServiceError

LOCAL_ADMIN = User("local", "admin")


def current_user(services: Any) -> User | None:
    if services.config.disable_auth:
        return LOCAL_ADMIN
    return None


def require_role(services: Any, required: str) -> User:
    """The signed-in user if their role is at least `required`; else 401 or 403."""
    user = current_user(services)
    if user is None:
        raise ServiceError("unauthenticated", "Sign in first.")
    if not role_at_least(user.role, required):
        raise ServiceError("forbidden", f"This needs the {required} role.", {"required_role": required})
    return user
