"""The robot stand-in itself, against the facts of nats.md section 3, with raw nats-py requests."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import nats.errors
import pytest

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.standin import RobotStandIn

SUBJECT = "kryten.robot.command"
DOMAIN = "cytu.be"


@pytest.fixture
def channel() -> str:
    # Mixed case on purpose: the KV bucket keeps it, the routing guard ignores it.
    return "Room" + secrets.token_hex(4)


@pytest.fixture
def standin(nats_server: NatsServerProcess, channel: str) -> Iterator[RobotStandIn]:
    robot = RobotStandIn(nats_server.url, domain=DOMAIN, channel=channel)
    robot.start()
    yield robot
    robot.stop()


def envelope(command: str, channel: str, args: dict[str, Any] | None = None, domain: str = DOMAIN,
             **top_level: Any) -> dict[str, Any]:
    return {"service": "robot", "command": command, **top_level, "args": args or {},
            "meta": {"source": "test", "timestamp": "2026-01-01T00:00:00.000Z",
                     "request_id": str(uuid.uuid4()), "domain": domain, "channel": channel}}


def encode(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def request(url: str, payload: bytes, timeout: float = 5.0) -> dict[str, Any]:
    async def ask() -> dict[str, Any]:
        nc = await nats.connect(url)
        try:
            return json.loads((await nc.request(SUBJECT, payload, timeout=timeout)).data)
        finally:
            await nc.close()

    return asyncio.run(ask())


def replies_before_probe(url: str, payloads: list[bytes], channel: str) -> list[dict[str, Any]]:
    """Send `payloads`, then a good `state.user` probe, all replying to one inbox.

    The robot handles commands in order and its replies arrive in order, so
    whatever it answered to `payloads` is in the inbox before the probe's reply.
    """
    async def exchange() -> list[dict[str, Any]]:
        nc = await nats.connect(url)
        try:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            for payload in [*payloads, encode(envelope("state.user", channel, username="probe"))]:
                await nc.publish(SUBJECT, payload, reply=inbox)
            replies = []
            while True:
                reply = json.loads((await sub.next_msg(timeout=5.0)).data)
                if reply.get("command") == "state.user":
                    return replies
                replies.append(reply)
        finally:
            await nc.close()

    return asyncio.run(exchange())


def test_pm_reply_has_the_robot_envelope_and_is_recorded(nats_server: NatsServerProcess, channel: str) -> None:
    seen: list[tuple[str, str]] = []
    robot = RobotStandIn(nats_server.url, channel=channel, on_pm=lambda to, msg: seen.append((to, msg)))
    robot.start()
    try:
        reply = request(nats_server.url, encode(envelope("pm", channel, {"to": "nobody_here", "msg": "hi"})))
    finally:
        robot.stop()
    # data.success is true even for a user not in the channel: CyTube reports that later.
    assert reply == {"service": "robot", "command": "pm", "success": True, "data": {"success": True}}
    assert robot.pms == [("nobody_here", "hi")]
    assert seen == [("nobody_here", "hi")]
    assert robot.pms_to("NOBODY_HERE") == ["hi"]


def test_wait_for_pm_returns_the_nth_pm_and_times_out_without_one(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                                  channel: str) -> None:
    for text in ("first", "second"):
        request(nats_server.url, encode(envelope("pm", channel, {"to": "alice", "msg": text})))
    assert standin.wait_for_pm("alice") == "first"
    assert standin.wait_for_pm("alice", nth=2) == "second"
    with pytest.raises(TimeoutError):
        standin.wait_for_pm("alice", timeout=0.1, nth=3)


def test_a_failing_handler_answers_outer_success_false(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                       channel: str) -> None:
    reply = request(nats_server.url, encode(envelope("pm", channel, {"to": "alice"})))
    assert reply["service"] == "robot"
    assert reply["success"] is False
    assert reply["error"]
    assert "command" not in reply and "data" not in reply


@pytest.mark.parametrize("payload", [
    pytest.param(lambda ch: encode(envelope("pm", ch, {"to": "a", "msg": "b"}, domain="CYTU.BE")),
                 id="domain-differs-only-by-case"),
    pytest.param(lambda ch: encode(envelope("pm", ch, {"to": "a", "msg": "b"}, domain="example.org")),
                 id="other-domain"),
    pytest.param(lambda ch: encode(envelope("pm", "elsewhere", {"to": "a", "msg": "b"})), id="other-channel"),
    pytest.param(lambda ch: encode({"service": "robot", "command": "pm", "args": {"to": "a", "msg": "b"}}),
                 id="no-meta"),
    pytest.param(lambda ch: encode(envelope("no.such.command", ch)), id="unknown-command"),
    pytest.param(lambda ch: b'{"command": "pm", ', id="malformed-json"),
    pytest.param(lambda ch: encode([envelope("pm", ch, {"to": "a", "msg": "b"})]), id="not-an-object"),
])
def test_the_routing_guard_drops_without_any_reply(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                   channel: str, payload: Any) -> None:
    assert replies_before_probe(nats_server.url, [payload(channel)], channel) == []
    assert standin.received_count == 2
    assert standin.answered_count == 1
    assert standin.pms == []


def test_a_channel_differing_only_by_case_is_answered(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                      channel: str) -> None:
    replies = replies_before_probe(
        nats_server.url, [encode(envelope("pm", channel.upper(), {"to": "a", "msg": "b"}))], channel)
    assert replies == [{"service": "robot", "command": "pm", "success": True, "data": {"success": True}}]


def test_state_user_takes_username_beside_args_with_exact_case(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                               channel: str) -> None:
    standin.set_users([{"name": "Alice", "rank": 2}, {"name": "bob", "rank": 0, "meta": {"afk": True}}])

    def user(**fields: Any) -> Any:
        reply = request(nats_server.url, encode(envelope("state.user", channel, **fields)))
        assert reply["success"] is True and reply["command"] == "state.user"
        return reply["data"]["user"]

    assert user(username="Alice") == {"name": "Alice", "rank": 2, "profile": {}, "meta": {}}
    assert user(username="bob") == {"name": "bob", "rank": 0, "profile": {}, "meta": {"afk": True}}
    assert user(username="alice") is None
    assert user(username="nobody") is None
    assert user(args={"username": "Alice"}) is None


def test_the_userlist_is_in_kv_under_the_channel_with_its_case(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                               channel: str) -> None:
    async def read_users() -> Any:
        nc = await nats.connect(nats_server.url)
        try:
            bucket = await nc.jetstream().key_value(f"kryten_{channel}_userlist")
            return json.loads((await bucket.get("users")).value or b"")
        finally:
            await nc.close()

    assert standin.userlist_bucket == f"kryten_{channel}_userlist"
    assert asyncio.run(read_users()) == []
    standin.set_users([{"name": "Alice", "rank": 3, "profile": {"image": "x"}}])
    assert asyncio.run(read_users()) == [{"name": "Alice", "rank": 3, "profile": {"image": "x"}, "meta": {}}]


def test_commands_are_handled_one_at_a_time(standin: RobotStandIn, nats_server: NatsServerProcess,
                                            channel: str) -> None:
    standin.handling_delay = 0.3

    async def three_at_once() -> list[Any]:
        nc = await nats.connect(nats_server.url)
        try:
            payloads = [encode(envelope("pm", channel, {"to": "a", "msg": str(n)})) for n in range(3)]
            return await asyncio.gather(*(nc.request(SUBJECT, p, timeout=5.0) for p in payloads))
        finally:
            await nc.close()

    began = time.monotonic()
    replies = asyncio.run(three_at_once())
    # Handled side by side they would all be back after one delay; in turn it takes three.
    assert time.monotonic() - began >= 0.9
    assert [json.loads(reply.data)["success"] for reply in replies] == [True, True, True]
    assert sorted(msg for _to, msg in standin.pms) == ["0", "1", "2"]


def test_a_hung_robot_receives_but_never_answers_until_resumed(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                               channel: str) -> None:
    pm = encode(envelope("pm", channel, {"to": "alice", "msg": "hello"}))
    standin.stop_answering()
    with pytest.raises(nats.errors.TimeoutError):
        request(nats_server.url, pm, timeout=0.5)
    assert (standin.received_count, standin.answered_count, standin.pms) == (1, 0, [])
    standin.resume_answering()
    assert request(nats_server.url, pm)["success"] is True
    assert standin.answered_count == 1


def test_a_stopped_stand_in_can_start_again(standin: RobotStandIn, nats_server: NatsServerProcess,
                                            channel: str) -> None:
    standin.set_users([{"name": "alice"}])
    standin.stop()
    standin.start()
    reply = request(nats_server.url, encode(envelope("state.user", channel, username="alice")))
    assert reply["data"]["user"]["name"] == "alice"
