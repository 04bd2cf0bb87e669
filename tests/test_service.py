"""The service in-process against a real nats-server: health, lifecycle, admin commands."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from kryten_playlist_lib import package_version
from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import NatsUnavailable
from kryten_playlist_lib.service import PlaylistService
from tests.conftest import start_service
from tests.helpers import http_json, wait_for


class Collector:
    """Records every JSON message on a subject, through a bridge of the test's own."""

    def __init__(self, bridge: NatsBridge, subject: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        bridge.run(bridge.subscribe, subject, self._record)

    def _record(self, _subject: str, data: bytes) -> None:
        with self._lock:
            self.messages.append(json.loads(data))

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


def test_health_follows_the_nats_connection(own_nats_server: NatsServerProcess,
                                            make_config: Callable[..., Config]) -> None:
    service = start_service(make_config(nats_url=own_nats_server.url))
    url = f"http://127.0.0.1:{service.http.port}/api/v1/health"
    try:
        body = wait_for(lambda: _health_if(url, "connected"), timeout=15, what="connected")
        assert body == {"status": "ok", "version": package_version(), "nats": "connected", "robot": "unknown",
                        "snapshot_id": None, "item_count": 0, "pending_writes": 0}
        own_nats_server.stop()
        body = wait_for(lambda: _health_if(url, "disconnected"), timeout=15, what="disconnected")
        assert body["status"] == "degraded"
        own_nats_server.start()
        body = wait_for(lambda: _health_if(url, "connected"), timeout=20, what="connected again")
        assert body["status"] == "ok"
    finally:
        service.stop()


def _health_if(url: str, nats_state: str) -> dict[str, Any] | None:
    status, headers, body = http_json("GET", url)
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    return body if body["nats"] == nats_state else None


def test_http_serves_while_nats_is_down(make_config: Callable[..., Config]) -> None:
    service = start_service(make_config(nats_url="nats://127.0.0.1:1"))
    try:
        status, _headers, body = http_json("GET", f"http://127.0.0.1:{service.http.port}/api/v1/health")
        assert status == 200 and body["nats"] == "disconnected" and body["status"] == "degraded"
    finally:
        service.stop()


def test_metrics_report_the_nats_state(base_url: str) -> None:
    status, _headers, text = http_json("GET", base_url + "/metrics")
    assert status == 200
    assert "kryten_playlist_nats_connected 1" in text


def test_lifecycle_startup_discovery_and_shutdown(bridge: NatsBridge, config: Config) -> None:
    events = Collector(bridge, "kryten.lifecycle.playlist.*")
    service = start_service(config)
    try:
        wait_for(lambda: events.count() >= 1, what="startup message")
        startup = events.messages[0]
        assert startup["service"] == "playlist" and startup["version"] == package_version()
        assert startup["metadata"]["endpoints"]["health"] == {"port": service.http.port,
                                                             "path": "/api/v1/health"}
        bridge.publish("kryten.service.discovery.poll", {})
        wait_for(lambda: events.count() >= 2, what="startup again after a discovery poll")
    finally:
        service.stop(reason="test over")
    wait_for(lambda: any(m.get("reason") == "test over" for m in events.messages), what="shutdown message")


def test_system_ping_in_the_ecosystem_envelope(service: PlaylistService, bridge: NatsBridge) -> None:
    reply = bridge.request("kryten.playlist.command", {
        "command": "system.ping", "args": {},
        "meta": {"source": "test", "timestamp": "2026-11-24T00:00:00Z", "request_id": "r1",
                 "domain": "cytu.be", "channel": "lounge"}}, timeout=5)
    assert reply["service"] == "playlist" and reply["command"] == "system.ping" and reply["success"] is True
    assert reply["data"]["version"] == package_version()
    assert reply["data"]["nats"] == "connected"
    assert reply["data"]["uptime_seconds"] >= 0


def test_service_name_shapes_the_ecosystem_subject(make_config: Callable[..., Config],
                                                   bridge: NatsBridge) -> None:
    service = start_service(make_config(service_name="Kryten.Playlist"))
    try:
        wait_for(lambda: service.ready)
        reply = bridge.request("kryten.kryten-playlist.command", {"command": "system.ping"}, timeout=5)
        assert reply["service"] == "kryten-playlist" and reply["success"] is True
    finally:
        service.stop()


@pytest.mark.parametrize("payload, error, correlation_id", [
    (b"{not json", "not valid JSON", None),
    (b"[1, 2]", "JSON object", None),
    (b'{"namespace": "x", "requested_by": "alice"}', "correlation_id", None),
    (b'{"correlation_id": "c1", "requested_by": "alice"}', "namespace", "c1"),
])
def test_native_commands_refuse_bad_requests_naming_the_problem(
        service: PlaylistService, bridge: NatsBridge, payload: bytes, error: str,
        correlation_id: str | None) -> None:
    async def ask() -> Any:
        return await bridge.nc.request("kryten.playlist.cmd.blessed_list", payload, timeout=5)

    reply = json.loads(bridge.run(ask).data)
    assert reply["status"] == "error" and error in reply["error"]
    assert reply["correlation_id"] == correlation_id


def test_native_unknown_command_and_other_namespaces(service: PlaylistService, bridge: NatsBridge,
                                                     config: Config) -> None:
    request = {"correlation_id": "c9", "namespace": config.namespace, "requested_by": "alice"}
    reply = bridge.request("kryten.playlist.cmd.no_such_thing", request, timeout=5)
    assert reply == {"correlation_id": "c9", "status": "error", "error": "unknown command 'no_such_thing'"}
    with pytest.raises(NatsUnavailable):
        bridge.request("kryten.playlist.cmd.no_such_thing", {**request, "namespace": "elsewhere"}, timeout=1)
