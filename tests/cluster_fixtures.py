"""A three-node JetStream cluster on loopback, for the many-replicas tests.

Each node is a `NatsServerProcess` (the one way the project starts a real
server) with a server name, a store folder of its own and routes to the two
others. `start()` returns once the cluster can hold a stream with three
replicas, so a service started afterwards creates its R3 buckets at once.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import nats

from kryten_playlist_lib.bus.natsserver import NatsServerProcess, free_port
from tests.helpers import wait_for

CLUSTER_NAME = "kryten-test"
NODES = 3


class NatsCluster:
    def __init__(self, folder: Path) -> None:
        route_ports = [free_port() for _ in range(NODES)]
        self.nodes = [self._node(folder, index, route_ports) for index in range(NODES)]

    @staticmethod
    def _node(folder: Path, index: int, route_ports: list[int]) -> NatsServerProcess:
        routes = ",".join(f"nats://127.0.0.1:{port}" for n, port in enumerate(route_ports) if n != index)
        return NatsServerProcess(folder / f"n{index}", extra_args=[
            "--server_name", f"n{index}", "--cluster_name", CLUSTER_NAME,
            "--cluster", f"nats://127.0.0.1:{route_ports[index]}", "--routes", routes])

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node_at(self, url: str) -> NatsServerProcess:
        """The node whose client URL is `url` (as nats-py reports its connected server)."""
        return next(node for node in self.nodes if node.url == url)

    def start(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            node.start()
        wait_for(lambda: asyncio.run(self._holds_three_replicas()), timeout=timeout,
                 what="the NATS cluster to elect a JetStream leader with three peers")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    async def _holds_three_replicas(self) -> bool:
        """Create and drop a throwaway R3 stream: possible only once all three peers are in the meta group."""
        name = "probe_" + secrets.token_hex(4)
        try:
            nc = await nats.connect(self.urls, connect_timeout=2, max_reconnect_attempts=1)
        except Exception:  # noqa: BLE001  (a node still starting: ask again)
            return False
        try:
            js = nc.jetstream(timeout=2)
            await js.add_stream(name=name, subjects=[f"{name}.>"], num_replicas=3)
            await js.delete_stream(name)
            return True
        except Exception:  # noqa: BLE001  (no leader or too few peers yet)
            return False
        finally:
            await nc.close()
