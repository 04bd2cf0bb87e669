"""What the CLI verbs share: loading the config, and a NATS session without the service."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.leases import Leases
from kryten_playlist_lib.config import Config, load_config
from kryten_playlist_lib.errors import NatsUnavailable

CONNECT_WAIT_SECONDS = 10.0


def load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


@dataclass
class NatsSession:
    bridge: NatsBridge
    kv: KvStore
    leases: Leases


@contextmanager
def nats_session(config: Config, owner: str = "cli") -> Iterator[NatsSession]:
    """A connection with the buckets bound, for verbs that change shared state.

    Unlike the service it subscribes to nothing and announces nothing, so a CLI
    run never answers admin commands meant for the service.
    """
    bridge = NatsBridge(config)
    kv = KvStore(bridge, config.namespace, config.kv_replicas)
    bridge.on_connect(kv.bootstrap)
    bridge.start()
    try:
        deadline = time.monotonic() + CONNECT_WAIT_SECONDS
        while not kv.ready:
            if time.monotonic() > deadline:
                raise NatsUnavailable(f"NATS is not reachable at {config.masked()['nats_url']}.")
            time.sleep(0.05)
        yield NatsSession(bridge, kv, Leases(kv, owner))
    finally:
        bridge.stop()
