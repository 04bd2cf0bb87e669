"""Bad input: hypothesis fuzzing of the JSON API and the admin NATS commands.

One service per module (starting one per example would dominate the run time); every example checks that the
answer is a documented status with the documented error format, and the module ends by checking stored data.
"""

from __future__ import annotations

import http.client
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import NatsUnavailable
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin import RobotStandIn
from tests.conftest import start_service
from tests.helpers import wait_for
from tests.test_catalog_api import refresh_now, small_catalog

# database=None: no .hypothesis directory in the work tree; the fixed regressions have their own tests below.
FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=60, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])

# Every code of the error table; a non-2xx body must carry one of them.
KNOWN_CODES = {"bad_json", "unauthenticated", "forbidden", "csrf_rejected", "ip_blocked", "not_found",
               "method_not_allowed", "name_taken", "conflict", "apply_in_progress", "refresh_in_progress",
               "no_current_item", "user_not_in_channel", "payload_too_large", "unsupported_media_type",
               "validation_error", "invalid_pattern", "rate_limited", "no_snapshot", "nats_unavailable",
               "robot_unavailable"}
BODY_ERRORS = {400, 413, 415, 422}


class Fuzzed:
    """The module's running pieces."""

    def __init__(self, service: PlaylistService, tool: NatsBridge, robot: RobotStandIn,
                 playlist_ids: list[str]) -> None:
        self.service = service
        self.tool = tool
        self.robot = robot
        self.playlist_ids = playlist_ids

    @property
    def port(self) -> int:
        return self.service.http.port

    @property
    def namespace(self) -> str:
        return self.service.config.namespace


@pytest.fixture(scope="module")
def fuzzed(nats_server: NatsServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data = tmp_path_factory.mktemp("fuzz")
    config = Config.from_mapping({
        "nats_url": nats_server.url, "namespace": "f" + secrets.token_hex(6), "http_port": 0,
        "sqlite_path": str(data / "catalog.sqlite3"), "state_path": str(data / "state.sqlite3"),
        "secret_path": str(data / "secret.key"), "disable_auth": True, "robot_timeout_seconds": 1,
        "queue_add_rate_per_second": 50, "initial_admins": ["Boss"]})
    robot = RobotStandIn(nats_server.url, domain=config.cytube_domain, channel=config.cytube_channel,
                         prefix=config.nats_subject_prefix, silent_timeout_seconds=0.2, rate_limit_enabled=False)
    robot.start()
    service = start_service(config)
    tool = NatsBridge(config)
    tool.start()
    try:
        wait_for(lambda: service.ready and tool.connected, what="service and tool connected")
        refresh_now(service, small_catalog(Path(data) / "c.jsonl"))
        ids = [service.playlists.create({"name": "First", "items": [{"video_id": "vid01"}]}, "local"),
               service.playlists.create({"name": "Second", "items": [{"video_id": "vid02"},
                                                                     {"video_id": "gone1"}]}, "local")]
        yield Fuzzed(service, tool, robot, ids)
    finally:
        tool.stop()
        service.stop()
        robot.stop()


def raw_request(port: int, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json", extra_headers: dict[str, str] | None = None
                ) -> tuple[int, Any]:
    """One request with a body sent as given (http_json would re-encode it); returns (status, JSON or text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        headers = {"X-Requested-With": "kryten-playlist", "Content-Type": content_type, **(extra_headers or {})}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
        connection.close()
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def assert_documented(status: int, body: Any, allowed: set[int]) -> None:
    # Shown by --hypothesis-show-statistics: proof the fuzzers reach past the body checks.
    if currently_in_test_context():
        code = body["error"]["code"] if status >= 300 and isinstance(body, dict) and "error" in body else ""
        event(f"HTTP {status} {code}")
    assert status != 500, body
    assert status in allowed, (status, body)
    if status >= 300:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"code", "message", "details"}, error
        assert error["code"] in KNOWN_CODES and isinstance(error["message"], str), error
        assert isinstance(error["details"], dict), error


# --- strategies -------------------------------------------------------------------------------------------

# Text including lone surrogates can't be encoded to UTF-8 by json.dumps(ensure_ascii=False); ensure_ascii
# (the default) writes them as "\ud800", which is exactly the escaped-surrogate case.
any_text = st.one_of(st.text(max_size=30),
                     st.text(st.characters(max_codepoint=0x1F), max_size=10),
                     st.sampled_from(["\ud800", "\udfff", "\u0000", "a\u202eb", "\ufeff", "../../etc/passwd",
                                      "..%2F..", "%00", "x" * 101]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12)
# Values of the wrong type for any field: a field that wants a string gets a list, and so on.
wrong_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         # NaN would make json.dumps write invalid JSON; raw_bodies covers NaN on its own.
                         st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                         any_text, st.just("x" * 100_000))


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from `good` (one_of would flatten and weight by branch count instead)."""
    return st.integers(0, 3).flatmap(lambda n: bad if n == 0 else good)

KNOWN_FIELDS = ["name", "items", "sources", "method", "shuffle_seed", "interleave_pattern",
                "preserve_episode_order", "max_duration_seconds", "username", "otp", "action", "hours", "ip",
                "connector", "playlist_id", "mode", "async"]


def field_bodies(known: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A valid-looking body for the route with some fields replaced, removed or joined by unknown ones."""
    fields = st.fixed_dictionaries({}, optional={name: wrong_values for name in KNOWN_FIELDS})
    unknown = st.dictionaries(any_text, json_values, max_size=3)
    nested_items = st.lists(st.one_of(st.fixed_dictionaries({"video_id": wrong_values}), wrong_values), max_size=4)
    nested_sources = st.lists(st.fixed_dictionaries({}, optional={"type": st.sampled_from(
        ["playlist", "category", "x"]) | wrong_values, "playlist_id": wrong_values, "category": wrong_values}),
        max_size=4)
    body = st.builds(lambda f, u, i, s: {**known, **u, **f, **({"items": i} if i is not None else {}),
                                         **({"sources": s} if s is not None else {})},
                     fields, unknown, st.none() | nested_items, st.none() | nested_sources)
    return body.map(lambda value: json.dumps(value).encode())


deep_raw = st.integers(min_value=1, max_value=5000).flatmap(lambda depth: st.sampled_from([
    b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth]))
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=50).map(lambda b: b'{"name": "' + b + b'"}'),  # invalid UTF-8 inside a string
    st.sampled_from([b"\xff\xfe{}", b"{", b"NaN", b"[NaN]", b"Infinity", b"null", b"[]", b'"x"', b"1",
                     b'{"name": "\\ud800"}', b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}", b"{}\x00"]),
    deep_raw)


def json_bodies(known: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return mostly(field_bodies(known), st.one_of(json_values.map(lambda v: json.dumps(v).encode()), raw_bodies))


def is_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False


# --- stored data ------------------------------------------------------------------------------------------

SUMMARY_KEYS = {"playlist_id", "name", "item_count", "duration_seconds", "created_by", "created_at", "updated_at"}


def assert_stored_data_valid(fuzzed: Fuzzed) -> None:
    status, listing = raw_request(fuzzed.port, "GET", "/api/v1/playlists")
    assert status == 200, listing
    summaries = listing["playlists"]
    names = [s["name"] for s in summaries]
    assert names == sorted(names, key=str.casefold)
    assert len({n.casefold() for n in names}) == len(names), names  # names stay unique
    for summary in summaries:
        assert set(summary) == SUMMARY_KEYS, summary
        status, document = raw_request(fuzzed.port, "GET",
                                       "/api/v1/playlists/" + urllib.parse.quote(summary["playlist_id"], safe=""))
        assert status == 200, document
        name = document["name"]
        assert isinstance(name, str) and 1 <= len(name.strip()) <= 100 and name == summary["name"]
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name), name
        assert isinstance(document["items"], list) and len(document["items"]) == summary["item_count"]
        for item in document["items"]:
            assert isinstance(item["video_id"], str) and isinstance(item["available"], bool), item
    # No orphan documents and no index entry without a document: a half-done write would leave one of these.
    stored = {key.rsplit("/", 1)[1] for key in fuzzed.service.kv.keys("playlists", "playlists/")} - {"index"}
    assert stored == {s["playlist_id"] for s in summaries}
    for playlist_id in fuzzed.playlist_ids:  # the seeded ones were never deleted
        assert playlist_id in {s["playlist_id"] for s in summaries}


# --- HTTP write routes ------------------------------------------------------------------------------------

PLAYLIST_WRITE = {201, 200} | BODY_ERRORS | {404, 409}


@FUZZ
@given(body=json_bodies({"name": "Fuzzed", "items": [{"video_id": "vid01"}]}))
def test_create_playlist_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/playlists", body)
    assert_documented(status, answer, {201} | BODY_ERRORS | {409})
    if status == 201:
        raw_request(fuzzed.port, "DELETE", "/api/v1/playlists/" + urllib.parse.quote(answer["playlist_id"], safe=""))


@FUZZ
@given(body=json_bodies({"name": "First", "items": [{"video_id": "vid01"}]}))
def test_replace_playlist_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    path = "/api/v1/playlists/" + fuzzed.playlist_ids[0]
    status, answer = raw_request(fuzzed.port, "PUT", path, body)
    assert_documented(status, answer, {200} | BODY_ERRORS | {409})
    if status == 200:  # put the name back so the next example starts from the same names
        raw_request(fuzzed.port, "PUT", path, json.dumps({"name": "First", "items": answer["items"]}).encode())


@FEW
@given(if_match=st.one_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
                          st.integers(-10**20, 10**20).map(lambda n: f'"{n}"'), st.just('W/"1"'), st.just("*")))
def test_if_match_header_fuzz(fuzzed: Fuzzed, if_match: str) -> None:
    path = "/api/v1/playlists/" + fuzzed.playlist_ids[1]
    status, answer = raw_request(fuzzed.port, "PUT", path, json.dumps({"name": "Second", "items": [
        {"video_id": "vid02"}, {"video_id": "gone1"}]}).encode(), extra_headers={"If-Match": if_match})
    assert_documented(status, answer, {200, 400, 409, 412, 422})


@pytest.mark.parametrize("size", [1024 * 1024 + 1])
def test_oversized_bodies_are_413(fuzzed: Fuzzed, size: int) -> None:
    body = json.dumps({"name": "big", "items": [], "pad": "x" * size}).encode()
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/playlists", body)
    assert_documented(status, answer, {413})


ids = st.one_of(st.text(max_size=20), st.sampled_from(["..", "../..", "..%2F..%2Fhealth", "%2e%2e", "a/../b",
                                                       "%00", "%ff", "x" * 5000, "\u00e9", "*", ">"]))


@FUZZ
@given(playlist_id=ids, body=st.sampled_from([b'{"name": "Q", "items": []}', b"{}"]))
def test_playlist_ids_with_traversal_fuzz(fuzzed: Fuzzed, playlist_id: str, body: bytes) -> None:
    path = "/api/v1/playlists/" + urllib.parse.quote(playlist_id, safe="%/.")
    status, answer = raw_request(fuzzed.port, "GET", path)
    assert_documented(status, answer, {200, 404, 405})
    status, answer = raw_request(fuzzed.port, "PUT", path, body)
    assert_documented(status, answer, {200, 404, 405, 409, 422})
    if status == 200:
        raw_request(fuzzed.port, "PUT", path, json.dumps({"name": answer["name"], "items": answer["items"]}).encode())


@FUZZ
@given(body=json_bodies({"sources": [{"type": "category", "category": "Movies"}], "method": "interleave",
                         "interleave_pattern": "A2"}))
def test_marathon_preview_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/marathons/preview", body)
    assert_documented(status, answer, {200, 404} | BODY_ERRORS)


@FEW
@given(body=json_bodies({"username": "alice"}))
def test_otp_request_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/auth/otp/request", body)
    assert_documented(status, answer, {200, 403, 409, 429, 503} | BODY_ERRORS)


@FUZZ
@given(body=json_bodies({"username": "alice", "otp": "K7P2QX9M"}))
def test_otp_verify_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/auth/otp/verify", body)
    assert_documented(status, answer, {200, 403, 429, 503} | BODY_ERRORS)
    if status == 200:
        assert answer["status"] in {"ok", "unrequested", "invalid", "locked"}, answer


@FUZZ
@given(body=json_bodies({"action": "unblock", "ip": "203.0.113.9"}))
def test_ipblock_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/auth/ipblock", body)
    assert_documented(status, answer, {200, 403} | BODY_ERRORS)
    if status == 200 and answer.get("status") == "blocked":
        # The fuzzer may block 127.0.0.1 itself (admin, any ip): lift it so later examples are not all 403.
        target = json.loads(body).get("ip")
        raw_request(fuzzed.port, "POST", "/api/v1/auth/ipblock", json.dumps(
            {"action": "unblock", "ip": target if isinstance(target, str) else "127.0.0.1"}).encode())


@FEW
@given(body=json_bodies({"connector": "jsonl"}))
def test_catalog_refresh_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/catalog/refresh", body)
    assert_documented(status, answer, {202, 409, 503} | BODY_ERRORS)
    if status == 202:
        wait_for(lambda: raw_request(fuzzed.port, "GET", f"/api/v1/catalog/refresh/{answer['job_id']}")[1]
                 .get("status") != "running", what="refresh finished")


@FEW
@given(body=json_bodies({"playlist_id": "", "mode": "append"}))
def test_queue_apply_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/queue/apply", body)
    assert_documented(status, answer, {200, 202, 403, 404, 409, 503} | BODY_ERRORS)
    if status == 202:
        wait_for(lambda: raw_request(fuzzed.port, "GET", f"/api/v1/queue/apply/{answer['apply_id']}")[1]
                 .get("status") != "running", what="apply finished")


@FEW
@given(data=st.data(), mode=mostly(st.sampled_from(["append", "preserve_current", "hard_replace"]), wrong_values),
       run_async=st.none() | wrong_values, extra=st.dictionaries(any_text, json_values, max_size=2))
def test_queue_apply_real_playlist_fuzz(fuzzed: Fuzzed, data: st.DataObject, mode: Any, run_async: Any,
                                        extra: dict[str, Any]) -> None:
    body = {**extra, "playlist_id": data.draw(st.sampled_from(fuzzed.playlist_ids)), "mode": mode}
    if run_async is not None:
        body["async"] = run_async
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/queue/apply", json.dumps(body).encode())
    assert_documented(status, answer, {200, 202, 403, 409, 503} | BODY_ERRORS)
    if status == 200:
        assert answer["status"] in {"queued", "partial", "failed"}, answer
    if status == 202:
        wait_for(lambda: raw_request(fuzzed.port, "GET", f"/api/v1/queue/apply/{answer['apply_id']}")[1]
                 .get("status") != "running", what="apply finished")


@FUZZ
@given(body=json_bodies({"username": "local"}))
def test_like_current_fuzz(fuzzed: Fuzzed, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/likes/current", body)
    assert_documented(status, answer, {200, 403, 409, 429} | BODY_ERRORS)


@FEW
@given(content_type=st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                                     "application/json; charset=latin-1", "multipart/form-data; boundary=x"]),
       body=st.binary(min_size=1, max_size=50))
def test_wrong_content_types(fuzzed: Fuzzed, content_type: str, body: bytes) -> None:
    status, answer = raw_request(fuzzed.port, "POST", "/api/v1/playlists", body, content_type)
    assert_documented(status, answer, {201, 400, 409, 415, 422})


# --- HTTP GET routes --------------------------------------------------------------------------------------

GET_ROUTES = ["/api/v1/catalog/search", "/api/v1/catalog/categories", "/api/v1/playlists", "/api/v1/nowplaying",
              "/api/v1/stats/top-played", "/api/v1/stats/top-liked", "/api/v1/stats/summary", "/api/v1/queue",
              "/api/v1/health", "/api/v1/auth/me", "/api/v1/catalog/items/vid01"]
QUERY_NAMES = ["q", "category", "limit", "offset", "snapshot_id", "window_days", "x"]
query_values = st.one_of(any_text, st.integers(min_value=-10**30, max_value=10**30).map(str),
                         st.sampled_from(["", "1e3", "0x10", " 5", "5 ", "+5", "-0", "٣", "1.5", "x" * 100_000]))


@FUZZ
@given(route=st.sampled_from(GET_ROUTES), query=st.lists(st.tuples(st.sampled_from(QUERY_NAMES), query_values),
                                                        max_size=5))
def test_get_query_strings_fuzz(fuzzed: Fuzzed, route: str, query: list[tuple[str, str]]) -> None:
    encoded = urllib.parse.urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in query])
    status, answer = raw_request(fuzzed.port, "GET", route + ("?" + encoded if encoded else ""))
    assert_documented(status, answer, {200, 404, 414, 422, 431, 503} if len(encoded) > 8000
                      else {200, 404, 422, 503})


# --- NATS admin commands ----------------------------------------------------------------------------------

COMMANDS = ["queue_apply", "blessed_add", "blessed_remove", "blessed_list", "admins_list", "no_such", "catalog_refresh"]


def nats_raw(fuzzed: Fuzzed, subject: str, payload: bytes, timeout: float = 5) -> dict[str, Any]:
    async def ask() -> Any:
        return await fuzzed.tool.nc.request(subject, payload, timeout=timeout)

    reply = fuzzed.tool.run(ask, timeout=timeout + 2)
    return json.loads(reply.data)


def assert_native_reply(reply: dict[str, Any]) -> None:
    assert reply["status"] in {"ok", "error"}, reply
    assert "correlation_id" in reply and "error" in reply, reply
    assert reply["correlation_id"] is None or isinstance(reply["correlation_id"], str | int | float), reply
    assert (reply["error"] is None) == (reply["status"] == "ok"), reply
    event(f"NATS {reply['status']} {ascii(str(reply['error'])[:30])}")


def addressed_elsewhere(payload: bytes, namespace: str) -> bool:
    """True when the request names a namespace that is well-formed and not ours (then silence is right)."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and isinstance(value.get("namespace"), str) and value["namespace"] != namespace


@FUZZ
@given(command=st.sampled_from(COMMANDS), payload=st.one_of(raw_bodies, st.binary(max_size=100)))
def test_native_commands_random_bytes(fuzzed: Fuzzed, command: str, payload: bytes) -> None:
    if addressed_elsewhere(payload, fuzzed.namespace):
        return
    if command == "catalog_refresh" and is_object(payload):
        return  # an object may be a valid admin refresh by `local`; random bytes never are
    assert_native_reply(nats_raw(fuzzed, f"kryten.playlist.cmd.{command}", payload))


requesters = mostly(st.sampled_from(["Boss", "boss", "nobody", "local"]), wrong_values)
command_fields = st.fixed_dictionaries(
    {"correlation_id": mostly(st.text(min_size=1, max_size=20), wrong_values), "requested_by": requesters},
    optional={"playlist_id": wrong_values, "playlist_name": mostly(st.sampled_from(["First", "second", "none"]),
                                                                   wrong_values),
              "mode": mostly(st.sampled_from(["append", "preserve_current", "hard_replace"]), wrong_values),
              "username": mostly(st.sampled_from(["fuzzy", "Boss", "a" * 21, "b@d"]), wrong_values)})


@FUZZ
@given(command=st.sampled_from(COMMANDS), fields=command_fields,
       extra=st.dictionaries(any_text, json_values, max_size=3), namespace_ok=mostly(st.just(True), st.just(False)))
def test_native_commands_random_objects(fuzzed: Fuzzed, command: str, fields: dict[str, Any],
                                        extra: dict[str, Any], namespace_ok: bool) -> None:
    request: dict[str, Any] = {**extra, **fields}
    request.pop("namespace", None)
    if namespace_ok:
        request["namespace"] = fuzzed.namespace
    if command == "catalog_refresh":
        request["requested_by"] = "nobody"  # a non-admin: refused at once instead of a refresh
    reply = nats_raw(fuzzed, f"kryten.playlist.cmd.{command}", json.dumps(request).encode())
    assert_native_reply(reply)
    if isinstance(request.get("correlation_id"), str):
        assert reply["correlation_id"] == request["correlation_id"]
    if command == "blessed_add" and reply["status"] == "ok":
        fuzzed.service.acl.unbless(str(request["username"]))


@FUZZ
@given(envelope=mostly(
    st.fixed_dictionaries({"command": mostly(st.sampled_from(COMMANDS + ["system.ping"]), wrong_values)},
                          optional={"args": mostly(command_fields, wrong_values),
                                    "meta": st.dictionaries(st.sampled_from(["source", "request_id", "timestamp"]),
                                                            wrong_values, max_size=3) | wrong_values,
                                    "x": json_values}).map(lambda v: json.dumps(v).encode()),
    st.one_of(raw_bodies, st.binary(max_size=100))))
def test_ecosystem_commands_random(fuzzed: Fuzzed, envelope: bytes) -> None:
    try:
        value = json.loads(envelope.decode("utf-8"))
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict) and value.get("command") == "catalog_refresh":
        args = value.get("args") if isinstance(value.get("args"), dict) else {}
        value["args"] = {**args, "requested_by": "nobody"}  # keep refreshes out: a non-admin is refused at once
        envelope = json.dumps(value).encode()
    reply = nats_raw(fuzzed, "kryten.playlist.command", envelope)
    assert reply["service"] == "playlist" and isinstance(reply["success"], bool), reply
    assert "command" in reply, reply
    event(f"NATS success={reply['success']} {ascii(str(reply.get('error'))[:30])}")
    if reply["success"]:
        assert "data" in reply, reply
    else:
        assert isinstance(reply["error"], str) and reply["error"], reply
    if isinstance(value, dict) and value.get("command") == "blessed_add" and reply["success"]:
        fuzzed.service.acl.unbless(str(value["args"]["username"]))


def test_deeply_nested_nats_payloads_get_an_error_reply(fuzzed: Fuzzed) -> None:
    """json.loads raises RecursionError (not ValueError) past ~1000 levels; it used to drop the reply."""
    deep = b"[" * 5000 + b"]" * 5000
    assert nats_raw(fuzzed, "kryten.playlist.command", deep)["success"] is False
    reply = nats_raw(fuzzed, "kryten.playlist.cmd.blessed_list", deep)
    assert reply["status"] == "error" and reply["correlation_id"] is None


@pytest.mark.parametrize("path", ["/api/v1/playlists", "/api/v1/marathons/preview", "/api/v1/auth/otp/verify"])
def test_lone_surrogate_escape_is_bad_json_not_500(fuzzed: Fuzzed, path: str) -> None:
    """It parsed, then broke the UTF-8 encode of the KV write half-way through a create (a 500)."""
    status, answer = raw_request(fuzzed.port, "POST", path, b'{"name": "a\\ud800", "items": []}')
    assert_documented(status, answer, {400})
    assert answer["error"]["code"] == "bad_json"
    status, answer = raw_request(fuzzed.port, "POST", path, b'{"name": "a\\ud83d\\ude00"}')  # a proper pair
    assert status != 400 and status != 500, answer
    if path == "/api/v1/playlists" and status == 201:
        raw_request(fuzzed.port, "DELETE", "/api/v1/playlists/" + answer["playlist_id"])


def test_other_namespace_stays_silent(fuzzed: Fuzzed) -> None:
    with pytest.raises(NatsUnavailable):
        fuzzed.tool.request("kryten.playlist.cmd.blessed_list", {"correlation_id": "c", "namespace": "elsewhere",
                                                                "requested_by": "local"}, timeout=1)


# --- afterwards -------------------------------------------------------------------------------------------

def test_zz_stored_data_still_valid(fuzzed: Fuzzed) -> None:
    """Runs last in the module (pytest keeps file order): everything the fuzzers wrote is still readable."""
    assert_stored_data_valid(fuzzed)
    status, health = raw_request(fuzzed.port, "GET", "/api/v1/health")
    assert status == 200 and health["status"] in {"ok", "degraded"}
