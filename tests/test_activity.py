"""Plays, now playing, likes and statistics against the real service, a real nats-server and real events."""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin.robot import RobotStandIn
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)
from tests.test_auth import auth_service, sign_in  # noqa: F401  (auth_service is a fixture)
from tests.test_catalog_api import refresh_now, small_catalog

CATALOG_TITLES = {"vid01": "Silk Stalkings S02E06 Bad Blood", "vid02": "The Silk Road (1987)",
                  "vid03": "Stalker", "vid04": "école des fans"}
OUTCOME = re.compile(r'kryten_playlist_play_events_total\{outcome="(\w+)"\} (\S+)')


# ---- helpers ---------------------------------------------------------------------------------

def publish_event(bridge: NatsBridge, config: Config, event: str, payload: Any, at: datetime | None = None) -> None:
    """One event exactly as the robot sends it (nats.md section 4)."""
    channel = config.cytube_channel.lower().replace(".", "")
    bridge.publish(f"{config.nats_subject_prefix}.events.cytube.{channel}.{event.lower()}", {
        "event_name": event, "payload": payload, "channel": config.cytube_channel,
        "domain": config.cytube_domain, "timestamp": iso(at or utcnow()), "correlation_id": str(uuid.uuid4())})


def play(bridge: NatsBridge, config: Config, uid: int, media_id: str, *, media_type: str = "cm",
         title: str = "What CyTube calls it", seconds: int = 99, at: datetime | None = None) -> None:
    """CyTube's pair for a new current item: `setCurrent`, then `changeMedia`."""
    publish_event(bridge, config, "setCurrent", uid)
    publish_event(bridge, config, "changeMedia", {
        "id": media_id, "title": title, "seconds": seconds, "duration": "01:39", "type": media_type,
        "meta": {}, "currentTime": 0, "paused": False}, at)


def manifest(config: Config, video_id: str) -> str:
    return config.manifest_url_template.format(video_id=video_id)


def outcomes(service: PlaylistService) -> dict[str, int]:
    """What came of the events so far, from the service's own metric."""
    found = (OUTCOME.fullmatch(line) for line in service.metrics.render().splitlines())
    return {match.group(1): int(float(match.group(2))) for match in found if match}


def wait_outcomes(*services: PlaylistService, total: int) -> dict[str, int]:
    """Once `total` events have been dealt with across `services`: their outcomes added up."""
    def added() -> dict[str, int]:
        summed: dict[str, int] = {}
        for service in services:
            for outcome, count in outcomes(service).items():
                summed[outcome] = summed.get(outcome, 0) + count
        return summed

    wait_for(lambda: sum(added().values()) >= total, what=f"{total} events dealt with")
    return added()


def get(service: PlaylistService, path: str) -> tuple[int, Any]:
    status, _headers, body = http_json("GET", f"http://127.0.0.1:{service.http.port}{path}")
    return status, body


def like(service: PlaylistService, body: Any = None) -> tuple[int, Any]:
    status, _headers, answer = http_json("POST", f"http://127.0.0.1:{service.http.port}/api/v1/likes/current", body)
    return status, answer


def stored(service: PlaylistService, bucket: str, key: str) -> Any:
    entry = service.kv.get(bucket, key)
    return entry.value if entry else None


def start_ready(config: Config) -> PlaylistService:
    running = start_service(config)
    wait_for(lambda: running.ready and running.activity_events.subscribed, what="service subscribed to events")
    return running


@pytest.fixture
def channel_config(make_config: Callable[..., Config]) -> Config:
    """`disable_auth` (every request is the admin `local`), on a dotted, mixed-case channel of its own."""
    return make_config(disable_auth=True, cytube_channel=f"Grind.House{secrets.token_hex(3)}")


@pytest.fixture
def local_service(channel_config: Config, tmp_path: Path) -> Iterator[PlaylistService]:
    running = start_ready(channel_config)
    refresh_now(running, small_catalog(tmp_path / "c.jsonl"))
    yield running
    running.stop()


# ---- plays and now playing ---------------------------------------------------------------------

def test_a_catalog_play_moves_now_playing_and_is_counted(local_service: PlaylistService, bridge: NatsBridge) -> None:
    config = local_service.config
    assert get(local_service, "/api/v1/nowplaying") == (
        200, {"video_id": None, "title": None, "started_at": None, "like_count": 0})
    at = utcnow()
    play(bridge, config, 7, manifest(config, "vid01"), at=at)
    assert wait_outcomes(local_service, total=1) == {"counted": 1}
    assert get(local_service, "/api/v1/nowplaying") == (
        200, {"video_id": "vid01", "title": CATALOG_TITLES["vid01"], "started_at": iso(at), "like_count": 0})
    assert stored(local_service, "analytics", "nowplaying") == {
        "video_id": "vid01", "uid": 7, "media_type": "cm", "media_id": manifest(config, "vid01"),
        "title": CATALOG_TITLES["vid01"], "duration_seconds": 100, "started_at": iso(at), "schema_version": 1}
    item = stored(local_service, "analytics", "items/vid01")
    assert (item["play_count"], item["last_played_at"], item["duration_seconds"]) == (1, iso(at), 100)
    daily = stored(local_service, "analytics", f"daily/{at.date().isoformat()}")
    assert daily["plays"] == {"vid01": 1} and daily["expires_at"] > iso_in(399 * 86400)
    status, summary = get(local_service, "/api/v1/stats/summary")
    assert status == 200 and (summary["items_played"], summary["duration_played_seconds"]) == (1, 100)
    assert local_service.robot.seen_recently()


def test_a_resent_media_counts_once_and_an_old_change_never_counts(local_service: PlaylistService,
                                                                  bridge: NatsBridge) -> None:
    config = local_service.config
    first = utcnow()
    play(bridge, config, 7, manifest(config, "vid01"), at=first)
    wait_outcomes(local_service, total=1)
    play(bridge, config, 7, manifest(config, "vid01"), at=first + timedelta(seconds=30))  # robot reconnect
    play(bridge, config, 8, manifest(config, "vid01"), at=first + timedelta(seconds=40))  # queued again
    play(bridge, config, 6, manifest(config, "vid02"), at=first - timedelta(seconds=5))  # a late, older change
    assert wait_outcomes(local_service, total=4) == {"counted": 2, "repeat": 1, "stale": 1}
    assert stored(local_service, "analytics", "nowplaying")["uid"] == 8
    assert stored(local_service, "analytics", "items/vid01")["play_count"] == 2
    assert stored(local_service, "analytics", "items/vid02") is None
    assert stored(local_service, "analytics", "counters/global")["items_played"] == 2


def test_two_replicas_on_one_namespace_count_each_play_once(local_service: PlaylistService, channel_config: Config,
                                                           bridge: NatsBridge) -> None:
    # Same namespace, channel and catalog file; an HTTP port of its own.
    other = start_ready(channel_config)
    try:
        for uid in range(1, 6):
            play(bridge, local_service.config, uid, manifest(local_service.config, f"vid0{uid % 4 + 1}"))
        assert wait_outcomes(local_service, other, total=10) == {"counted": 5, "repeat": 5}
    finally:
        other.stop()
    assert stored(local_service, "analytics", "counters/global")["items_played"] == 5
    plays = stored(local_service, "analytics", f"daily/{utcnow().date().isoformat()}")["plays"]
    assert plays == {"vid01": 1, "vid02": 2, "vid03": 1, "vid04": 1}


def test_media_outside_the_catalog_plays_without_counting(local_service: PlaylistService, bridge: NatsBridge) -> None:
    config = local_service.config
    play(bridge, config, 1, "dQw4w9WgXcQ", media_type="yt", title="A YouTube video", seconds=212)
    play(bridge, config, 2, manifest(config, "not-in-catalog"))
    play(bridge, config, 3, "https://elsewhere.example/vid01.json")
    play(bridge, config, 4, "https://elsewhere.example/live", title="A live stream", seconds=0)
    assert wait_outcomes(local_service, total=4) == {"not_catalog": 4}
    status, now = get(local_service, "/api/v1/nowplaying")
    assert status == 200 and now["video_id"] is None and now["title"] == "A live stream" and now["like_count"] == 0
    assert stored(local_service, "analytics", "nowplaying")["duration_seconds"] is None
    assert stored(local_service, "analytics", "counters/global") is None
    status, answer = like(local_service)
    assert status == 409 and answer["error"]["code"] == "no_current_item"


def test_bad_events_are_logged_and_ignored(local_service: PlaylistService, bridge: NatsBridge) -> None:
    config = local_service.config
    subject = f"{config.nats_subject_prefix}.events.cytube.{config.cytube_channel.lower().replace('.', '')}"
    play(bridge, config, 5, manifest(config, "vid02"))
    wait_outcomes(local_service, total=1)
    bridge.run(bridge.nc.publish, subject + ".changemedia", b"\xff not json")
    bridge.publish(subject + ".changemedia", {"event_name": "changeMedia"})
    publish_event(bridge, config, "setCurrent", "9")
    publish_event(bridge, config, "changeMedia", ["not", "an", "object"])
    publish_event(bridge, config, "changeMedia", {"title": "no id", "type": "cm"})
    publish_event(bridge, config, "queue", {"item": {}, "after": 5})  # not ours: a sign of life only
    assert wait_outcomes(local_service, total=6) == {"counted": 1, "invalid": 5}
    play(bridge, config, 6, manifest(config, "vid03"))
    assert wait_outcomes(local_service, total=7) == {"counted": 2, "invalid": 5}
    assert stored(local_service, "analytics", "nowplaying")["uid"] == 6


# ---- likes -----------------------------------------------------------------------------------

def test_fifty_users_liking_at_once_are_fifty_likes(local_service: PlaylistService, bridge: NatsBridge) -> None:
    play(bridge, local_service.config, 3, manifest(local_service.config, "vid03"))
    wait_outcomes(local_service, total=1)
    start = threading.Barrier(50)

    def like_as(number: int) -> dict[str, Any]:
        start.wait()
        return local_service.likes.like_current(f"User{number}")

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(like_as, range(50)))
    assert {answer["status"] for answer in answers} == {"ok"}
    assert sorted(answer["like_count"] for answer in answers) == list(range(1, 51))
    assert get(local_service, "/api/v1/nowplaying")[1]["like_count"] == 50
    assert stored(local_service, "likes", f"daily/{utcnow().date().isoformat()}")["likes"] == {"vid03": 50}
    assert len(local_service.kv.keys("likes", "dedupe/vid03/")) == 50


def test_likes_over_http_as_signed_in_users(auth_service: PlaylistService, robot: RobotStandIn,  # noqa: F811
                                            bridge: NatsBridge, tmp_path: Path) -> None:
    refresh_now(auth_service, small_catalog(tmp_path / "c.jsonl"))
    wait_for(lambda: auth_service.activity_events.subscribed)
    viewer = sign_in(auth_service, robot, "viewer1")
    assert viewer.call("POST", "/api/v1/likes/current")[1]["error"]["code"] == "no_current_item"
    play(bridge, auth_service.config, 4, manifest(auth_service.config, "vid04"))
    wait_for(lambda: outcomes(auth_service).get("counted") == 1, what="the play counted")
    status, answer = viewer.call("POST", "/api/v1/likes/current", {"username": "Alice"})
    assert status == 403 and answer["error"]["details"] == {"reason": "username_mismatch"}
    assert viewer.call("POST", "/api/v1/likes/current", {"username": 7})[0] == 422
    ok = {"status": "ok", "video_id": "vid04", "like_count": 1}
    assert viewer.call("POST", "/api/v1/likes/current", {"username": "VIEWER1"}) == (200, ok)
    for _ in range(9):  # the rate limit counts every like, also a duplicate: 10 per minute
        assert viewer.call("POST", "/api/v1/likes/current") == (200, {**ok, "status": "duplicate"})
    status, answer = viewer.call("POST", "/api/v1/likes/current")
    assert status == 429 and answer["error"]["code"] == "rate_limited"
    assert int(viewer.last_headers["Retry-After"]) >= 1
    helper = sign_in(auth_service, robot, "helper")
    assert helper.call("POST", "/api/v1/likes/current", {})[1] == {**ok, "like_count": 2}
    assert viewer.call("GET", "/api/v1/nowplaying")[1]["like_count"] == 2
    # The role is checked before the query is.
    assert viewer.call("GET", "/api/v1/stats/top-liked?window_days=0")[0] == 403
    assert helper.call("GET", "/api/v1/stats/top-liked")[1]["items"] == [
        {"video_id": "vid04", "title": CATALOG_TITLES["vid04"], "like_count": 2}]


def test_a_like_that_cannot_be_counted_gives_its_claim_back(local_service: PlaylistService,
                                                            bridge: NatsBridge) -> None:
    play(bridge, local_service.config, 1, manifest(local_service.config, "vid01"))
    wait_outcomes(local_service, total=1)
    raw_key = f"ns/{local_service.config.namespace}/items/vid01/likes"

    async def damage_count() -> None:
        kv = await bridge.nc.jetstream().key_value("kryten_playlist_likes")
        await kv.put(raw_key, b"not json")

    bridge.run(damage_count)
    with pytest.raises(ServiceError):
        local_service.likes.like_current("alice")
    assert local_service.kv.get_raw("likes", "dedupe/vid01/alice") is None
    local_service.kv.delete("likes", "items/vid01/likes")
    assert local_service.likes.like_current("Alice") == {"status": "ok", "video_id": "vid01", "like_count": 1}
    assert local_service.likes.like_current("ALICE")["status"] == "duplicate"


def test_an_expired_claim_is_taken_over(local_service: PlaylistService, bridge: NatsBridge) -> None:
    play(bridge, local_service.config, 1, manifest(local_service.config, "vid02"))
    wait_outcomes(local_service, total=1)
    local_service.kv.put("likes", "dedupe/vid02/bob", {"liked_at": iso(utcnow() - timedelta(days=2)),
                                                      "expires_at": iso_in(-1), "schema_version": 1})
    assert local_service.likes.like_current("bob")["status"] == "ok"
    assert stored(local_service, "likes", "dedupe/vid02/bob")["expires_at"] > iso_in(86000)


def test_without_a_dedupe_window_every_like_counts(make_config: Callable[..., Config], bridge: NatsBridge,
                                                   tmp_path: Path) -> None:
    running = start_ready(make_config(disable_auth=True, like_dedupe_window_seconds=0,
                                      cytube_channel="nodedupe" + secrets.token_hex(3)))
    try:
        refresh_now(running, small_catalog(tmp_path / "c.jsonl"))
        play(bridge, running.config, 2, manifest(running.config, "vid02"))
        wait_outcomes(running, total=1)
        assert [like(running)[1]["like_count"] for _ in range(3)] == [1, 2, 3]
        assert running.kv.keys("likes", "dedupe/") == []
    finally:
        running.stop()


# ---- statistics ------------------------------------------------------------------------------

def put_daily(service: PlaylistService, bucket: str, field: str, days_back: int, counts: dict[str, int]) -> None:
    day = (utcnow().date() - timedelta(days=days_back)).isoformat()
    service.kv.put(bucket, f"daily/{day}", {"date": day, field: counts, "schema_version": 1})


def ranked(service: PlaylistService, path: str) -> list[tuple[str, int]]:
    status, answer = get(service, path)
    assert status == 200, answer
    return [(item["video_id"], item.get("play_count", item.get("like_count"))) for item in answer["items"]]


def test_top_lists_sum_the_window_by_count_then_title(local_service: PlaylistService) -> None:
    put_daily(local_service, "analytics", "plays", 0, {"vid01": 2, "vid02": 3, "vid03": 2, "gone": 2})
    put_daily(local_service, "analytics", "plays", 1, {"vid01": 1})
    put_daily(local_service, "analytics", "plays", 29, {"vid04": 1})
    put_daily(local_service, "analytics", "plays", 30, {"vid04": 10})
    expected = [("vid01", 3), ("vid02", 3), ("vid03", 2), ("gone", 2), ("vid04", 1)]
    assert ranked(local_service, "/api/v1/stats/top-played") == expected
    status, answer = get(local_service, "/api/v1/stats/top-played?limit=2")
    assert answer == {"window_days": 30, "items": [
        {"video_id": "vid01", "title": CATALOG_TITLES["vid01"], "play_count": 3},
        {"video_id": "vid02", "title": CATALOG_TITLES["vid02"], "play_count": 3}]}
    assert ranked(local_service, "/api/v1/stats/top-played?window_days=31")[0] == ("vid04", 11)
    assert ranked(local_service, "/api/v1/stats/top-played?window_days=1") == [
        ("vid02", 3), ("vid01", 2), ("vid03", 2), ("gone", 2)]
    assert get(local_service, "/api/v1/stats/top-played")[1]["items"][3]["title"] is None
    put_daily(local_service, "likes", "likes", 2, {"vid03": 4, "vid02": 5})
    assert ranked(local_service, "/api/v1/stats/top-liked?window_days=3&limit=200") == [("vid02", 5), ("vid03", 4)]
    assert ranked(local_service, "/api/v1/stats/top-liked?window_days=2") == []


BAD_TOP_LIST_QUERIES = {
    "window_days=0": {"window_days"}, "window_days=367": {"window_days"}, "window_days=abc": {"window_days"},
    "window_days=1_0": {"window_days"}, "window_days=": {"window_days"}, "window_days=-1": {"window_days"},
    "limit=0": {"limit"}, "limit=201": {"limit"}, "limit=" + "9" * 5000: {"limit"},
    "window_days=0&limit=0": {"window_days", "limit"},
}


def test_top_list_query_out_of_range_is_422_never_clamped(local_service: PlaylistService) -> None:
    for query, fields in BAD_TOP_LIST_QUERIES.items():
        for path in ("/api/v1/stats/top-played", "/api/v1/stats/top-liked"):
            status, answer = get(local_service, f"{path}?{query}")
            assert status == 422 and answer["error"]["code"] == "validation_error", (query, answer)
            assert set(answer["error"]["details"]["fields"]) == fields, query
    assert get(local_service, "/api/v1/stats/top-liked?window_days=366&limit=200")[0] == 200


def test_summary_is_zeros_until_something_is_counted(local_service: PlaylistService) -> None:
    assert get(local_service, "/api/v1/stats/summary") == (200, {
        "items_queued": 0, "items_played": 0, "duration_queued_seconds": 0, "duration_played_seconds": 0,
        "updated_at": None, "schema_version": 1})
