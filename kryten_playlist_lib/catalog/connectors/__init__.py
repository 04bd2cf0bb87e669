"""Catalog sources by name (behaviour.md section 7); a refresh asks `make_connector` for one."""

from __future__ import annotations

from urllib.parse import urlsplit

from kryten_playlist_lib.catalog.connectors.base import ConnectorError
from kryten_playlist_lib.catalog.connectors.fake import FakeConnector
from kryten_playlist_lib.catalog.connectors.jsonl import JsonlConnector
from kryten_playlist_lib.catalog.connectors.mediacms import MediaCmsConnector
from kryten_playlist_lib.catalog.items import Connector
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ValidationError

__all__ = ["CONNECTORS", "ConnectorError", "FakeConnector", "JsonlConnector", "MediaCmsConnector",
           "make_connector"]

CONNECTORS = ("mediacms", "jsonl", "fake")
FAKE_DEFAULT_COUNT = 1000
FAKE_MAX_COUNT = 10_000_000


def make_connector(name: str, config: Config, source: str | None = None) -> Connector:
    """The connector `name` reading `source` (the CLI's --source).

    mediacms: a base URL instead of `mediacms_base_url`; jsonl: a file path or
    `-` for standard input (required); fake: an item count (default 1000).
    """
    if name == "mediacms":
        return MediaCmsConnector(source or config.mediacms_base_url, _token_for(config, source))
    if name == "jsonl":
        if not source:
            raise ValidationError({"source": "the jsonl connector needs a file path, or - for standard input"})
        return JsonlConnector(source)
    if name == "fake":
        return FakeConnector(_fake_count(source))
    raise ValidationError({"connector": f"must be one of {', '.join(CONNECTORS)}"},
                          f"Unknown catalog connector {name!r}; known: {', '.join(CONNECTORS)}.")


def _token_for(config: Config, source: str | None) -> str | None:
    """The configured token belongs to the configured site: a --source elsewhere must not receive it."""
    if not source:
        return config.mediacms_token
    if config.mediacms_base_url and _origin(source) == _origin(config.mediacms_base_url):
        return config.mediacms_token
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower()


def _fake_count(source: str | None) -> int:
    if source is None:
        return FAKE_DEFAULT_COUNT
    text = source.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > FAKE_MAX_COUNT:
        raise ValidationError({"source": f"the fake connector takes an item count from 0 to {FAKE_MAX_COUNT:,}"})
    return int(text)
