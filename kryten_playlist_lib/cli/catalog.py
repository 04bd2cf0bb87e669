"""`catalog refresh` and `catalog search`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.catalog.refresh import CatalogRefresh
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.catalog.store import require_trigram_sqlite
from kryten_playlist_lib.cli.common import load, nats_session

PLAIN_PROGRESS_EVERY_SECONDS = 5.0


class ProgressLine:
    """Items read so far and the rate: one line rewritten in place on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._started = time.monotonic()
        self._last_plain = self._started

    def __call__(self, items_seen: int) -> None:
        now = time.monotonic()
        rate = items_seen / max(now - self._started, 1e-6)
        text = f"read {items_seen:,} items ({rate:,.0f}/s)"
        if self._tty:
            self._out.write("\r" + text)
            self._out.flush()
        elif now - self._last_plain >= PLAIN_PROGRESS_EVERY_SECONDS:
            self._last_plain = now
            print(text, file=self._out, flush=True)

    def finish(self) -> None:
        if self._tty:
            self._out.write("\n")


def run_refresh(args: argparse.Namespace) -> int:
    config = load(args)
    require_trigram_sqlite()
    progress = ProgressLine(sys.stderr)
    with nats_session(config) as session:
        refresh = CatalogRefresh(config, session.kv, session.leases,
                                 SnapshotObjects(session.bridge, config.namespace))
        job = refresh.begin(args.connector, args.source, args.force)
        try:
            result = refresh.run(job, on_progress=progress)
        finally:
            progress.finish()
    skipped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in result.skipped.items() if count)
    items = f"{result.item_count:,} item" + ("" if result.item_count == 1 else "s")
    print(f"snapshot {result.snapshot_id}: {items}" + (f" (skipped: {skipped})" if skipped else ""))
    return 0


def run_search(args: argparse.Namespace) -> int:
    config = load(args)
    page = CatalogReader(config.sqlite_path).search(args.query, args.category, limit=args.limit, offset=0)
    for item in page.items:
        minutes = "" if item["duration_seconds"] is None else f"{item['duration_seconds'] // 60}m"
        print(f"{item['video_id']}\t{minutes}\t{item['title']}")
    print(f"{len(page.items)} of {page.total} matches in snapshot {page.snapshot_id}", file=sys.stderr)
    return 0


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    catalog = verbs.add_parser("catalog", parents=[common], help="the catalog snapshot")
    actions = catalog.add_subparsers(dest="catalog_verb", metavar="ACTION")
    actions.required = True

    refresh = actions.add_parser("refresh", parents=[common], help="build and publish a new snapshot")
    refresh.add_argument("--connector", help="mediacms, jsonl or fake (default: catalog_connector)")
    refresh.add_argument("--source", metavar="PATH|URL",
                         help="jsonl: a file or - for standard input; mediacms: the base URL; fake: an item count")
    refresh.add_argument("--force", action="store_true", help="allow an empty or much smaller catalog")
    refresh.set_defaults(run=run_refresh)

    search = actions.add_parser("search", parents=[common], help="query the local snapshot")
    search.add_argument("query", metavar="Q")
    search.add_argument("--category", action="append", default=[], metavar="C", help="repeatable; all must match")
    search.add_argument("--limit", type=int, default=50, choices=range(1, 201), metavar="N", help="1-200")
    search.set_defaults(run=run_search)
