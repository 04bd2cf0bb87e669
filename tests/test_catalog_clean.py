"""The cleaning rules of behaviour.md section 7, one by one, and that cleaning streams."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytest

from kryten_playlist_lib.catalog.clean import clean_duration, clean_items, clean_thumbnail
from kryten_playlist_lib.catalog.items import CatalogItem


def test_usable_item_is_trimmed_and_kept() -> None:
    result = clean_items([CatalogItem("  abc_DEF-9 ", "  The Outer Limits S01E10 Nightmare \t",
                                      (" Horror ", "TV"), 3087, " https://example.org/t.jpg ")])
    assert list(result) == [CatalogItem("abc_DEF-9", "The Outer Limits S01E10 Nightmare", ("Horror", "TV"),
                                        3087, "https://example.org/t.jpg")]
    assert result.counts() == {"skipped_missing": 0, "skipped_invalid_id": 0, "duplicates": 0}


@pytest.mark.parametrize("video_id,title", [
    (None, "A title"), ("", "A title"), ("   ", "A title"), ("abc", None), ("abc", ""), ("abc", " \n "),
    (123, "A title"), ("abc", 1917),
])
def test_missing_id_or_title_is_skipped(video_id: object, title: object) -> None:
    result = clean_items([CatalogItem(video_id, title)])  # type: ignore[arg-type]
    assert list(result) == []
    assert result.skipped.skipped_missing == 1


@pytest.mark.parametrize("video_id", ["has space", "a" * 65, "ünïcode", "a/b", "a.b", "x\ny"])
def test_invalid_id_is_skipped(video_id: str) -> None:
    result = clean_items([CatalogItem(video_id, "A title")])
    assert list(result) == []
    assert result.counts() == {"skipped_missing": 0, "skipped_invalid_id": 1, "duplicates": 0}


def test_longest_valid_id_is_kept() -> None:
    assert [item.video_id for item in clean_items([CatalogItem("a" * 64, "A title")])] == ["a" * 64]


def test_repeated_id_keeps_the_first() -> None:
    result = clean_items([CatalogItem("abc", "First"), CatalogItem("xyz", "Other"),
                          CatalogItem("abc", "Second"), CatalogItem(" abc ", "Third")])
    assert [(item.video_id, item.title) for item in result] == [("abc", "First"), ("xyz", "Other")]
    assert result.skipped.duplicates == 2


def test_skipped_items_do_not_claim_their_id() -> None:
    result = clean_items([CatalogItem("abc", "   "), CatalogItem("abc", "Real")])
    assert [item.title for item in result] == ["Real"]
    assert result.counts() == {"skipped_missing": 1, "skipped_invalid_id": 0, "duplicates": 0}


@pytest.mark.parametrize("categories,expected", [
    ((" Horror ", "Comedy", "Horror", "", "  ", "Comedy ", "Sci-Fi"), ("Horror", "Comedy", "Sci-Fi")),
    (("b", "a", "b"), ("b", "a")),
    ((), ()),
    (None, ()),
    (("TV", None, 5, "Movies"), ("TV", "Movies")),
    ("  Horror ", ("Horror",)),
    (["List", "List"], ("List",)),
])
def test_categories_are_trimmed_deduplicated_and_emptied(categories: object, expected: tuple[str, ...]) -> None:
    item = next(iter(clean_items([CatalogItem("abc", "Title", categories)])))  # type: ignore[arg-type]
    assert item.categories == expected


@pytest.mark.parametrize("value,expected", [
    (0, 0), (95, 95), (95.0, 95), (95.4, 95), (95.5, 96), (2.5, 3), (0.2, 0), (-1, None), (-0.2, None),
    (math.nan, None), (math.inf, None), (-math.inf, None), (True, None), (False, None), ("60", None),
    (None, None), (2**40, None), ([5], None),
])
def test_duration_is_a_whole_non_negative_number_or_none(value: object, expected: int | None) -> None:
    assert clean_duration(value) == expected
    item = next(iter(clean_items([CatalogItem("abc", "Title", (), value)])))  # type: ignore[arg-type]
    assert item.duration_seconds == expected
    assert expected is None or type(item.duration_seconds) is int


@pytest.mark.parametrize("value,expected", [
    ("https://example.org/a.jpg", "https://example.org/a.jpg"),
    ("HTTP://example.org/a.jpg", "HTTP://example.org/a.jpg"),
    ("  http://example.org/a.jpg\n", "http://example.org/a.jpg"),
    ("/media/a.jpg", None), ("a.jpg", None), ("javascript:alert(1)", None), ("data:image/png;base64,AAAA", None),
    ("ftp://example.org/a.jpg", None), ("https://", None), ("http://[broken/a.jpg", None), ("", None),
    (None, None), (5, None),
])
def test_thumbnail_is_an_http_url_or_none(value: object, expected: str | None) -> None:
    assert clean_thumbnail(value) == expected


def test_cleaning_streams_items_one_by_one() -> None:
    produced = 0

    def endless() -> Iterator[CatalogItem]:
        nonlocal produced
        for number in itertools.count():
            produced += 1
            yield CatalogItem(f"id{number}", f"Title {number}")

    first = list(itertools.islice(clean_items(endless()), 5))
    assert [item.video_id for item in first] == ["id0", "id1", "id2", "id3", "id4"]
    assert produced == 5


def test_counts_are_final_after_one_pass_and_a_second_pass_adds_nothing() -> None:
    items = [CatalogItem("a", "A"), CatalogItem("a", "A again"), CatalogItem(None, "B"), CatalogItem("c d", "C")]
    result = clean_items(items)
    assert [item.video_id for item in result] == ["a"]
    assert list(result) == []
    assert result.counts() == {"skipped_missing": 1, "skipped_invalid_id": 1, "duplicates": 1}
