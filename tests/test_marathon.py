"""Marathon generation (behaviour.md section 4, http-api.md "Marathons"): rules, errors and properties.

Item ids look like `A-0007` (source A, saved position 7) so a test can read from
any output item where it came from.
"""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kryten_playlist_lib.domain.episodes import parse_episode
from kryten_playlist_lib.domain.marathon import (
    MarathonItem,
    MarathonResult,
    Source,
    SourceItem,
    episode_order,
    generate,
    parse_pattern,
    pattern_examples,
)
from kryten_playlist_lib.errors import ServiceError, ValidationError

LABELS = list(string.ascii_uppercase)


def make_sources(*runs: list[tuple[str | None, int | None]]) -> list[Source]:
    """Sources A, B, ... from (title, duration) runs; every item is available."""
    return [
        Source(label, [SourceItem(f"{label}-{i:04d}", title, duration) for i, (title, duration) in enumerate(run)])
        for label, run in zip(LABELS, runs, strict=False)
    ]


def plain(count: int, duration: int | None = 60) -> list[tuple[str | None, int | None]]:
    return [(f"Film {i}", duration) for i in range(count)]


def ids(result: MarathonResult) -> list[str]:
    return [item.video_id for item in result.items]


def pattern_error(pattern: str, labels: list[str]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse_pattern(pattern, labels)
    assert caught.value.code == "invalid_pattern"
    return caught.value


def marathon_item(title: str | None, season: int | None = None, episode: int | None = None) -> MarathonItem:
    return MarathonItem(title or "x", title, 60, "A", season, episode)


# --- episode order --------------------------------------------------------------------------------------------


def test_episode_order_sorts_parsed_items_into_their_own_slots() -> None:
    items = [
        marathon_item("S01E03", 1, 3),
        marathon_item("Trailer"),
        marathon_item("S01E01", 1, 1),
        marathon_item("S00E05", 0, 5),
        marathon_item("Credits"),
    ]
    assert [item.title for item in episode_order(items)] == ["S00E05", "Trailer", "S01E01", "S01E03", "Credits"]


def test_episode_order_keeps_the_original_order_of_equal_episodes() -> None:
    first, second = MarathonItem("one", "S01E01", 1, "A", 1, 1), MarathonItem("two", "S01E01 again", 2, "A", 1, 1)
    items = [marathon_item("S01E02", 1, 2), first, second]
    assert [item.video_id for item in episode_order(items)] == ["one", "two", "S01E02"]


def test_generate_parses_titles_and_can_keep_the_saved_order() -> None:
    sources = make_sources([("Show S01E02", 10), ("Extra", 10), ("Show 1x01", 10)])
    kept = generate(sources)
    assert ids(kept) == ["A-0002", "A-0001", "A-0000"]
    assert [(item.season, item.episode) for item in kept.items] == [(1, 1), (None, None), (1, 2)]
    assert ids(generate(sources, preserve_episode_order=False)) == ["A-0000", "A-0001", "A-0002"]


# --- pattern grammar ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("A B", [("A", 1), ("B", 1)]),
        ("A,B", [("A", 1), ("B", 1)]),
        ("A|B", [("A", 1), ("B", 1)]),
        ("a-b", [("A", 1), ("B", 1)]),
        ("A2B2", [("A", 2), ("B", 2)]),
        ("A2 B1 C2", [("A", 2), ("B", 1), ("C", 2)]),
        ("a01 b007", [("A", 1), ("B", 7)]),
        ("A999", [("A", 999)]),
        ("A0999", [("A", 999)]),
        (" , A ,| -- c3 ", [("A", 1), ("C", 3)]),
        ("AA", [("A", 1), ("A", 1)]),
    ],
)
def test_pattern_grammar(pattern: str, expected: list[tuple[str, int]]) -> None:
    assert parse_pattern(pattern, ["A", "B", "C"]) == expected


@pytest.mark.parametrize("pattern", [None, "", "   ", "\t"])
def test_missing_or_blank_pattern_is_round_robin(pattern: str | None) -> None:
    assert parse_pattern(pattern, ["A", "B", "C"]) == [("A", 1), ("B", 1), ("C", 1)]


@pytest.mark.parametrize(
    ("pattern", "position", "words"),
    [
        ("A B D", 4, "label D"),
        ("a d2", 2, "label D"),
        ("A0", 1, "is 0"),
        ("B000", 1, "is 0"),
        ("A1000", 1, "maximum of 999"),
        ("A 00001000", 2, "no label"),
        ("B" + "9" * 5000, 1, "maximum of 999"),
        ("A+B", 1, "'+'"),
        ("A -1", 3, "no label"),
        ("2A", 0, "no label"),
        ("A;B", 1, "';'"),
        ("AÄ", 1, "'Ä'"),
        ("Aı", 1, "'ı'"),
        ("A\tB", 1, "'\\t'"),
        (",,|", 0, "names no source"),
        (" - ", 0, "names no source"),
    ],
)
def test_pattern_errors_name_the_position(pattern: str, position: int, words: str) -> None:
    error = pattern_error(pattern, ["A", "B", "C"])
    assert error.details["position"] == position
    assert words in error.message
    if "names no source" not in words:
        assert f"position {position}" in error.message
    assert error.http_status == 422


def test_pattern_error_examples_use_the_request_labels_and_are_valid() -> None:
    for labels in (["A"], ["A", "B"], LABELS[:5], LABELS):
        examples = pattern_error("?", labels).details["examples"]
        assert len(examples) >= 2
        assert len(set(examples)) == len(examples)
        for example in examples:
            assert set(re.findall("[A-Z]", example)) <= set(labels)
            parse_pattern(example, labels)
    assert pattern_examples(["A", "B", "C"])[0] == "A B C"


# --- methods --------------------------------------------------------------------------------------------------


def test_concatenate_plays_sources_in_request_order() -> None:
    result = generate(make_sources(plain(2), plain(1), plain(2)))
    assert ids(result) == ["A-0000", "A-0001", "B-0000", "C-0000", "C-0001"]
    assert result.seed is None
    assert [item.source for item in result.items] == ["A", "A", "B", "C", "C"]


def test_interleave_round_robin_by_default() -> None:
    result = generate(make_sources(plain(3), plain(1), plain(2)), method="interleave")
    assert ids(result) == ["A-0000", "B-0000", "C-0000", "A-0001", "C-0001", "A-0002"]
    assert result.seed is None


def test_interleave_counts_and_skipped_used_up_tokens() -> None:
    sources = make_sources(plain(1), plain(5))
    assert ids(generate(sources, method="interleave", interleave_pattern="A2 B1")) == [
        "A-0000", "B-0000", "B-0001", "B-0002", "B-0003", "B-0004",
    ]  # fmt: skip
    sources = make_sources(plain(5), plain(1))
    assert ids(generate(sources, method="interleave", interleave_pattern="a2,B")) == [
        "A-0000", "A-0001", "B-0000", "A-0002", "A-0003", "A-0004",
    ]  # fmt: skip


def test_interleave_with_a_repeated_label_and_leading_zeros() -> None:
    result = generate(make_sources(plain(4), plain(2)), method="interleave", interleave_pattern="A01 A B002")
    assert ids(result) == ["A-0000", "A-0001", "B-0000", "B-0001", "A-0002", "A-0003"]


def test_interleave_terminates_with_huge_counts_and_long_patterns() -> None:
    sources = make_sources(plain(3), plain(2), [])
    assert len(generate(sources, method="interleave", interleave_pattern="A999 B999 C999").items) == 5
    long_pattern = "C " * 50_000 + "A B"
    assert len(generate(sources, method="interleave", interleave_pattern=long_pattern).items) == 5


def test_source_missing_from_the_pattern_is_left_out_with_a_warning() -> None:
    result = generate(make_sources(plain(2), plain(2), plain(12), plain(1)), method="interleave",
                      interleave_pattern="A B")
    assert ids(result) == ["A-0000", "B-0000", "A-0001", "B-0001"]
    assert result.warnings == [
        "source C is not in the pattern; its 12 items were left out",
        "source D is not in the pattern; its 1 item was left out",
    ]


def test_bad_pattern_is_only_checked_for_interleave() -> None:
    sources = make_sources(plain(1), plain(1))
    assert len(generate(sources, interleave_pattern="Z9").items) == 2
    with pytest.raises(ServiceError) as caught:
        generate(sources, method="interleave", interleave_pattern="A C")
    assert caught.value.code == "invalid_pattern"
    assert caught.value.details["position"] == 2
    assert caught.value.details["examples"][0] == "A B"


def test_shuffle_with_episode_order_keeps_each_run() -> None:
    run = [(f"Show S01E{e:02d}", 60) for e in (3, 1, 2)]
    result = generate(make_sources(run, plain(4)), method="shuffle", shuffle_seed="fixed")
    from_a = [item.title for item in result.items if item.source == "A"]
    assert from_a == ["Show S01E01", "Show S01E02", "Show S01E03"]
    assert [i for i in ids(result) if i.startswith("B")] == ["B-0000", "B-0001", "B-0002", "B-0003"]


def test_shuffle_output_is_fixed_for_a_seed() -> None:
    # Pinned values: random.Random seeds a str through SHA-512, so these never depend on the process or replica.
    sources = make_sources(plain(3), plain(3))
    assert ids(generate(sources, method="shuffle", shuffle_seed="golden")) == [
        "B-0000", "B-0001", "A-0000", "A-0001", "B-0002", "A-0002",
    ]  # fmt: skip
    assert ids(generate(sources, method="shuffle", shuffle_seed="golden", preserve_episode_order=False)) == [
        "B-0001", "B-0002", "A-0000", "A-0002", "B-0000", "A-0001",
    ]  # fmt: skip


# --- seeds ----------------------------------------------------------------------------------------------------


def test_seed_is_echoed_and_a_number_is_its_decimal_string() -> None:
    sources = make_sources(plain(20), plain(20))
    by_text = generate(sources, method="shuffle", shuffle_seed="42")
    by_number = generate(sources, method="shuffle", shuffle_seed=42)
    assert by_text.seed == by_number.seed == "42"
    assert ids(by_text) == ids(by_number)
    assert ids(generate(sources, method="shuffle", shuffle_seed=-7)) == ids(
        generate(sources, method="shuffle", shuffle_seed="-7")
    )


@pytest.mark.parametrize("seed", [None, ""])
def test_missing_seed_is_generated_and_reproduces_the_order(seed: str | None) -> None:
    sources = make_sources(plain(20), plain(20))
    first = generate(sources, method="shuffle", shuffle_seed=seed)
    assert first.seed is not None and re.fullmatch("[0-9a-f]{16}", first.seed)
    assert ids(generate(sources, method="shuffle", shuffle_seed=first.seed)) == ids(first)
    assert generate(sources, method="shuffle").seed != first.seed


@pytest.mark.parametrize("method", ["concatenate", "interleave"])
def test_seed_is_null_unless_shuffling(method: str) -> None:
    assert generate(make_sources(plain(2)), method=method, shuffle_seed="abc").seed is None


# --- time budget and warnings ---------------------------------------------------------------------------------


def test_budget_cuts_after_the_last_item_that_fits() -> None:
    sources = make_sources([("a", 100), ("b", None), ("c", 100), ("d", 1), ("e", 1)])
    result = generate(sources, max_duration_seconds=200)
    assert ids(result) == ["A-0000", "A-0001", "A-0002"]
    assert result.total_duration_seconds == 200
    assert result.warnings == [
        "source A has 1 item of unknown duration, counted as 0: A-0001",
        "2 items left out to fit 0:03:20",
    ]


def test_budget_stops_at_the_first_item_that_overflows() -> None:
    sources = make_sources([("long", 3600), ("short", 10)])
    result = generate(sources, max_duration_seconds=1800)
    assert result.items == []
    assert result.warnings == ["2 items left out to fit 0:30:00"]
    assert result.total_duration_seconds == 0


def test_budget_that_fits_everything_reports_no_cut() -> None:
    result = generate(make_sources(plain(3, 3600)), max_duration_seconds=4 * 3600)
    assert len(result.items) == 3
    assert result.warnings == []
    assert result.total_duration_seconds == 3 * 3600


def test_cut_is_reported_in_hours() -> None:
    result = generate(make_sources(plain(20, 1200)), max_duration_seconds=4 * 3600)
    assert len(result.items) == 12
    assert result.warnings == ["8 items left out to fit 4:00:00"]


def test_warnings_for_empty_sources_missing_items_and_unknown_durations() -> None:
    unavailable = [SourceItem(f"A-{i:04d}", f"Film {i}", None if i < 5 else 60, available=i % 2 == 0)
                   for i in range(6)]
    sources = [Source("A", unavailable), Source("B", []), Source("C", [SourceItem("C-0000", None, 30, False)])]
    result = generate(sources)
    assert result.warnings == [
        "source B is empty",
        "source A has 3 items not in the current catalog",
        "source A has 5 items of unknown duration, counted as 0: A-0000, A-0001, A-0002 and 2 more",
        "source C has 1 item not in the current catalog",
    ]
    assert [item.available for item in result.items] == [True, False, True, False, True, False, False]
    assert result.total_duration_seconds == 90


def test_items_keep_stored_title_and_duration_and_serialise() -> None:
    sources = [Source("A", [SourceItem("gone", None, None, available=False), SourceItem("x", "Show S02E03", 1408)])]
    result = generate(sources)
    assert result.to_json() == {
        "items": [
            {"video_id": "gone", "title": None, "source": "A", "duration_seconds": None, "season": None,
             "episode": None},
            {"video_id": "x", "title": "Show S02E03", "source": "A", "duration_seconds": 1408, "season": 2,
             "episode": 3},
        ],
        "warnings": [
            "source A has 1 item not in the current catalog",
            "source A has 1 item of unknown duration, counted as 0: gone",
        ],
        "seed": None,
        "total_duration_seconds": 1408,
    }


# --- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"method": "random"}, "method"),
        ({"method": "Shuffle"}, "method"),
        ({"method": None}, "method"),
        ({"shuffle_seed": True}, "shuffle_seed"),
        ({"shuffle_seed": 1.5}, "shuffle_seed"),
        ({"shuffle_seed": ["a"]}, "shuffle_seed"),
        ({"interleave_pattern": 12}, "interleave_pattern"),
        ({"preserve_episode_order": "yes"}, "preserve_episode_order"),
        ({"max_duration_seconds": 0}, "max_duration_seconds"),
        ({"max_duration_seconds": -5}, "max_duration_seconds"),
        ({"max_duration_seconds": True}, "max_duration_seconds"),
        ({"max_duration_seconds": 60.0}, "max_duration_seconds"),
        ({"max_duration_seconds": "60"}, "max_duration_seconds"),
    ],
)
def test_bad_fields_are_validation_errors(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        generate(make_sources(plain(1)), **arguments)
    assert list(caught.value.fields) == [field]
    assert caught.value.http_status == 422


@pytest.mark.parametrize("count", [0, 27])
def test_source_count_is_1_to_26(count: int) -> None:
    sources = [Source(LABELS[i % 26], []) for i in range(count)]
    with pytest.raises(ValidationError) as caught:
        generate(sources)
    assert "sources" in caught.value.fields


def test_twenty_six_sources_are_fine() -> None:
    result = generate(make_sources(*[plain(1)] * 26), method="interleave", interleave_pattern="z a")
    assert ids(result) == ["Z-0000", "A-0000"]
    assert len(result.warnings) == 24


def test_mislabelled_sources_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        generate([Source("B", [])])


# --- properties -----------------------------------------------------------------------------------------------

titles = st.one_of(
    st.builds(lambda season, episode: f"Show S{season:02d}E{episode:02d} 720p", st.integers(0, 3), st.integers(0, 6)),
    st.builds(lambda season, episode: f"show {season}x{episode:02d}", st.integers(1, 3), st.integers(1, 6)),
    st.sampled_from(["Behind the scenes", "Trailer (1996)"]),
    st.none(),
)
items_specs = st.lists(st.tuples(titles, st.one_of(st.none(), st.integers(1, 3000)), st.booleans()), max_size=12)
source_lists = st.lists(items_specs, min_size=1, max_size=5).map(
    lambda runs: [
        Source(label, [SourceItem(f"{label}-{i:04d}", title, duration, available)
                       for i, (title, duration, available) in enumerate(run)])
        for label, run in zip(LABELS, runs, strict=False)
    ]
)
methods = st.sampled_from(["concatenate", "shuffle", "interleave"])
seeds = st.one_of(st.text(min_size=1, max_size=8), st.integers(-(10**12), 10**12))


def expected_run(source: Source, preserve: bool) -> list[str]:
    """The spec's episode order, written out independently of the module."""
    items = source.items
    if not preserve:
        return [item.video_id for item in items]
    episodes = {i: parse_episode(item.title) for i, item in enumerate(items) if item.title}
    parsed = [i for i, found in episodes.items() if found is not None]
    ranked = sorted(parsed, key=lambda i: (episodes[i], i))
    order = list(range(len(items)))
    for slot, origin in zip(parsed, ranked, strict=True):
        order[slot] = origin
    return [items[i].video_id for i in order]


def used_labels(sources: list[Source], method: str, pattern: str | None) -> set[str]:
    if method != "interleave":
        return {source.label for source in sources}
    return {label for label, _ in parse_pattern(pattern, [source.label for source in sources])}


def pattern_for(sources: list[Source]) -> st.SearchStrategy[str | None]:
    labels = [source.label for source in sources]
    token = st.tuples(st.sampled_from(labels), st.integers(1, 4)).map(lambda t: f"{t[0]}{t[1]}")
    return st.one_of(st.none(), st.lists(token, min_size=1, max_size=5).map(" ".join))


@settings(max_examples=200)
@given(sources=source_lists, method=methods, seed=seeds, preserve=st.booleans(), data=st.data())
def test_output_is_a_permutation_and_keeps_each_run(
    sources: list[Source], method: str, seed: str | int, preserve: bool, data: st.DataObject
) -> None:
    pattern = data.draw(pattern_for(sources))
    result = generate(sources, method, seed, pattern, preserve)
    used = used_labels(sources, method, pattern)
    expected = sorted(item.video_id for source in sources if source.label in used for item in source.items)
    assert sorted(ids(result)) == expected
    assert all(item.source == item.video_id[0] for item in result.items)
    assert result.total_duration_seconds == sum(item.duration_seconds or 0 for item in result.items)
    if method != "shuffle" or preserve:
        for source in sources:
            if source.label in used:
                assert [i for i in ids(result) if i[0] == source.label] == expected_run(source, preserve)


@given(sources=source_lists, method=methods, seed=seeds, preserve=st.booleans(), budget=st.integers(1, 20_000),
       data=st.data())
def test_budget_output_is_the_longest_fitting_prefix(
    sources: list[Source], method: str, seed: str | int, preserve: bool, budget: int, data: st.DataObject
) -> None:
    pattern = data.draw(pattern_for(sources))
    full = generate(sources, method, seed, pattern, preserve)
    cut = generate(sources, method, seed, pattern, preserve, max_duration_seconds=budget)
    assert cut.items == full.items[: len(cut.items)]
    assert cut.total_duration_seconds <= budget
    if len(cut.items) < len(full.items):
        overflow = full.items[len(cut.items)].duration_seconds
        assert overflow is not None and cut.total_duration_seconds + overflow > budget
        assert cut.warnings[-1].startswith(f"{len(full.items) - len(cut.items)} item")


@given(sources=source_lists, method=methods, seed=seeds, preserve=st.booleans())
def test_same_seed_same_output(sources: list[Source], method: str, seed: str | int, preserve: bool) -> None:
    first = generate(sources, method, seed, None, preserve)
    again = generate(sources, method, str(seed), None, preserve)
    assert first == again


@given(a=st.integers(0, 10), b=st.integers(0, 10))
def test_interleave_a_b_alternates_then_continues(a: int, b: int) -> None:
    result = generate(make_sources(plain(a), plain(b)), method="interleave", interleave_pattern="A B")
    shorter = min(a, b)
    alternating = [f"{label}-{i:04d}" for i in range(shorter) for label in "AB"]
    longer = "A" if a > b else "B"
    rest = [f"{longer}-{i:04d}" for i in range(shorter, max(a, b))]
    assert ids(result) == alternating + rest


@settings(max_examples=300)
@given(sources=source_lists, pattern=st.text(alphabet="ABCDEFabz0123456789 ,-|+x.", max_size=14))
def test_any_pattern_is_rejected_or_terminates(sources: list[Source], pattern: str) -> None:
    try:
        result = generate(sources, method="interleave", interleave_pattern=pattern)
    except ServiceError as error:
        assert error.code == "invalid_pattern"
        assert 0 <= error.details["position"] < max(len(pattern), 1)
        assert error.details["examples"]
        return
    used = used_labels(sources, "interleave", pattern)
    assert sorted(ids(result)) == sorted(
        item.video_id for source in sources if source.label in used for item in source.items
    )
