"""What every connector shares: the error a source raises when it cannot be read."""

from __future__ import annotations


class ConnectorError(Exception):
    """The source could not be read; the message names what failed (a URL, a path), never a secret.

    `url` and `status` are set when an HTTP request failed, so callers can tell a
    missing resource (404) from a broken source.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


def string_or_none(value: object) -> str | None:
    """Source data is untrusted JSON: a field of the wrong type is treated as absent."""
    return value if isinstance(value, str) else None
