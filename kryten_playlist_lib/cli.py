"""The `kryten-playlist` command line: parse, dispatch, exit codes.

Exit codes: 0 ok, 1 the operation failed, 2 usage or config error. Errors are
one line on stderr; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kryten_playlist_lib import package_version
from kryten_playlist_lib.config import Config, load_config
from kryten_playlist_lib.errors import ConfigError

log = logging.getLogger("kryten_playlist.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STOP_TIMEOUT_SECONDS = 5.0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="F", help="config file (default: ./config.json when it exists)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = argparse.ArgumentParser(prog="kryten-playlist", parents=[common],
                                     description="Catalog search, playlists and marathons for a CyTube channel.")
    parser.add_argument("--version", action="version", version=f"kryten-playlist {package_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    serve = verbs.add_parser("serve", parents=[common], help="run the service")
    serve.add_argument("--embedded-nats", action="store_true",
                       help="start a nats-server with JetStream under the data folder")
    serve.set_defaults(run=run_serve)

    demo = verbs.add_parser("demo", parents=[common], help="a working demo (not built yet)")
    demo.add_argument("--http-port", type=int, default=8088)
    demo.add_argument("--data", metavar="DIR", default="./data/demo")
    demo.set_defaults(run=run_demo)

    config = verbs.add_parser("config", parents=[common], help="configuration")
    config_verbs = config.add_subparsers(dest="config_verb", metavar="ACTION")
    config_verbs.required = True
    check = config_verbs.add_parser("check", parents=[common], help="validate and print the effective config")
    check.set_defaults(run=run_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        _fail(args, exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:
        _fail(args, exc)
        return EXIT_FAILED


def _fail(args: argparse.Namespace, exc: BaseException) -> None:
    if args.debug:
        log.exception("failed")
    print(f"kryten-playlist: {exc}", file=sys.stderr)


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def run_config_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(json.dumps(config.masked(), indent=2, sort_keys=True))
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    print("kryten-playlist demo: not built yet (it arrives with the deployment-shapes issue).", file=sys.stderr)
    return EXIT_FAILED


def run_serve(args: argparse.Namespace) -> int:
    from kryten_playlist_lib.bus.natsserver import NatsServerProcess
    from kryten_playlist_lib.logs import configure_logging
    from kryten_playlist_lib.service import PlaylistService

    config = _load(args)
    configure_logging("DEBUG" if args.debug else config.log_level, config.log_json)
    nats_server = None
    if args.embedded_nats or config.nats_embedded:
        store = Path(config.state_path).parent / "nats"
        nats_server = NatsServerProcess(store, binary=config.nats_server_path)
        config = dataclasses.replace(config, nats_url=nats_server.start())
    service = PlaylistService(config)
    try:
        service.start()
        _wait_for_signal()
        log.info("stopping")
    finally:
        _stop_within(service.stop, STOP_TIMEOUT_SECONDS)
        if nats_server is not None:
            nats_server.stop()
    return EXIT_OK


def _wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop.wait(1.0):
        pass


def _stop_within(stop: Callable[[], None], seconds: float) -> None:
    """Stop in a helper thread so a stuck part cannot hold the process past `seconds`."""
    worker = threading.Thread(target=stop, name="stop", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        log.warning("not everything stopped within %.0f s; exiting anyway", seconds)
