"""`apply NAME [--mode M]`: push a playlist into the channel's queue from the host, as an admin."""

from __future__ import annotations

import argparse

from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.cli.common import load, nats_session
from kryten_playlist_lib.domain.rbac import User
from kryten_playlist_lib.playlists.store import PlaylistStore
from kryten_playlist_lib.queue.apply import MODES, QueueApplier

HOST_ADMIN = User("local", "admin")


def run_apply(args: argparse.Namespace) -> int:
    config = load(args)
    with nats_session(config) as session:
        catalog = CatalogReader(config.sqlite_path)
        playlists = PlaylistStore(session.kv, catalog, config.max_playlist_items)
        applier = QueueApplier(config, session.kv, session.leases, RobotClient(session.bridge, config), playlists,
                               catalog)
        answer = applier.run(applier.begin(playlists.id_for_name(args.name), args.mode, HOST_ADMIN))
    print(f"{answer['status']}: {answer['enqueued_count']} added, {answer['removed_count']} removed")
    for failure in answer["failed"]:
        print(f"  {failure['video_id']}: {failure['reason']}")
    return 0 if answer["status"] == "queued" else 1


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    apply = verbs.add_parser("apply", parents=[common], help="queue a playlist in the channel, as an admin")
    apply.add_argument("name", metavar="NAME")
    apply.add_argument("--mode", choices=MODES, default="preserve_current")
    apply.set_defaults(run=run_apply)
