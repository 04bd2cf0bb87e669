"""NatsBridge against real servers: background connect, outages, timeouts, clean stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge, connect_options
from kryten_playlist_lib.bus.natsserver import NatsServerProcess, free_port
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ConfigError, NatsUnavailable
from tests.helpers import wait_for


def test_start_does_not_wait_for_nats_and_connects_when_it_appears(
        tmp_path, make_config: Callable[..., Config]) -> None:
    server = NatsServerProcess(tmp_path / "late", port=free_port())
    bridge = NatsBridge(make_config(nats_url=server.url))
    began = time.monotonic()
    bridge.start()
    try:
        assert time.monotonic() - began < 2.0
        assert not bridge.connected
        with pytest.raises(NatsUnavailable):
            bridge.publish("x.y", {"a": 1})
        server.start()
        wait_for(lambda: bridge.connected, timeout=15, what="connect after the server appeared")
        bridge.publish("x.y", {"a": 1})
    finally:
        bridge.stop()
        server.stop()


def test_reconnects_after_the_server_restarts(own_nats_server: NatsServerProcess,
                                              make_config: Callable[..., Config]) -> None:
    bridge = NatsBridge(make_config(nats_url=own_nats_server.url))
    connects: list[int] = []

    async def count_connect() -> None:
        connects.append(1)

    bridge.on_connect(count_connect)
    bridge.start()
    try:
        wait_for(lambda: bridge.connected and connects)
        own_nats_server.stop()
        wait_for(lambda: not bridge.connected, what="disconnected")
        own_nats_server.start()
        wait_for(lambda: bridge.connected and len(connects) == 2, timeout=20, what="reconnected")
    finally:
        bridge.stop()


def test_a_failed_connect_hook_is_tried_again_with_the_hooks_after_it(config: Config) -> None:
    bridge = NatsBridge(config)
    calls: list[str] = []

    async def flaky_bootstrap() -> None:
        calls.append("bootstrap")
        if calls.count("bootstrap") == 1:
            raise TimeoutError("JetStream did not answer in time")

    async def subscribe() -> None:
        calls.append("subscribe")

    bridge.on_connect(flaky_bootstrap)
    bridge.on_connect(subscribe)
    bridge.start()
    try:
        wait_for(lambda: "subscribe" in calls, timeout=10, what="the hooks retried")
        assert calls == ["bootstrap", "bootstrap", "subscribe"]
    finally:
        bridge.stop()


def test_a_slow_call_times_out_as_nats_unavailable(bridge: NatsBridge) -> None:
    async def never_answers() -> None:
        await asyncio.sleep(30)

    began = time.monotonic()
    with pytest.raises(NatsUnavailable):
        bridge.run(never_answers, timeout=0.3)
    assert time.monotonic() - began < 2.0


def test_a_request_nobody_answers_is_nats_unavailable(bridge: NatsBridge) -> None:
    with pytest.raises(NatsUnavailable):
        bridge.request("nobody.listens.here", {"x": 1}, timeout=0.5)


def test_handlers_run_off_the_loop_and_answer_requests(bridge: NatsBridge) -> None:
    seen_threads: list[str] = []

    def handler(subject: str, data: bytes) -> bytes:
        seen_threads.append(threading.current_thread().name)
        return b'{"echo": ' + data + b"}"

    bridge.run(bridge.subscribe, "test.echo", handler)
    assert bridge.request("test.echo", {"n": 5}, timeout=5) == {"echo": {"n": 5}}
    assert seen_threads and seen_threads[0].startswith("nats-work")


def test_stop_leaves_no_bridge_threads(make_config: Callable[..., Config]) -> None:
    before = set(threading.enumerate())
    bridge = NatsBridge(make_config())
    bridge.start()
    wait_for(lambda: bridge.connected)
    bridge.stop()
    wait_for(lambda: not (set(threading.enumerate()) - before), what="bridge threads gone")


def test_a_creds_file_without_nkeys_names_the_extra(make_config: Callable[..., Config], tmp_path) -> None:
    try:
        import nkeys  # noqa: F401
        pytest.skip("nkeys is installed here, so the missing-extra error cannot be seen")
    except ImportError:
        pass
    creds = tmp_path / "user.creds"
    creds.write_text("x")
    with pytest.raises(ConfigError, match="nkeys"):
        connect_options(make_config(nats_creds=str(creds)))


def test_connect_options_carry_servers_and_auth(make_config: Callable[..., Config]) -> None:
    options = connect_options(make_config(nats_url=["nats://a:4222", "nats://b:4222"], nats_user="u",
                                          nats_password="p", nats_token=None))
    assert options["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert options["user"] == "u" and options["password"] == "p"
    assert options["max_reconnect_attempts"] == -1
