"""What the catalog benchmarks search and refresh: the real catalog, larger copies of it, the query set.

The query set follows operations.md: with a fixed seed, 200 words of three or
more characters drawn uniformly from the distinct words of the real titles
(so `the` and `mp4` are as likely as any rare word), 50 two-word queries (two
neighbouring words of a title drawn at random, as people type them), and 50
one- or two-character queries (drawn uniformly from the distinct words that
short). Words are runs of letters and digits, case-folded.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REAL_CATALOG_FILE = "catalog-420grindhouse.jsonl"
QUERY_SEED = 20261124
SINGLE_WORDS = 200
TWO_WORD_QUERIES = 50
SHORT_QUERIES = 50
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class QuerySet:
    long: list[str]  # the single and two-word queries: every word has three or more characters
    short: list[str]  # one- or two-character queries


def read_catalog(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def title_words(title: str) -> list[str]:
    return _WORD.findall(title.casefold())


def query_set(titles: list[str], seed: int = QUERY_SEED) -> QuerySet:
    chooser = random.Random(seed)
    distinct = sorted({word for title in titles for word in title_words(title)})
    long_words = [word for word in distinct if len(word) >= 3]
    short_words = [word for word in distinct if len(word) < 3]
    singles = [chooser.choice(long_words) for _ in range(SINGLE_WORDS)]
    pairs = [_neighbours(chooser, titles) for _ in range(TWO_WORD_QUERIES)]
    shorts = [chooser.choice(short_words) for _ in range(SHORT_QUERIES)]
    return QuerySet(singles + pairs, shorts)


def _neighbours(chooser: random.Random, titles: list[str]) -> str:
    """Two neighbouring words of three or more characters from a title drawn at random."""
    while True:
        words = [word for word in title_words(chooser.choice(titles)) if len(word) >= 3]
        if len(words) >= 2:
            start = chooser.randrange(len(words) - 1)
            return f"{words[start]} {words[start + 1]}"


def scaled_items(items: list[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    """`count` items: the real catalog, then copies of it whose ids and titles carry the copy number.

    A suffix rather than a prefix keeps each copy's titles beside the
    original's in title order, as a catalog of many similar episodes would.
    """
    for n in range(count):
        copy, original = divmod(n, len(items))
        item = items[original]
        if copy:
            item = {**item, "video_id": f"{item['video_id']}-{copy}", "title": f"{item['title']} [{copy}]"}
        yield item


def write_jsonl(items: Iterator[dict[str, Any]], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    return path
