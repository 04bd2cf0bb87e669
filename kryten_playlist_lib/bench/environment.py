"""What the service benchmarks run against: a nats-server, the robot stand-in and the service, all local."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin import RobotStandIn

BENCH_SECRET = "be" * 32


@dataclass
class BenchEnvironment:
    folder: Path
    nats: NatsServerProcess
    robot: RobotStandIn
    service: PlaylistService


@contextmanager
def bench_environment(catalog_items: int) -> Iterator[BenchEnvironment]:
    """A fresh nats-server and service in a temporary folder, with a fake catalog of `catalog_items`."""
    with tempfile.TemporaryDirectory(prefix="kryten-bench-") as temporary:
        folder = Path(temporary)
        nats = NatsServerProcess(folder / "nats")
        nats.start()
        robot = RobotStandIn(nats.url)
        robot.start()
        config = Config.from_mapping({
            "nats_url": nats.url, "http_port": 0, "namespace": "bench",
            "sqlite_path": str(folder / "data" / "catalog.sqlite3"),
            "state_path": str(folder / "data" / "state.sqlite3"),
            "like_per_user": 1000, "queue_add_rate_per_second": 1000, "queue_add_burst": 1000})
        service = PlaylistService(config, env={"KRYTEN_PLAYLIST_SECRET": BENCH_SECRET})
        service.start()
        try:
            _wait_ready(service)
            service.refresh.run(service.refresh.begin("fake", str(catalog_items)))
            yield BenchEnvironment(folder, nats, robot, service)
        finally:
            service.stop()
            robot.stop()
            nats.stop()


def _wait_ready(service: PlaylistService, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not service.ready:
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark's service did not connect to its nats-server")
        time.sleep(0.05)
