"""Embedded mode: the bridge and the service on a host program's own loop and connection."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import nats
import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from tests.conftest import TEST_SECRET
from tests.helpers import http_json


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def test_the_bridge_uses_the_hosts_connection_and_leaves_it_open(config: Config) -> None:
    async def host_program() -> dict[str, Any]:
        nc = await nats.connect(config.nats_url)
        bridge = NatsBridge(config, nc=nc, loop=asyncio.get_running_loop())
        await bridge.astart()

        async def answer(msg: Any) -> None:
            await msg.respond(b'{"pong": true}')

        await nc.subscribe("host.ping", cb=answer)
        # The blocking facade is for worker threads: call it from one.
        reply = await asyncio.get_running_loop().run_in_executor(
            None, lambda: bridge.request("host.ping", {}, timeout=5))
        await bridge.astop()
        still_open = nc.is_connected
        await nc.close()
        return {"reply": reply, "still_open": still_open}

    outcome = asyncio.run(host_program())
    assert outcome == {"reply": {"pong": True}, "still_open": True}


def test_the_service_runs_embedded_without_a_loop_or_threads_of_its_own(config: Config,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(threading.enumerate())

    def no_second_loop(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the embedded service made an event loop of its own")

    async def host_program() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for name in ("new_event_loop", "run"):
            monkeypatch.setattr(asyncio, name, no_second_loop)
        nc = await nats.connect(config.nats_url)
        service = PlaylistService(config, nats=nc, loop=loop, env={"KRYTEN_PLAYLIST_SECRET": TEST_SECRET})
        await service.astart()
        await wait_until(lambda: service.ready)
        url = f"http://127.0.0.1:{service.http.port}/api/v1/health"
        health = await loop.run_in_executor(None, lambda: http_json("GET", url)[2])
        ping = await nc.request("kryten.playlist.command", json.dumps({"command": "system.ping"}).encode(),
                                timeout=5)
        await service.astop()
        monkeypatch.undo()
        await nc.close()
        return {"health": health, "ping": json.loads(ping.data), "loop": service.bridge.loop is loop}

    outcome = asyncio.run(host_program())
    assert outcome["loop"] is True
    assert outcome["health"]["nats"] == "connected"
    assert outcome["ping"]["success"] is True
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert [t.name for t in leftover] == []
