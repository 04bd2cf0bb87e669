"""Between catalog video ids and the manifest URLs CyTube plays (`manifest_url_template`)."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=8)
def _template_pattern(template: str) -> re.Pattern[str]:
    before, after = template.split("{video_id}", 1)
    return re.compile(re.escape(before) + r"([A-Za-z0-9_-]{1,64})" + re.escape(after))


def manifest_url(template: str, video_id: str) -> str:
    return template.format(video_id=video_id)


def video_id_from_manifest(template: str, url: str) -> str | None:
    """The video id a manifest URL was made from with `template`, or None when it was not."""
    match = _template_pattern(template).fullmatch(url)
    return match.group(1) if match else None
