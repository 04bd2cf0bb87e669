"""The catalog and `serve` figures in one run: what is built, in which order, and how often.

One nats-server and two catalog sites: `small` holds the real catalog (the
5k figures, search over HTTP) and `big` the larger copies, biggest first, so
the last size stays live for the search-during-refresh ratio and for the
`serve` memory and start figures. Generated JSON lines files live in the
run's temporary folder and go with it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kryten_playlist_lib.bench import Figure
from kryten_playlist_lib.bench.catalog_data import QuerySet, query_set, read_catalog, scaled_items, write_jsonl
from kryten_playlist_lib.bench.catalog_measures import (
    CatalogSite,
    catalog_site,
    during_refresh_figure,
    refresh_figure,
    refresh_seconds,
    search_figure,
    short_search_figure,
)
from kryten_playlist_lib.bench.http_measures import http_figures, serve_figures
from kryten_playlist_lib.bus.natsserver import NatsServerProcess

HTTP_CLIENTS = 8


@dataclass(frozen=True)
class CatalogPlan:
    big_sizes: tuple[int, ...]  # biggest first: the last stays live
    search_runs: int
    short_search_runs: int
    refresh_runs: int
    during_refresh_runs: int
    serve_runs: int
    http_runs: int
    http_seconds: float


FULL_PLAN = CatalogPlan((1_000_000, 100_000), search_runs=5, short_search_runs=3, refresh_runs=3,
                        during_refresh_runs=3, serve_runs=5, http_runs=3, http_seconds=5.0)
# 20k stands in for both 100k and 1M, and is held to the smaller size's targets.
QUICK_PLAN = CatalogPlan((20_000,), search_runs=3, short_search_runs=2, refresh_runs=2,
                         during_refresh_runs=2, serve_runs=3, http_runs=2, http_seconds=2.0)


@dataclass
class CatalogFigures:
    """Kept apart by kind so they print in the order of operations.md's table, smallest catalog first."""

    search: list[Figure] = field(default_factory=list)
    short_search: list[Figure] = field(default_factory=list)
    http: list[Figure] = field(default_factory=list)
    during_refresh: list[Figure] = field(default_factory=list)
    refresh: list[Figure] = field(default_factory=list)
    serve: list[Figure] = field(default_factory=list)

    def search_and_refresh(self) -> list[Figure]:
        return [*self.search, *self.short_search, *self.http, *self.during_refresh, *self.refresh]


def catalog_figures(real_catalog: Path, plan: CatalogPlan) -> CatalogFigures:
    items = read_catalog(real_catalog)
    queries = query_set([str(item["title"]) for item in items])
    figures = CatalogFigures()
    with tempfile.TemporaryDirectory(prefix="kryten-bench-catalog-") as temporary:
        folder = Path(temporary)
        with NatsServerProcess(folder / "nats") as nats, \
                catalog_site(folder, nats.url, "small") as small, catalog_site(folder, nats.url, "big") as big:
            refresh_seconds(small, real_catalog)
            figures.search.append(search_figure(small, queries.long, plan.search_runs))
            for count in plan.big_sizes:
                _big_catalog_figures(big, folder, items, count, queries, plan, figures)
            figures.http += http_figures(small, folder, queries.long, HTTP_CLIENTS, plan.http_seconds,
                                           plan.http_runs)
            figures.serve += serve_figures(big, folder, queries.long, plan.serve_runs)
    return figures


def _big_catalog_figures(site: CatalogSite, folder: Path, items: list[dict[str, object]], count: int,
                         queries: QuerySet, plan: CatalogPlan, figures: CatalogFigures) -> None:
    source = write_jsonl(scaled_items(items, count), folder / f"catalog-{count}.jsonl")
    try:
        # Sizes come biggest first; each goes before the bigger ones already listed.
        figures.refresh.insert(0, refresh_figure(site, source, count, plan.refresh_runs))
        figures.search.insert(1, search_figure(site, queries.long, plan.search_runs))
        if count == plan.big_sizes[0]:
            figures.short_search.append(short_search_figure(site, queries.short, plan.short_search_runs))
        if count == plan.big_sizes[-1]:
            figures.during_refresh.append(during_refresh_figure(site, queries.long, source, count,
                                                         plan.during_refresh_runs))
    finally:
        source.unlink()
