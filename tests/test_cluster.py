"""Many replicas (operations.md "Deployment shapes"): two services on a three-node NATS cluster.

The replicas share a namespace and a secret but nothing on disk, as two
hosts would. What one does, the other sees: playlists, sessions, and catalog
snapshots (downloaded from the object store by the snapshot follower). A NATS
node stopped mid-way changes nothing for the users. The follower's failure
path runs on the session's single server.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.commands import CommandRequest
from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.catalog.store import snapshot_path
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from tests.cluster_fixtures import NatsCluster
from tests.conftest import start_service
from tests.helpers import http_json, wait_for

NODE_LOSS_SECONDS = 60.0  # reconnect, stream leader elections and watcher resets together


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    started = NatsCluster(tmp_path / "cluster")
    try:
        started.start()
        yield started
    finally:
        started.stop()


def replica_config(folder: Path, namespace: str, nats_url: str | list[str], **overrides: Any) -> Config:
    """A replica with a disk of its own; everything shared is in NATS."""
    return Config.from_mapping({
        "nats_url": nats_url, "namespace": namespace, "http_port": 0, "initial_admins": ["alice"],
        "sqlite_path": str(folder / "catalog.sqlite3"), "state_path": str(folder / "state.sqlite3"),
        "secret_path": str(folder / "secret.key"), "keep_snapshots": 1, **overrides})


@contextmanager
def running_replicas(tmp_path: Path, nats_url: str | list[str], **overrides: Any) -> Iterator[list[PlaylistService]]:
    """Two replicas `a` and `b`, stopped at the end whatever happened while starting them."""
    namespace = "c" + secrets.token_hex(6)
    with ExitStack() as stack:
        replicas = []
        # One after the other: the first creates the buckets, the second only binds them,
        # so a loaded machine does not see two replicas creating R3 streams at once.
        for name in ("a", "b"):
            replica = start_service(replica_config(tmp_path / name, namespace, nats_url, **overrides))
            stack.callback(replica.stop)
            wait_for(lambda replica=replica: replica.ready, timeout=30, what=f"replica {name} connected to NATS")
            replicas.append(replica)
        yield replicas


@pytest.fixture
def replicas(cluster: NatsCluster, tmp_path: Path) -> Iterator[list[PlaylistService]]:
    with running_replicas(tmp_path, cluster.urls, kv_replicas=3) as started:
        yield started


@pytest.fixture
def single_server_replicas(make_config: Callable[..., Config], tmp_path: Path) -> Iterator[list[PlaylistService]]:
    with running_replicas(tmp_path, make_config().nats_url) as started:
        yield started


# ---- helpers -------------------------------------------------------------------


def catalog_file(path: Path, prefix: str, count: int = 5) -> Path:
    with path.open("w") as out:
        for n in range(count):
            out.write(json.dumps({"video_id": f"{prefix}{n}", "title": f"{prefix} episode {n}",
                                  "categories": ["TV"], "duration_seconds": 60}) + "\n")
    return path


def refresh(replica: PlaylistService, source: Path) -> str:
    return replica.refresh.run(replica.refresh.begin("jsonl", str(source))).snapshot_id


def call(replica: PlaylistService, method: str, path: str, session_id: str | None = None,
         body: Any = None) -> tuple[int, Any]:
    headers = {"Cookie": f"kryten_playlist_session={session_id}"} if session_id else {}
    status, _headers, answer = http_json(method, f"http://127.0.0.1:{replica.http.port}/api/v1{path}", body,
                                         headers)
    return status, answer


def searched_snapshot(replica: PlaylistService, query: str) -> tuple[str, int] | None:
    status, answer = call(replica, "GET", f"/catalog/search?q={query}")
    return (answer["snapshot_id"], answer["total"]) if status == 200 else None


def sign_in(replica: PlaylistService) -> str:
    """A session as sign-in makes it (the OTP round trip itself is test_auth.py's)."""
    session_id, _document = replica.sessions.create("alice", "admin", "127.0.0.1")
    return session_id


def create_playlist(replica: PlaylistService, session_id: str, name: str, video_id: str,
                    accepted: tuple[int, ...] = (201,)) -> str | None:
    """The new playlist's id, or None when the answer's status is not one of `accepted`."""
    status, answer = call(replica, "POST", "/playlists", session_id, {"name": name, "items": [{"video_id": video_id}]})
    return answer["playlist_id"] if status in accepted else None


def reads_playlist(replica: PlaylistService, session_id: str, playlist_id: str, name: str) -> bool:
    status, answer = call(replica, "GET", f"/playlists/{playlist_id}", session_id)
    return status == 200 and answer["name"] == name


def catalog_files(folder: Path) -> list[str]:
    """The link, the snapshot files and any temporary download beside them."""
    return sorted(path.name for path in folder.iterdir() if "catalog" in path.name)


def follows(replica: PlaylistService, snapshot_id: str, query: str, total: int) -> bool:
    return searched_snapshot(replica, query) == (snapshot_id, total)


# ---- the cluster ---------------------------------------------------------------


def test_what_one_replica_does_the_other_sees(replicas: list[PlaylistService], tmp_path: Path) -> None:
    a, b = replicas
    first = refresh(a, catalog_file(tmp_path / "one.jsonl", "alpha"))
    wait_for(lambda: follows(b, first, "alpha", 5), timeout=30, what="replica b serving a's snapshot")
    b_link = Path(b.config.sqlite_path)
    assert os.readlink(b_link) == f"catalog-{first}.sqlite3"

    session_id = sign_in(a)
    status, me = call(b, "GET", "/auth/me", session_id)
    assert status == 200 and (me["username"], me["role"]) == ("alice", "admin")

    playlist_id = create_playlist(a, session_id, "Made on A", "alpha1")
    assert playlist_id is not None
    status, document = call(b, "GET", f"/playlists/{playlist_id}", session_id)
    assert status == 200 and document["name"] == "Made on A"
    assert [(item["video_id"], item["available"]) for item in document["items"]] == [("alpha1", True)]

    # The other way round, and the follower prunes to keep_snapshots (1) like the refresh does.
    second = refresh(b, catalog_file(tmp_path / "two.jsonl", "beta", count=4))
    wait_for(lambda: follows(a, second, "beta", 4), timeout=30, what="replica a serving b's snapshot")
    wait_for(lambda: catalog_files(Path(a.config.sqlite_path).parent) == sorted(
        ["catalog.sqlite3", f"catalog-{second}.sqlite3"]), what="replica a pruning its own older snapshot")
    assert call(a, "POST", "/auth/logout", session_id)[0] == 200
    assert call(b, "GET", "/auth/me", session_id)[0] == 401


def test_a_stopped_nats_node_changes_nothing_for_the_users(replicas: list[PlaylistService], cluster: NatsCluster,
                                                          tmp_path: Path) -> None:
    a, b = replicas
    before = refresh(a, catalog_file(tmp_path / "one.jsonl", "alpha"))
    wait_for(lambda: follows(b, before, "alpha", 5), timeout=30, what="replica b serving a's snapshot")
    session_id = sign_in(a)
    kept = create_playlist(a, session_id, "Before the outage", "alpha0")
    assert kept is not None

    stopped = cluster.node_at(a.bridge.nc.connected_url.geturl())
    stopped.stop()

    for replica in (a, b):
        # Before the replica has reconnected a write is journalled (202, replayed on
        # reconnect); while the streams elect new leaders it may be refused (503) and
        # is tried again, under a fresh name in case the refused try did land.
        written = wait_for(lambda r=replica: create_playlist(r, session_id, f"After {secrets.token_hex(3)}", "alpha2",
                                                             accepted=(201, 202)),
                           timeout=NODE_LOSS_SECONDS, what="a playlist write after the node stopped")
        for reader in (a, b):
            wait_for(lambda r=reader, w=written: call(r, "GET", f"/playlists/{w}", session_id)[0] == 200,
                     timeout=NODE_LOSS_SECONDS, what="the new playlist read on every replica")
            assert reads_playlist(reader, session_id, kept, "Before the outage")
            assert call(reader, "GET", "/auth/me", session_id)[0] == 200
    assert a.bridge.nc.connected_url.geturl() != stopped.url

    # Snapshots still travel: the object store and the `current` watch survived the node.
    after = refresh(b, catalog_file(tmp_path / "two.jsonl", "gamma", count=3))
    wait_for(lambda: follows(a, after, "gamma", 3), timeout=NODE_LOSS_SECONDS,
             what="replica a serving b's snapshot after the node stopped")


# ---- the follower's failure path (one server is enough) ----------------------------


def test_a_snapshot_that_cannot_be_fetched_leaves_the_old_one_live(
        single_server_replicas: list[PlaylistService], tmp_path: Path) -> None:
    a, b = single_server_replicas
    live = refresh(a, catalog_file(tmp_path / "one.jsonl", "alpha"))
    wait_for(lambda: follows(b, live, "alpha", 5), what="replica b serving a's snapshot")
    b_folder = Path(b.config.sqlite_path).parent
    files_before = catalog_files(b_folder)

    missing = "20000101T000000Z-00dead"
    a.kv.put("snapshot", "current", {"snapshot_id": missing, "source": "jsonl", "created_at": "2000-01-01T00:00:00Z",
                                     "item_count": 5, "notes": "", "schema_version": 1})
    wait_for(lambda: "not in the object store" in (b.follower.last_error or ""), what="the failed download")
    assert follows(b, live, "alpha", 5)
    assert catalog_files(b_folder) == files_before  # no partial download left behind

    # An object that holds another snapshot than its name says is refused by the check.
    impostor = "20000101T000000Z-0badf0"
    SnapshotObjects(a.bridge, a.config.namespace).upload(impostor, snapshot_path(a.config.sqlite_path, live))
    a.kv.put("snapshot", "current", {"snapshot_id": impostor, "source": "jsonl", "created_at": "2000-01-01T00:00:01Z",
                                     "item_count": 5, "notes": "", "schema_version": 1})
    wait_for(lambda: f"holds snapshot {live}, not {impostor}" in (b.follower.last_error or ""),
             what="the refused download")
    assert follows(b, live, "alpha", 5)
    assert catalog_files(b_folder) == files_before

    # The next good snapshot is taken over as usual.
    fixed = refresh(a, catalog_file(tmp_path / "two.jsonl", "beta"))
    wait_for(lambda: follows(b, fixed, "beta", 5), what="replica b serving the next good snapshot")
    assert b.follower.last_error is None


def test_an_admin_command_is_answered_by_one_replica(single_server_replicas: list[PlaylistService]) -> None:
    """Both replicas subscribe in one queue group per namespace (nats.md section 1): one handles each request."""
    handled = {"a": 0, "b": 0}
    for name, replica in zip(("a", "b"), single_server_replicas, strict=True):
        def count(_request: CommandRequest, name: str = name) -> dict[str, Any]:
            handled[name] += 1
            return {"replica": name}

        replica.commands.register("count", count)
    a = single_server_replicas[0]
    requests = 20
    for n in range(requests):
        reply = a.bridge.request(f"{a.config.nats_subject_prefix}.playlist.cmd.count", {
            "correlation_id": f"c{n}", "namespace": a.config.namespace, "requested_by": "alice"}, timeout=5)
        assert reply["status"] == "ok" and reply["correlation_id"] == f"c{n}"
    # Every handler ran before its reply went out; without the queue group each
    # request would have been handled twice by now.
    assert sum(handled.values()) == requests
    assert min(handled.values()) > 0  # both replicas take their share
