"""Fixtures: a real `nats-server -js` per test session, configs, and the service in-process."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from tests.helpers import http_json, wait_for

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

TEST_SECRET = "ab" * 32


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    """One real JetStream server for the whole session; tests isolate by namespace."""
    server = NatsServerProcess(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_nats_server(tmp_path: Path) -> Iterator[NatsServerProcess]:
    """A server of the test's own, for fault tests that stop and restart it."""
    server = NatsServerProcess(tmp_path / "own-nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_config(tmp_path: Path, nats_server: NatsServerProcess) -> Callable[..., Config]:
    """A config on the session server, a fresh namespace and a free HTTP port; overrides win."""
    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "nats_url": nats_server.url,
            "namespace": "t" + secrets.token_hex(6),
            "http_port": 0,
            "sqlite_path": str(tmp_path / "data" / "catalog.sqlite3"),
            "state_path": str(tmp_path / "data" / "state.sqlite3"),
            "secret_path": str(tmp_path / "data" / "secret.key"),
        }
        values.update(overrides)
        return Config.from_mapping(values)

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def bridge(config: Config) -> Iterator[NatsBridge]:
    """A connection of the test's own, connected: a test's client, an admin tool, another Kryten service."""
    started = NatsBridge(config)
    started.start()
    wait_for(lambda: started.connected, what="bridge connected")
    yield started
    started.stop()


def start_service(config: Config) -> PlaylistService:
    from kryten_playlist_lib.service import PlaylistService

    service = PlaylistService(config, env={"KRYTEN_PLAYLIST_SECRET": TEST_SECRET})
    service.start()
    return service


@pytest.fixture
def service(config: Config) -> Iterator[PlaylistService]:
    """The service in-process on a free HTTP port, NATS connected and buckets ready."""
    running = start_service(config)
    wait_for(lambda: running.ready, what="service connected to NATS")
    yield running
    running.stop()


@pytest.fixture
def base_url(service: PlaylistService) -> str:
    return f"http://127.0.0.1:{service.http.port}"


@pytest.fixture
def health(base_url: str) -> Callable[[], dict[str, Any]]:
    def read() -> dict[str, Any]:
        status, _headers, body = http_json("GET", base_url + "/api/v1/health")
        assert status == 200
        return body

    return read
