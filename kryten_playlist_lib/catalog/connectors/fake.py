"""The fake connector: N deterministic, realistic-looking items for tests, demos and benchmarks.

The mix resembles a grindhouse channel: TV episodes in the title styles real
uploads use, movies with years, old cartoons, some documentaries and music.
Titles are assembled from word lists so substring search has something to
find and to miss. Item i depends only on (seed, i): a larger count extends a
smaller one.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterator

from kryten_playlist_lib.catalog.items import CatalogItem

THUMBNAIL_BASE = "https://media.example.org/thumbnails/"
ID_BITS = 54  # nine characters of base64url, six bits each
_ID_MASK = (1 << ID_BITS) - 1
# Odd multipliers are invertible modulo 2**54, so the id scramble is a bijection and ids never collide.
_ID_MUL_1 = 0x2545F4914F6CDD1 | 1
_ID_MUL_2 = 0x1B873593A3C7B5 | 1
_ID_OFFSET = 0x3C6EF372FE94F8  # so index 0 does not come out as AAAAAAAAA

GENRES = ("Horror", "Comedy", "Sci-Fi", "Action", "Drama", "Thriller", "Western", "Crime")
SHOW_FIRST = ("Midnight", "Silk", "Harbor", "Outer", "Crimson", "Lonesome", "Neon", "Twilight", "Desert",
              "Iron", "Velvet", "Thunder", "Shadow", "Golden", "Frontier", "Haunted", "Electric", "Savage",
              "Lucky", "Starlight", "Pacific", "Copper", "Blue", "Wicked")
SHOW_SECOND = ("Patrol", "Stalkings", "Limits", "Detectives", "Ranch", "Heights", "Precinct", "Station",
               "Academy", "Diner", "Chronicles", "Files", "Squad", "Hospital", "Express", "Island", "Motel",
               "Tales", "Rangers", "Family", "Zone", "Agents")
ADJECTIVES = ("Bad", "Long", "Final", "Silent", "Broken", "Cold", "Hidden", "Dead", "Wild", "Lost", "Burning",
              "Crawling", "Deadly", "Savage", "Forbidden", "Creeping", "Invisible", "Atomic", "Hungry", "Last",
              "Bloody", "Velvet", "Screaming", "Giant", "Howling", "Secret", "Frozen", "Electric")
NOUNS = ("Blood", "Night", "Call", "Stranger", "Harvest", "Alibi", "Witness", "Reunion", "Bargain", "Exit",
         "Swamp", "Mummy", "Planet", "Highway", "Jungle", "Vampire", "Werewolf", "Robot", "Invader", "Cult",
         "Warrior", "Mutant", "Lagoon", "Carnival", "Skull", "Ghoul", "Island", "Brain", "Cadaver", "Saucer")
CHARACTERS = ("Porky", "Felix", "Bosko", "Betty", "Popeye", "Woody", "Mighty Mouse", "Heckle and Jeckle",
              "Little Lulu", "Gandy Goose")
BANDS = ("The Cramps", "Misfits", "Ramones", "Devo", "The Damned", "Motorhead", "Bauhaus", "Blondie")
VENUES = ("Roxy", "Fillmore", "Palladium", "Rainbow", "Hammersmith Odeon", "CBGB")
EXTENSIONS = (".mkv", ".mp4")

Draw = tuple[str, tuple[str, ...], int, int]  # title, categories, shortest and longest duration


def fake_video_id(index: int, seed: int = 0) -> str:
    """A nine-character base64url id, distinct for every index below 2**54 under one seed."""
    value = (index * _ID_MUL_1 + seed * 0x9E3779B97F4A7C15 + _ID_OFFSET) & _ID_MASK
    value = ((value ^ (value >> 29)) * _ID_MUL_2) & _ID_MASK
    # Two zero bits pad 54 to 56 bits (7 bytes); the first nine characters then hold exactly the 54.
    return base64.urlsafe_b64encode((value << 2).to_bytes(7, "big"))[:9].decode("ascii")


class FakeConnector:
    """`count` items, the same ones for the same (count, seed)."""

    def __init__(self, count: int, seed: int = 0) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        self._count = count
        self._seed = seed

    def iter_catalog_items(self) -> Iterator[CatalogItem]:
        rng = random.Random(self._seed)
        shows = _shows(rng)
        kinds: list[Callable[[random.Random], Draw]] = [
            lambda r: _episode(r, shows), _movie, _cartoon, _documentary, _music]
        cumulative = (55, 85, 93, 97, 100)  # episodes 55 %, movies 30 %, cartoons 8 %, documentaries, music
        for index in range(self._count):
            title, categories, shortest, longest = rng.choices(kinds, cum_weights=cumulative)[0](rng)
            video_id = fake_video_id(index, self._seed)
            yield CatalogItem(
                video_id,
                title,
                () if rng.random() < 0.08 else categories,
                None if rng.random() < 0.03 else rng.randint(shortest, longest),
                f"{THUMBNAIL_BASE}{video_id}.jpg" if rng.random() < 0.75 else None,
            )


def _shows(rng: random.Random) -> list[tuple[str, str]]:
    """A fixed set of shows per seed, each with its genre, so episodes of one show look alike."""
    names = [f"{the}{first} {second}" for first in SHOW_FIRST for second in SHOW_SECOND for the in ("", "The ")]
    return [(name, rng.choice(GENRES)) for name in rng.sample(names, 300)]


def _phrase(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"


def _file_suffix(rng: random.Random) -> str:
    # Real uploads often keep the file name; the search and the episode parser must cope with it.
    return rng.choice(EXTENSIONS) if rng.random() < 0.1 else ""


def _episode(rng: random.Random, shows: list[tuple[str, str]]) -> Draw:
    show, genre = rng.choice(shows)
    season, episode = rng.randint(1, 8), rng.randint(1, 24)
    style = rng.random()
    if style < 0.5:
        title = f"{show} S{season:02d}E{episode:02d} {_phrase(rng)}"
    elif style < 0.75:
        title = f"{show} {season}x{episode:02d}"
    else:
        title = f"{show} - Season {season} Episode {episode}"
    return title + _file_suffix(rng), ("TV", genre), 1300, 2800


def _movie(rng: random.Random) -> Draw:
    adjective, noun, other = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(NOUNS)
    name = rng.choice((f"The {adjective} {noun}", f"{noun} of the {adjective} {other}", f"Return of the {noun}",
                       f"Night of the {adjective} {noun}", f"{adjective} {noun} from Beyond"))
    genres = ("Movies", *rng.sample(GENRES, rng.randint(1, 2)))
    return f"{name} ({rng.randint(1930, 2024)}){_file_suffix(rng)}", genres, 4800, 7800


def _cartoon(rng: random.Random) -> Draw:
    title = f"{rng.choice(CHARACTERS)} in {_phrase(rng)}"
    if rng.random() < 0.5:
        title += f" ({rng.randint(1930, 1960)})"
    return title, ("Cartoons", "Comedy") if rng.random() < 0.6 else ("Cartoons",), 300, 900


def _documentary(rng: random.Random) -> Draw:
    title = rng.choice((f"The Secret History of the {rng.choice(NOUNS)}", f"Inside the {_phrase(rng)}"))
    return title, ("Documentary",), 2400, 5400


def _music(rng: random.Random) -> Draw:
    title = f"{rng.choice(BANDS)} - Live at the {rng.choice(VENUES)} ({rng.randint(1976, 1992)})"
    return title, ("Music",), 180, 3600
