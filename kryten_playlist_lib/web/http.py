"""Request helpers shared by every route: the JSON body, CSRF, client IP, request id.

The app runs `json_body` and `check_csrf` itself before any write route under
`/api/` (see app.py), so a route only calls `request_body()` to read the
parsed body. These helpers raise `ServiceError`; the app renders it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import bottle

from kryten_playlist_lib.errors import ServiceError

MAX_BODY_BYTES = 1024 * 1024
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CSRF_HEADER_VALUE = "kryten-playlist"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

REQUEST_ID_KEY = "kryten_playlist.request_id"
BODY_KEY = "kryten_playlist.body"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def request_id() -> str:
    """The id of the current request, as sent in `X-Request-Id`; put it in log lines."""
    return str(bottle.request.environ.get(REQUEST_ID_KEY, "-"))


def request_body() -> dict[str, Any]:
    """The parsed JSON object of the current write request (POST/PUT/PATCH/DELETE under /api/)."""
    try:
        return bottle.request.environ[BODY_KEY]
    except KeyError:
        raise RuntimeError("request_body() is only parsed for write requests under /api/") from None


def json_body(request: bottle.BaseRequest) -> dict[str, Any]:
    """Read and parse the body as a JSON object, checking 413, then 415, then 400."""
    raw = _read_limited(request)
    media_type = request.content_type.split(";", 1)[0].strip()
    # A bare POST (no body, no Content-Type: fetch() or curl -X POST) is the empty object.
    if media_type != "application/json" and (raw or media_type):
        raise ServiceError("unsupported_media_type",
                           "The body must be JSON (Content-Type: application/json).")
    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ServiceError("bad_json", "The body is not valid UTF-8.") from None
    except (ValueError, RecursionError) as exc:
        raise ServiceError("bad_json", f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ServiceError("bad_json", "The body must be a JSON object, not " + type(value).__name__ + ".")
    try:
        # An escaped lone surrogate ("\ud800") parses but can never be stored as UTF-8; refuse it here
        # rather than fail half-way through a write (the store encodes with ensure_ascii=False).
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ServiceError("bad_json", "The body contains an unpaired surrogate escape.") from None
    return value


def _read_limited(request: bottle.BaseRequest) -> bytes:
    # Never read more than one byte past the limit: a chunked body has no
    # Content-Length to check up front, and we must not buffer a huge one.
    length = request.content_length
    if length > MAX_BODY_BYTES:
        raise _too_large()
    if request.chunked:
        to_read = MAX_BODY_BYTES + 1
    elif length > 0:
        to_read = length
    else:
        return b""
    raw = request.environ["wsgi.input"].read(to_read)
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    return raw


def _too_large() -> ServiceError:
    return ServiceError("payload_too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.",
                        {"max_bytes": MAX_BODY_BYTES})


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions, not JSON.
    raise ValueError(f"{name} is not allowed")


def check_csrf(environ: Mapping[str, Any]) -> None:
    """Refuse a write that neither comes from this server's own pages nor carries our header."""
    if environ.get("HTTP_X_REQUESTED_WITH") == CSRF_HEADER_VALUE:
        return
    source = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER") or ""
    host = environ.get("HTTP_HOST", "").lower()
    # "Origin: null" (sandboxed frames, file:// pages) has no host and so never matches.
    if host and urlsplit(source).netloc.lower() == host:
        return
    raise ServiceError("csrf_rejected", "Cross-site request refused: send an Origin of this server "
                       f"or the header X-Requested-With: {CSRF_HEADER_VALUE}.")


def client_ip(environ: Mapping[str, Any], trusted_proxies: Iterable[str]) -> str:
    """The client's address: the socket peer, or what trusted proxies say in X-Forwarded-For."""
    peer_text = environ.get("REMOTE_ADDR", "")
    peer = _parse_ip(peer_text)
    if peer is None:
        return peer_text
    networks = _networks(tuple(trusted_proxies))
    if not _is_trusted(peer, networks):
        return str(peer)
    client = peer
    # Walk from the nearest hop outwards; the first address no trusted proxy
    # vouches for is the client, anything left of it may be forged.
    for entry in reversed(environ.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse_ip(entry.strip())
        if address is None:
            break
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)


def request_is_https(environ: Mapping[str, Any], trusted_proxies: Iterable[str]) -> bool:
    """True when the client spoke HTTPS to us or to a trusted proxy in front of us."""
    if environ.get("wsgi.url_scheme") == "https":
        return True
    peer = _parse_ip(environ.get("REMOTE_ADDR", ""))
    if peer is None or not _is_trusted(peer, _networks(tuple(trusted_proxies))):
        return False
    # The right-most value is the one our own (trusted) proxy added.
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1]
    return proto.strip().lower() == "https"


def _parse_ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one client, one spelling.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=16)
def _networks(trusted_proxies: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies)


def _is_trusted(address: IpAddress, networks: tuple[IpNetwork, ...]) -> bool:
    return any(address in network for network in networks)
