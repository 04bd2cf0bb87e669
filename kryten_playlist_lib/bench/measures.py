"""The measurements themselves, one function each."""

from __future__ import annotations

import json
from pathlib import Path

from kryten_playlist_lib.bench import Figure, median_ms
from kryten_playlist_lib.domain.episodes import parse_episode
from kryten_playlist_lib.domain.marathon import Source, SourceItem, generate

LABELLED_FILE = "episodes-labelled.jsonl"


def marathon_preview(runs: int) -> list[Figure]:
    """10 sources x 500 items, interleave with episode order (operations.md: <= 50 ms)."""
    sources = [Source(chr(ord("A") + s), [
        SourceItem(f"{s}-{n:04d}", f"Show {s} S{1 + n // 50:02d}E{(n * 7) % 50 + 1:02d} Title {n}", 1400 + n)
        for n in range(500)]) for s in range(10)]
    value = median_ms(lambda: generate(sources, method="interleave", interleave_pattern="A2 B1 C2 D1 E1 F1 G1 H1 I1 J1",
                                       preserve_episode_order=True), runs)
    return [Figure("marathon preview, 10 x 500, interleave + episode order", value, "ms", "<= 50 ms", value <= 50)]


def episode_accuracy(path: Path) -> tuple[float, float, list[str]]:
    """Precision and recall of `parse_episode` on labelled titles, and the titles it got wrong.

    A parse counts only when it equals the label exactly; any other parse is a
    false positive, and a missed label a false negative.
    """
    true_pos, wrong = 0, []
    false_pos = false_neg = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        label = None if row["season"] is None else (row["season"], row["episode"])
        parsed = parse_episode(row["title"])
        if parsed is not None and parsed == label:
            true_pos += 1
            continue
        if parsed is not None:
            false_pos += 1
        elif label is not None:
            false_neg += 1
        else:
            continue
        wrong.append(row["title"])
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 1.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0
    return precision, recall, wrong


def episode_parsing(data: Path) -> list[Figure]:
    path = data / LABELLED_FILE
    if not path.exists():
        return []
    precision, recall, _wrong = episode_accuracy(path)
    return [Figure("episode parsing precision (labelled real titles)", precision, "", "1.00", precision == 1.0),
            Figure("episode parsing recall (labelled real titles)", recall, "", ">= 0.98", recall >= 0.98)]
