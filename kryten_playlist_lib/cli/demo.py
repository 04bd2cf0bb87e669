"""`demo`: the whole system in one process, for a first look (operations.md, "Setup a newcomer sees").

An embedded nats-server with JetStream, the robot stand-in (a pretend CyTube
queue; it prints every PM it is asked to send, so this is the one mode that
ever shows a sign-in code), a catalog from the `fake` connector and the
service with `demo` as an admin. Everything lives under `--data`: a second
start finds its catalog and playlists there and is quick.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.cli.serve import stop_within, wait_for_signal
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ConfigError, ServiceError
from kryten_playlist_lib.logs import configure_logging
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin import RobotStandIn

DEMO_USER = "demo"
DEMO_CATALOG_SIZE = 3000
DEFAULT_DATA = "./data/demo"
DEFAULT_HTTP_PORT = 8088
# A made-up host, so nothing the demo queues ever points at a real site.
DEMO_MANIFEST_URL_TEMPLATE = "https://media.example.org/manifests/{video_id}.json"
READY_TIMEOUT_SECONDS = 30.0
# The three parts share the 5 s a stop may take; the service gets most of it.
SERVICE_STOP_SECONDS = 3.0
ROBOT_STOP_SECONDS = 1.0
NATS_STOP_SECONDS = 0.5


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    demo = verbs.add_parser("demo", parents=[common],
                            help="a working demo in one process: embedded NATS, fake catalog, robot stand-in")
    demo.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, metavar="N",
                      help=f"the web UI's port (default {DEFAULT_HTTP_PORT})")
    demo.add_argument("--data", metavar="DIR", default=DEFAULT_DATA,
                      help=f"where NATS, the catalog and the secret live (default {DEFAULT_DATA})")
    demo.set_defaults(run=run_demo)


def demo_config(data: Path, nats_url: str, http_port: int) -> Config:
    """Built in code: the demo never reads ./config.json or KRYTEN_PLAYLIST_* (they may point at production)."""
    return Config.from_mapping({
        "namespace": "demo",
        "nats_url": nats_url,
        "http_port": http_port,
        "sqlite_path": str(data / "catalog.sqlite3"),
        "state_path": str(data / "state.sqlite3"),
        "secret_path": str(data / "secret.key"),
        "initial_admins": [DEMO_USER],
        "catalog_connector": "fake",
        "manifest_url_template": DEMO_MANIFEST_URL_TEMPLATE,
    })


def run_demo(args: argparse.Namespace) -> int:
    if args.config:
        raise ConfigError("--config", "demo builds its own configuration; use serve --config F for yours")
    configure_logging("DEBUG" if args.debug else "WARNING", False)
    data = Path(args.data).resolve()
    with ExitStack() as running:
        nats_server = NatsServerProcess(data / "nats")
        running.callback(nats_server.stop, NATS_STOP_SECONDS)
        config = demo_config(data, nats_server.start(), args.http_port)
        robot = _start_robot(config)
        running.callback(stop_within, robot.stop, ROBOT_STOP_SECONDS)
        # The env keeps a KRYTEN_PLAYLIST_SECRET of the shell away: the demo's secret is the file under --data.
        service = PlaylistService(config, env={})
        running.callback(stop_within, service.stop, SERVICE_STOP_SECONDS)
        service.start()
        url = f"http://127.0.0.1:{service.http.port}"
        _announce(url, nats_server, data)
        _wait_until_ready(service)
        _say(f"catalog: {_ensure_catalog(service):,} titles")
        _say(f"ready: open {url}/login and sign in as {DEMO_USER}")
        wait_for_signal()
        _say("stopping")
    return 0


def _start_robot(config: Config) -> RobotStandIn:
    robot = RobotStandIn(config.nats_servers()[0], domain=config.cytube_domain, channel=config.cytube_channel,
                         prefix=config.nats_subject_prefix, on_pm=_print_pm)
    # A code is only sent to someone in the channel.
    robot.set_users([{"name": DEMO_USER}])
    robot.start()
    return robot


def _announce(url: str, nats_server: NatsServerProcess, data: Path) -> None:
    _say("kryten-playlist demo: everything runs in this process; no real CyTube channel is involved")
    _say(f"  web UI:     {url}")
    _say(f"  sign in as: {DEMO_USER} (an admin); the sign-in code is printed here, below")
    _say("  robot:      a stand-in with a pretend queue, printing each PM it is asked to send")
    _say(f"  catalog:    about {DEMO_CATALOG_SIZE:,} made-up titles from the fake connector")
    _say(f"  NATS:       embedded nats-server with JetStream on {nats_server.url}")
    _say(f"  data:       {data} (delete it to start afresh)")
    _say("  stop:       Ctrl-C")


def _wait_until_ready(service: PlaylistService) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not service.ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not connect to the embedded NATS within {READY_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.05)


def _ensure_catalog(service: PlaylistService) -> int:
    """The live snapshot's size, building one first when there is none (the first start)."""
    try:
        return int(service.catalog.snapshot_info()["item_count"])
    except ServiceError as exc:
        if exc.code != "no_snapshot":
            raise
    _say(f"building the catalog ({DEMO_CATALOG_SIZE:,} titles; only on the first start)")
    refresh = service.refresh
    return refresh.run(refresh.begin("fake", str(DEMO_CATALOG_SIZE))).item_count


def _print_pm(to: str, text: str) -> None:
    _say(f"PM to {to}: {text}")


def _say(line: str) -> None:
    # Flushed at once: the PM lines must show up even when stdout is a pipe.
    print(line, flush=True)
