"""Roles and what each may do (behaviour.md section 1): one table, used by every route and command.

Plain data, no web or NATS imports.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "blessed", "admin")

# action -> the lowest role that may do it
PERMISSIONS: dict[str, str] = {
    "account.view": "viewer",
    "catalog.search": "viewer",
    "playlists.view": "viewer",
    "marathon.preview": "viewer",
    "likes.like": "viewer",
    "queue.view": "viewer",
    "nowplaying.view": "viewer",
    "playlists.edit": "blessed",
    "queue.apply": "blessed",
    "queue.hard_replace": "admin",
    "stats.view": "blessed",
    "catalog.refresh": "admin",
    "acl.manage": "admin",
    "ipblock.any": "admin",
}


@dataclass(frozen=True)
class User:
    username: str
    role: str


def role_at_least(role: str, required: str) -> bool:
    return ROLES.index(role) >= ROLES.index(required)


def required_role(action: str, allow_hard_replace_for_blessed: bool = False) -> str:
    if action == "queue.hard_replace" and allow_hard_replace_for_blessed:
        return "blessed"
    return PERMISSIONS[action]


def can(role: str, action: str, allow_hard_replace_for_blessed: bool = False) -> bool:
    return role_at_least(role, required_role(action, allow_hard_replace_for_blessed))


def capabilities(role: str, allow_hard_replace_for_blessed: bool) -> dict[str, bool]:
    """The `can` object of GET /auth/me."""
    return {
        "edit_playlists": can(role, "playlists.edit"),
        "apply": can(role, "queue.apply"),
        "hard_replace": can(role, "queue.hard_replace", allow_hard_replace_for_blessed),
        "view_stats": can(role, "stats.view"),
    }
