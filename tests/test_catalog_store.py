"""Snapshot files: schema, rows, atomic build, trigram check, meta read-back."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from kryten_playlist_lib.catalog import store
from kryten_playlist_lib.catalog.items import CatalogItem
from kryten_playlist_lib.catalog.store import (
    build_snapshot,
    prune_snapshot_files,
    read_snapshot_meta,
    require_trigram_sqlite,
    snapshot_path,
)

SNAPSHOT_ID = "20261124T123456Z-7f3a9c"
TEMPLATE = "https://media.example/api/v1/media/cytube/{video_id}.json?format=json"
REAL_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog-420grindhouse.jsonl"
_EPISODE = re.compile(r"s(\d+)e(\d+)", re.IGNORECASE)


def stand_in_parser(title: str) -> tuple[int, int] | None:
    """Enough of the episode rules for these tests, without depending on domain.episodes."""
    match = _EPISODE.search(title)
    return (int(match.group(1)), int(match.group(2))) if match else None


def build(path: Path, items: Iterable[CatalogItem], *, snapshot_id: str = SNAPSHOT_ID,
          on_progress: Callable[[int], None] | None = None) -> int:
    return build_snapshot(path, snapshot_id=snapshot_id, source="test", created_at="2026-11-24T12:34:56.000Z",
                          items=items, manifest_url_template=TEMPLATE, on_progress=on_progress,
                          episode_parser=stand_in_parser)


def real_catalog_items() -> list[CatalogItem]:
    if not REAL_CATALOG.is_file():
        pytest.skip(f"the real catalog sample {REAL_CATALOG} is not present")
    items = []
    with REAL_CATALOG.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            items.append(CatalogItem(row["video_id"], row["title"], tuple(row["categories"]),
                                     row["duration_seconds"], row["thumbnail_url"]))
    return items


SAMPLE = [
    CatalogItem("vid1", "Silk Stalkings S02E06 Bad Blood", ("TV", "Drama"), 2753, "https://img.example/1.jpg"),
    CatalogItem("vid2", "Die STRASSE", ("Movies",), None, None),
    CatalogItem("vid3", "l'école des fans", (), 60, None),
]


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def test_schema_matches_storage_md(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    assert build(path, SAMPLE) == 3
    with closing(connect(path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(catalog_item)")]
        assert columns == ["video_id", "title", "categories_json", "manifest_url", "duration_seconds",
                           "thumbnail_url", "snapshot_id", "created_at", "season", "episode", "title_fold"]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        assert {"catalog_item", "catalog_category", "catalog_item_category", "snapshot_meta", "catalog_fts",
                "idx_catalog_title", "idx_catalog_snapshot"} <= names
        fts_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'catalog_fts'").fetchone()[0]
        assert "trigram" in fts_sql and "title_fold" in fts_sql
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT * FROM snapshot_meta").fetchall() == [
            (SNAPSHOT_ID, "test", "2026-11-24T12:34:56.000Z", 3, 1)]
        assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0


def test_rows_carry_item_fields_manifest_url_fold_and_episode(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    build(path, SAMPLE)
    with closing(connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = {row["video_id"]: dict(row) for row in conn.execute("SELECT * FROM catalog_item")}
        assert rows["vid1"] == {
            "video_id": "vid1", "title": "Silk Stalkings S02E06 Bad Blood", "categories_json": '["TV", "Drama"]',
            "manifest_url": "https://media.example/api/v1/media/cytube/vid1.json?format=json",
            "duration_seconds": 2753, "thumbnail_url": "https://img.example/1.jpg", "snapshot_id": SNAPSHOT_ID,
            "created_at": "2026-11-24T12:34:56.000Z", "season": 2, "episode": 6,
            "title_fold": "silk stalkings s02e06 bad blood",
        }
        assert rows["vid2"]["title_fold"] == "die strasse" and rows["vid2"]["season"] is None
        assert rows["vid3"]["title_fold"] == "l'école des fans" and rows["vid3"]["duration_seconds"] == 60
        categories = conn.execute("SELECT category FROM catalog_category ORDER BY category").fetchall()
        assert [row[0] for row in categories] == ["Drama", "Movies", "TV"]
        links = conn.execute("SELECT video_id, category FROM catalog_item_category ORDER BY 1, 2").fetchall()
        assert [tuple(row) for row in links] == [("vid1", "Drama"), ("vid1", "TV"), ("vid2", "Movies")]


def test_rows_are_stored_in_display_order(tmp_path: Path) -> None:
    """The reader pages by rowid, so rowid order must be (title_fold, video_id) order, in FTS too."""
    titles = ["bob", "Alice", "carl", "alice", "Bob", "ALICE"]
    path = tmp_path / "catalog.sqlite3"
    build(path, [CatalogItem(f"id{n}", title) for n, title in enumerate(reversed(titles))])
    with closing(connect(path)) as conn:
        by_rowid = conn.execute("SELECT title_fold, video_id, rowid FROM catalog_item ORDER BY rowid").fetchall()
        matches = [row[0] for row in conn.execute("SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH '\"lic\"'")]
    assert [row[:2] for row in by_rowid] == sorted(row[:2] for row in by_rowid)
    assert matches == [rowid for fold, _, rowid in by_rowid if "lic" in fold]


def test_progress_is_reported_as_items_are_written(tmp_path: Path) -> None:
    seen: list[int] = []
    items = (CatalogItem(f"v{n}", f"title {n}") for n in range(12_345))
    assert build(tmp_path / "catalog.sqlite3", items, on_progress=seen.append) == 12_345
    assert seen == sorted(seen) and seen[-1] == 12_345 and len(seen) >= 3


def broken_source() -> Iterator[CatalogItem]:
    for n in range(7_000):
        yield CatalogItem(f"v{n}", f"title {n}")
    raise OSError("source went away")


@pytest.mark.parametrize(("items", "error"), [
    (broken_source, OSError),
    (lambda: [CatalogItem("same", "one"), CatalogItem("same", "two")], sqlite3.IntegrityError),
    (lambda: [CatalogItem("ok", "fine"), CatalogItem("untitled", None)], ValueError),
])
def test_failed_build_leaves_no_file(
    tmp_path: Path, items: Callable[[], Iterable[CatalogItem]], error: type[Exception]
) -> None:
    with pytest.raises(error):
        build(tmp_path / "catalog.sqlite3", items())
    assert list(tmp_path.iterdir()) == []


def test_failed_build_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    build(path, SAMPLE)
    with pytest.raises(sqlite3.IntegrityError):
        build(path, [CatalogItem("same", "one"), CatalogItem("same", "two")], snapshot_id="20261124T000000Z-000001")
    assert read_snapshot_meta(path)["snapshot_id"] == SNAPSHOT_ID
    assert [entry.name for entry in tmp_path.iterdir()] == ["catalog.sqlite3"]


def test_real_catalog_builds(tmp_path: Path) -> None:
    items = real_catalog_items()
    path = tmp_path / "catalog.sqlite3"
    assert build(path, items) == len(items)
    with closing(connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM catalog_item").fetchone()[0] == len(items)
        assert conn.execute("SELECT count(*) FROM catalog_item WHERE season IS NOT NULL").fetchone()[0] > 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_snapshot_meta(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    build(path, SAMPLE)
    assert read_snapshot_meta(path) == {"snapshot_id": SNAPSHOT_ID, "source": "test",
                                        "created_at": "2026-11-24T12:34:56.000Z", "item_count": 3,
                                        "schema_version": 1}
    with pytest.raises(FileNotFoundError):
        read_snapshot_meta(tmp_path / "missing.sqlite3")
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a catalog snapshot"):
        read_snapshot_meta(tmp_path / "junk.sqlite3")
    with closing(sqlite3.connect(tmp_path / "other.sqlite3")) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(ValueError, match="not a catalog snapshot"):
        read_snapshot_meta(tmp_path / "other.sqlite3")


def test_snapshot_path_is_beside_the_link(tmp_path: Path) -> None:
    link = tmp_path / "data" / "catalog.sqlite3"
    assert snapshot_path(link, SNAPSHOT_ID) == tmp_path / "data" / f"catalog-{SNAPSHOT_ID}.sqlite3"
    assert snapshot_path(str(link), SNAPSHOT_ID) == snapshot_path(link, SNAPSHOT_ID)


def test_trigram_check_passes_here() -> None:
    require_trigram_sqlite()


def test_trigram_check_names_the_old_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(RuntimeError) as caught:
        require_trigram_sqlite()
    message = str(caught.value)
    assert "3.31.1" in message and "3.34" in message and "FTS5" in message


def test_trigram_check_reports_a_missing_fts5(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoFts5:
        def execute(self, sql: str) -> None:
            raise sqlite3.OperationalError("no such module: fts5")

        def close(self) -> None:
            pass

    monkeypatch.setattr(store.sqlite3, "connect", lambda *args, **kwargs: NoFts5())
    with pytest.raises(RuntimeError, match="no such module: fts5"):
        require_trigram_sqlite()


def test_pruning_removes_old_snapshots_and_leftovers_of_killed_jobs_only(tmp_path: Path) -> None:
    names = {
        "kept": "catalog-20261124T100000Z-aaaaaa.sqlite3",
        "old": "catalog-20261120T100000Z-bbbbbb.sqlite3",
        "stale build": ".catalog-20261101T100000Z-cccccc.sqlite3.1f2e.tmp",
        "stale download": ".catalog-20261101T100000Z-dddddd.sqlite3.3a4b.download",
        "running build": ".catalog-20261124T110000Z-eeeeee.sqlite3.5c6d.tmp",
        "someone else's": "notes.txt",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for what in ("stale build", "stale download", "someone else's"):
        os.utime(tmp_path / names[what], (two_hours_ago, two_hours_ago))

    prune_snapshot_files(tmp_path, keep={"20261124T100000Z-aaaaaa"})

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        names[what] for what in ("kept", "running build", "someone else's"))
