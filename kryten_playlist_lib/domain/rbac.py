"""Roles and what each may do (behaviour.md section 1). Plain data, no web or NATS imports."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "blessed", "admin")


@dataclass(frozen=True)
class User:
    username: str
    role: str


def role_at_least(role: str, required: str) -> bool:
    return ROLES.index(role) >= ROLES.index(required)
