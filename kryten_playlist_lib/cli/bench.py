"""`bench [--quick] [--json F] [--data DIR]`: the benchmarks of operations.md."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path


def run_bench(args: argparse.Namespace) -> int:
    # Imported here: every verb imports this module, and only `bench` needs the benchmark code.
    from kryten_playlist_lib.bench import measures, render_table, service_measures, write_json
    from kryten_playlist_lib.bench.catalog_data import REAL_CATALOG_FILE
    from kryten_playlist_lib.bench.catalog_suite import FULL_PLAN, QUICK_PLAN, CatalogFigures, catalog_figures
    from kryten_playlist_lib.bench.environment import bench_environment

    # The table is the output: the services the bench starts and stops would only add log noise.
    logging.getLogger("kryten_playlist").setLevel(logging.ERROR)
    started = time.monotonic()
    runs = 5 if args.quick else 30
    data = Path(args.data)
    real_catalog = data / REAL_CATALOG_FILE
    catalog = (catalog_figures(real_catalog, QUICK_PLAN if args.quick else FULL_PLAN) if real_catalog.exists()
               else CatalogFigures())
    figures = [*catalog.search_and_refresh(), *measures.marathon_preview(runs)]
    with bench_environment(catalog_items=5000) as env:
        figures += service_measures.queue_apply(env, items=200, limited_items=30 if args.quick else 200)
        figures += service_measures.likes(env, total=1000, threads=50)
    figures += [*catalog.serve, *measures.episode_parsing(data)]
    print(render_table(figures))
    if args.quick:
        print("(quick run: fewer runs, and a 20,000-item catalog held to the 100,000-item targets)")
    if not real_catalog.exists():
        print(f"(no {REAL_CATALOG_FILE} in {data}: catalog, HTTP and serve figures not measured)")
    if not (data / measures.LABELLED_FILE).exists():
        print(f"(no labelled titles in {data}: episode parsing not measured)")
    print(f"(bench took {time.monotonic() - started:.0f} s)")
    if args.json:
        write_json(figures, Path(args.json))
    return 0


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    bench = verbs.add_parser("bench", parents=[common], help="measure the targets of operations.md")
    bench.add_argument("--quick", action="store_true",
                       help="fewer runs and smaller catalogs (about a minute), to check the benchmark works")
    bench.add_argument("--json", metavar="F", help="also write the figures as JSON to F")
    bench.add_argument("--data", metavar="DIR", default="../shared/data",
                       help="folder of the real catalog and the labelled titles")
    bench.set_defaults(run=run_bench)
