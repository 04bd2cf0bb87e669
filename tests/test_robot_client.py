"""RobotClient against the robot stand-in on a real nats-server."""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.natsserver import NatsServerProcess, free_port
from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import NatsUnavailable, ServiceError
from kryten_playlist_lib.standin import RobotStandIn
from kryten_playlist_lib.timeutil import parse_iso, utcnow
from tests.helpers import wait_for
from tests.robot_fixtures import robot  # noqa: F401

TIMEOUT = 1.0


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    # A short robot timeout keeps the silent-robot tests quick.
    return make_config(robot_timeout_seconds=TIMEOUT)


@pytest.fixture
def client(bridge: NatsBridge, config: Config) -> RobotClient:
    return RobotClient(bridge, config)


@contextmanager
def connected_bridge(config: Config) -> Iterator[NatsBridge]:
    """A bridge of its own, for a config other than the fixture's."""
    bridge = NatsBridge(config)
    bridge.start()
    try:
        wait_for(lambda: bridge.connected, what="bridge connected")
        yield bridge
    finally:
        bridge.stop()


@contextmanager
def connected_client(config: Config) -> Iterator[RobotClient]:
    with connected_bridge(config) as bridge:
        yield RobotClient(bridge, config)


def capture(bridge: NatsBridge, subject: str) -> list[dict[str, Any]]:
    """Everything published on `subject` from now on, decoded; this listener never replies."""
    seen: list[dict[str, Any]] = []

    def record(_subject: str, data: bytes) -> None:
        seen.append(json.loads(data))

    bridge.run(bridge.subscribe, subject, record)
    return seen


def expect_robot_unavailable(call: Callable[[], Any]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    assert caught.value.code == "robot_unavailable"
    assert caught.value.http_status == 503
    return caught.value


def test_pm_goes_out_in_the_robot_envelope_with_the_exact_text(
        client: RobotClient, robot: RobotStandIn, bridge: NatsBridge, config: Config) -> None:  # noqa: F811
    sent = capture(bridge, "kryten.robot.command")
    text = "Your kryten-playlist code is AB3D EF7H; it expires in 5 minutes."
    client.pm("alice", text)
    assert robot.wait_for_pm("alice") == text
    request = wait_for(lambda: sent and sent[0], what="the request seen on the subject")
    assert set(request) == {"service", "command", "args", "meta"}
    assert (request["service"], request["command"], request["args"]) == ("robot", "pm", {"to": "alice", "msg": text})
    meta = request["meta"]
    assert set(meta) == {"source", "timestamp", "request_id", "domain", "channel"}
    assert (meta["source"], meta["domain"], meta["channel"]) == ("playlist", config.cytube_domain,
                                                                 config.cytube_channel)
    assert uuid.UUID(meta["request_id"])
    assert abs(parse_iso(meta["timestamp"]) - utcnow()) < timedelta(seconds=30)


def test_top_level_fields_sit_beside_args_and_never_replace_the_envelope(client: RobotClient) -> None:
    request = client.envelope("state.user", {}, {"username": "Alice", "command": "pm"})
    assert (request["command"], request["username"], request["args"]) == ("state.user", "Alice", {})


def test_user_is_exact_case_and_find_user_ignores_case(client: RobotClient, robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users([{"name": "Alice", "rank": 2}, {"name": "bob"}])
    assert client.user("Alice") == {"name": "Alice", "rank": 2, "profile": {}, "meta": {}}
    assert client.user("alice") is None
    assert client.find_user("aLICE") == {"name": "Alice", "rank": 2, "profile": {}, "meta": {}}
    assert client.find_user("BOB") == {"name": "bob", "rank": 0, "profile": {}, "meta": {}}
    assert client.find_user("carol") is None


def test_the_userlist_is_unknown_until_the_robot_has_made_it(
        make_config: Callable[..., Config], nats_server: NatsServerProcess) -> None:
    channel = "Nobody" + secrets.token_hex(4)
    config = make_config(cytube_channel=channel)
    with connected_client(config) as client:
        assert client.userlist() is None
        assert client.find_user("alice") is None
        standin = RobotStandIn(nats_server.url, channel=channel)
        standin.start()
        try:
            assert client.userlist() == []
            standin.set_users([{"name": "Alice", "rank": 1}])
            assert client.userlist() == [{"name": "Alice", "rank": 1, "profile": {}, "meta": {}}]
            assert client.find_user("alice") == {"name": "Alice", "rank": 1, "profile": {}, "meta": {}}
        finally:
            standin.stop()


def test_a_silent_robot_is_robot_unavailable_after_about_the_timeout(
        client: RobotClient, robot: RobotStandIn) -> None:  # noqa: F811
    robot.stop_answering()
    began = time.monotonic()
    expect_robot_unavailable(lambda: client.pm("alice", "hello"))
    assert TIMEOUT * 0.9 <= time.monotonic() - began < TIMEOUT + 1.5
    assert robot.received_count == 1
    assert client.last_seen is None


def test_no_robot_at_all_fails_fast_as_robot_unavailable(make_config: Callable[..., Config]) -> None:
    config = make_config(nats_subject_prefix="nobody" + secrets.token_hex(4), robot_timeout_seconds=10)
    with connected_client(config) as client:
        began = time.monotonic()
        expect_robot_unavailable(lambda: client.user("alice"))
        assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("override", [
    {"cytube_channel": "elsewhere"},
    {"cytube_domain": "CYTU.BE"},
    {"cytube_domain": "example.org"},
], ids=["other-channel", "domain-differs-only-by-case", "other-domain"])
def test_meta_comes_from_the_config_and_a_misrouted_command_gets_no_answer(
        make_config: Callable[..., Config], robot: RobotStandIn, override: dict[str, str]) -> None:  # noqa: F811
    with connected_client(make_config(robot_timeout_seconds=TIMEOUT, **override)) as client:
        expect_robot_unavailable(lambda: client.pm("alice", "hello"))
    assert (robot.received_count, robot.answered_count, robot.pms) == (1, 0, [])


def test_the_channel_may_differ_in_case(make_config: Callable[..., Config], robot: RobotStandIn,  # noqa: F811
                                        config: Config) -> None:
    with connected_client(make_config(cytube_channel=config.cytube_channel.upper())) as client:
        client.pm("alice", "hello")
    assert robot.pms == [("alice", "hello")]


def test_a_crashing_robot_handler_is_robot_unavailable_with_its_text(
        client: RobotClient, robot: RobotStandIn) -> None:  # noqa: F811
    error = expect_robot_unavailable(lambda: client.command("pm", {"to": "alice"}))
    assert error.details["command"] == "pm"
    assert "Missing" in error.details["robot_error"]
    assert client.seen_recently()


def test_a_failed_pm_never_repeats_or_logs_the_text(client: RobotClient, robot: RobotStandIn,  # noqa: F811
                                                     caplog: pytest.LogCaptureFixture) -> None:
    secret_text = "code SECRET42"
    with caplog.at_level(logging.DEBUG):
        error = expect_robot_unavailable(lambda: client.pm("", secret_text))
    assert "robot_error" not in error.details
    assert secret_text not in json.dumps(error.to_json())
    assert secret_text not in caplog.text


def test_a_pm_the_robot_reports_as_not_sent_is_robot_unavailable(make_config: Callable[..., Config]) -> None:
    config = make_config(nats_subject_prefix="refusing" + secrets.token_hex(4))

    def refuse(_subject: str, _data: bytes) -> bytes:
        return json.dumps({"service": "robot", "command": "pm", "success": True,
                           "data": {"success": False, "error": "not connected to CyTube"}}).encode()

    with connected_bridge(config) as bridge:
        bridge.run(bridge.subscribe, f"{config.nats_subject_prefix}.robot.command", refuse)
        expect_robot_unavailable(lambda: RobotClient(bridge, config).pm("alice", "hello"))


def test_nats_never_reached_is_nats_unavailable(make_config: Callable[..., Config]) -> None:
    config = make_config(nats_url=f"nats://127.0.0.1:{free_port()}")
    bridge = NatsBridge(config)
    bridge.start()
    try:
        client = RobotClient(bridge, config)
        for call in (lambda: client.pm("alice", "hi"), lambda: client.user("alice"), client.userlist):
            with pytest.raises(NatsUnavailable) as caught:
                call()
            assert caught.value.code == "nats_unavailable"
    finally:
        bridge.stop()


def test_nats_lost_is_nats_unavailable(own_nats_server: NatsServerProcess,
                                       make_config: Callable[..., Config]) -> None:
    config = make_config(nats_url=own_nats_server.url)
    standin = RobotStandIn(own_nats_server.url, channel=config.cytube_channel)
    standin.start()
    try:
        with connected_bridge(config) as bridge:
            client = RobotClient(bridge, config)
            client.pm("alice", "hello")
            own_nats_server.stop()
            wait_for(lambda: not bridge.connected, what="bridge disconnected")
            with pytest.raises(NatsUnavailable):
                client.pm("alice", "hello again")
    finally:
        standin.stop()


def test_seen_recently_follows_replies_and_marks(client: RobotClient, robot: RobotStandIn) -> None:  # noqa: F811
    assert client.last_seen is None
    assert not client.seen_recently()
    client.user("alice")
    assert client.seen_recently()
    client.last_seen = time.monotonic() - 61
    assert not client.seen_recently()
    assert client.seen_recently(seconds=120)
    client.mark_seen()
    assert client.seen_recently()
