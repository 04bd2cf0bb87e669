"""The catalog connectors: MediaCMS against a local MediaCMS-shaped server, jsonl, fake, and the factory."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.catalog.clean import clean_items
from kryten_playlist_lib.catalog.connectors import (
    CONNECTORS,
    ConnectorError,
    FakeConnector,
    JsonlConnector,
    MediaCmsConnector,
    make_connector,
)
from kryten_playlist_lib.catalog.items import CatalogItem
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ValidationError

TOKEN = "s3cret-token-value"
REAL_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog-420grindhouse.jsonl"
PAGE = "/api/v1/media?page={}"


# ---- a MediaCMS-shaped server ---------------------------------------------------------------


class FakeMediaCms:
    """Serves `pages` and `details`; `failures[path]` are statuses answered before the real reply."""

    def __init__(self) -> None:
        self.base = ""
        self.pages: dict[str, dict[str, Any]] = {}
        self.details: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, list[int]] = {}
        self.slow_once: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def hits(self, path: str) -> int:
        return sum(1 for seen, _ in self.requests if seen == path)

    def answer(self, path: str, authorization: str | None) -> tuple[int, Any, bool]:
        """(status, body, slow) for one request, recording it."""
        with self._lock:
            self.requests.append((path, authorization))
            pending = self.failures.get(path)
            if pending:
                return pending.pop(0), {"detail": "boom"}, False
            slow = path in self.slow_once
            self.slow_once.discard(path)
        if path in self.pages:
            return 200, self.pages[path], slow
        match = re.fullmatch(r"/api/v1/media/([A-Za-z0-9_-]+)", path)
        if match and match.group(1) in self.details:
            return 200, self.details[match.group(1)], slow
        return 404, {"detail": "Not found."}, slow


def _handler(site: FakeMediaCms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            status, body, slow = site.answer(self.path, self.headers.get("Authorization"))
            if slow:
                time.sleep(0.6)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up on a slow answer, as intended

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature of the base class
            pass

    return Handler


@pytest.fixture
def site() -> Iterator[FakeMediaCms]:
    site = FakeMediaCms()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()


def _entry(token: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"friendly_token": token, "title": title, "duration": 1500, "thumbnail_url": None, **extra}


def _three_pages(site: FakeMediaCms) -> None:
    """Page 1 has categories inline (and junk), page 2 fails once and needs details, page 3 ends."""
    site.pages[PAGE.format(1)] = {"count": 8, "previous": None, "next": site.base + PAGE.format(2), "results": [
        _entry("movie0001", "Night of the Ghoul (1964)", duration=5400.6, thumbnail_url="/media/thumbs/m1.jpg",
               categories_info=[{"title": "Horror", "url": "/search?c=Horror"},
                                {"title": " Movies ", "url": "/search?c=Movies"}]),
        "not an object",
        {"title": "an entry without a token", "categories_info": []},
        _entry("show00102", "Silk Stalkings S02E06 Bad Blood", duration=None,
               thumbnail_url="https://cdn.example.org/s.jpg", categories_info=[]),
    ]}
    # DRF behind a proxy writes `next` with an inner host; the connector must stay on its own site.
    site.pages[PAGE.format(2)] = {"count": 8, "previous": site.base + PAGE.format(1),
                                  "next": "http://inner-host.invalid:8000" + PAGE.format(3), "results": [
        _entry("detail001", "Has Categories Only In Detail"),
        _entry("gone00001", "Deleted Since The List Was Read"),
    ]}
    site.pages[PAGE.format(3)] = {"count": 8, "previous": site.base + PAGE.format(2), "next": None, "results": [
        _entry("last00001", "Porky in Wackyland", categories_info=[{"title": "Cartoons", "url": "/c"}]),
    ]}
    site.details["detail001"] = {"friendly_token": "detail001", "categories_info": [
        {"title": "TV", "url": "/c"}, {"title": "Comedy", "url": "/c"}]}
    site.failures[PAGE.format(2)] = [500]
    site.failures[PAGE.format(3)] = [429]


def _connector(site: FakeMediaCms, **options: Any) -> MediaCmsConnector:
    return MediaCmsConnector(site.base, TOKEN, backoff_seconds=0.01, timeout_seconds=5, **options)


def test_mediacms_reads_every_page_with_retries_details_and_cleanable_items(site: FakeMediaCms) -> None:
    _three_pages(site)
    result = clean_items(_connector(site).iter_catalog_items())
    items = {item.video_id: item for item in result}

    assert list(items) == ["movie0001", "show00102", "detail001", "gone00001", "last00001"]
    assert result.counts() == {"skipped_missing": 2, "skipped_invalid_id": 0, "duplicates": 0}
    assert items["movie0001"] == CatalogItem("movie0001", "Night of the Ghoul (1964)", ("Horror", "Movies"), 5401,
                                             site.base + "/media/thumbs/m1.jpg")
    assert items["show00102"].duration_seconds is None
    assert items["show00102"].thumbnail_url == "https://cdn.example.org/s.jpg"
    assert items["detail001"].categories == ("TV", "Comedy")
    assert items["gone00001"].categories == ()
    assert items["last00001"].categories == ("Cartoons",)


def test_mediacms_retries_5xx_and_429_fetches_only_missing_details_and_sends_the_token(
        site: FakeMediaCms) -> None:
    _three_pages(site)
    list(_connector(site).iter_catalog_items())

    assert site.hits(PAGE.format(1)) == 1
    assert site.hits(PAGE.format(2)) == 2
    assert site.hits(PAGE.format(3)) == 2
    detail_paths = sorted(path for path, _ in site.requests if not path.startswith("/api/v1/media?"))
    assert detail_paths == ["/api/v1/media/detail001", "/api/v1/media/gone00001"]  # a 404 is not retried
    assert {authorization for _, authorization in site.requests} == {f"Token {TOKEN}"}


def test_mediacms_without_token_sends_no_authorization(site: FakeMediaCms) -> None:
    _three_pages(site)
    list(MediaCmsConnector(site.base, None, backoff_seconds=0.01).iter_catalog_items())
    assert {authorization for _, authorization in site.requests} == {None}


def test_mediacms_page_that_keeps_failing_raises_a_clear_error(site: FakeMediaCms) -> None:
    _three_pages(site)
    site.failures[PAGE.format(2)] = [500] * 10
    seen: list[str | None] = []
    with pytest.raises(ConnectorError) as caught:
        for item in _connector(site).iter_catalog_items():
            seen.append(item.video_id)

    message = str(caught.value)
    assert site.base + PAGE.format(2) in message
    assert "500" in message and "3 tries" in message
    assert TOKEN not in message and TOKEN not in repr(caught.value.__cause__)
    assert caught.value.status == 500
    assert site.hits(PAGE.format(2)) == 3
    assert "movie0001" in seen  # page 1 had streamed before page 2 gave up


def test_mediacms_detail_that_keeps_failing_ends_the_refresh(site: FakeMediaCms) -> None:
    _three_pages(site)
    site.failures["/api/v1/media/detail001"] = [503] * 10
    with pytest.raises(ConnectorError, match=re.escape(site.base + "/api/v1/media/detail001") + ".*HTTP 503"):
        list(_connector(site).iter_catalog_items())


def test_mediacms_client_errors_are_not_retried(site: FakeMediaCms) -> None:
    site.failures[PAGE.format(1)] = [401]
    with pytest.raises(ConnectorError, match="HTTP 401 \\(check mediacms_token\\)") as caught:
        list(_connector(site).iter_catalog_items())
    assert site.hits(PAGE.format(1)) == 1
    assert TOKEN not in str(caught.value)


def test_mediacms_timeout_is_retried(site: FakeMediaCms) -> None:
    site.pages[PAGE.format(1)] = {"count": 1, "next": None, "previous": None,
                                  "results": [_entry("slow00001", "Slow", categories_info=[])]}
    site.slow_once.add(PAGE.format(1))
    items = list(MediaCmsConnector(site.base, TOKEN, backoff_seconds=0.01, timeout_seconds=0.2)
                 .iter_catalog_items())
    assert [item.video_id for item in items] == ["slow00001"]
    assert site.hits(PAGE.format(1)) == 2


def test_mediacms_paging_loop_is_refused(site: FakeMediaCms) -> None:
    site.pages[PAGE.format(1)] = {"count": 2, "next": site.base + PAGE.format(2), "previous": None, "results": []}
    site.pages[PAGE.format(2)] = {"count": 2, "next": site.base + PAGE.format(1), "previous": None, "results": []}
    with pytest.raises(ConnectorError, match="loops back"):
        list(_connector(site).iter_catalog_items())


def test_mediacms_response_that_is_not_a_media_page_is_refused(site: FakeMediaCms) -> None:
    site.pages[PAGE.format(1)] = {"detail": "this is not a list"}
    with pytest.raises(ConnectorError, match="no 'results' list"):
        list(_connector(site).iter_catalog_items())


def test_mediacms_unreachable_site_fails_after_retries() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as unused:
        port = unused.server_address[1]
    connector = MediaCmsConnector(f"http://127.0.0.1:{port}", TOKEN, backoff_seconds=0.01, timeout_seconds=2)
    with pytest.raises(ConnectorError, match=f"127.0.0.1:{port}/api/v1/media\\?page=1 failed after 3 tries"):
        list(connector.iter_catalog_items())


def test_mediacms_needs_a_base_url() -> None:
    with pytest.raises(ConnectorError, match="mediacms_base_url"):
        make_connector("mediacms", Config())
    with pytest.raises(ConnectorError, match="http"):
        MediaCmsConnector("ftp://example.org")


def test_mediacms_token_is_only_sent_to_the_configured_site(site: FakeMediaCms) -> None:
    _three_pages(site)
    site.failures.clear()  # the factory's connector backs off for real seconds
    elsewhere = Config(mediacms_base_url="https://media.example.org", mediacms_token=TOKEN)
    list(make_connector("mediacms", elsewhere, source=site.base).iter_catalog_items())
    assert {authorization for _, authorization in site.requests} == {None}

    site.requests.clear()
    here = Config(mediacms_base_url=site.base + "/", mediacms_token=TOKEN)
    list(make_connector("mediacms", here).iter_catalog_items())
    assert {authorization for _, authorization in site.requests} == {f"Token {TOKEN}"}


# ---- jsonl ------------------------------------------------------------------------------------


def test_jsonl_real_catalog_imports_whole() -> None:
    if not REAL_CATALOG.exists():
        pytest.skip(f"the real catalog is not beside the project ({REAL_CATALOG})")
    result = clean_items(make_connector("jsonl", Config(), str(REAL_CATALOG)).iter_catalog_items())
    items = list(result)
    assert len(items) == 5440
    assert result.counts() == {"skipped_missing": 0, "skipped_invalid_id": 0, "duplicates": 0}
    first = json.loads(REAL_CATALOG.read_text(encoding="utf-8").splitlines()[0])
    assert items[0] == CatalogItem(first["video_id"], first["title"], tuple(first["categories"]),
                                   first["duration_seconds"], first["thumbnail_url"])


def test_jsonl_bad_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    lines = [
        json.dumps({"video_id": "good00001", "title": "Good", "categories": ["Horror", " Horror"],
                    "duration_seconds": 61.7, "thumbnail_url": "https://example.org/g.jpg"}).encode(),
        b"",
        b"   ",
        b"this is not json",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"video_id": "x\xff\xfe", "title": "not utf-8"}',
        b"[" * 100_000,
        json.dumps({"video_id": 12345, "title": "numeric id"}).encode(),
        json.dumps({"video_id": "good00002", "title": "Second", "categories": "not a list",
                    "duration_seconds": "long"}).encode(),
        json.dumps({"video_id": "good00001", "title": "Again"}).encode(),
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = clean_items(JsonlConnector(str(path)).iter_catalog_items())
    items = list(result)
    assert items == [CatalogItem("good00001", "Good", ("Horror",), 62, "https://example.org/g.jpg"),
                     CatalogItem("good00002", "Second", (), None, None)]
    assert result.counts() == {"skipped_missing": 6, "skipped_invalid_id": 0, "duplicates": 1}


def test_jsonl_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"video_id": "stdin0001", "title": "From a pipe"}\n\n{"video_id": "stdin0002", "title": "Two"}'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    items = list(make_connector("jsonl", Config(), "-").iter_catalog_items())
    assert [item.video_id for item in items] == ["stdin0001", "stdin0002"]


def test_jsonl_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ConnectorError, match=re.escape(str(missing))):
        list(JsonlConnector(str(missing)).iter_catalog_items())


def test_jsonl_needs_a_source() -> None:
    with pytest.raises(ValidationError) as caught:
        make_connector("jsonl", Config())
    assert "source" in caught.value.fields


# ---- fake -------------------------------------------------------------------------------------

EPISODE_SHAPES = (re.compile(r" S\d{2}E\d{2}( |\.|$)"), re.compile(r" \d+x\d{2}(\.|$)"),
                  re.compile(r" - Season \d+ Episode \d+(\.|$)"))
MOVIE_SHAPE = re.compile(r"\((19[3-9]\d|20[0-2]\d)\)(\.mkv|\.mp4)?$")


@pytest.mark.parametrize("count", [0, 1, 7, 2500])
def test_fake_yields_the_count_asked(count: int) -> None:
    assert sum(1 for _ in FakeConnector(count).iter_catalog_items()) == count


def test_fake_is_deterministic_and_prefix_stable() -> None:
    first = list(FakeConnector(500, seed=7).iter_catalog_items())
    assert first == list(FakeConnector(500, seed=7).iter_catalog_items())
    assert list(FakeConnector(200, seed=7).iter_catalog_items()) == first[:200]
    other = list(FakeConnector(500, seed=8).iter_catalog_items())
    assert {item.video_id for item in first}.isdisjoint(item.video_id for item in other)


def test_fake_ids_are_unique_and_well_formed_and_it_is_fast() -> None:
    started = time.perf_counter()
    items = list(FakeConnector(100_000, seed=3).iter_catalog_items())
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, f"100k fake items took {elapsed:.2f} s"
    ids = [item.video_id for item in items]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{9}", video_id or "") for video_id in ids)


def test_fake_items_look_like_a_real_channel() -> None:
    items = list(FakeConnector(20_000, seed=1).iter_catalog_items())
    share = _shares(items)
    assert 0.45 < share["episode"] < 0.65
    assert 0.22 < share["movie"] < 0.38
    assert 0.04 < share["no_categories"] < 0.12
    assert 0.01 < share["no_duration"] < 0.06
    assert 0.65 < share["thumbnail"] < 0.85
    for shape in EPISODE_SHAPES:
        assert sum(1 for item in items if shape.search(item.title or "")) > 1000
    assert len({item.title for item in items}) > 0.8 * len(items)  # varied enough for search to be meaningful
    assert 100 < sum(1 for item in items if "night" in (item.title or "").lower()) < 5000
    categories = {name for item in items for name in item.categories}
    assert {"TV", "Movies", "Cartoons", "Horror", "Comedy", "Sci-Fi", "Documentary", "Music"} <= categories


def test_fake_durations_fit_their_kind_and_items_survive_cleaning() -> None:
    items = list(FakeConnector(5000).iter_catalog_items())
    for item in items:
        if item.duration_seconds is None:
            continue
        if any(shape.search(item.title or "") for shape in EPISODE_SHAPES):
            assert 1300 <= item.duration_seconds <= 2800, item
        elif "Movies" in item.categories:
            assert 4800 <= item.duration_seconds <= 7800, item
    result = clean_items(items)
    assert list(result) == items
    assert result.counts() == {"skipped_missing": 0, "skipped_invalid_id": 0, "duplicates": 0}


def _shares(items: list[CatalogItem]) -> dict[str, float]:
    total = len(items)
    return {
        "episode": sum(1 for i in items if any(s.search(i.title or "") for s in EPISODE_SHAPES)) / total,
        "movie": sum(1 for i in items if MOVIE_SHAPE.search(i.title or "")
                     and not any(s.search(i.title or "") for s in EPISODE_SHAPES)
                     and "Cartoons" not in i.categories and "Music" not in i.categories) / total,
        "no_categories": sum(1 for i in items if not i.categories) / total,
        "no_duration": sum(1 for i in items if i.duration_seconds is None) / total,
        "thumbnail": sum(1 for i in items if i.thumbnail_url) / total,
    }


# ---- the factory ------------------------------------------------------------------------------


def test_make_connector_knows_the_three_built_ins() -> None:
    assert CONNECTORS == ("mediacms", "jsonl", "fake")
    assert isinstance(make_connector("fake", Config()), FakeConnector)
    assert sum(1 for _ in make_connector("fake", Config()).iter_catalog_items()) == 1000
    assert sum(1 for _ in make_connector("fake", Config(), " 250 ").iter_catalog_items()) == 250
    assert isinstance(make_connector("mediacms", Config(mediacms_base_url="https://media.example.org")),
                      MediaCmsConnector)


@pytest.mark.parametrize("source", ["abc", "-5", "1.5", "99999999999"])
def test_make_connector_refuses_a_bad_fake_count(source: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_connector("fake", Config(), source)
    assert "source" in caught.value.fields


def test_make_connector_refuses_an_unknown_name() -> None:
    with pytest.raises(ValidationError) as caught:
        make_connector("youtube", Config())
    assert caught.value.code == "validation_error"
    assert "mediacms, jsonl, fake" in caught.value.fields["connector"]
