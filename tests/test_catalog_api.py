"""The catalog over HTTP and NATS against the real service: search, categories, items, refresh."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from tests.conftest import start_service
from tests.helpers import http_json, wait_for

REAL_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog-420grindhouse.jsonl"


def small_catalog(path: Path) -> Path:
    rows = [("vid01", "Silk Stalkings S02E06 Bad Blood", ["TV", "crime"]),
            ("vid02", "The Silk Road (1987)", ["Movies"]),
            ("vid03", "Stalker", ["Movies", "Sci-Fi"]),
            ("vid04", "école des fans", ["Docs"])]
    with path.open("w") as out:
        for video_id, title, categories in rows:
            out.write(json.dumps({"video_id": video_id, "title": title, "categories": categories,
                                  "duration_seconds": 100, "thumbnail_url": None}) + "\n")
    return path


def refresh_now(service: PlaylistService, source: Path) -> str:
    return service.refresh.run(service.refresh.begin("jsonl", str(source))).snapshot_id


@pytest.fixture
def admin_service(make_config: Callable[..., Config]) -> Iterator[PlaylistService]:
    """`disable_auth` on loopback: every request is the admin `local` (sessions come later)."""
    running = start_service(make_config(disable_auth=True, catalog_connector="fake"))
    wait_for(lambda: running.ready)
    yield running
    running.stop()


def get(service: PlaylistService, path: str) -> tuple[int, Any]:
    status, _headers, body = http_json("GET", f"http://127.0.0.1:{service.http.port}{path}")
    return status, body


def test_before_the_first_refresh_search_is_a_structured_503(service: PlaylistService) -> None:
    status, body = get(service, "/api/v1/catalog/search?q=silk")
    assert status == 503 and body["error"]["code"] == "no_snapshot"
    assert get(service, "/api/v1/health")[1]["snapshot_id"] is None


def test_search_categories_and_items(service: PlaylistService, tmp_path: Path) -> None:
    snapshot_id = refresh_now(service, small_catalog(tmp_path / "c.jsonl"))
    status, body = get(service, "/api/v1/catalog/search?q=silk")
    assert status == 200 and body["snapshot_id"] == snapshot_id and body["total"] == 2
    assert [item["video_id"] for item in body["items"]] == ["vid01", "vid02"]  # prefix first, then title
    assert set(body["items"][0]) == {"video_id", "title", "categories", "duration_seconds", "thumbnail_url",
                                     "manifest_url"}
    assert get(service, "/api/v1/catalog/search?q=SILK%20blood")[1]["total"] == 1
    assert get(service, "/api/v1/catalog/search?q=%C3%89COLE")[1]["items"][0]["video_id"] == "vid04"
    assert get(service, "/api/v1/catalog/search?category=Movies&category=Sci-Fi")[1]["total"] == 1
    assert get(service, "/api/v1/catalog/search?limit=1&offset=1")[1]["items"][0]["video_id"] == "vid03"
    status, body = get(service, "/api/v1/catalog/categories")
    assert body["categories"] == ["crime", "Docs", "Movies", "Sci-Fi", "TV"]
    assert body["counts"]["Movies"] == 2
    status, item = get(service, "/api/v1/catalog/items/vid02")
    assert status == 200 and item["title"] == "The Silk Road (1987)"
    assert get(service, "/api/v1/catalog/items/nope")[0] == 404
    health = get(service, "/api/v1/health")[1]
    assert health["snapshot_id"] == snapshot_id and health["item_count"] == 4


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "offset=-1", "limit=1.5", "offset=x"])
def test_out_of_range_parameters_are_422_never_clamped(service: PlaylistService, tmp_path: Path,
                                                       query: str) -> None:
    refresh_now(service, small_catalog(tmp_path / "c.jsonl"))
    status, body = get(service, f"/api/v1/catalog/search?q=silk&{query}")
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert set(body["error"]["details"]["fields"]) <= {"limit", "offset"}


def test_a_pinned_snapshot_that_is_gone_is_404(service: PlaylistService, tmp_path: Path) -> None:
    refresh_now(service, small_catalog(tmp_path / "c.jsonl"))
    assert get(service, "/api/v1/catalog/search?snapshot_id=20000101T000000Z-abcdef")[0] == 404
    assert get(service, "/api/v1/catalog/search?snapshot_id=..%2F..%2Fetc%2Fpasswd")[0] == 404


def test_a_private_catalog_needs_a_session(make_config: Callable[..., Config]) -> None:
    service = start_service(make_config(catalog_public=False))
    try:
        status, body = get(service, "/api/v1/catalog/search?q=x")
        assert status == 401 and body["error"]["code"] == "unauthenticated"
    finally:
        service.stop()


def test_refresh_over_http_needs_an_admin(service: PlaylistService) -> None:
    status, _headers, body = http_json("POST", f"http://127.0.0.1:{service.http.port}/api/v1/catalog/refresh", {})
    assert status == 401 and body["error"]["code"] == "unauthenticated"


def test_refresh_over_http_runs_as_a_job(admin_service: PlaylistService) -> None:
    base = f"http://127.0.0.1:{admin_service.http.port}"
    status, _headers, body = http_json("POST", base + "/api/v1/catalog/refresh", {"connector": "fake"})
    assert status == 202 and body["status"] == "started"
    job = wait_for(lambda: _finished(base, body["job_id"]), timeout=60, what="refresh job done")
    assert job["status"] == "ok" and job["items_seen"] > 0 and job["error"] is None
    assert get(admin_service, "/api/v1/catalog/search?limit=1")[1]["snapshot_id"] == job["snapshot_id"]
    assert get(admin_service, "/api/v1/catalog/refresh/" + "0" * 32)[0] == 404


def _finished(base: str, job_id: str) -> dict[str, Any] | None:
    status, _headers, job = http_json("GET", f"{base}/api/v1/catalog/refresh/{job_id}")
    assert status == 200
    return job if job["status"] != "running" else None


def test_a_second_refresh_while_one_runs_is_409(admin_service: PlaylistService) -> None:
    held = admin_service.leases.acquire("catalog_refresh", 30)
    assert held is not None
    status, _headers, body = http_json("POST", f"http://127.0.0.1:{admin_service.http.port}/api/v1/catalog/refresh",
                                       {})
    assert status == 409 and body["error"]["code"] == "refresh_in_progress"
    admin_service.leases.release(held)


def test_refresh_over_http_refuses_unknown_and_local_file_connectors(admin_service: PlaylistService) -> None:
    for connector in ["nope", "jsonl", 5]:
        status, _headers, body = http_json(
            "POST", f"http://127.0.0.1:{admin_service.http.port}/api/v1/catalog/refresh", {"connector": connector})
        assert status == 422 and "connector" in body["error"]["details"]["fields"]


def test_catalog_refresh_over_nats(make_config: Callable[..., Config]) -> None:
    config = make_config(initial_admins=["Alice"], catalog_connector="fake")
    service = start_service(config)
    tool = NatsBridge(config)
    tool.start()
    try:
        wait_for(lambda: service.ready and tool.connected)
        request = {"correlation_id": "c1", "namespace": config.namespace, "requested_by": "alice"}
        reply = tool.request("kryten.playlist.cmd.catalog_refresh", request, timeout=60)
        assert reply["status"] == "ok" and reply["error"] is None and reply["snapshot_id"]
        assert service.health()["snapshot_id"] == reply["snapshot_id"]
        denied = tool.request("kryten.playlist.cmd.catalog_refresh", {**request, "requested_by": "bob"}, timeout=10)
        assert denied["status"] == "error" and denied["snapshot_id"] is None and "admin" in denied["error"]
        held = service.leases.acquire("catalog_refresh", 30)
        busy = tool.request("kryten.playlist.cmd.catalog_refresh", request, timeout=10)
        assert busy == {"correlation_id": "c1", "status": "error", "error": "refresh already running",
                        "snapshot_id": None}
        service.leases.release(held)
    finally:
        tool.stop()
        service.stop()


def test_the_real_catalog_imports_cleanly(service: PlaylistService) -> None:
    if not REAL_CATALOG.exists():
        pytest.skip(f"the real catalog is not at {REAL_CATALOG} (shared/ data folder absent)")
    result = service.refresh.run(service.refresh.begin("jsonl", str(REAL_CATALOG)))
    assert result.item_count == 5440 and not any(result.skipped.values())
    assert get(service, "/api/v1/catalog/search?limit=1")[1]["total"] == 5440
