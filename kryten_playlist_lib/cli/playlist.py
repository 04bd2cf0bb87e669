"""`playlist list|show|export|import`: playlists as JSON, from the host (operations.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.cli.common import load, nats_session
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.playlists.store import PlaylistStore

CLI_USER = "local"


def _find(store: PlaylistStore, name: str) -> dict[str, Any]:
    """The GET form of the playlist called `name` (case-insensitive)."""
    return store.with_availability(*store.get(store.id_for_name(name)))


def run_playlist(args: argparse.Namespace) -> int:
    config = load(args)
    with nats_session(config) as session:
        store = PlaylistStore(session.kv, CatalogReader(config.sqlite_path), config.max_playlist_items)
        if args.playlist_verb == "list":
            for row in store.list():
                print(f"{row['name']}\t{row['item_count']} items\t{row['duration_seconds'] // 60} min\t"
                      f"{row['playlist_id']}")
        elif args.playlist_verb == "show":
            document = _find(store, args.name)
            for item in document["items"]:
                mark = "" if item["available"] else "\t(not in the catalog)"
                print(f"{item['video_id']}\t{item['title'] or '?'}{mark}")
        elif args.playlist_verb == "export":
            print(json.dumps(_find(store, args.name), indent=2, ensure_ascii=False))
        else:
            return _import(store, args)
    return 0


def _import(store: PlaylistStore, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{args.file} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{args.file} must hold one playlist object, as `playlist export` prints it")
    body = {"name": args.rename or document.get("name"), "items": document.get("items")}
    try:
        playlist_id = store.create(body, CLI_USER)
    except ServiceError as exc:
        if exc.code == "name_taken":
            raise ServiceError("name_taken", f"{exc.message} Give it another name with --rename NEW.") from exc
        raise
    print(f"imported {body['name']!s} as {playlist_id}")
    return 0


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    playlist = verbs.add_parser("playlist", parents=[common], help="playlists as JSON")
    actions = playlist.add_subparsers(dest="playlist_verb", metavar="ACTION")
    actions.required = True
    actions.add_parser("list", parents=[common], help="every playlist").set_defaults(run=run_playlist)
    for name, text in (("show", "the items of one playlist"), ("export", "one playlist as JSON")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("name", metavar="NAME")
        action.set_defaults(run=run_playlist)
    do_import = actions.add_parser("import", parents=[common], help="create a playlist from exported JSON")
    do_import.add_argument("file", metavar="FILE", help="a file, or - for standard input")
    do_import.add_argument("--rename", metavar="NEW", help="save it under this name instead")
    do_import.set_defaults(run=run_playlist)
