"""Marathon generation (behaviour.md section 4): one ordered list built from labelled sources.

Plain functions over plain data, so the preview route, the bench script and the
tests drive exactly the same code; nothing here knows about Bottle or NATS.
Every step is deterministic given its inputs and the seed string, because the
same request must give the same preview on every run and every replica.
"""

from __future__ import annotations

import random
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kryten_playlist_lib.domain.episodes import parse_episode
from kryten_playlist_lib.errors import ServiceError, ValidationError

METHODS = ("concatenate", "shuffle", "interleave")
MAX_SOURCES = 26
MAX_COUNT = 999
_SEPARATORS = frozenset(" ,-|")
# Explicit ASCII sets: str.isdigit/isalpha accept other scripts, and "ı".upper() is "I".
_DIGITS = frozenset(string.digits)
_LETTERS = frozenset(string.ascii_letters)
# How many video ids a warning names before it only counts the rest.
_NAMED_IDS = 3


@dataclass(frozen=True)
class SourceItem:
    """One input item as its playlist or category holds it; `available` is False when not in the snapshot."""

    video_id: str
    title: str | None
    duration_seconds: int | None
    available: bool = True


@dataclass
class Source:
    """One source in request order; `label` is its letter (`A` for the first, `B` for the second, ...)."""

    label: str
    items: list[SourceItem] = field(default_factory=list)


@dataclass(frozen=True)
class MarathonItem:
    video_id: str
    title: str | None
    duration_seconds: int | None
    source: str
    season: int | None
    episode: int | None
    available: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "title": self.title,
            "source": self.source,
            "duration_seconds": self.duration_seconds,
            "season": self.season,
            "episode": self.episode,
        }


@dataclass
class MarathonResult:
    items: list[MarathonItem]
    warnings: list[str]
    seed: str | None
    total_duration_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [item.to_json() for item in self.items],
            "warnings": list(self.warnings),
            "seed": self.seed,
            "total_duration_seconds": self.total_duration_seconds,
        }


def episode_order(items: Sequence[MarathonItem]) -> list[MarathonItem]:
    """Sort the items that carry an episode among the slots they occupy; the others stay where they are."""
    keyed = [
        (item.season, item.episode, slot)
        for slot, item in enumerate(items)
        if item.season is not None and item.episode is not None
    ]
    result = list(items)
    slots = [slot for _, _, slot in keyed]
    for slot, (_, _, origin) in zip(slots, sorted(keyed), strict=True):
        result[slot] = items[origin]
    return result


def parse_pattern(pattern: str | None, labels: Sequence[str]) -> list[tuple[str, int]]:
    """Read an interleave pattern into (label, count) tokens; None or blank is round-robin over `labels`."""
    if pattern is None or not pattern.strip():
        return [(label, 1) for label in labels]
    tokens: list[tuple[str, int]] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char in _SEPARATORS:
            position += 1
        elif char in _LETTERS:
            label = char.upper()
            if label not in labels:
                raise _pattern_error(f"label {label} at position {position} has no source", position, labels)
            count, position = _read_count(pattern, position + 1, labels)
            tokens.append((label, count))
        elif char in _DIGITS:
            raise _pattern_error(f"the count at position {position} has no label in front of it", position, labels)
        else:
            raise _pattern_error(f"unexpected character {char!r} at position {position}", position, labels)
    if not tokens:
        raise _pattern_error("the pattern names no source, only separators", 0, labels)
    return tokens


def pattern_examples(labels: Sequence[str]) -> list[str]:
    """A few valid patterns over the request's own labels, for the error details and the UI hint."""
    if not labels:
        return []
    first, last = labels[0], labels[-1]
    candidates = [
        " ".join(labels),
        "".join(f"{label}2" for label in labels),
        f"{first}3,{last}",
        "|".join(reversed(labels)),
    ]
    return list(dict.fromkeys(candidates))


def _read_count(pattern: str, start: int, labels: Sequence[str]) -> tuple[int, int]:
    """The count right after a label (1 when there is none) and the position after it."""
    end = start
    while end < len(pattern) and pattern[end] in _DIGITS:
        end += 1
    if end == start:
        return 1, start
    # Leading zeros are allowed (`A01` = `A1`); dropping them first also means the length test
    # below rejects an absurdly long digit run before int() has to convert it.
    digits = pattern[start:end].lstrip("0")
    if not digits:
        raise _pattern_error(f"the count at position {start} is 0; a count must be at least 1", start, labels)
    if len(digits) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:
        raise _pattern_error(f"the count at position {start} is over the maximum of {MAX_COUNT}", start, labels)
    return int(digits), end


def _pattern_error(message: str, position: int, labels: Sequence[str]) -> ServiceError:
    details = {"position": position, "examples": pattern_examples(labels)}
    return ServiceError("invalid_pattern", f"Invalid interleave pattern: {message}.", details)


def generate(
    sources: list[Source],
    method: str = "concatenate",
    shuffle_seed: str | int | None = None,
    interleave_pattern: str | None = None,
    preserve_episode_order: bool = True,
    max_duration_seconds: int | None = None,
) -> MarathonResult:
    """Build the marathon of behaviour.md section 4; raises ValidationError or `invalid_pattern` on bad input."""
    _validate(sources, method, shuffle_seed, interleave_pattern, preserve_episode_order, max_duration_seconds)
    runs = {source.label: _run(source, preserve_episode_order) for source in sources}
    warnings = [f"source {source.label} is empty" for source in sources if not source.items]
    seed: str | None = None
    if method == "concatenate":
        ordered = [item for run in runs.values() for item in run]
    elif method == "shuffle":
        seed = _seed_string(shuffle_seed)
        ordered = _shuffle(runs, random.Random(seed), preserve_episode_order)
    else:
        tokens = parse_pattern(interleave_pattern, list(runs))
        warnings += _left_out_warnings(sources, tokens)
        ordered = _interleave(runs, tokens)
    kept = _fit_budget(ordered, max_duration_seconds)
    warnings += _item_warnings(kept, list(runs))
    if max_duration_seconds is not None and len(kept) < len(ordered):
        warnings.append(f"{_items(len(ordered) - len(kept))} left out to fit {_clock(max_duration_seconds)}")
    total = sum(item.duration_seconds for item in kept if item.duration_seconds is not None)
    return MarathonResult(kept, warnings, seed, total)


def _validate(
    sources: list[Source],
    method: object,
    shuffle_seed: object,
    interleave_pattern: object,
    preserve_episode_order: object,
    max_duration_seconds: object,
) -> None:
    """Reject bad request fields all at once; the arguments are typed `object` because they come from JSON."""
    fields: dict[str, str] = {}
    if not 1 <= len(sources) <= MAX_SOURCES:
        fields["sources"] = f"give 1 to {MAX_SOURCES} sources"
    if method not in METHODS:
        fields["method"] = f"must be one of {', '.join(METHODS)}"
    # bool is an int subclass, but `true` is not a number a user meant as a seed or a budget.
    if shuffle_seed is not None and (isinstance(shuffle_seed, bool) or not isinstance(shuffle_seed, str | int)):
        fields["shuffle_seed"] = "must be a string or an integer"
    if interleave_pattern is not None and not isinstance(interleave_pattern, str):
        fields["interleave_pattern"] = "must be a string"
    if not isinstance(preserve_episode_order, bool):
        fields["preserve_episode_order"] = "must be true or false"
    if max_duration_seconds is not None and (
        isinstance(max_duration_seconds, bool) or not isinstance(max_duration_seconds, int) or max_duration_seconds < 1
    ):
        fields["max_duration_seconds"] = "must be an integer of at least 1"
    if fields:
        raise ValidationError(fields)
    # Labels come from the caller, not the user: a mismatch is a programming error, not a 422.
    if [source.label for source in sources] != list(string.ascii_uppercase[: len(sources)]):
        raise ValueError("sources must be labelled A, B, C, ... in request order")


def _run(source: Source, preserve_episode_order: bool) -> list[MarathonItem]:
    """The source's items in the order they are played; season and episode are parsed either way for the output."""
    items = [_marathon_item(source.label, item) for item in source.items]
    return episode_order(items) if preserve_episode_order else items


def _marathon_item(label: str, item: SourceItem) -> MarathonItem:
    parsed = parse_episode(item.title) if item.title else None
    season, episode = parsed if parsed is not None else (None, None)
    return MarathonItem(item.video_id, item.title, item.duration_seconds, label, season, episode, item.available)


def _seed_string(shuffle_seed: str | int | None) -> str:
    """The seed as the string `random.Random` is given, so `42` and `"42"` shuffle alike."""
    # An empty seed field in a form means "no seed", not a fixed seed everyone would share.
    if shuffle_seed is None or shuffle_seed == "":
        return secrets.token_hex(8)
    return shuffle_seed if isinstance(shuffle_seed, str) else str(shuffle_seed)


def _shuffle(runs: dict[str, list[MarathonItem]], rng: random.Random, preserve: bool) -> list[MarathonItem]:
    if not preserve:
        everything = [item for run in runs.values() for item in run]
        rng.shuffle(everything)
        return everything
    # Shuffling one label per item, not the items, decides only which source plays at each position;
    # taking that source's next item keeps every source's run order intact.
    slots = [label for label, run in runs.items() for _ in run]
    rng.shuffle(slots)
    cursors = {label: iter(run) for label, run in runs.items()}
    return [next(cursors[label]) for label in slots]


def _interleave(runs: dict[str, list[MarathonItem]], tokens: list[tuple[str, int]]) -> list[MarathonItem]:
    taken = dict.fromkeys(runs, 0)
    output: list[MarathonItem] = []
    live = tokens
    while live:
        for label, count in live:
            start = taken[label]
            # Slicing takes a whole token at once, so a count of 999 costs no more than the items it yields.
            chunk = runs[label][start : start + count]
            output.extend(chunk)
            taken[label] = start + len(chunk)
        # Every live token either took an item this round or its source ran out; dropping the latter
        # guarantees progress and keeps a long pattern over nearly used-up sources linear.
        live = [(label, count) for label, count in live if taken[label] < len(runs[label])]
    return output


def _fit_budget(items: list[MarathonItem], budget: int | None) -> list[MarathonItem]:
    """The longest prefix whose running total fits; unknown durations count as 0."""
    if budget is None:
        return items
    running = 0
    for index, item in enumerate(items):
        running += item.duration_seconds or 0
        if running > budget:
            return items[:index]
    return items


def _left_out_warnings(sources: list[Source], tokens: list[tuple[str, int]]) -> list[str]:
    named = {label for label, _ in tokens}
    # An empty source already has its own warning; "its 0 items were left out" would only add noise.
    return [
        f"source {source.label} is not in the pattern; its {_items(len(source.items))} "
        f"{'was' if len(source.items) == 1 else 'were'} left out"
        for source in sources
        if source.items and source.label not in named
    ]


def _item_warnings(items: list[MarathonItem], labels: list[str]) -> list[str]:
    """Per source, one warning for output items missing from the snapshot and one for unknown durations."""
    missing = dict.fromkeys(labels, 0)
    unknown: dict[str, list[str]] = {label: [] for label in labels}
    for item in items:
        if not item.available:
            missing[item.source] += 1
        if item.duration_seconds is None:
            unknown[item.source].append(item.video_id)
    warnings: list[str] = []
    for label in labels:
        if missing[label]:
            warnings.append(f"source {label} has {_items(missing[label])} not in the current catalog")
        if unknown[label]:
            warnings.append(
                f"source {label} has {_items(len(unknown[label]))} of unknown duration, counted as 0: "
                f"{_name_ids(unknown[label])}"
            )
    return warnings


def _name_ids(video_ids: list[str]) -> str:
    named = ", ".join(video_ids[:_NAMED_IDS])
    rest = len(video_ids) - _NAMED_IDS
    return f"{named} and {rest} more" if rest > 0 else named


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
