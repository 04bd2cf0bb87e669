"""The catalog refresh against a real nats-server: publish, swap, guards, and every failure point."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest

from kryten_playlist_lib.bus.kv import OBJECT_STORE, KvStore
from kryten_playlist_lib.bus.leases import Leases
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.catalog.follower import SnapshotFollower
from kryten_playlist_lib.catalog.refresh import LEASE_NAME, CatalogRefresh, RefreshFailed
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.cli.common import NatsSession, nats_session
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError


def write_jsonl(path: Path, count: int, prefix: str) -> Path:
    with path.open("w") as out:
        for n in range(count):
            out.write(json.dumps({"video_id": f"{prefix}{n:05d}", "title": f"{prefix} title {n}",
                                  "categories": ["TV"] if n % 2 else [], "duration_seconds": 60 + n,
                                  "thumbnail_url": None}) + "\n")
    return path


@pytest.fixture
def session(config: Config) -> Iterator[NatsSession]:
    with nats_session(config) as connected:
        yield connected


def make_refresh(config: Config, session: NatsSession, kind: type[CatalogRefresh] = CatalogRefresh
                 ) -> CatalogRefresh:
    return kind(config, session.kv, session.leases, SnapshotObjects(session.bridge, config.namespace))


def refresh_from(refresh: CatalogRefresh, source: Path, force: bool = False) -> str:
    return refresh.run(refresh.begin("jsonl", str(source), force)).snapshot_id


class State:
    """What a refresh may change, to compare before and after a failure."""

    def __init__(self, config: Config, session: NatsSession) -> None:
        link = Path(config.sqlite_path)
        current = session.kv.get("snapshot", "current")
        self.link = os.readlink(link) if link.is_symlink() else None
        self.current = current.value if current else None
        self.files = sorted(p.name for p in link.parent.glob("catalog-*.sqlite3"))
        self.objects = sorted(SnapshotObjects(session.bridge, config.namespace).snapshot_ids())
        self.documents = sorted(session.kv.keys("snapshot", "snapshots/"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return repr(vars(self))


def test_a_refresh_publishes_and_swaps_in_a_snapshot(config: Config, session: NatsSession, tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    job = refresh.begin("jsonl", str(write_jsonl(tmp_path / "a.jsonl", 40, "A")))
    result = refresh.run(job)
    assert result.item_count == 40
    current = session.kv.get("snapshot", "current").value
    assert current["snapshot_id"] == result.snapshot_id and current["item_count"] == 40
    assert session.kv.get("snapshot", f"snapshots/{result.snapshot_id}").value == current
    assert SnapshotObjects(session.bridge, config.namespace).snapshot_ids() == [result.snapshot_id]
    assert os.readlink(config.sqlite_path) == f"catalog-{result.snapshot_id}.sqlite3"
    assert refresh.job_status(job.job_id)["status"] == "ok"
    assert refresh.job_status(job.job_id)["snapshot_id"] == result.snapshot_id
    page = CatalogReader(config.sqlite_path).search("A title 7", limit=50)
    assert page.snapshot_id == result.snapshot_id
    assert [item["title"] for item in page.items] == ["A title 7", "A title 17", "A title 27", "A title 37"]


def test_old_snapshots_are_kept_up_to_keep_snapshots(config: Config, session: NatsSession, tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    source = write_jsonl(tmp_path / "a.jsonl", 10, "A")
    ids = [refresh_from(refresh, source) for _ in range(3)]
    assert config.keep_snapshots == 2
    kept = sorted(p.name for p in Path(config.sqlite_path).parent.glob("catalog-*.sqlite3"))
    assert kept == sorted(f"catalog-{i}.sqlite3" for i in ids[1:])
    assert sorted(SnapshotObjects(session.bridge, config.namespace).snapshot_ids()) == sorted(ids[1:])
    reader = CatalogReader(config.sqlite_path)
    assert reader.search(None, snapshot_id=ids[1]).snapshot_id == ids[1]


def test_a_much_smaller_or_empty_source_is_refused_unless_forced(config: Config, session: NatsSession,
                                                                 tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    refresh_from(refresh, write_jsonl(tmp_path / "big.jsonl", 100, "B"))
    before = State(config, session)
    small = write_jsonl(tmp_path / "small.jsonl", 49, "S")
    with pytest.raises(RefreshFailed, match="fewer than 0.5"):
        refresh_from(refresh, small)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RefreshFailed, match="no usable items"):
        refresh_from(refresh, empty)
    assert State(config, session) == before
    assert CatalogReader(config.sqlite_path).search(None).total == 100
    refresh_from(refresh, small, force=True)
    assert CatalogReader(config.sqlite_path).search(None).total == 49


def test_one_refresh_at_a_time(config: Config, session: NatsSession, tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    job = refresh.begin("jsonl", str(write_jsonl(tmp_path / "a.jsonl", 5, "A")))
    with pytest.raises(ServiceError) as refused:
        refresh.begin("jsonl", str(tmp_path / "a.jsonl"))
    assert refused.value.code == "refresh_in_progress"
    refresh.run(job)
    refresh.run(refresh.begin("jsonl", str(tmp_path / "a.jsonl")))


def test_an_unreadable_source_changes_nothing(config: Config, session: NatsSession, tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    refresh_from(refresh, write_jsonl(tmp_path / "a.jsonl", 10, "A"))
    before = State(config, session)
    job = refresh.begin("jsonl", str(tmp_path / "missing.jsonl"))
    with pytest.raises(RefreshFailed):
        refresh.run(job)
    assert State(config, session) == before
    status = refresh.job_status(job.job_id)
    assert status["status"] == "error" and status["error"] and status["snapshot_id"] is None
    assert session.leases.acquire(LEASE_NAME, 1) is not None


def test_a_failed_upload_changes_nothing(own_nats_server: NatsServerProcess, make_config: Callable[..., Config],
                                         tmp_path: Path) -> None:
    config = make_config(nats_url=own_nats_server.url)
    with nats_session(config) as session:
        refresh = make_refresh(config, session)
        refresh_from(refresh, write_jsonl(tmp_path / "a.jsonl", 10, "A"))
        before_link = os.readlink(config.sqlite_path)
        before_current = session.kv.get("snapshot", "current")

        async def drop_object_store() -> None:
            nc = await nats.connect(own_nats_server.url)
            await nc.jetstream().delete_object_store(OBJECT_STORE)
            await nc.close()

        asyncio.run(drop_object_store())
        with pytest.raises(RefreshFailed):
            refresh_from(refresh, write_jsonl(tmp_path / "b.jsonl", 10, "B"))
        assert os.readlink(config.sqlite_path) == before_link
        assert session.kv.get("snapshot", "current") == before_current
        assert len(list(Path(config.sqlite_path).parent.glob("catalog-*.sqlite3"))) == 1
        assert session.kv.keys("snapshot", "snapshots/") == [f"snapshots/{before_current.value['snapshot_id']}"]


class SwapFails(CatalogRefresh):
    """The link cannot be replaced (a full or read-only disk, say); moving it back still works."""

    def swap_link(self, link: Path, target: str) -> None:
        if os.readlink(link) != target:
            raise OSError(28, "No space left on device")
        super().swap_link(link, target)


class CurrentMovesDuringSwap(CatalogRefresh):
    """Another writer moves `current` right after the link swap, so the CAS that follows loses."""

    def __init__(self, config: Config, kv: KvStore, leases: Leases, objects: SnapshotObjects) -> None:
        super().__init__(config, kv, leases, objects)
        self.other_replica = kv

    def swap_link(self, link: Path, target: str) -> None:
        moving_in = os.readlink(link) != target
        super().swap_link(link, target)
        if moving_in:
            self.other_replica.put("snapshot", "current", {"snapshot_id": "elsewhere", "schema_version": 1})


class FollowerWakesDuringSwap(CatalogRefresh):
    """This replica's snapshot follower wakes after the link swap, before `current` has moved."""

    follower: SnapshotFollower
    link_after_follow: str = ""

    def swap_link(self, link: Path, target: str) -> None:
        super().swap_link(link, target)
        self.follower.follow()
        self.link_after_follow = os.readlink(link)


def test_the_follower_keeps_off_the_link_while_this_replica_refreshes(config: Config, session: NatsSession,
                                                                      tmp_path: Path) -> None:
    refresh_from(make_refresh(config, session), write_jsonl(tmp_path / "a.jsonl", 10, "A"))
    refresh = make_refresh(config, session, FollowerWakesDuringSwap)
    assert isinstance(refresh, FollowerWakesDuringSwap)
    refresh.follower = SnapshotFollower(config, session.kv, SnapshotObjects(session.bridge, config.namespace),
                                        local_refresh_running=lambda: refresh.in_progress)
    second = refresh_from(refresh, write_jsonl(tmp_path / "b.jsonl", 10, "B"))
    assert refresh.link_after_follow == f"catalog-{second}.sqlite3"
    assert not refresh.in_progress
    assert CatalogReader(config.sqlite_path).search("B title").total == 10


@pytest.mark.parametrize("kind", [SwapFails, CurrentMovesDuringSwap])
def test_a_failure_at_or_after_the_swap_leaves_the_old_snapshot_live(
        config: Config, session: NatsSession, tmp_path: Path, kind: type[CatalogRefresh]) -> None:
    first = refresh_from(make_refresh(config, session), write_jsonl(tmp_path / "a.jsonl", 10, "A"))
    before_files = sorted(p.name for p in Path(config.sqlite_path).parent.glob("catalog-*.sqlite3"))
    with pytest.raises(RefreshFailed):
        refresh_from(make_refresh(config, session, kind), write_jsonl(tmp_path / "b.jsonl", 10, "B"))
    assert os.readlink(config.sqlite_path) == f"catalog-{first}.sqlite3"
    assert sorted(p.name for p in Path(config.sqlite_path).parent.glob("catalog-*.sqlite3")) == before_files
    assert SnapshotObjects(session.bridge, config.namespace).snapshot_ids() == [first]
    assert session.kv.keys("snapshot", "snapshots/") == [f"snapshots/{first}"]
    assert CatalogReader(config.sqlite_path).search("B title").total == 0


def test_searches_during_a_refresh_see_the_old_or_the_new_catalog_whole(
        config: Config, session: NatsSession, tmp_path: Path) -> None:
    refresh = make_refresh(config, session)
    refresh_from(refresh, write_jsonl(tmp_path / "old.jsonl", 300, "OLD"))
    reader = CatalogReader(config.sqlite_path)
    seen: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def keep_searching() -> None:
        while not done.is_set():
            try:
                page = reader.search("title", limit=200)
                olds = sum(item["video_id"].startswith("OLD") for item in page.items)
                seen.append((page.snapshot_id, page.total, olds))
            except BaseException as exc:  # noqa: BLE001  (every failure must reach the test)
                errors.append(exc)
                return

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    try:
        new_id = refresh_from(refresh, write_jsonl(tmp_path / "new.jsonl", 100_000, "NEW"))
    finally:
        done.set()
        searcher.join(30)
    assert errors == []
    assert {total for _, total, _ in seen} <= {300, 100_000}
    for snapshot_id, total, olds in seen:
        assert (olds == 200) == (total == 300), (snapshot_id, total, olds)
    assert reader.search("title").snapshot_id == new_id


# ---- the build in a child process ---------------------------------------------------------------


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row of a snapshot file by table, the FTS index's own tables included."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as conn:
        tables = [name for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                  if not sql.startswith("CREATE VIRTUAL")]  # the contentless FTS table cannot be scanned
        return {name: conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall() for name in tables}


def test_the_child_process_build_writes_the_same_file_as_the_in_process_build(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kryten_playlist_lib.catalog.child_build import BuildRequest, build_here, build_snapshot_file, child_command

    source = write_jsonl(tmp_path / "a.jsonl", 12_000, "A")
    with source.open("a") as out:
        out.write("not json\n" + json.dumps({"video_id": "A00001", "title": "again"}) + "\n")

    def request(name: str) -> BuildRequest:
        return BuildRequest(path=str(tmp_path / name), snapshot_id="20261124T120000Z-abcdef",
                            created_at="2026-11-24T12:00:00.000Z", connector="jsonl", connector_source=str(source),
                            manifest_url_template="https://m.example/{video_id}.json", mediacms_base_url=None,
                            mediacms_token=None)

    seen: list[int] = []
    in_child = build_snapshot_file(request("child.sqlite3"), seen.append, child_command())
    in_process = build_here(request("here.sqlite3"), None)
    assert "building inside the service instead" not in caplog.text
    assert in_child == in_process
    assert in_child.item_count == 12_000
    assert in_child.skipped == {"skipped_missing": 1, "skipped_invalid_id": 0, "duplicates": 1}
    assert seen[-1] == 12_000 and seen == sorted(seen)
    assert "line 12001 is not a JSON object" in caplog.text  # the child's log, logged by the parent
    child_rows = _dump(tmp_path / "child.sqlite3")
    assert child_rows == _dump(tmp_path / "here.sqlite3")
    assert {"catalog_item", "catalog_fts_data", "snapshot_meta"} <= set(child_rows)


class BuildsInProcess(CatalogRefresh):
    """As in a host whose interpreter cannot start a child: a `python` that never answers."""

    def build_command(self) -> list[str] | None:
        import sys

        return [sys.executable, "-c", "pass"]


def test_without_a_usable_child_the_refresh_builds_in_process(config: Config, session: NatsSession,
                                                             tmp_path: Path) -> None:
    result = make_refresh(config, session, BuildsInProcess).run(
        make_refresh(config, session).begin("jsonl", str(write_jsonl(tmp_path / "a.jsonl", 40, "A"))))
    assert result.item_count == 40
    assert CatalogReader(config.sqlite_path).search("A title 7").total == 4


def _build_children() -> list[int]:
    """The pids of this process's catalog build children (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
        if parent == os.getpid() and b"catalog.child_build" in command:
            found.append(int(stat.parent.name))
    return found


def test_a_build_child_that_dies_leaves_the_old_snapshot_live(config: Config, session: NatsSession,
                                                              tmp_path: Path) -> None:
    import signal

    refresh = make_refresh(config, session)
    first = refresh_from(refresh, write_jsonl(tmp_path / "a.jsonl", 10, "A"))
    before = State(config, session)
    killed: list[int] = []

    def kill_the_child(_items_seen: int) -> None:
        # As the kernel's out-of-memory killer would, half-way through the file.
        if not killed:
            killed.extend(_build_children())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    job = refresh.begin("jsonl", str(write_jsonl(tmp_path / "b.jsonl", 60_000, "B")))
    with pytest.raises(RefreshFailed, match="catalog build process ended without finishing .killed by signal 9"):
        refresh.run(job, on_progress=kill_the_child)
    assert len(killed) == 1
    assert State(config, session) == before
    assert os.readlink(config.sqlite_path) == f"catalog-{first}.sqlite3"
    assert list(Path(config.sqlite_path).parent.glob(".catalog-*")) == []  # no partial file
    assert refresh.job_status(job.job_id)["status"] == "error"
    with pytest.raises(RefreshFailed, match="cannot open the jsonl file .*missing.jsonl"):
        refresh_from(refresh, tmp_path / "missing.jsonl")  # the child's own error, word for word
    assert State(config, session) == before


def test_catalog_refresh_from_standard_input_goes_through_the_child(config: Config, tmp_path: Path) -> None:
    import subprocess

    from tests.test_cli import CHILD_ENV, CLI

    settings = {"nats_url": config.nats_url, "namespace": config.namespace, "sqlite_path": config.sqlite_path,
                "state_path": config.state_path}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    lines = write_jsonl(tmp_path / "a.jsonl", 30, "A").read_text() + "not json\n"
    result = subprocess.run([*CLI, "catalog", "refresh", "--connector", "jsonl", "--source", "-"], input=lines,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=CHILD_ENV, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": 30 items (skipped: 1 skipped missing)")
    assert [item["title"] for item in CatalogReader(config.sqlite_path).search("title 29").items] == ["A title 29"]
