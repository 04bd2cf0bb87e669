"""Bad files and full disks around the catalog: clear errors, the old snapshot kept, a refresh mends it."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kryten_playlist_lib.catalog.refresh import RefreshFailed
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.test_catalog_api import refresh_now
from tests.test_catalog_refresh import write_jsonl


def _search(service: PlaylistService, q: str) -> tuple[int, dict]:
    status, _headers, body = http_json("GET", f"http://127.0.0.1:{service.http.port}/api/v1/catalog/search?q={q}")
    return status, body


@pytest.fixture
def started() -> Iterator[list[PlaylistService]]:
    services: list[PlaylistService] = []
    yield services
    for service in services:
        service.stop()


def _start(started: list[PlaylistService], config: Config) -> PlaylistService:
    service = start_service(config)
    started.append(service)
    wait_for(lambda: service.ready, what="service ready")
    return service


def test_a_damaged_catalog_file_is_a_clear_503_and_a_refresh_mends_it(
        make_config: Callable[..., Config], tmp_path: Path, started: list[PlaylistService],
        caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    damaged = folder / "catalog-20260101T000000Z-abcdef.sqlite3"
    damaged.write_bytes(b"this is not SQLite" * 100)
    (folder / "catalog.sqlite3").symlink_to(damaged.name)
    service = _start(started, make_config(sqlite_path=str(folder / "catalog.sqlite3"), disable_auth=True))

    status, body = _search(service, "title")
    assert status == 503 and body["error"]["code"] == "no_snapshot"
    assert "damaged" in body["error"]["message"]
    assert any("cannot be read" in record.getMessage() for record in caplog.records)

    refresh_now(service, write_jsonl(tmp_path / "c.jsonl", 20, "V"))
    status, body = _search(service, "title")
    assert status == 200 and body["total"] == 20


def test_a_sqlite_path_in_a_missing_folder_waits_for_a_refresh_that_makes_it(
        make_config: Callable[..., Config], tmp_path: Path, started: list[PlaylistService]) -> None:
    link = tmp_path / "not" / "made" / "yet" / "catalog.sqlite3"
    service = _start(started, make_config(sqlite_path=str(link), disable_auth=True))
    status, body = _search(service, "title")
    assert status == 503 and body["error"]["code"] == "no_snapshot"

    refresh_now(service, write_jsonl(tmp_path / "c.jsonl", 5, "V"))
    assert link.is_symlink() and _search(service, "title")[0] == 200


@contextmanager
def _disk_full_after(limit_bytes: int) -> Iterator[None]:
    """Files written by this process and its children fail with EFBIG past `limit_bytes`, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error to handle, not a signal that kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_full_disk_during_a_refresh_leaves_the_old_snapshot_live(
        make_config: Callable[..., Config], tmp_path: Path, started: list[PlaylistService]) -> None:
    service = _start(started, make_config(disable_auth=True))
    first = refresh_now(service, write_jsonl(tmp_path / "small.jsonl", 50, "V"))
    files_before = sorted(path.name for path in Path(service.config.sqlite_path).parent.iterdir())
    big = write_jsonl(tmp_path / "big.jsonl", 20_000, "W")

    with _disk_full_after(256 * 1024), pytest.raises(RefreshFailed, match="(?i)file too large|no space|disk"):
        service.refresh.run(service.refresh.begin("jsonl", str(big)))

    assert service.catalog.snapshot_info()["snapshot_id"] == first
    current = service.kv.get("snapshot", "current")
    assert current is not None and current.value["snapshot_id"] == first
    status, body = _search(service, "title")
    assert status == 200 and body["total"] == 50
    assert sorted(path.name for path in Path(service.config.sqlite_path).parent.iterdir()) == files_before
