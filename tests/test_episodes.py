"""Episode parsing (behaviour.md section 3) against the spec forms, real catalog titles and the labelled sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kryten_playlist_lib.bench.measures import episode_accuracy
from kryten_playlist_lib.domain.episodes import parse_episode

LABELLED = Path(__file__).resolve().parents[2] / "shared" / "data" / "episodes-labelled.jsonl"

# Tokens that carry numbers but never a season or episode.
JUNK = [
    "1996", "2025", "(1996)", "[2008]", "1080p", "720p", "2160p", "480p", "4K", "1920x1080", "1280x720",
    "x264", "x265", "h.264", "h.265", "H264", "HEVC", "10bit", "DD5.1", "AAC2.0", "Part 2", "Part.3",
    "WEB-DL", "BluRay", "DVDRip",
]  # fmt: skip
SEPARATORS = [" ", ".", "_", "-", " - "]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Show S01E04", (1, 4)),
        ("Show s01e4", (1, 4)),
        ("Show s01.e04", (1, 4)),
        ("Show S01 E04", (1, 4)),
        ("Show S01_E04", (1, 4)),
        ("Show S01-E04", (1, 4)),
        ("Show S1E4", (1, 4)),
        ("Show 1x04", (1, 4)),
        ("Show 01x04", (1, 4)),
        ("Show Season 3 Episode 2", (3, 2)),
        ("Show Season 03, Episode 02", (3, 2)),
        ("Show.Season.3.Episode.2", (3, 2)),
        ("show SEASON 3 EPISODE 2", (3, 2)),
        ("Show S01E01E02", (1, 1)),
        ("Show S01E01-E02", (1, 1)),
        ("Show S01E01-02", (1, 1)),
        ("S00E00", (0, 0)),
        ("Show S02E100 Centennial", (2, 100)),
    ],
)
def test_spec_forms_are_recognised(title: str, expected: tuple[int, int]) -> None:
    assert parse_episode(title) == expected


@pytest.mark.parametrize(
    "title",
    [
        "Movie 1996",
        "Movie (1996) 1080p",
        "Movie.[2008].720p.x264",
        "Movie 4K HEVC",
        "Movie h.264",
        "Movie h.265 x265",
        "1920x1080",
        "Movie 1280x720 x264",
        "Something Part 2",
        "Something.Part.3.1666",
        "DD5.1x264",  # a decimal glued to a codec, not season 1 episode 264
        "Offroad 4x4 Adventure",  # dimensions, not an unpadded `1x4`
        "Widescreen 16x9",
        "Bob's 2 Ep 3",  # possessive `s`, not a season marker
        "",
    ],
)
def test_non_episode_numbers_are_ignored(title: str) -> None:
    assert parse_episode(title) is None


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Show 1996 S02E03 1080p x264", (2, 3)),
        ("Show 1x04", (1, 4)),
        ("Show 1x04 S02E05", (1, 4)),  # leftmost wins
        ("Show S02E05 1x04", (2, 5)),
        ("Show Season 1 Episode 8 S01E09", (1, 8)),
    ],
)
def test_combinations(title: str, expected: tuple[int, int]) -> None:
    assert parse_episode(title) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Thunder in Paradise s01e01+02 Pilot.avi", (1, 1)),
        ("Pistol.S01E01The Cloak of Invisibility.mkv", (1, 1)),
        ("Sealab.2021.S01E10.Murphy.Murphy.and.The.Feng.Shui.Bunch.WEB-DL.720P.mp4", (1, 10)),
        ("The Twilight Zone 1959 S01E36 A World of His Own.mp4", (1, 36)),
        ("Bullet.in.the.Face S1.E6∙Cradle to Grave.avi", (1, 6)),
        ("The Violent Years - MST3K (S06 E10)", (6, 10)),
        ("Its Always Sunny in Philadelphia Season 05 Episode 13 & 14 - A Very Sunny Christmas.avi", (5, 13)),
        ("Star Trek Deep Space Nine.S01E01& E02.The Embassy.mp4", (1, 1)),
        ("The Outer Limits - 1x01-02 - The Sandkings.avi", (1, 1)),
        ("Scream Queens.2015.S01E01.02.Hell Week.mkv", (1, 1)),
        ("Small Wonder-Season 1 Episode 20 Good Ol' Lou (Without intro song) [ujOCnSZMW50].mp4", (1, 20)),
        ("X-Files - s01e00 - Pilot.avi", (1, 0)),
        ("TINY Toon ADVENTURES - S00 E03 - Night Ghoulery.mp4", (0, 3)),
        ("The Ultimate Fighter S33E09 720p WEB-DL H264-FBB.mkv", (33, 9)),
        ("Halloween.Baking.Championship.S11.E02.720p.[2025]", (11, 2)),
        ("Tales.From.The.Crypt.S06E14.99.And.44-100.Percent.Pure.Horror.avi", (6, 14)),
        ("Lexx - 02x14 - Patches in the sky.mp4", (2, 14)),
        ("The Simpsons S02 Treehouse of Horror.mkv", None),  # a season without an episode
        ("Robot Chicken S03X01 Half-Assed Christmas Special.mp4", None),  # specials code, not episode 1
        ("Star.Wars.Episode.VI.Return.of.the.Jedi.[1983].mp4", None),
        ("Nightmares.and.Dreamscapes.ep1.Battlegrounds.mkv", None),
        ("1987-05-02 WWE.Saturday.Nights.Main.Event.Episode11.mp4", None),
        ("Alien.Raiders.DVDrip.DD5.1.x264-SDxT.mkv", None),
        ("Great.Performances.Macbeth.2010.1080p.WEBRip.x264.AAC-[YTS.MX].mp4", None),
        ("Bugs Bunny Looney Tunes 1963-11-30 Transylvania 6-5000.mkv", None),
        ("WCW Saturday Night 4.11.87.mp4", None),
        ("Friday.the.13th.Part.4.The.Final.Chapter.(1984).mkv", None),
        ("Guardians.Of.The.Galaxy.Vol..2.[2017].mp4", None),
        # `101` could be season 1 episode 1 or a production number: too ambiguous to read.
        ("King of the HIll 101 - Pilot.mkv", None),
    ],
)
def test_real_catalog_titles(title: str, expected: tuple[int, int] | None) -> None:
    assert parse_episode(title) == expected


seasons = st.integers(min_value=0, max_value=99)
episodes = st.integers(min_value=0, max_value=999)
junk_runs = st.lists(st.sampled_from(JUNK), max_size=4)
separators = st.sampled_from(SEPARATORS)


@given(seasons, episodes)
def test_padded_marker_round_trips(season: int, episode: int) -> None:
    assert parse_episode(f"Show S{season:02d}E{episode:02d} 720p") == (season, episode)


@given(seasons, episodes, st.sampled_from(["S{s}E{e}", "s{s}.e{e}", "S{s} E{e}", "Season {s} Episode {e}"]))
def test_marker_spellings_round_trip(season: int, episode: int, spelling: str) -> None:
    assert parse_episode("Show " + spelling.format(s=season, e=episode)) == (season, episode)


@given(seasons, st.integers(min_value=0, max_value=999))
def test_cross_marker_round_trips(season: int, episode: int) -> None:
    assert parse_episode(f"Show - {season}x{episode:02d} - Title") == (season, episode)


@given(junk_runs, seasons, episodes, junk_runs, separators)
def test_marker_survives_surrounding_junk(
    before: list[str], season: int, episode: int, after: list[str], separator: str
) -> None:
    title = separator.join(["Show", *before, f"S{season:02d}E{episode:02d}", *after])
    assert parse_episode(title) == (season, episode)


@given(st.lists(st.sampled_from(JUNK), min_size=1, max_size=8), separators)
def test_junk_alone_is_no_episode(tokens: list[str], separator: str) -> None:
    assert parse_episode(separator.join(tokens)) is None


@given(st.text())
def test_arbitrary_text_never_raises(title: str) -> None:
    result = parse_episode(title)
    if result is not None:
        season, episode = result
        assert 0 <= season <= 99
        assert 0 <= episode <= 999


def test_precision_and_recall_on_labelled_titles() -> None:
    """Precision = TP / (TP + FP) and recall = TP / (TP + FN) over the labelled sample.

    TP: the parse equals the labelled (season, episode) exactly.  FP: any other
    non-None parse, whether the label is null or a different pair.  FN: a
    labelled pair parsed as None.  A null label parsed as None counts nowhere.
    """
    if not LABELLED.exists():
        pytest.skip(f"labelled sample not found at {LABELLED}")
    precision, recall, wrong = episode_accuracy(LABELLED)
    assert precision == 1.0, wrong
    assert recall >= 0.98, wrong
