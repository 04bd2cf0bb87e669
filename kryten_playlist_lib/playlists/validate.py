"""Checking a playlist body `{"name", "items":[{"video_id"}]}` (http-api.md field rules)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from kryten_playlist_lib.errors import ValidationError

NAME_MAX = 100
VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_name(value: Any) -> str:
    """1-100 characters after trimming, no control characters; the trimmed name."""
    if not isinstance(value, str):
        raise ValidationError({"name": "must be a string"})
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValidationError({"name": f"must be 1 to {NAME_MAX} characters after trimming"})
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValidationError({"name": "must not contain control characters"})
    return name


def check_items(value: Any, max_items: int) -> list[str]:
    """The video ids, in order; repeats are allowed."""
    if not isinstance(value, list):
        raise ValidationError({"items": "must be a list of {\"video_id\": …} objects"})
    if len(value) > max_items:
        raise ValidationError({"items": f"holds {len(value)} items; a playlist holds at most {max_items}"})
    problems: dict[str, str] = {}
    ids: list[str] = []
    for position, item in enumerate(value):
        video_id = item.get("video_id") if isinstance(item, dict) else None
        if not isinstance(video_id, str) or not VIDEO_ID.match(video_id):
            problems[f"items.{position}.video_id"] = "must be 1-64 letters, digits, _ or -"
            if len(problems) >= 20:
                break  # enough to show what is wrong without echoing a huge body
        else:
            ids.append(video_id)
    if problems:
        raise ValidationError(problems)
    return ids


def check_playlist_body(body: dict[str, Any], max_items: int) -> tuple[str, list[str]]:
    """The trimmed name and the ids; every field problem is reported at once."""
    fields: dict[str, str] = {}
    name, ids = "", []
    try:
        name = check_name(body.get("name"))
    except ValidationError as exc:
        fields.update(exc.fields)
    try:
        ids = check_items(body.get("items"), max_items)
    except ValidationError as exc:
        fields.update(exc.fields)
    if fields:
        raise ValidationError(fields)
    return name, ids
