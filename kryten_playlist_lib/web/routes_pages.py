"""The web pages of ui.md: one small HTML shell per page, plain ES modules and CSS under /static/.

The pages are built in the browser from the JSON API; the server only hands out the shell, which names
the page's module. Nothing here needs a session: the API decides what each person may see and do.
"""

from __future__ import annotations

import html
import importlib.resources
import mimetypes
import re
from pathlib import Path
from typing import TYPE_CHECKING

import bottle

if TYPE_CHECKING:
    from kryten_playlist_lib.web.app import WebServices

STATIC_ROOT = Path(__file__).resolve().parent / "static"
# No build step means no content hashes in the names: a short max-age plus revalidation (ETag and
# Last-Modified from static_file) keeps a deploy visible within minutes.
STATIC_CACHE_CONTROL = "public, max-age=300, must-revalidate"
PAGE_CACHE_CONTROL = "no-cache"
STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[a-z]+$")

# path -> (title, module under /static/)
PAGES: dict[str, tuple[str, str]] = {
    "/": ("Catalog", "catalog.js"),
    "/login": ("Sign in", "login.js"),
    "/playlists": ("Playlists", "playlists.js"),
    "/marathon": ("Marathon builder", "marathon.js"),
    "/apply": ("Apply to queue", "apply.js"),
    "/stats": ("Statistics", "stats.js"),
}

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Kryten playlist</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header id="shell" class="shell"></header>
<section id="nowplaying" class="nowplaying" aria-label="Now playing" hidden></section>
<main id="main" data-page="{module}">
<h1>{title}</h1>
<noscript><p>This page needs JavaScript.</p></noscript>
</main>
<div id="toast" class="toast" role="status" aria-live="polite"></div>
<script type="module" src="/static/{module}"></script>
</body>
</html>
"""


def shell(title: str, module: str) -> str:
    return _SHELL.format(title=html.escape(title), module=html.escape(module))


def register(app: bottle.Bottle, services: WebServices) -> None:
    del services  # the pages call the API from the browser

    def page(title: str, module: str) -> str:
        bottle.response.content_type = "text/html; charset=utf-8"
        bottle.response.set_header("Cache-Control", PAGE_CACHE_CONTROL)
        return shell(title, module)

    for path, (title, module) in PAGES.items():
        app.route(path, "GET", lambda title=title, module=module: page(title, module))

    @app.get("/playlists/<playlist_id>")
    def playlist_page(playlist_id: str) -> str:
        del playlist_id  # the module reads it from the location
        return page("Playlist", "playlists.js")

    @app.get("/static/<path:path>")
    def static(path: str) -> bottle.HTTPResponse:
        if STATIC_ROOT.is_dir():
            response = bottle.static_file(path, root=str(STATIC_ROOT))
        else:
            response = _static_from_package(path)
        if response.status_code in (200, 304):
            response.set_header("Cache-Control", STATIC_CACHE_CONTROL)
        return response


def _static_from_package(path: str) -> bottle.HTTPResponse:
    """A static file read from inside the single-file build (a zip): there is no folder for static_file."""
    resource = importlib.resources.files("kryten_playlist_lib.web").joinpath("static", path)
    if not STATIC_NAME.match(path) or not resource.is_file():
        return bottle.HTTPError(404, "File does not exist.")
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if mimetype.startswith("text/") or mimetype == "application/javascript":
        mimetype += "; charset=UTF-8"
    return bottle.HTTPResponse(resource.read_bytes(), 200, **{"Content-Type": mimetype})
