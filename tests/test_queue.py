"""Queue apply against the real service, a real nats-server and the robot stand-in (behaviour.md section 5)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.activity.stats import item_zero
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.domain.rbac import User
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin import RobotStandIn
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)
from tests.test_catalog_api import refresh_now
from tests.test_catalog_refresh import write_jsonl

ADMIN = User("local", "admin")


def url(service: PlaylistService, video_id: str) -> str:
    return service.config.manifest_url_template.format(video_id=video_id)


@pytest.fixture
def queue_service(make_config: Callable[..., Config], robot: RobotStandIn,  # noqa: F811
                  tmp_path: Path) -> Iterator[PlaylistService]:
    robot.silent_timeout_seconds = 0.2
    robot.rate_limit_enabled = False
    running = start_service(make_config(disable_auth=True, robot_timeout_seconds=2, queue_add_rate_per_second=50))
    wait_for(lambda: running.ready)
    refresh_now(running, write_jsonl(tmp_path / "c.jsonl", 30, "V"))
    yield running
    running.stop()


def make_playlist(service: PlaylistService, name: str, ids: list[str]) -> str:
    return service.playlists.create({"name": name, "items": [{"video_id": i} for i in ids]}, "local")


def queued_urls(robot: RobotStandIn) -> list[str]:  # noqa: F811
    return [item["media"]["id"] for item in robot.queue_items()]


def apply(service: PlaylistService, playlist_id: str, mode: str, **extra: Any) -> tuple[int, Any]:
    status, _headers, answer = http_json("POST", f"http://127.0.0.1:{service.http.port}/api/v1/queue/apply",
                                         {"playlist_id": playlist_id, "mode": mode, **extra})
    return status, answer


def test_append_keeps_the_queue_and_adds_in_playlist_order(queue_service: PlaylistService,
                                                           robot: RobotStandIn) -> None:  # noqa: F811
    robot.enqueue("https://elsewhere.example/a.json")
    playlist_id = make_playlist(queue_service, "Three", ["V00003", "V00001", "V00002"])
    status, answer = apply(queue_service, playlist_id, "append")
    assert status == 200, answer
    assert answer == {"status": "queued", "apply_id": answer["apply_id"], "enqueued_count": 3, "failed": [],
                      "removed_count": 0}
    assert queued_urls(robot) == ["https://elsewhere.example/a.json",
                                  *(url(queue_service, v) for v in ["V00003", "V00001", "V00002"])]
    record = queue_service.kv.get("playlists", f"applies/{answer['apply_id']}").value
    assert record["queue_before"] == [{"uid": 0, "media_id": "https://elsewhere.example/a.json"}]
    summary = queue_service.kv.get("analytics", "counters/global").value
    assert summary["items_queued"] == 3 and summary["duration_queued_seconds"] == 60 * 3 + 3 + 1 + 2


def test_statistics_are_in_place_when_the_apply_answers(queue_service: PlaylistService,
                                                        robot: RobotStandIn) -> None:  # noqa: F811
    playlist_id = make_playlist(queue_service, "Twice", ["V00004", "V00005", "V00004"])
    queue_service.kv.put("analytics", "items/V00005", {**item_zero("V00005"), "play_count": 3})
    status, answer = apply(queue_service, playlist_id, "append")
    assert status == 200 and answer["enqueued_count"] == 3, answer
    items = {video_id: queue_service.kv.get("analytics", f"items/{video_id}").value
             for video_id in ("V00004", "V00005")}
    assert (items["V00004"]["queue_count"], items["V00005"]["queue_count"]) == (2, 1)
    assert items["V00005"]["play_count"] == 3 and items["V00004"]["last_queued_at"] is not None
    assert queue_service.kv.get("analytics", f"playlists/{playlist_id}").value["apply_count"] == 1
    assert apply(queue_service, playlist_id, "append")[0] == 200
    assert queue_service.kv.get("analytics", "items/V00004").value["queue_count"] == 4
    assert queue_service.kv.get("analytics", f"playlists/{playlist_id}").value["apply_count"] == 2


def test_preserve_current_removes_what_follows_the_playing_item(queue_service: PlaylistService,
                                                                robot: RobotStandIn) -> None:  # noqa: F811
    uids = [robot.enqueue(f"https://elsewhere.example/{n}.json") for n in range(4)]
    robot.play(uids[1])
    playlist_id = make_playlist(queue_service, "Two", ["V00005", "V00006"])
    status, answer = apply(queue_service, playlist_id, "preserve_current")
    assert status == 200 and answer["removed_count"] == 2 and answer["enqueued_count"] == 2
    assert queued_urls(robot) == ["https://elsewhere.example/0.json", "https://elsewhere.example/1.json",
                                  url(queue_service, "V00005"), url(queue_service, "V00006")]


def test_preserve_current_with_nothing_playing_and_hard_replace_remove_everything(
        queue_service: PlaylistService, robot: RobotStandIn) -> None:  # noqa: F811
    for n in range(3):
        robot.enqueue(f"https://elsewhere.example/{n}.json")
    playlist_id = make_playlist(queue_service, "One", ["V00007"])
    assert apply(queue_service, playlist_id, "preserve_current")[1]["removed_count"] == 3
    robot.enqueue("https://elsewhere.example/late.json")
    robot.play(robot.queue_items()[0]["uid"])
    status, answer = apply(queue_service, playlist_id, "hard_replace")
    assert status == 200 and answer["removed_count"] == 2
    assert queued_urls(robot) == [url(queue_service, "V00007")]


def test_hard_replace_needs_an_admin_unless_allowed(queue_service: PlaylistService) -> None:
    playlist_id = make_playlist(queue_service, "Guarded", ["V00001"])
    with pytest.raises(ServiceError) as refused:
        queue_service.queue.begin(playlist_id, "hard_replace", User("helper", "blessed"))
    assert refused.value.code == "forbidden" and refused.value.details == {"required_role": "admin"}
    assert apply(queue_service, playlist_id, "sideways")[0] == 422


def test_a_partial_failure_reports_one_result_per_item(queue_service: PlaylistService,
                                                       robot: RobotStandIn) -> None:  # noqa: F811
    robot.refuse(url(queue_service, "V00002"), "Bad manifest")
    robot.drop_silently(url(queue_service, "V00003"))
    robot.drop_silently(url(queue_service, "V00004"), but_add=True)
    playlist_id = make_playlist(queue_service, "Mixed", ["V00001", "V00002", "V00003", "gone1", "V00004"])
    status, answer = apply(queue_service, playlist_id, "append")
    assert status == 200 and answer["status"] == "partial" and answer["enqueued_count"] == 2
    assert sorted((f["video_id"], f["reason"]) for f in answer["failed"]) == [
        ("V00002", "rejected: Bad manifest"), ("V00003", "timeout"), ("gone1", "not_in_catalog")]
    assert queued_urls(robot) == [url(queue_service, "V00001"), url(queue_service, "V00004")]


def test_too_quickly_refusals_are_retried_not_reported(make_config: Callable[..., Config], robot: RobotStandIn,  # noqa: F811
                                                       tmp_path: Path) -> None:
    robot.add_burst, robot.add_rate_per_second = 3, 20.0
    service = start_service(make_config(disable_auth=True, queue_add_burst=10, queue_add_rate_per_second=100))
    try:
        wait_for(lambda: service.ready)
        refresh_now(service, write_jsonl(tmp_path / "c.jsonl", 12, "V"))
        playlist_id = make_playlist(service, "Burst", [f"V{n:05d}" for n in range(12)])
        status, answer = apply(service, playlist_id, "append")
        assert status == 200 and answer["status"] == "queued", answer
        assert queued_urls(robot) == [url(service, f"V{n:05d}") for n in range(12)]
    finally:
        service.stop()


def test_a_second_apply_while_one_runs_is_409(queue_service: PlaylistService) -> None:
    playlist_id = make_playlist(queue_service, "Busy", ["V00001"])
    held = queue_service.leases.acquire("queue_apply/lounge", 30)
    status, answer = apply(queue_service, playlist_id, "append")
    assert status == 409 and answer["error"]["code"] == "apply_in_progress"
    queue_service.leases.release(held)


def test_a_silent_robot_is_503_before_anything_is_removed(queue_service: PlaylistService,
                                                         robot: RobotStandIn) -> None:  # noqa: F811
    robot.enqueue("https://elsewhere.example/keep.json")
    playlist_id = make_playlist(queue_service, "Unheard", ["V00001"])
    robot.stop_answering()
    try:
        status, answer = apply(queue_service, playlist_id, "hard_replace")
    finally:
        robot.resume_answering()
    assert status == 503 and answer["error"]["code"] == "robot_unavailable"
    assert queued_urls(robot) == ["https://elsewhere.example/keep.json"]
    assert queue_service.leases.acquire("queue_apply/lounge", 1) is not None


def test_async_apply_and_its_progress(queue_service: PlaylistService, robot: RobotStandIn) -> None:  # noqa: F811
    playlist_id = make_playlist(queue_service, "Later", ["V00001", "V00002"])
    status, answer = apply(queue_service, playlist_id, "append", **{"async": True})
    assert status == 202 and set(answer) == {"apply_id"}
    base = f"http://127.0.0.1:{queue_service.http.port}/api/v1/queue/apply/{answer['apply_id']}"
    progress = wait_for(lambda: (p := http_json("GET", base)[2])["status"] != "running" and p, what="apply done")
    assert progress == {"status": "queued", "done": 2, "total": 2, "enqueued_count": 2, "failed": [],
                        "removed_count": 0}
    status, _headers, queue = http_json("GET", f"http://127.0.0.1:{queue_service.http.port}/api/v1/queue")
    assert status == 200 and [item["video_id"] for item in queue["items"]] == ["V00001", "V00002"]
    assert set(queue["items"][0]) == {"uid", "title", "video_id", "duration_seconds", "temp"}


def test_queue_apply_over_nats(queue_service: PlaylistService, bridge: Any, robot: RobotStandIn) -> None:  # noqa: F811
    make_playlist(queue_service, "By Name", ["V00009"])
    reply = bridge.request("kryten.playlist.cmd.queue_apply", {
        "correlation_id": "q1", "namespace": queue_service.config.namespace, "requested_by": "nobody",
        "playlist_name": "by name", "mode": "append"}, timeout=20)
    assert reply["status"] == "error" and reply["enqueued_count"] == 0
    queue_service.acl.bless("helper")
    reply = bridge.request("kryten.playlist.command", {
        "command": "queue_apply", "args": {"playlist_name": "By Name", "mode": "append", "requested_by": "helper"},
        "meta": {"source": "cli"}}, timeout=20)
    assert reply["success"] is True and reply["data"] == {"enqueued_count": 1, "failed": [], "removed_count": 0}


def test_nats_going_away_mid_apply_reports_the_rest(own_nats_server: NatsServerProcess,
                                                    make_config: Callable[..., Config], tmp_path: Path) -> None:
    config = make_config(nats_url=own_nats_server.url, disable_auth=True, robot_timeout_seconds=2,
                         queue_add_rate_per_second=50)
    standin = RobotStandIn(own_nats_server.url, rate_limit_enabled=False, handling_delay=0.1)
    standin.start()
    service = start_service(config)
    try:
        wait_for(lambda: service.ready)
        refresh_now(service, write_jsonl(tmp_path / "c.jsonl", 40, "V"))
        job = service.queue.begin(make_playlist(service, "Long", [f"V{n:05d}" for n in range(40)]), "append", ADMIN)
        answers: list[dict[str, Any]] = []
        worker = threading.Thread(target=lambda: answers.append(service.queue.run(job)))
        worker.start()
        wait_for(lambda: len(standin.queue_items()) >= 3, what="a few adds")
        own_nats_server.stop()
        worker.join(60)
        answer = answers[0]
        assert answer["status"] == "partial" and 3 <= answer["enqueued_count"] < 40
        reasons = {failure["reason"] for failure in answer["failed"]}
        assert reasons <= {"aborted: nats_unavailable", "aborted: robot_unavailable"} and reasons
        assert answer["enqueued_count"] + len(answer["failed"]) == 40
    finally:
        own_nats_server.start()
        service.stop()
        standin.stop()
