"""The `kryten-playlist` command line: parse, dispatch, exit codes.

Exit codes: 0 ok, 1 the operation failed, 2 usage or config error. Errors are
one line on stderr; `--debug` adds the traceback. Each verb lives in the
module of its area (serve.py, demo.py, catalog.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from kryten_playlist_lib import package_version
from kryten_playlist_lib.cli import acl, apply, bench, catalog, demo, playlist, serve
from kryten_playlist_lib.cli.common import load
from kryten_playlist_lib.errors import ConfigError, ServiceError, ValidationError

log = logging.getLogger("kryten_playlist.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="F", help="config file (default: ./config.json when it exists)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    parser = argparse.ArgumentParser(prog="kryten-playlist", parents=[common],
                                     description="Catalog search, playlists and marathons for a CyTube channel.")
    parser.add_argument("--version", action="version", version=f"kryten-playlist {package_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    run_serve = verbs.add_parser("serve", parents=[common], help="run the service")
    run_serve.add_argument("--embedded-nats", action="store_true",
                           help="start a nats-server with JetStream under the data folder")
    run_serve.set_defaults(run=serve.run_serve)

    demo.add_parsers(verbs, common)
    catalog.add_parsers(verbs, common)
    acl.add_parsers(verbs, common)
    playlist.add_parsers(verbs, common)
    apply.add_parsers(verbs, common)
    bench.add_parsers(verbs, common)

    config = verbs.add_parser("config", parents=[common], help="configuration")
    config_verbs = config.add_subparsers(dest="config_verb", metavar="ACTION")
    config_verbs.required = True
    check = config_verbs.add_parser("check", parents=[common], help="validate and print the effective config")
    check.set_defaults(run=run_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="kryten-playlist: %(levelname)s: %(message)s")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        _fail(args, exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # the one place every failure becomes one line and an exit code
        _fail(args, exc)
        return EXIT_FAILED


def _fail(args: argparse.Namespace, exc: BaseException) -> None:
    if args.debug:
        log.exception("failed")
    if isinstance(exc, ValidationError):
        message = "; ".join(f"{field}: {problem}" for field, problem in exc.fields.items())
    else:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
    print(f"kryten-playlist: {message}", file=sys.stderr)


def run_config_check(args: argparse.Namespace) -> int:
    print(json.dumps(load(args).masked(), indent=2, sort_keys=True))
    return EXIT_OK
