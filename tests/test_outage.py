"""NATS outages: a real nats-server that the tests stop and restart (storage.md, "The local mirror").

Signed-in staff keep browsing and editing from the local mirror; their edits
wait in the journal and reach KV on reconnect without overwriting anyone;
what needs NATS refuses with 503 and works again afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin import RobotStandIn
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.test_auth import Client, sign_in, users
from tests.test_catalog_api import refresh_now
from tests.test_catalog_refresh import write_jsonl

OUTAGE_TIMEOUT = 20.0


class Outage:
    """One channel on a NATS server of its own: a robot stand-in, and services started on demand."""

    def __init__(self, server: NatsServerProcess, make_config: Callable[..., Config], tmp_path: Path) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.base = make_config(nats_url=server.url)
        self._make_config = make_config
        self.services: list[PlaylistService] = []
        self.robot = RobotStandIn(server.url, domain=self.base.cytube_domain, channel=self.base.cytube_channel,
                                  prefix=self.base.nats_subject_prefix)

    def start_replica(self, name: str) -> PlaylistService:
        """A replica with a state file of its own (same namespace, channel and NATS)."""
        service = start_service(self._make_config(
            nats_url=self.server.url, namespace=self.base.namespace, cytube_channel=self.base.cytube_channel,
            initial_admins=["boss"], state_path=str(self.tmp_path / name / "state.sqlite3")))
        self.services.append(service)
        return service

    def stop_replica(self, service: PlaylistService) -> None:
        service.stop()
        self.services.remove(service)

    def go_down(self, *watching: PlaylistService) -> None:
        self.server.stop()
        for service in watching:
            wait_for(lambda s=service: _health(s)["nats"] == "disconnected", OUTAGE_TIMEOUT, "NATS seen down")

    def come_back(self, *watching: PlaylistService) -> None:
        self.server.start()
        for service in watching:
            wait_for(lambda s=service: _synced(s), OUTAGE_TIMEOUT, "reconnected and journal replayed")


def _health(service: PlaylistService) -> dict[str, Any]:
    status, body = Client(service).call("GET", "/api/v1/health")
    assert status == 200
    return body


def _synced(service: PlaylistService) -> bool:
    body = _health(service)
    return body["status"] == "ok" and body["pending_writes"] == 0


def _mirrored(service: PlaylistService, playlist_id: str, revision: int) -> bool:
    entry = service.state.get("playlists", f"playlists/{playlist_id}")
    return entry is not None and entry.revision >= revision


def _answered(call: tuple[int, Any]) -> tuple[int, Any] | None:
    status, answer = call
    return None if status == 503 and answer["error"]["code"] == "robot_unavailable" else call


def _items(*ids: str) -> list[dict[str, str]]:
    return [{"video_id": video_id} for video_id in ids]


@pytest.fixture
def outage(own_nats_server: NatsServerProcess, make_config: Callable[..., Config],
           tmp_path: Path) -> Iterator[Outage]:
    setup = Outage(own_nats_server, make_config, tmp_path)
    setup.robot.start()
    setup.robot.set_users(users("Bob", "Alice", "Boss"))
    yield setup
    for service in list(setup.services):
        setup.stop_replica(service)
    setup.robot.stop()


def _replica_with_catalog(outage: Outage, name: str = "one") -> PlaylistService:
    service = outage.start_replica(name)
    wait_for(lambda: service.ready, what="service ready")
    refresh_now(service, write_jsonl(outage.tmp_path / "catalog.jsonl", 30, "V"))
    service.acl.bless("bob")
    return service


def _two_replicas_and_a_playlist(outage: Outage, name: str) -> tuple[PlaylistService, PlaylistService, Client,
                                                                    str, int]:
    """Replicas `first` and `second`, bob signed in on `first`, and his playlist in both mirrors."""
    first = _replica_with_catalog(outage, "first")
    second = outage.start_replica("second")
    wait_for(lambda: second.ready, what="second replica ready")
    bob = sign_in(first, outage.robot, "bob")
    playlist_id, revision = _create(bob, name, "V00001")
    for replica in (first, second):
        wait_for(lambda r=replica: _mirrored(r, playlist_id, revision), what="the playlist in both mirrors")
    return first, second, bob, playlist_id, revision


def _create(client: Client, name: str, *ids: str) -> tuple[str, int]:
    status, answer = client.call("POST", "/api/v1/playlists", {"name": name, "items": _items(*ids)})
    assert status == 201, answer
    status, document = client.call("GET", f"/api/v1/playlists/{answer['playlist_id']}")
    assert status == 200
    return answer["playlist_id"], document["revision"]


def _put(client: Client, playlist_id: str, revision: int, name: str, *ids: str) -> tuple[int, Any]:
    headers = {"Cookie": f"kryten_playlist_session={client.cookie}", "If-Match": f'"{revision}"'}
    status, _headers, answer = http_json("PUT", f"{client.base}/api/v1/playlists/{playlist_id}",
                                         {"name": name, "items": _items(*ids)}, headers)
    return status, answer


def test_staff_browse_search_and_edit_through_an_outage(outage: Outage) -> None:
    service = _replica_with_catalog(outage)
    bob = sign_in(service, outage.robot, "bob")
    road_trip, revision = _create(bob, "Road trip", "V00001", "V00002")
    wait_for(lambda: _mirrored(service, road_trip, revision), what="the playlist in the mirror")

    outage.go_down(service)
    assert _health(service)["status"] == "degraded"
    status, listing = bob.call("GET", "/api/v1/playlists")
    assert status == 200 and [row["name"] for row in listing["playlists"]] == ["Road trip"]
    status, found = bob.call("GET", "/api/v1/catalog/search?q=title%2012")
    assert status == 200 and [item["video_id"] for item in found["items"]] == ["V00012"]

    status, answer = _put(bob, road_trip, revision, "Road trip, longer", "V00001", "V00002", "V00003")
    assert (status, answer) == (202, {"playlist_id": road_trip, "status": "pending_sync"})
    status, answer = bob.call("POST", "/api/v1/playlists", {"name": "Made offline", "items": _items("V00009")})
    assert status == 202 and answer["status"] == "pending_sync"
    made_offline = answer["playlist_id"]
    status, document = bob.call("GET", f"/api/v1/playlists/{made_offline}")
    assert status == 200 and [item["video_id"] for item in document["items"]] == ["V00009"]
    status, listing = bob.call("GET", "/api/v1/playlists")
    assert [row["name"] for row in listing["playlists"]] == ["Made offline", "Road trip, longer"]
    assert _health(service)["pending_writes"] == 2

    outage.come_back(service)
    stored = service.kv.get("playlists", f"playlists/{road_trip}")
    assert stored is not None and stored.value["name"] == "Road trip, longer"
    assert [item["video_id"] for item in stored.value["items"]] == ["V00001", "V00002", "V00003"]
    created = service.kv.get("playlists", f"playlists/{made_offline}")
    assert created is not None and created.value["created_by"] == "bob"
    index = service.kv.get("playlists", "playlists/index")
    assert index is not None and {entry["name"] for entry in index.value["playlists"].values()} == {
        "Road trip, longer", "Made offline"}


def test_what_needs_nats_refuses_with_503_and_works_after_the_reconnect(outage: Outage) -> None:
    service = _replica_with_catalog(outage)
    bob = sign_in(service, outage.robot, "bob")
    playlist_id, _revision = _create(bob, "Evening", "V00001")
    outage.robot.play(outage.robot.enqueue(service.config.manifest_url_template.format(video_id="V00004")))
    wait_for(lambda: bob.call("GET", "/api/v1/nowplaying")[1].get("video_id") == "V00004", what="now playing")

    outage.go_down(service)
    refused = {
        "apply": bob.call("POST", "/api/v1/queue/apply", {"playlist_id": playlist_id, "mode": "append"}),
        "otp": Client(service).request_code("alice"),
        "like": bob.call("POST", "/api/v1/likes/current", {}),
    }
    assert {what: (status, answer["error"]["code"]) for what, (status, answer) in refused.items()} == {
        what: (503, "nats_unavailable") for what in refused}

    outage.come_back(service)
    # The robot stand-in reconnects on its own schedule; until it does, apply answers robot_unavailable.
    status, applied = wait_for(lambda: _answered(bob.call("POST", "/api/v1/queue/apply",
                                                          {"playlist_id": playlist_id, "mode": "append"})),
                               OUTAGE_TIMEOUT, "apply answered")
    assert status == 200 and applied["enqueued_count"] == 1, applied
    assert Client(service).request_code("alice")[0] == 200
    wait_for(lambda: bob.call("GET", "/api/v1/nowplaying")[1].get("video_id") == "V00004", what="now playing")
    status, liked = bob.call("POST", "/api/v1/likes/current", {})
    assert status == 200 and liked["like_count"] == 1, liked


def test_a_restart_during_the_outage_keeps_the_journal_and_the_mirror(outage: Outage) -> None:
    service = _replica_with_catalog(outage, "only")
    bob = sign_in(service, outage.robot, "bob")
    playlist_id, revision = _create(bob, "Late show", "V00001")
    wait_for(lambda: _mirrored(service, playlist_id, revision), what="the playlist in the mirror")

    outage.go_down(service)
    assert _put(bob, playlist_id, revision, "Late show", "V00001", "V00006")[0] == 202
    outage.stop_replica(service)
    restarted = outage.start_replica("only")  # NATS still down: everything comes from the state file
    bob_again = Client(restarted)
    bob_again.cookie = bob.cookie
    health = _health(restarted)
    assert (health["status"], health["nats"], health["item_count"], health["pending_writes"]) == (
        "degraded", "disconnected", 30, 1)
    status, document = bob_again.call("GET", f"/api/v1/playlists/{playlist_id}")
    assert status == 200 and [item["video_id"] for item in document["items"]] == ["V00001", "V00006"]

    outage.come_back(restarted)
    stored = restarted.kv.get("playlists", f"playlists/{playlist_id}")
    assert stored is not None and [item["video_id"] for item in stored.value["items"]] == ["V00001", "V00006"]


def test_the_journal_survives_a_restart_and_a_conflicting_edit_becomes_an_offline_copy(outage: Outage) -> None:
    first, second, bob, playlist_id, revision = _two_replicas_and_a_playlist(outage, "Shared")

    outage.go_down(first, second)
    assert _put(bob, playlist_id, revision, "Shared", "V00001", "V00005")[0] == 202
    outage.stop_replica(first)  # the offline edit now lives only in first's state file
    outage.come_back(second)
    alice_edit = second.playlists.update(playlist_id, {"name": "Shared", "items": _items("V00007")}, revision)

    restarted = outage.start_replica("first")
    wait_for(lambda: _synced(restarted), OUTAGE_TIMEOUT, "the journal replayed after the restart")
    stored = second.kv.get("playlists", f"playlists/{playlist_id}")
    assert stored is not None and stored.revision == alice_edit[1]
    assert [item["video_id"] for item in stored.value["items"]] == ["V00007"]
    copies = [row for row in second.playlists.list() if row["name"] == "Shared (offline copy)"]
    assert len(copies) == 1 and copies[0]["created_by"] == "bob"
    copy, _revision = second.playlists.get(copies[0]["playlist_id"])
    assert [item["video_id"] for item in copy["items"]] == ["V00001", "V00005"]


def test_two_replicas_editing_offline_keep_both_versions(outage: Outage) -> None:
    first, second, bob, playlist_id, revision = _two_replicas_and_a_playlist(outage, "Both")
    boss_on_second = sign_in(second, outage.robot, "boss")

    outage.go_down(first, second)
    assert _put(bob, playlist_id, revision, "Both", "V00002")[0] == 202
    assert _put(bob, playlist_id, revision, "Both", "V00002", "V00003")[0] == 202  # a second save, same base
    assert _put(boss_on_second, playlist_id, revision, "Both", "V00004")[0] == 202
    outage.come_back(first, second)

    rows = {row["name"]: row for row in first.playlists.list()}
    assert set(rows) == {"Both", "Both (offline copy)"}
    versions = {tuple(item["video_id"] for item in first.playlists.get(row["playlist_id"])[0]["items"])
                for row in rows.values()}
    assert versions == {("V00002", "V00003"), ("V00004",)}


def test_an_offline_delete_of_a_playlist_changed_meanwhile_is_dropped(outage: Outage) -> None:
    first, second, bob, playlist_id, revision = _two_replicas_and_a_playlist(outage, "Keep me")

    outage.go_down(first, second)
    status, answer = bob.call("DELETE", f"/api/v1/playlists/{playlist_id}")
    assert (status, answer) == (202, {"playlist_id": playlist_id, "status": "pending_sync"})
    assert bob.call("GET", f"/api/v1/playlists/{playlist_id}")[0] == 404
    outage.stop_replica(first)
    outage.come_back(second)
    second.playlists.update(playlist_id, {"name": "Keep me", "items": _items("V00002")}, revision)

    restarted = outage.start_replica("first")
    wait_for(lambda: _synced(restarted), OUTAGE_TIMEOUT, "the journal replayed after the restart")
    document, _revision = second.playlists.get(playlist_id)
    assert [item["video_id"] for item in document["items"]] == ["V00002"]
