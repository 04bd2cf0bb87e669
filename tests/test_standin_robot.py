"""The robot stand-in itself, against the facts of nats.md section 3, with raw nats-py requests."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.standin import RobotStandIn
from tests.helpers import wait_for

T = TypeVar("T")
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


# ---- the pretend queue ---------------------------------------------------------------------

def manifest(name: str) -> str:
    return f"https://media.example/api/v1/media/cytube/{name}.json?format=json"


def on_nats(url: str, body: Callable[[NatsClient], Awaitable[T]]) -> T:
    """Run `body` with a raw nats-py connection of the test's own."""
    async def run() -> T:
        nc = await nats.connect(url)
        try:
            return await body(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


async def ask(nc: NatsClient, channel: str, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return json.loads((await nc.request(SUBJECT, encode(envelope(command, channel, args)), timeout=5.0)).data)


async def add(nc: NatsClient, channel: str, url: str, pos: Any = "end") -> dict[str, Any]:
    """An addvideo's `data`, checking the outer envelope on the way."""
    reply = await ask(nc, channel, "addvideo", {"type": "cm", "id": url, "pos": pos, "temp": True})
    assert (reply["service"], reply["command"], reply["success"]) == ("robot", "addvideo", True)
    return reply["data"]


async def playlist(nc: NatsClient, channel: str) -> list[dict[str, Any]]:
    reply = await ask(nc, channel, "state.playlist")
    assert (reply["command"], reply["success"]) == ("state.playlist", True)
    return reply["data"]["playlist"]


async def tap(nc: NatsClient, standin: RobotStandIn) -> Subscription:
    sub = await nc.subscribe(standin.events_prefix + ".>")
    await nc.flush()  # the server knows the subscription before anything is published
    return sub


async def next_event(sub: Subscription) -> tuple[str, Any]:
    """The next event as (last subject token, payload), checking its envelope."""
    msg = await sub.next_msg(timeout=5.0)
    event = json.loads(msg.data)
    assert set(event) == {"event_name", "payload", "channel", "domain", "timestamp", "correlation_id"}
    assert msg.subject.rsplit(".", 1)[-1] == event["event_name"].lower()
    return event["event_name"], event["payload"]


async def read_kv(nc: NatsClient, bucket: str, key: str) -> Any:
    try:
        entry = await (await nc.jetstream().key_value(bucket)).get(key)
    except nats.js.errors.KeyNotFoundError:
        return None
    return json.loads(entry.value or b"")


def uids(items: list[dict[str, Any]]) -> list[int]:
    return [item["uid"] for item in items]


def test_the_playlist_kv_is_made_at_start_empty_and_without_current(standin: RobotStandIn,
                                                                     nats_server: NatsServerProcess,
                                                                     channel: str) -> None:
    async def body(nc: NatsClient) -> None:
        assert standin.playlist_bucket == f"kryten_{channel}_playlist"
        assert await read_kv(nc, standin.playlist_bucket, "items") == []
        assert await read_kv(nc, standin.playlist_bucket, "current") is None
        assert await playlist(nc, channel) == []

    on_nats(nats_server.url, body)


def test_events_go_to_the_lower_cased_channel_without_dots() -> None:
    assert RobotStandIn("nats://unused", channel="My.Room", prefix="pfx").events_prefix == "pfx.events.cytube.myroom"


def test_addvideo_answers_uids_from_zero_and_publishes_queue(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                              channel: str) -> None:
    standin.set_media(manifest("ep1"), "Episode One", 3723)

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        assert await add(nc, channel, manifest("ep1")) == {"success": True, "uid": 0}
        assert await add(nc, channel, manifest("ep2")) == {"success": True, "uid": 1}
        first = {"media": {"id": manifest("ep1"), "title": "Episode One", "seconds": 3723, "duration": "01:02:03",
                           "type": "cm", "meta": {}}, "uid": 0, "temp": True, "queueby": standin.username}
        assert await next_event(sub) == ("queue", {"item": first, "after": "prepend"})
        name, payload = await next_event(sub)
        assert (name, payload["after"], payload["item"]["uid"]) == ("queue", 0, 1)
        # Without set_media the title comes from the URL and the duration is unknown (0).
        assert payload["item"]["media"]["title"] == "ep2" and payload["item"]["media"]["duration"] == "00:00"
        assert await playlist(nc, channel) == [first, payload["item"]]
        assert await read_kv(nc, standin.playlist_bucket, "items") == [first, payload["item"]]

    on_nats(nats_server.url, body)
    assert [(record.url, record.outcome) for record in standin.add_log] == [
        (manifest("ep1"), "added"), (manifest("ep2"), "added")]


def test_pos_next_goes_right_after_the_current_item(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                    channel: str) -> None:
    for name in ("a", "b", "c"):
        standin.enqueue(manifest(name))
    standin.play(1)

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        assert await add(nc, channel, manifest("d"), pos="next") == {"success": True, "uid": 3}
        name, payload = await next_event(sub)
        assert (name, payload["after"]) == ("queue", 1)
        assert uids(await playlist(nc, channel)) == [0, 1, 3, 2]
        assert uids(await read_kv(nc, standin.playlist_bucket, "items")) == [0, 1, 3, 2]

    on_nats(nats_server.url, body)


@pytest.mark.parametrize("pos", ["prepend", "END", None, 2])
def test_a_pos_other_than_end_or_next_fails_in_data(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                    channel: str, pos: Any) -> None:
    async def body(nc: NatsClient) -> None:
        data = await add(nc, channel, manifest("a"), pos=pos)
        assert data["success"] is False and isinstance(data["error"], str) and data["error"]
        assert "uid" not in data and "queue_fail" not in data
        assert await playlist(nc, channel) == []

    on_nats(nats_server.url, body)


def test_a_refusal_answers_queue_fail_and_publishes_queuefail(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                              channel: str) -> None:
    url = manifest("gone")
    standin.refuse(url, "Media not found")

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        fail = {"msg": "Media not found", "link": url, "id": url}
        assert await add(nc, channel, url) == {"success": False, "error": "Media not found", "queue_fail": fail}
        assert await next_event(sub) == ("queueFail", fail)
        assert await playlist(nc, channel) == []
        standin.accept(url)
        assert await add(nc, channel, url) == {"success": True, "uid": 0}

    on_nats(nats_server.url, body)
    assert [record.outcome for record in standin.add_log] == ["refused", "added"]


def test_a_silent_drop_answers_uid_null_after_the_timeout(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                          channel: str) -> None:
    standin.silent_timeout_seconds = 0.2
    standin.drop_silently(manifest("lost"))

    async def body(nc: NatsClient) -> None:
        began = time.monotonic()
        assert await add(nc, channel, manifest("lost")) == {"success": True, "uid": None}
        assert time.monotonic() - began >= 0.2
        assert await playlist(nc, channel) == []

    on_nats(nats_server.url, body)
    assert [record.outcome for record in standin.add_log] == ["silent"]


def test_a_silent_drop_but_added_shows_in_the_queue_and_holds_the_robot(standin: RobotStandIn,
                                                                        nats_server: NatsServerProcess,
                                                                        channel: str) -> None:
    standin.silent_timeout_seconds = 0.3
    standin.drop_silently(manifest("quiet"), but_add=True)

    async def body(nc: NatsClient) -> None:
        began = time.monotonic()
        data, queue = await asyncio.gather(add(nc, channel, manifest("quiet")), playlist(nc, channel))
        # state.playlist waited for the add to be answered: one command at a time.
        assert time.monotonic() - began >= 0.3
        assert data == {"success": True, "uid": None}
        assert [(item["uid"], item["media"]["id"]) for item in queue] == [(0, manifest("quiet"))]

    on_nats(nats_server.url, body)
    assert [record.outcome for record in standin.add_log] == ["silent_added"]


def test_adds_over_the_rate_limit_are_refused_until_tokens_come_back(standin: RobotStandIn,
                                                                     nats_server: NatsServerProcess,
                                                                     channel: str) -> None:
    assert (standin.add_burst, standin.add_rate_per_second, standin.rate_limit_enabled) == (10, 2.0, True)

    async def burst(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        # Sent together, so the eleventh arrives long before half a second has brought a token back.
        replies = await asyncio.gather(*(add(nc, channel, manifest(f"v{n}")) for n in range(11)))
        assert sorted(uids([reply for reply in replies if reply["success"]])) == list(range(10))
        refused = [reply for reply in replies if not reply["success"]]
        fail = {"msg": "You are adding videos too quickly", "link": refused[0]["queue_fail"]["link"],
                "id": refused[0]["queue_fail"]["link"]}
        assert refused == [{"success": False, "error": "You are adding videos too quickly", "queue_fail": fail}]
        events = [await next_event(sub) for _ in range(11)]
        assert [payload for name, payload in events if name == "queueFail"] == [fail]
        assert len(await playlist(nc, channel)) == 10

    on_nats(nats_server.url, burst)
    wait_for(lambda: on_nats(nats_server.url, lambda nc: add(nc, channel, manifest("later")))["success"],
             what="an add allowed again")
    log = standin.add_log
    assert [record.outcome for record in log[:11]].count("too_quickly") == 1
    assert log[-1].outcome == "added" and all(record.outcome == "too_quickly" for record in log[11:-1])
    # 2 per second: the first token is back half a second after the burst began.
    assert log[-1].at - log[0].at >= 0.45


def test_without_the_rate_limit_every_add_goes_through(standin: RobotStandIn, nats_server: NatsServerProcess,
                                                       channel: str) -> None:
    standin.rate_limit_enabled = False

    async def body(nc: NatsClient) -> None:
        replies = await asyncio.gather(*(add(nc, channel, manifest(f"v{n}")) for n in range(15)))
        assert all(reply["success"] for reply in replies)

    on_nats(nats_server.url, body)


def test_rmvideo_only_confirms_the_send_and_the_effect_shows_in_state_and_events(
        standin: RobotStandIn, nats_server: NatsServerProcess, channel: str) -> None:
    for name in ("a", "b", "c"):
        standin.enqueue(manifest(name))

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        for uid in (1, 99, "2"):
            reply = await ask(nc, channel, "rmvideo", {"uid": uid})
            assert reply == {"service": "robot", "command": "rmvideo", "success": True, "data": {"success": True}}
        assert uids(await playlist(nc, channel)) == [0, 2]
        await ask(nc, channel, "rmvideo", {"uid": 2})
        # Only uids CyTube held give a delete: the unknown 99 and the text "2" gave none.
        assert [await next_event(sub), await next_event(sub)] == [("delete", {"uid": 1}), ("delete", {"uid": 2})]
        assert uids(await read_kv(nc, standin.playlist_bucket, "items")) == [0]

    on_nats(nats_server.url, body)


def test_the_kv_keeps_uid_0_after_its_delete_and_a_clear_but_state_and_events_are_right(
        standin: RobotStandIn, nats_server: NatsServerProcess, channel: str) -> None:
    for name in ("a", "b", "c"):
        standin.enqueue(manifest(name))

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        await ask(nc, channel, "rmvideo", {"uid": 0})
        assert await next_event(sub) == ("delete", {"uid": 0})
        assert uids(await playlist(nc, channel)) == [1, 2]
        assert uids(await read_kv(nc, standin.playlist_bucket, "items")) == [0, 1, 2]
        assert uids(standin.kv_items()) == [0, 1, 2] and uids(standin.queue_items()) == [1, 2]
        reply = await ask(nc, channel, "clear", {})
        assert reply == {"service": "robot", "command": "clear", "success": True, "data": {"success": True}}
        assert await next_event(sub) == ("playlist", [])
        assert await playlist(nc, channel) == []
        assert uids(await read_kv(nc, standin.playlist_bucket, "items")) == [0]

    on_nats(nats_server.url, body)
    # A restarting robot writes the whole playlist again, which puts its KV right.
    standin.stop()
    standin.start()
    assert standin.kv_items() == []


def test_clear_empties_the_queue_and_the_kv(standin: RobotStandIn, nats_server: NatsServerProcess,
                                            channel: str) -> None:
    standin.enqueue(manifest("a"))
    on_nats(nats_server.url, lambda nc: ask(nc, channel, "rmvideo", {"uid": 0}))
    standin.stop()  # a restart drops the removed uid 0 from the KV, so this clear meets no quirk
    standin.start()
    standin.enqueue(manifest("b"))
    standin.enqueue(manifest("c"))
    assert uids(standin.kv_items()) == [1, 2]
    on_nats(nats_server.url, lambda nc: ask(nc, channel, "clear", {}))
    assert standin.queue_items() == [] and standin.kv_items() == []


def test_jump_takes_the_uid_as_a_string_and_crashes_on_an_integer(standin: RobotStandIn,
                                                                  nats_server: NatsServerProcess,
                                                                  channel: str) -> None:
    standin.enqueue(manifest("a"))
    standin.enqueue(manifest("b"))

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        reply = await ask(nc, channel, "jump", {"uid": "1"})
        assert reply == {"service": "robot", "command": "jump", "success": True, "data": {"success": True}}
        assert await next_event(sub) == ("setCurrent", 1)
        assert (await next_event(sub))[0] == "changeMedia"
        assert (await read_kv(nc, standin.playlist_bucket, "current"))["uid"] == 1
        crashed = await ask(nc, channel, "jump", {"uid": 0})
        assert crashed["service"] == "robot" and crashed["success"] is False and crashed["error"]
        assert "data" not in crashed

    on_nats(nats_server.url, body)
    assert standin.current_uid == 1


def test_play_publishes_setcurrent_then_changemedia_and_writes_current(standin: RobotStandIn,
                                                                      nats_server: NatsServerProcess,
                                                                      channel: str) -> None:
    standin.set_media(manifest("a"), "Alpha", 90)
    standin.enqueue(manifest("a"))
    standin.enqueue(manifest("b"))
    media = {"id": manifest("a"), "title": "Alpha", "seconds": 90, "duration": "01:30", "type": "cm", "meta": {},
             "currentTime": 0, "paused": False}

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        await asyncio.to_thread(standin.play, 0)
        msg = await sub.next_msg(timeout=5.0)
        assert msg.subject == f"{standin.events_prefix}.setcurrent"
        event = json.loads(msg.data)
        assert {key: event[key] for key in ("event_name", "payload", "channel", "domain")} == {
            "event_name": "setCurrent", "payload": 0, "channel": channel, "domain": DOMAIN}
        assert event["timestamp"].endswith("Z") and event["correlation_id"]
        assert await next_event(sub) == ("changeMedia", media)
        assert await read_kv(nc, standin.playlist_bucket, "current") == {**media, "uid": 0}

    on_nats(nats_server.url, body)


def test_play_next_walks_the_queue_and_stops_at_its_end(standin: RobotStandIn) -> None:
    standin.enqueue(manifest("a"))
    standin.enqueue(manifest("b"))
    assert standin.current_uid is None
    assert standin.play_next() == 0
    assert standin.play_next() == 1
    assert standin.play_next() is None
    assert standin.current_uid == 1
    with pytest.raises(LookupError):
        standin.play(7)


def test_reconnect_replay_resends_the_current_media(standin: RobotStandIn, nats_server: NatsServerProcess) -> None:
    standin.enqueue(manifest("a"))

    async def body(nc: NatsClient) -> None:
        sub = await tap(nc, standin)
        await asyncio.to_thread(standin.reconnect_replay)  # nothing plays: nothing to resend
        await asyncio.to_thread(standin.play, 0)
        first = [await next_event(sub), await next_event(sub)]
        await asyncio.to_thread(standin.reconnect_replay)
        assert [await next_event(sub), await next_event(sub)] == first
        assert [name for name, _payload in first] == ["setCurrent", "changeMedia"]

    on_nats(nats_server.url, body)
