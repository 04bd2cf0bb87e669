"""The MediaCMS connector: the media list of a MediaCMS site through its REST API (behaviour.md section 7).

`GET {base}/api/v1/media?page=N` pages are followed through `next`. The list
entries of stock MediaCMS carry no categories, so `categories_info` is read
from the detail endpoint for the entries that lack it, a few requests at a
time while the page is yielded. Every request has a timeout and bounded
retries; a page that still fails raises `ConnectorError`, while a malformed
entry is yielded empty for the cleaner to count.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from email.message import Message
from urllib.parse import urljoin, urlsplit, urlunsplit

from kryten_playlist_lib.catalog.clean import VIDEO_ID_RE, clean_duration
from kryten_playlist_lib.catalog.connectors.base import ConnectorError, string_or_none
from kryten_playlist_lib.catalog.items import CatalogItem

log = logging.getLogger("kryten_playlist.catalog.mediacms")

MEDIA_PATH = "/api/v1/media"
DEFAULT_TIMEOUT_SECONDS = 15.0
DEFAULT_TRIES = 3
DEFAULT_BACKOFF_SECONDS = 1.0
DEFAULT_DETAIL_WORKERS = 4
# A server asking for a longer pause than this is treated as down rather than waited for.
MAX_RETRY_AFTER_SECONDS = 30.0
USER_AGENT = "kryten-playlist"


class _Retryable(Exception):
    """A failure worth another try: no connection, a timeout, a 5xx or a 429."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class MediaCmsConnector:
    """Reads every listed media item of one MediaCMS site."""

    def __init__(self, base_url: str | None, token: str | None = None, *,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, tries: int = DEFAULT_TRIES,
                 backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
                 detail_workers: int = DEFAULT_DETAIL_WORKERS) -> None:
        base = (base_url or "").strip().rstrip("/")
        if not base:
            raise ConnectorError("the mediacms connector needs a site: set mediacms_base_url "
                                 "(or KRYTEN_PLAYLIST_MEDIACMS_BASE_URL), or pass --source URL")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectorError(f"the MediaCMS base URL must be an http:// or https:// URL, not {base!r}")
        if tries < 1 or detail_workers < 1:
            raise ValueError("tries and detail_workers must be at least 1")
        self._base = base
        self._origin = (parts.scheme, parts.netloc)
        self._token = token or None
        self._timeout = timeout_seconds
        self._tries = tries
        self._backoff = backoff_seconds
        self._detail_workers = detail_workers

    def iter_catalog_items(self) -> Iterator[CatalogItem]:
        pool = ThreadPoolExecutor(max_workers=self._detail_workers, thread_name_prefix="mediacms-detail")
        try:
            for results in self._pages():
                yield from self._page_items(results, pool)
        finally:
            # A consumer that stops early must not leave a page of detail requests running.
            pool.shutdown(wait=True, cancel_futures=True)

    def _pages(self) -> Iterator[list[object]]:
        url: str | None = f"{self._base}{MEDIA_PATH}?page=1"
        visited: set[str] = set()
        while url is not None:
            if url in visited:
                raise ConnectorError(f"MediaCMS paging loops back to {url}; the list cannot be read whole", url=url)
            visited.add(url)
            page = self._get_json(url)
            results = page.get("results") if isinstance(page, dict) else None
            if not isinstance(results, list):
                raise ConnectorError(f"GET {url}: not a MediaCMS media page (no 'results' list)", url=url)
            yield results
            url = self._next_url(url, page.get("next"))

    def _next_url(self, current: str, link: object) -> str | None:
        """The next page, on the configured origin.

        DRF writes `next` with the host it was reached as, which behind a proxy
        is often plain http or an inner name; keeping our own origin also keeps
        the token from going anywhere else.
        """
        if not isinstance(link, str) or not link.strip():
            return None
        parts = urlsplit(urljoin(current, link.strip()))
        return urlunsplit((*self._origin, parts.path, parts.query, ""))

    def _page_items(self, results: list[object], pool: ThreadPoolExecutor) -> Iterator[CatalogItem]:
        # All detail requests of the page are queued first, so they run while earlier items are yielded.
        pending = [(item, pool.submit(self._detail_categories, item.video_id) if lacks else None)
                   for item, lacks in map(self._item_from, results)]
        for item, categories in pending:
            yield item if categories is None else replace(item, categories=categories.result())

    def _item_from(self, result: object) -> tuple[CatalogItem, bool]:
        """The item of one list entry, and whether its categories must come from the detail endpoint."""
        if not isinstance(result, dict):
            return CatalogItem(None, None), False
        video_id = string_or_none(result.get("friendly_token"))
        info = result.get("categories_info")
        item = CatalogItem(video_id, string_or_none(result.get("title")), _category_titles(info),
                           clean_duration(result.get("duration")), self._absolute(result.get("thumbnail_url")))
        # An id the cleaner will drop anyway is not worth a request (nor safe to put in a path).
        usable_id = video_id is not None and VIDEO_ID_RE.fullmatch(video_id) is not None
        return item, usable_id and not isinstance(info, list)

    def _detail_categories(self, video_id: str) -> tuple[str, ...]:
        url = f"{self._base}{MEDIA_PATH}/{video_id}"
        try:
            detail = self._get_json(url)
        except ConnectorError as exc:
            # A 4xx is about this one item (removed or hidden since the list was read), not the source;
            # a 429 that outlasted the retries is the source refusing us, so it ends the refresh.
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                log.warning("no categories for %s: %s", video_id, exc)
                return ()
            raise
        return _category_titles(detail.get("categories_info")) if isinstance(detail, dict) else ()

    def _absolute(self, thumbnail: object) -> str | None:
        """MediaCMS gives thumbnails as site paths; the catalog needs a URL a browser can load anywhere."""
        path = (string_or_none(thumbnail) or "").strip()
        return urljoin(self._base + "/", path) if path else None

    def _get_json(self, url: str) -> object:
        """The JSON body of `url`, retried with exponential backoff; ConnectorError when it cannot be had."""
        attempt = 1
        while True:
            try:
                return self._get_once(url)
            except _Retryable as exc:
                if attempt >= self._tries:
                    raise ConnectorError(f"GET {url} failed after {attempt} tries: {exc.reason}",
                                         url=url, status=exc.status) from exc
                pause = max(self._backoff * 2 ** (attempt - 1), exc.retry_after)
                log.info("GET %s: %s; trying again in %.1f s", url, exc.reason, pause)
                time.sleep(pause)
                attempt += 1

    def _get_once(self, url: str) -> object:
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        if self._token:
            # Unredirected: urllib would otherwise carry it along a redirect to another host.
            request.add_unredirected_header("Authorization", f"Token {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(f"HTTP {exc.code}", exc.code, _retry_after(exc.headers)) from None
            hint = " (check mediacms_token)" if exc.code in (401, 403) else ""
            raise ConnectorError(f"GET {url} failed: HTTP {exc.code}{hint}", url=url, status=exc.code) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(_describe(exc)) from None
        try:
            return json.loads(body)
        except ValueError:
            raise ConnectorError(f"GET {url}: the response is not JSON", url=url) from None


def _category_titles(info: object) -> tuple[str, ...]:
    if not isinstance(info, list):
        return ()
    return tuple(entry["title"] for entry in info if isinstance(entry, dict) and isinstance(entry.get("title"), str))


def _retry_after(headers: Message | None) -> float:
    value = headers.get("Retry-After", "") if headers is not None else ""
    return min(float(value), MAX_RETRY_AFTER_SECONDS) if value.isdigit() else 0.0


def _describe(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return str(reason) or type(reason).__name__
