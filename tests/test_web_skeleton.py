"""The HTTP machinery: errors, body and CSRF checks, request ids, logs, metrics, server.

The app is the real one from create_app, served by HttpServer; the services
behind it are a small stand-in, since only the machinery is under test here.
Test routes under /api/test/ play the part of future write routes.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bottle
import pytest

from kryten_playlist_lib.errors import RateLimited, ServiceError, ValidationError
from kryten_playlist_lib.logs import JsonLineFormatter
from kryten_playlist_lib.web.app import create_app
from kryten_playlist_lib.web.http import MAX_BODY_BYTES, client_ip, request_body, request_is_https
from kryten_playlist_lib.web.metrics import Metrics
from kryten_playlist_lib.web.server import HttpServer

HEALTH = {"status": "ok", "version": "0.0.0", "nats": "connected", "robot": "seen",
          "snapshot_id": None, "item_count": 0, "pending_writes": 0}
JSON_TYPE = "application/json; charset=utf-8"
WRITE_HEADERS = {"Content-Type": "application/json", "X-Requested-With": "kryten-playlist"}


@dataclass
class FakeConfig:
    trusted_proxies: list[str] = field(default_factory=list)
    cookie_secure: str | bool = "auto"


@dataclass
class FakeServices:
    config: FakeConfig = field(default_factory=FakeConfig)
    metrics: Metrics = field(default_factory=Metrics)

    def health(self) -> dict[str, Any]:
        return dict(HEALTH)


def add_test_routes(app: bottle.Bottle) -> None:
    @app.route("/api/test/echo", method=["POST", "PUT", "DELETE"])
    def echo() -> dict[str, Any]:
        return {"body": request_body()}

    @app.get("/api/test/items/<item_id>")
    def item(item_id: str) -> dict[str, Any]:
        return {"id": item_id}

    @app.get("/api/test/invalid")
    def invalid() -> dict[str, Any]:
        raise ValidationError({"name": "too long"})

    @app.get("/api/test/limited")
    def limited() -> dict[str, Any]:
        raise RateLimited(30)

    @app.get("/api/test/boom")
    def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals")


@contextmanager
def serving(services: FakeServices, host: str = "127.0.0.1") -> Iterator[HttpServer]:
    app = create_app(services)
    add_test_routes(app)
    server = HttpServer(app, host, 0, threads=4)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    with serving(FakeServices()) as running:
        yield running


@pytest.fixture
def http_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="kryten_playlist.http")
    return caplog


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return self.json()["error"]["code"]


def call(server: HttpServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, chunked: bool = False, host: str = "127.0.0.1") -> Reply:
    conn = http.client.HTTPConnection(host, server.port, timeout=10)
    try:
        payload: Any = iter([body]) if chunked and body is not None else body
        conn.request(method, path, body=payload, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def call_raw(server: HttpServer, request: bytes) -> Reply:
    """Send the bytes as they are and read one response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Reply(response.status, response.headers, response.read())


def too_large_request(content_type: str, chunked: bool) -> bytes:
    """A POST one byte over the limit: announced by Content-Length (and not sent), or sent
    as one chunk with no last chunk. cheroot closes the connection on 413, so nothing may
    be left unread on the socket: the reset that would cause could swallow the response."""
    size = MAX_BODY_BYTES + 1
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = f"POST /api/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    body = f"{size:x}\r\n".encode() + b"[" * size + b"\r\n" if chunked else b""
    return head.encode() + body


def post(server: HttpServer, body: bytes | None, headers: dict[str, str] | None = None,
         method: str = "POST") -> Reply:
    return call(server, method, "/api/test/echo", body, WRITE_HEADERS if headers is None else headers)


def json_of_size(size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes."""
    overhead = len(b'{"pad": ""}')
    return b'{"pad": "' + b"x" * (size - overhead) + b'"}'


# --- responses and errors ---------------------------------------------------------

def test_health_is_json_with_charset(server: HttpServer) -> None:
    reply = call(server, "GET", "/api/v1/health")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert reply.json() == HEALTH


def test_metrics_count_requests_by_route_rule(server: HttpServer) -> None:
    call(server, "GET", "/api/v1/health")
    call(server, "GET", "/api/test/items/abc")
    reply = call(server, "GET", "/metrics")
    text = reply.body.decode()
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE kryten_playlist_http_requests_total counter" in text
    assert 'kryten_playlist_http_requests_total{route="/api/v1/health",method="GET",status="200"}' in text
    assert 'route="/api/test/items/<item_id>"' in text
    assert "abc" not in text
    assert "# TYPE kryten_playlist_http_request_duration_seconds histogram" in text
    assert 'kryten_playlist_http_request_duration_seconds_bucket{route="/api/v1/health",le="+Inf"}' in text


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/", "/no-page-yet"])
def test_unknown_path_is_json_404(server: HttpServer, path: str) -> None:
    reply = call(server, "GET", path)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert reply.json()["error"] == {"code": "not_found", "message": reply.json()["error"]["message"],
                                     "details": {}}


def test_wrong_method_is_json_405_keeping_allow(server: HttpServer) -> None:
    reply = call(server, "DELETE", "/api/v1/health")
    assert reply.status == 405
    assert reply.code == "method_not_allowed"
    assert reply.headers["Allow"] == "GET"
    assert reply.headers["Content-Type"] == JSON_TYPE


def test_service_error_keeps_status_and_details(server: HttpServer) -> None:
    reply = call(server, "GET", "/api/test/invalid")
    assert reply.status == 422
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert reply.json()["error"]["code"] == "validation_error"
    assert reply.json()["error"]["details"] == {"fields": {"name": "too long"}}


def test_rate_limited_sends_retry_after(server: HttpServer) -> None:
    reply = call(server, "GET", "/api/test/limited")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "30"
    assert reply.json()["error"]["details"]["retry_after_seconds"] == 30


def test_unexpected_exception_is_generic_500_logged_with_request_id(
        server: HttpServer, http_log: pytest.LogCaptureFixture) -> None:
    reply = call(server, "GET", "/api/test/boom")
    assert reply.status == 500
    assert reply.code == "internal"
    assert b"secret internals" not in reply.body
    assert b"Traceback" not in reply.body
    request_id = reply.headers["X-Request-Id"]
    errors = [r for r in http_log.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert request_id in errors[0].getMessage()
    assert "RuntimeError: secret internals" in http_log.text  # the traceback is in the log


def test_every_response_has_its_own_request_id(server: HttpServer) -> None:
    ids = {call(server, "GET", path).headers["X-Request-Id"] for path in ["/api/v1/health", "/nope", "/nope"]}
    assert len(ids) == 3
    assert all(len(i) == 16 for i in ids)


# --- bodies -----------------------------------------------------------------------

def test_json_body_reaches_the_route(server: HttpServer) -> None:
    reply = post(server, b'{"name": "caf\xc3\xa9"}')
    assert reply.status == 200
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert reply.json() == {"body": {"name": "café"}}


@pytest.mark.parametrize("headers", [{"X-Requested-With": "kryten-playlist"}, WRITE_HEADERS])
def test_empty_body_is_an_empty_object(server: HttpServer, headers: dict[str, str]) -> None:
    reply = post(server, None, headers)
    assert reply.status == 200
    assert reply.json() == {"body": {}}


def test_content_type_parameters_are_allowed(server: HttpServer) -> None:
    reply = post(server, b"{}", {**WRITE_HEADERS, "Content-Type": "Application/JSON; charset=UTF-8"})
    assert reply.status == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_one_mib_is_413(server: HttpServer, chunked: bool) -> None:
    reply = call_raw(server, too_large_request("application/json", chunked))
    assert reply.status == 413
    assert reply.code == "payload_too_large"


@pytest.mark.parametrize("chunked", [False, True])
def test_body_of_exactly_one_mib_is_accepted(server: HttpServer, chunked: bool) -> None:
    body = json_of_size(MAX_BODY_BYTES)
    assert len(body) == MAX_BODY_BYTES
    reply = call(server, "POST", "/api/test/echo", body, WRITE_HEADERS, chunked)
    assert reply.status == 200
    assert len(reply.json()["body"]["pad"]) == MAX_BODY_BYTES - len(b'{"pad": ""}')


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx"])
def test_non_json_body_is_415(server: HttpServer, content_type: str) -> None:
    reply = post(server, b"{}", {**WRITE_HEADERS, "Content-Type": content_type})
    assert reply.status == 415
    assert reply.code == "unsupported_media_type"


def test_body_without_content_type_is_415(server: HttpServer) -> None:
    reply = post(server, b"{}", {"X-Requested-With": "kryten-playlist"})
    assert reply.status == 415


@pytest.mark.parametrize(("body", "says"), [
    (b'{"a": ', "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"\xff\xfe{}", "UTF-8"),
    (b'{"a": NaN}', "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"),
])
def test_bad_json_is_400(server: HttpServer, body: bytes, says: str) -> None:
    reply = post(server, body)
    assert reply.status == 400
    assert reply.code == "bad_json"
    assert says in reply.json()["error"]["message"]


def test_checks_run_in_the_order_413_415_400_csrf(server: HttpServer) -> None:
    no_csrf_text = {"Content-Type": "text/plain"}
    no_csrf_json = {"Content-Type": "application/json"}
    assert call_raw(server, too_large_request("text/plain", chunked=False)).code == "payload_too_large"
    assert call_raw(server, too_large_request("text/plain", chunked=True)).code == "payload_too_large"
    assert post(server, b"[", no_csrf_text).code == "unsupported_media_type"
    assert post(server, b"[", no_csrf_json).code == "bad_json"
    assert post(server, b"{}", no_csrf_json).code == "csrf_rejected"


# --- CSRF -------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "allowed"), [
    ({}, False),
    ({"X-Requested-With": "kryten-playlist"}, True),
    ({"X-Requested-With": "XMLHttpRequest"}, False),
    ({"Origin": "http://127.0.0.1:{port}"}, True),
    ({"Origin": "https://127.0.0.1:{port}"}, True),
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "http://127.0.0.1:1"}, False),
    ({"Origin": "null"}, False),
    ({"Referer": "http://127.0.0.1:{port}/playlists"}, True),
    ({"Referer": "http://evil.example/127.0.0.1:{port}"}, False),
    ({"Origin": "http://evil.example", "Referer": "http://127.0.0.1:{port}/"}, False),
])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_csrf_rule(server: HttpServer, method: str, extra: dict[str, str], allowed: bool) -> None:
    headers = {"Content-Type": "application/json",
               **{name: value.format(port=server.port) for name, value in extra.items()}}
    reply = post(server, b'{"x": 1}', headers, method=method)
    if allowed:
        assert reply.status == 200
    else:
        assert reply.status == 403
        assert reply.code == "csrf_rejected"


def test_plugins_installed_later_run_after_the_csrf_check() -> None:
    app = create_app(FakeServices())
    add_test_routes(app)

    def require_session(callback: Any) -> Any:  # stands in for a future auth plugin
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            raise ServiceError("unauthenticated", "Sign in first.")
        return wrapper

    app.install(require_session)
    server = HttpServer(app, "127.0.0.1", 0, threads=2)
    server.start()
    try:
        assert post(server, b"{}", {"Content-Type": "application/json"}).code == "csrf_rejected"
        assert post(server, b"{}").code == "unauthenticated"
    finally:
        server.stop()


def test_reads_need_no_csrf_header(server: HttpServer) -> None:
    assert call(server, "GET", "/api/v1/health").status == 200


# --- logging ----------------------------------------------------------------------

def test_request_log_has_rule_and_status_but_no_query_or_ids(
        server: HttpServer, http_log: pytest.LogCaptureFixture) -> None:
    health = call(server, "GET", "/api/v1/health?otp=SECRET123")
    call(server, "GET", "/api/test/items/ITEM42", headers={"Cookie": "kryten_playlist_session=SESSION7"})
    lines = [r.getMessage() for r in http_log.records if r.name == "kryten_playlist.http"]
    assert any(health.headers["X-Request-Id"] in line and "route=/api/v1/health" in line
               and "status=200" in line and "method=GET" in line for line in lines)
    assert any("route=/api/test/items/<item_id>" in line for line in lines)
    for secret in ("SECRET123", "ITEM42", "SESSION7"):
        assert secret not in http_log.text


def test_log_json_writes_one_json_object_per_request(http_log: pytest.LogCaptureFixture) -> None:
    with serving(FakeServices(FakeConfig())) as json_server:
        reply = call(json_server, "GET", "/nope?code=X")
    [record] = [r for r in http_log.records if r.name == "kryten_playlist.http"]
    line = json.loads(JsonLineFormatter().format(record))
    assert "code=X" not in json.dumps(line)
    assert line["request_id"] == reply.headers["X-Request-Id"]
    assert line["method"] == "GET"
    assert line["route"] == "unmatched"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)


# --- client IP and HTTPS ----------------------------------------------------------

@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.9", "", [], "203.0.113.9"),
    ("203.0.113.9", "1.2.3.4", [], "203.0.113.9"),                        # untrusted peer: XFF ignored
    ("10.0.0.1", "1.2.3.4", ["10.0.0.2"], "10.0.0.1"),                    # peer not in the list
    ("10.0.0.1", "1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
    ("10.0.0.1", "6.6.6.6, 1.2.3.4", ["10.0.0.1"], "1.2.3.4"),             # right-most untrusted wins
    ("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.7", ["10.0.0.0/8"], "1.2.3.4"),  # CIDR, proxy chain
    ("10.0.0.1", "10.0.0.5", ["10.0.0.0/8"], "10.0.0.5"),                  # only proxies: left-most
    ("10.0.0.1", "", ["10.0.0.0/8"], "10.0.0.1"),
    ("10.0.0.1", "garbage", ["10.0.0.0/8"], "10.0.0.1"),
    ("::1", "", [], "::1"),
    ("::1", "2001:db8::5", ["::1"], "2001:db8::5"),
    ("::ffff:127.0.0.1", "", [], "127.0.0.1"),
    ("::ffff:127.0.0.1", "1.2.3.4", ["127.0.0.1"], "1.2.3.4"),
    ("fd00::1", "::ffff:1.2.3.4", ["fd00::/8"], "1.2.3.4"),
])
def test_client_ip(peer: str, forwarded: str, trusted: list[str], expected: str) -> None:
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_ip(environ, trusted) == expected


@pytest.mark.parametrize(("environ", "trusted", "expected"), [
    ({"wsgi.url_scheme": "https", "REMOTE_ADDR": "1.2.3.4"}, [], True),
    ({"wsgi.url_scheme": "http", "REMOTE_ADDR": "1.2.3.4"}, [], False),
    ({"wsgi.url_scheme": "http", "REMOTE_ADDR": "1.2.3.4", "HTTP_X_FORWARDED_PROTO": "https"}, [], False),
    ({"wsgi.url_scheme": "http", "REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_PROTO": "https"},
     ["10.0.0.0/8"], True),
    ({"wsgi.url_scheme": "http", "REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_PROTO": "https, http"},
     ["10.0.0.0/8"], False),
])
def test_request_is_https(environ: dict[str, str], trusted: list[str], expected: bool) -> None:
    assert request_is_https(environ, trusted) is expected


def test_client_ip_of_a_real_request() -> None:
    services = FakeServices()
    app = create_app(services)

    @app.get("/api/test/ip")
    def ip() -> dict[str, str]:
        return {"ip": client_ip(bottle.request.environ, services.config.trusted_proxies)}

    server = HttpServer(app, "127.0.0.1", 0, threads=2)
    server.start()
    try:
        assert call(server, "GET", "/api/test/ip", headers={"X-Forwarded-For": "1.2.3.4"}).json() == {
            "ip": "127.0.0.1"}
    finally:
        server.stop()


# --- server lifecycle -------------------------------------------------------------

def test_stop_is_quick_and_closes_the_port() -> None:
    with serving(FakeServices()) as running:
        port = running.port
        assert port > 0
        idle = socket.create_connection(("127.0.0.1", port))  # a keep-alive client that says nothing
        assert call(running, "GET", "/api/v1/health").status == 200
        started = time.monotonic()
        running.stop(timeout=2)
        assert time.monotonic() - started < 2.5
        idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serves_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with serving(FakeServices(), host="::1") as running:
        assert call(running, "GET", "/api/v1/health", host="::1").status == 200


def test_two_apps_in_one_process_share_a_registry() -> None:
    services = FakeServices()
    with serving(services) as first, serving(services) as second:
        call(first, "GET", "/api/v1/health")
        call(second, "GET", "/api/v1/health")
    assert 'route="/api/v1/health",method="GET",status="200"} 2' in services.metrics.render()


# --- metrics registry -------------------------------------------------------------

def test_metrics_text_format() -> None:
    metrics = Metrics()
    hits = metrics.counter("demo_hits_total", "Hits.\nSecond line \\ here.", ("path",))
    hits.inc(path='a"b\\c\nd')
    hits.inc(2, path="x")
    metrics.gauge("demo_level", "Level.").set(1.5)
    metrics.gauge("demo_live", "Live.", callback=lambda: 7)
    latency = metrics.histogram("demo_seconds", "Latency.", buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value)
    assert metrics.render() == (
        "# HELP demo_hits_total Hits.\\nSecond line \\\\ here.\n"
        "# TYPE demo_hits_total counter\n"
        'demo_hits_total{path="a\\"b\\\\c\\nd"} 1\n'
        'demo_hits_total{path="x"} 2\n'
        "# HELP demo_level Level.\n# TYPE demo_level gauge\ndemo_level 1.5\n"
        "# HELP demo_live Live.\n# TYPE demo_live gauge\ndemo_live 7\n"
        "# HELP demo_seconds Latency.\n# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{le="0.1"} 2\n'
        'demo_seconds_bucket{le="1"} 3\n'
        'demo_seconds_bucket{le="+Inf"} 4\n'
        "demo_seconds_sum 3.65\n"
        "demo_seconds_count 4\n"
    )


def test_metrics_registration_rules() -> None:
    metrics = Metrics()
    counter = metrics.counter("demo_total", "Demo.", ("a",))
    assert metrics.counter("demo_total", "Demo.", ("a",)) is counter
    with pytest.raises(ValueError):
        metrics.counter("demo_total", "Demo.", ("b",))
    with pytest.raises(ValueError):
        metrics.gauge("demo_total", "Demo.", ("a",))
    with pytest.raises(ValueError):
        counter.inc(b="x")
    with pytest.raises(ValueError):
        metrics.histogram("demo_h", "Demo.", ("le",))
    with pytest.raises(ValueError):
        metrics.counter("bad-name", "Demo.")

