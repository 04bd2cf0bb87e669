"""Catalog search over real snapshot files: matching, order, paging, pinning and link swaps."""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path

import pytest

from kryten_playlist_lib.catalog.items import CatalogItem
from kryten_playlist_lib.catalog.search import CatalogReader, SearchPage
from kryten_playlist_lib.catalog.store import build_snapshot, snapshot_path
from kryten_playlist_lib.errors import NotFound, ServiceError
from tests.test_catalog_store import TEMPLATE, real_catalog_items, stand_in_parser

ID_A = "20261124T120000Z-aaaaaa"
ID_B = "20261124T130000Z-bbbbbb"
ITEM_KEYS = {"video_id", "title", "categories", "duration_seconds", "thumbnail_url", "manifest_url"}

SAMPLE = [
    CatalogItem("silk1", "Silk Stalkings S01E01 Pilot", ("TV", "Drama"), 2753, "https://img.example/s1.jpg"),
    CatalogItem("silk2", "Silk Stalkings S01E06 Dirty Laundry", ("TV",), 2700, None),
    CatalogItem("ecole", "l'École des fans", ("Music",), 60, None),
    CatalogItem("strasse", "Die Straße der Lieder", ("music",), None, None),
    CatalogItem("upper", "DIE STRASSE", ("Drama",), None, None),
    CatalogItem("the1", "The Outer Limits 1x01", ("TV", "Drama"), 3000, None),
    CatalogItem("the2", "Theatre of Blood", ("Movies",), 5400, None),
    CatalogItem("the0", "The Outer Limits 1x01", ("TV",), 3000, None),
    CatalogItem("mother", "Mother, May I Sleep with Danger?", ("Movies",), 5000, None),
    CatalogItem("special", 'a*b "quoted" (x) c:d -minus NEAR(1) ^caret', (), None, None),
    CatalogItem("xfiles", "X-Files - s01e00 - Pilot.avi", ("TV",), 2900, None),
]


def publish(folder: Path, snapshot_id: str, items: Iterable[CatalogItem]) -> Path:
    """Build a snapshot beside the link and point the link at it, as a refresh does."""
    path = snapshot_path(folder / "catalog.sqlite3", snapshot_id)
    build_snapshot(path, snapshot_id=snapshot_id, source="test", created_at="2026-11-24T12:00:00.000Z",
                   items=items, manifest_url_template=TEMPLATE, episode_parser=stand_in_parser)
    point_link(folder, path)
    return path


def point_link(folder: Path, target: Path) -> None:
    temporary = folder / f".link-{secrets.token_hex(4)}"
    os.symlink(target.name, temporary)
    os.replace(temporary, folder / "catalog.sqlite3")


def expected(items: Sequence[CatalogItem], q: str | None, categories: Sequence[str] = ()) -> list[str]:
    """The search rules of http-api.md, written the slow and obvious way."""
    fold = (q or "").strip().casefold()
    hits = [item for item in items
            if all(word in str(item.title).casefold() for word in fold.split())
            and set(categories) <= set(item.categories)]
    hits.sort(key=lambda item: (not (fold and str(item.title).casefold().startswith(fold)),
                                str(item.title).casefold(), str(item.video_id)))
    return [str(item.video_id) for item in hits]


def ids(page: SearchPage) -> list[str]:
    return [item["video_id"] for item in page.items]


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[CatalogReader]:
    publish(tmp_path, ID_A, SAMPLE)
    opened = CatalogReader(tmp_path / "catalog.sqlite3")
    yield opened
    opened.close_thread_connection()


@pytest.fixture(scope="module")
def real_reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CatalogReader, list[CatalogItem]]]:
    items = real_catalog_items()
    folder = tmp_path_factory.mktemp("real")
    publish(folder, ID_A, items)
    opened = CatalogReader(folder / "catalog.sqlite3")
    yield opened, items
    opened.close_thread_connection()


def test_no_snapshot_before_the_first_refresh(tmp_path: Path) -> None:
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    for call in (lambda: reader.search("x"), reader.categories, lambda: reader.item("a"), reader.snapshot_info):
        with pytest.raises(ServiceError) as caught:
            call()
        assert caught.value.code == "no_snapshot" and caught.value.http_status == 503
        assert "refresh" in caught.value.message
    os.symlink("catalog-missing.sqlite3", tmp_path / "catalog.sqlite3")
    with pytest.raises(ServiceError, match="No catalog snapshot"):
        reader.search(None)


def test_items_have_exactly_the_api_fields(reader: CatalogReader) -> None:
    page = reader.search("pilot")
    assert page.snapshot_id == ID_A and page.total == 2
    assert page.items[0] == {
        "video_id": "silk1", "title": "Silk Stalkings S01E01 Pilot", "categories": ["TV", "Drama"],
        "duration_seconds": 2753, "thumbnail_url": "https://img.example/s1.jpg",
        "manifest_url": "https://media.example/api/v1/media/cytube/silk1.json?format=json",
    }
    assert all(set(item) == ITEM_KEYS for item in page.items)


@pytest.mark.parametrize(("q", "want"), [
    ("talk", ["silk1", "silk2"]),            # inside a word
    ("SILK", ["silk1", "silk2"]),
    ("ÉCOLE", ["ecole"]),                    # non-ASCII case folding
    ("école", ["ecole"]),
    ("STRASSE", ["upper", "strasse"]),       # ß folds to ss
    ("straße", ["upper", "strasse"]),
    ("silk pilot", ["silk1"]),               # every word must appear
    ("pilot silk", ["silk1"]),
    ("silk blood", []),
    ("x", ["xfiles", "special", "the0", "the1"]),   # one character: scan
    ("É", ["ecole"]),
    ("ß", ["upper", "strasse"]),             # one character that folds to two
    ("zq", []),
    ("s0 silk", ["silk1", "silk2"]),         # short and long words together
    ("  silk   STALK  ", ["silk1", "silk2"]),
])
def test_matching(reader: CatalogReader, q: str, want: list[str]) -> None:
    page = reader.search(q)
    assert ids(page) == want and page.total == len(want)
    assert want == expected(SAMPLE, q)


def test_prefix_matches_come_first_then_title_then_video_id(reader: CatalogReader) -> None:
    # "Theatre…" starts with "the" as well; "Mother, May I…" only contains it, so it comes last.
    assert ids(reader.search("the")) == ["the0", "the1", "the2", "mother"]
    assert ids(reader.search("THE OUT")) == ["the0", "the1"]
    assert ids(reader.search("her")) == ["mother"]
    assert ids(reader.search("e")) == expected(SAMPLE, "e")


def test_without_q_everything_in_title_order(reader: CatalogReader) -> None:
    for q in (None, "", "   "):
        page = reader.search(q)
        assert ids(page) == expected(SAMPLE, None) and page.total == len(SAMPLE)


def test_category_filter_needs_every_category_exactly(reader: CatalogReader) -> None:
    assert ids(reader.search(None, ["TV", "Drama"])) == ["silk1", "the1"]
    assert ids(reader.search("pilot", ["TV"])) == ["silk1", "xfiles"]
    assert ids(reader.search(None, ["Music"])) == ["ecole"]
    assert ids(reader.search(None, ["music"])) == ["strasse"]
    assert reader.search(None, ["tv"]).total == 0
    assert reader.search(None, ["TV", "Movies"]).items == []
    for q, categories in [(None, ["TV"]), ("pilot", ["TV"]), ("i", ["TV", "Drama"]), ("outer", ["Drama"])]:
        page = reader.search(q, categories)
        assert ids(page) == expected(SAMPLE, q, categories) and page.total == len(ids(page))


def test_paging_and_total(reader: CatalogReader) -> None:
    for q in (None, "the", "e", "i", "silk"):
        want = expected(SAMPLE, q)
        pages = [reader.search(q, limit=2, offset=offset) for offset in range(0, len(want) + 3, 2)]
        assert [video_id for page in pages for video_id in ids(page)] == want
        assert {reader.search(q, limit=2, offset=offset).total for offset in range(0, 20, 3)} == {len(want)}


def test_out_of_range_paging_does_not_fail(reader: CatalogReader) -> None:
    assert reader.search("silk", limit=0).items == [] and reader.search("silk", limit=0).total == 2
    assert ids(reader.search("silk", limit=-5, offset=-3)) == []
    assert reader.search("silk", limit=10**30, offset=10**30).items == []
    assert reader.search("e", offset=10**30).total == len(expected(SAMPLE, "e"))
    assert ids(reader.search(None, limit=10**30)) == expected(SAMPLE, None)


@pytest.mark.parametrize("q", [
    '"', '""', '"quoted"', "a*b", "*", "(x)", "c:d", "-minus", "NEAR(1)", "^caret", "AND", "OR NOT",
    "col:umn", "{a b}", "x\0y", "\0", "ab\0cd", "\ud800abc", "\udfff", "[", "[*]", "?", "%", "_", "\\",
    "🎬 film", "ﬃ", "x" * 2000,
])
def test_query_syntax_is_never_interpreted(reader: CatalogReader, q: str) -> None:
    page = reader.search(q)
    assert page.total == len(page.items)
    if "\ud800" not in q and "\udfff" not in q:
        assert ids(page) == expected(SAMPLE, q.replace("\0", " "))


def test_special_characters_match_literally(reader: CatalogReader) -> None:
    for q in ('"quoted"', "a*b", "(x)", "c:d", "-minus", "NEAR(1)", "^caret", "b \"q", "*"):
        assert ids(reader.search(q)) == ["special"], q


def test_categories_sorted_case_insensitively_with_counts(reader: CatalogReader) -> None:
    snapshot_id, names, counts = reader.categories()
    assert snapshot_id == ID_A
    assert names == ["Drama", "Movies", "Music", "music", "TV"]
    assert counts == {"Drama": 3, "Movies": 2, "Music": 1, "music": 1, "TV": 5}


def test_item_lookup(reader: CatalogReader) -> None:
    assert reader.item("the2") == {"video_id": "the2", "title": "Theatre of Blood", "categories": ["Movies"],
                                   "duration_seconds": 5400, "thumbnail_url": None,
                                   "manifest_url": "https://media.example/api/v1/media/cytube/the2.json?format=json"}
    assert reader.item("nope") is None and reader.item("\ud800") is None
    assert reader.snapshot_info() == {"snapshot_id": ID_A, "item_count": len(SAMPLE)}


def test_items_by_id_with_more_ids_than_sqlite_variables(tmp_path: Path) -> None:
    publish(tmp_path, ID_A, [CatalogItem(f"v{n:05d}", f"title {n}") for n in range(2_500)])
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    wanted = [f"v{n:05d}" for n in range(0, 2_500, 2)] + ["unknown", "\ud800", "v00000"]
    found = reader.items_by_id(wanted)
    assert sorted(found) == sorted(f"v{n:05d}" for n in range(0, 2_500, 2))
    assert found["v00042"]["title"] == "title 42" and set(found["v00042"]) == ITEM_KEYS
    assert reader.items_by_id([]) == {}


def test_pinned_snapshot(tmp_path: Path) -> None:
    path_a = publish(tmp_path, ID_A, [CatalogItem("a1", "alpha show", ("Old",))])
    publish(tmp_path, ID_B, [CatalogItem("b1", "bravo show", ("New",))])
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    assert ids(reader.search("show")) == ["b1"]
    pinned = reader.search("show", snapshot_id=ID_A)
    assert (pinned.snapshot_id, ids(pinned)) == (ID_A, ["a1"])
    assert reader.categories(snapshot_id=ID_A)[:2] == (ID_A, ["Old"])
    assert reader.search("show", snapshot_id=ID_B).snapshot_id == ID_B
    path_a.unlink()
    with pytest.raises(NotFound, match="no longer kept"):
        reader.search("show", snapshot_id=ID_A)
    assert ids(reader.search("show")) == ["b1"]


@pytest.mark.parametrize("snapshot_id", [
    "../catalog", "20261124T120000Z-AAAAAA", "20261124T120000Z-aaaaaa\n", "x", "",
    "20261124T120000Z-aaaaaa/../../etc", "2026-11-24T12:00:00Z-aaaaaa", "20261124T999999Z-zzzzzz",
])
def test_bad_or_unknown_snapshot_id_is_not_found(reader: CatalogReader, snapshot_id: str) -> None:
    with pytest.raises(NotFound):
        reader.search("silk", snapshot_id=snapshot_id)
    with pytest.raises(NotFound):
        reader.categories(snapshot_id=snapshot_id)


def test_next_call_after_a_swap_sees_the_new_snapshot(tmp_path: Path) -> None:
    path_a = publish(tmp_path, ID_A, [CatalogItem("a1", "alpha show")])
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    assert reader.search("show").snapshot_id == ID_A
    path_b = publish(tmp_path, ID_B, [CatalogItem("b1", "bravo show"), CatalogItem("b2", "bravo show 2")])
    assert (reader.search("show").snapshot_id, reader.snapshot_info()["item_count"]) == (ID_B, 2)
    point_link(tmp_path, path_a)
    assert ids(reader.search("show")) == ["a1"]
    reader.close_thread_connection()
    point_link(tmp_path, path_b)
    assert reader.item("b2") is not None


def test_work_in_flight_finishes_on_the_old_snapshot(tmp_path: Path) -> None:
    """A request running when the link moves, in another thread, answers wholly from the old file."""
    path_a = publish(tmp_path, ID_A, [CatalogItem(f"v{n:04d}", f"alpha {n}") for n in range(1_200)])
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    first_chunk_read, swapped = threading.Event(), threading.Event()
    result: dict[str, dict[str, object]] = {}

    def slow_ids() -> Iterator[str]:
        for n in range(1_200):
            if n == 1_000:  # past the first lookup chunks: the old file is in use
                first_chunk_read.set()
                swapped.wait(10)
            yield f"v{n:04d}"

    worker = threading.Thread(target=lambda: result.update(reader.items_by_id(slow_ids())))
    worker.start()
    assert first_chunk_read.wait(10)
    publish(tmp_path, ID_B, [CatalogItem(f"v{n:04d}", f"bravo {n}") for n in range(1_200)])
    path_a.unlink()  # pruned while still being read
    assert reader.search("bravo", limit=1).snapshot_id == ID_B
    swapped.set()
    worker.join(10)
    assert len(result) == 1_200
    assert all(str(item["title"]).startswith("alpha") for item in result.values())


def test_an_open_cursor_keeps_reading_a_replaced_and_deleted_file(tmp_path: Path) -> None:
    path_a = publish(tmp_path, ID_A, [CatalogItem(f"v{n:04d}", f"alpha {n}") for n in range(3_000)])
    with closing(sqlite3.connect(f"{path_a.as_uri()}?mode=ro&immutable=1", uri=True)) as conn:
        cursor = conn.execute("SELECT title FROM catalog_item ORDER BY rowid")
        titles = [row[0] for row in cursor.fetchmany(10)]
        publish(tmp_path, ID_B, [CatalogItem("b", "bravo")])
        path_a.unlink()
        titles += [row[0] for row in cursor]
    assert len(titles) == 3_000 and all(title.startswith("alpha") for title in titles)


def test_searches_during_swaps_never_mix_snapshots(tmp_path: Path) -> None:
    path_a = publish(tmp_path, ID_A, [CatalogItem(f"a{n}", f"alpha show {n}") for n in range(300)])
    path_b = publish(tmp_path, ID_B, [CatalogItem(f"b{n}", f"bravo show {n}") for n in range(200)])
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    expected_by_id = {ID_A: ("alpha", 300), ID_B: ("bravo", 200)}
    stop, errors, seen = threading.Event(), [], set()

    def search_until_stopped(q: str) -> None:
        try:
            while not stop.is_set():
                page = reader.search(q, limit=7, offset=5)
                word, total = expected_by_id[page.snapshot_id]
                assert page.total == total and len(page.items) == 7
                assert all(item["title"].startswith(word) for item in page.items)
                seen.add(page.snapshot_id)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            reader.close_thread_connection()

    workers = [threading.Thread(target=search_until_stopped, args=(q,)) for q in ("show", "sh", None, "o") * 2]
    for worker in workers:
        worker.start()
    for swap in range(300):
        point_link(tmp_path, path_a if swap % 2 else path_b)
        time.sleep(0.002)
    stop.set()
    for worker in workers:
        worker.join(10)
    assert errors == [] and seen == {ID_A, ID_B}


REAL_QUERIES = ["the", "mp4", "The Outer", "s01e0", "a", "zz", "x-files", "of the", "e", "limits outer",
                "silk", "1996", "∕", "꞉", ".mkv", "(", "part 1", "the a"]


@pytest.mark.parametrize("q", REAL_QUERIES)
def test_real_catalog_matches_the_reference(real_reader: tuple[CatalogReader, list[CatalogItem]], q: str) -> None:
    reader, items = real_reader
    want = expected(items, q)
    for offset in sorted({0, 3, 49, max(0, len(want) - 7), len(want) + 1}):
        page = reader.search(q, limit=20, offset=offset)
        assert page.total == len(want)
        assert ids(page) == want[offset:offset + 20]


def test_random_queries_match_the_reference(tmp_path: Path) -> None:
    """Short alphabets make many overlaps, shared prefixes and equal titles: every plan gets exercised."""
    rng = random.Random(7)
    alphabet = "abAB ßsSéÉ-*\"x"
    categories = ("One", "Two", "two")
    items = [CatalogItem(f"v{n:04d}", "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))),
                         tuple(rng.sample(categories, rng.randint(0, 2))))
             for n in range(600)]
    publish(tmp_path, ID_A, items)
    reader = CatalogReader(tmp_path / "catalog.sqlite3")
    for _ in range(400):
        q = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 3)))
        wanted = rng.sample(categories, rng.choice((0, 0, 1, 2)))
        limit, offset = rng.randint(0, 30), rng.choice((0, 0, rng.randint(0, 200)))
        want = expected(items, q, wanted)
        page = reader.search(q, wanted, limit=limit, offset=offset)
        assert (ids(page), page.total) == (want[offset:offset + limit], len(want)), (q, wanted, limit, offset)
