"""One-time codes (behaviour.md section 2): making, normalising and checking them.

A code is stored only as HMAC-SHA256(secret, "{username_lower}:{CODE}") and
compared in constant time; the code itself never leaves the PM.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalize_code(text: str) -> str:
    """People retype codes: case and surrounding spaces do not matter."""
    return text.strip().upper()


def code_hash(secret: bytes, username: str, code: str) -> str:
    message = f"{username.lower()}:{normalize_code(code)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def code_matches(secret: bytes, username: str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(code_hash(secret, username, code), stored_hash)


def pm_text(service_name: str, code: str, ttl_seconds: int) -> str:
    """The PM: names the service and the expiry, holds the code once, nothing else sensitive."""
    minutes = max(1, round(ttl_seconds / 60))
    return (f"Your {service_name} sign-in code is {code} (valid for {minutes} minute"
            f"{'' if minutes == 1 else 's'}). If you did not ask for it, ignore this message.")


def new_session_id() -> str:
    """256 bits, URL-safe: the session cookie's value."""
    return secrets.token_urlsafe(32)
