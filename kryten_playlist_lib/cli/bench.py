"""`bench [--quick] [--json F] [--data DIR]`: the benchmarks of operations.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from kryten_playlist_lib.bench import measures, render_table, service_measures, write_json
from kryten_playlist_lib.bench.environment import bench_environment


def run_bench(args: argparse.Namespace) -> int:
    runs = 5 if args.quick else 30
    data = Path(args.data)
    figures = [*measures.marathon_preview(runs), *measures.episode_parsing(data)]
    with bench_environment(catalog_items=5000) as env:
        figures += service_measures.queue_apply(env, items=200, limited_items=30 if args.quick else 200)
        figures += service_measures.likes(env, total=1000, threads=50)
    print(render_table(figures))
    if not (data / measures.LABELLED_FILE).exists():
        print(f"(no labelled titles in {data}: episode parsing not measured)")
    if args.json:
        write_json(figures, Path(args.json))
    return 0


def add_parsers(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    bench = verbs.add_parser("bench", parents=[common], help="measure the targets of operations.md")
    bench.add_argument("--quick", action="store_true", help="fewer runs, to check the benchmark works")
    bench.add_argument("--json", metavar="F", help="also write the figures as JSON to F")
    bench.add_argument("--data", metavar="DIR", default="../shared/data", help="folder of the labelled titles")
    bench.set_defaults(run=run_bench)
