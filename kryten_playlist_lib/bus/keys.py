"""KV key building: namespace prefix and the encoding of outside data in key segments.

NATS allows only `A-Z a-z 0-9 - _ = / .` in keys. A segment that holds outside
data (a username, an IP address, a video id) is kept as is when it is a plain
dotted word, and otherwise written as `=` + unpadded base64url of its UTF-8
bytes (storage.md). `=` can never start a plain segment, so the two forms never
collide and decoding is unambiguous.
"""

from __future__ import annotations

import base64
import re

_PLAIN_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def encode_segment(value: str) -> str:
    """Encode one key segment; `127.0.0.1` stays, `::1` becomes `=Ojox`."""
    if _PLAIN_SEGMENT.match(value):
        return value
    raw = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    return "=" + raw.rstrip("=")


def decode_segment(segment: str) -> str:
    """The inverse of `encode_segment`."""
    if not segment.startswith("="):
        return segment
    body = segment[1:]
    padded = body + "=" * (-len(body) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")


def user_segment(username: str) -> str:
    """Usernames are one identity regardless of case, so they are lower-cased first."""
    return encode_segment(username.lower())


def namespace_prefix(namespace: str) -> str:
    return f"ns/{namespace}/"
