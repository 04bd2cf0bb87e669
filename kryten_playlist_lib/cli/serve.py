"""`serve`: the service in the foreground; also the signal and stop helpers `demo` shares."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.cli.common import load
from kryten_playlist_lib.logs import configure_logging
from kryten_playlist_lib.service import PlaylistService

log = logging.getLogger("kryten_playlist.cli")

STOP_TIMEOUT_SECONDS = 5.0


def run_serve(args: argparse.Namespace) -> int:
    config = load(args)
    configure_logging("DEBUG" if args.debug else config.log_level, config.log_json)
    nats_server = None
    if args.embedded_nats or config.nats_embedded:
        store = Path(config.state_path).parent / "nats"
        nats_server = NatsServerProcess(store, binary=config.nats_server_path)
        config = dataclasses.replace(config, nats_url=nats_server.start())
    service = PlaylistService(config)
    try:
        service.start()
        wait_for_signal()
        log.info("stopping")
    finally:
        stop_within(service.stop, STOP_TIMEOUT_SECONDS)
        if nats_server is not None:
            nats_server.stop()
    return 0


def wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop.wait(1.0):
        pass


def stop_within(stop: Callable[[], None], seconds: float) -> None:
    """Stop in a helper thread so a stuck part cannot hold the process past `seconds`."""
    worker = threading.Thread(target=stop, name="stop", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        log.warning("not everything stopped within %.0f s; exiting anyway", seconds)
