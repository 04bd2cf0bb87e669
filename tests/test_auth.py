"""Sign-in, sessions, roles and IP blocks against the real service, a real nats-server and the robot stand-in."""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import pytest

from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin.robot import RobotStandIn
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)

CODE = re.compile(r"\b([A-HJ-NP-Z2-9]{8})\b")
CHANNEL_USERS = ["Alice", "Some_User-X", "boss", "helper", "viewer1"]


def users(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "rank": 1, "profile": {}, "meta": {}} for name in names]


@pytest.fixture
def auth_service(make_config: Callable[..., Config], robot: RobotStandIn, config: Config  # noqa: F811
                 ) -> Iterator[PlaylistService]:
    robot.set_users(users(*CHANNEL_USERS))
    running = start_service(make_config(namespace=config.namespace, initial_admins=["Boss"],
                                        blessed_users=["helper"], cytube_channel=config.cytube_channel))
    wait_for(lambda: running.ready)
    yield running
    running.stop()


class Client:
    """A browser-like client: keeps the session cookie, sends the CSRF header."""

    def __init__(self, service: PlaylistService) -> None:
        self.base = f"http://127.0.0.1:{service.http.port}"
        self.cookie: str | None = None
        self.last_headers: Message = Message()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Cookie": f"kryten_playlist_session={self.cookie}"} if self.cookie else {}
        status, self.last_headers, answer = http_json(method, self.base + path, body, headers)
        cookie = self.last_headers.get("Set-Cookie", "")
        if cookie.startswith("kryten_playlist_session="):
            value = cookie.split(";", 1)[0].split("=", 1)[1].strip('"')
            self.cookie = value or None
        return status, answer

    def request_code(self, username: str) -> tuple[int, Any]:
        return self.call("POST", "/api/v1/auth/otp/request", {"username": username})

    def verify(self, username: str, otp: str) -> dict[str, Any]:
        status, answer = self.call("POST", "/api/v1/auth/otp/verify", {"username": username, "otp": otp})
        assert status == 200, answer
        return answer


def code_sent_to(robot: RobotStandIn, username: str, after: int = 0) -> str:  # noqa: F811
    wait_for(lambda: len(robot.pms_to(username)) > after, what=f"a PM to {username}")
    match = CODE.search(robot.pms_to(username)[after])
    assert match, "the PM holds no code"
    return match.group(1)


def sign_in(service: PlaylistService, robot: RobotStandIn, username: str) -> Client:  # noqa: F811
    client = Client(service)
    already = len(robot.pms_to(username))
    assert client.request_code(username)[0] == 200
    assert client.verify(username, code_sent_to(robot, username, already))["status"] == "ok"
    return client


def test_a_full_sign_in_with_the_code_from_the_pm(auth_service: PlaylistService, robot: RobotStandIn  # noqa: F811
                                                  ) -> None:
    client = Client(auth_service)
    status, answer = client.request_code("Alice")
    assert (status, answer) == (200, {"status": "sent", "expires_in_seconds": 300})
    code = code_sent_to(robot, "Alice")
    assert client.verify("alice", f"  {code.lower()} ") == {"status": "ok", "role": "viewer"}
    attributes = {part.strip().lower() for part in client.last_headers["Set-Cookie"].split(";")[1:]}
    assert attributes == {"httponly", "samesite=lax", "path=/", "max-age=43200"}
    status, me = client.call("GET", "/api/v1/auth/me")
    assert status == 200 and me["username"] == "alice" and me["role"] == "viewer"
    assert me["can"] == {"edit_playlists": False, "apply": False, "hard_replace": False, "view_stats": False}
    assert client.verify("alice", code)["status"] == "unrequested"  # single use
    assert client.call("POST", "/api/v1/auth/logout") == (200, {"status": "logged_out"})
    assert client.cookie is None and "max-age=0" in client.last_headers["Set-Cookie"].lower()
    assert Client(auth_service).call("GET", "/api/v1/auth/me")[0] == 401


def test_wrong_codes_count_down_then_lock_the_user_and_address(auth_service: PlaylistService,
                                                              robot: RobotStandIn) -> None:  # noqa: F811
    client = Client(auth_service)
    client.request_code("Alice")
    code_sent_to(robot, "Alice")
    assert client.verify("Alice", "WRONGWR1") == {"status": "invalid", "attempts_remaining": 2}
    assert client.verify("Alice", "WRONGWR2") == {"status": "invalid", "attempts_remaining": 1}
    assert client.verify("Alice", "WRONGWR3") == {"status": "locked", "retry_after_seconds": 3600}
    status, answer = client.request_code("Alice")
    assert status == 429 and answer["error"]["details"]["reason"] == "locked"
    assert int(client.last_headers["Retry-After"]) > 3500


def test_twenty_parallel_wrong_guesses_count_at_most_three(auth_service: PlaylistService,
                                                          robot: RobotStandIn) -> None:  # noqa: F811
    client = Client(auth_service)
    client.request_code("Alice")
    code = code_sent_to(robot, "Alice")
    answers: list[Any] = []
    start = threading.Barrier(20)

    def guess(n: int) -> None:
        start.wait()
        answers.append(Client(auth_service).call("POST", "/api/v1/auth/otp/verify",
                                                 {"username": "Alice", "otp": f"BAD{n:05d}"}))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = [body.get("status") if status == 200 else status for status, body in answers]
    assert len(answers) == 20
    assert statuses.count("invalid") <= 2 and "ok" not in statuses
    assert set(statuses) <= {"invalid", "locked", 429}
    assert client.verify("Alice", code)["status"] == "locked"


def test_two_parallel_correct_verifies_make_exactly_one_session(auth_service: PlaylistService,
                                                               robot: RobotStandIn) -> None:  # noqa: F811
    Client(auth_service).request_code("Alice")
    code = code_sent_to(robot, "Alice")
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def verify() -> None:
        start.wait()
        answers.append(Client(auth_service).verify("Alice", code))

    threads = [threading.Thread(target=verify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a["status"] for a in answers) in (["locked", "ok"], ["ok", "unrequested"])
    assert auth_service.kv.get("auth", "unsolicited/127.0.0.1") is None or \
        sorted(a["status"] for a in answers) == ["ok", "unrequested"]
    assert len(auth_service.kv.keys("auth", "session/")) == 1


def test_an_unrequested_code_lets_that_address_block_itself(auth_service: PlaylistService,
                                                           robot: RobotStandIn) -> None:  # noqa: F811
    admin = sign_in(auth_service, robot, "boss")
    stranger = Client(auth_service)
    assert stranger.call("POST", "/api/v1/auth/ipblock", {"action": "block", "hours": 2})[0] == 403
    assert stranger.verify("Alice", "ABCDEFGH") == {"status": "unrequested", "can_block_ip": True,
                                                     "default_block_hours": 72}
    status, answer = stranger.call("POST", "/api/v1/auth/ipblock", {"action": "block", "hours": 2})
    assert status == 200 and answer["status"] == "blocked"
    status, answer = stranger.request_code("Alice")
    assert status == 403 and answer["error"]["code"] == "ip_blocked"
    assert 7100 < answer["error"]["details"]["retry_after_seconds"] <= 7200
    assert stranger.verify("Alice", "ABCDEFGH")["status"] == "locked"
    assert stranger.call("POST", "/api/v1/auth/ipblock", {"action": "unblock", "ip": "127.0.0.1"})[0] == 403
    assert admin.call("POST", "/api/v1/auth/ipblock", {"action": "unblock", "ip": "127.0.0.1"}) == \
        (200, {"status": "unblocked"})
    assert stranger.request_code("Alice")[0] == 200


def test_an_admin_blocks_and_unblocks_the_ipv6_loopback(auth_service: PlaylistService,
                                                        robot: RobotStandIn) -> None:  # noqa: F811
    admin = sign_in(auth_service, robot, "boss")
    assert admin.call("POST", "/api/v1/auth/ipblock", {"action": "block", "ip": "::1", "hours": 1})[0] == 200
    assert auth_service.kv.get("auth", "ipblock/=Ojox") is not None
    assert 3500 < auth_service.signin.ip_block_seconds("::1") <= 3600
    assert admin.call("POST", "/api/v1/auth/ipblock", {"action": "unblock", "ip": "::1"}) == \
        (200, {"status": "unblocked"})
    assert auth_service.signin.ip_block_seconds("::1") == 0
    for bad in ({"action": "block", "ip": "not-an-ip", "hours": 1}, {"action": "block", "hours": 0},
                {"action": "block", "hours": 721}, {"action": "explode"}):
        assert admin.call("POST", "/api/v1/auth/ipblock", bad)[0] == 422, bad


def test_an_expired_code_says_ask_for_a_new_one(make_config: Callable[..., Config], config: Config,
                                               robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users(users("Alice"))
    service = start_service(make_config(namespace=config.namespace, otp_ttl_seconds=1,
                                        cytube_channel=config.cytube_channel))
    try:
        wait_for(lambda: service.ready)
        client = Client(service)
        client.request_code("Alice")
        code = code_sent_to(robot, "Alice")
        wait_for(lambda: service.kv.get("auth", "otp/request/alice") is None, what="the code to expire")
        assert client.verify("Alice", code) == {"status": "locked", "retry_after_seconds": 0}
    finally:
        service.stop()


def test_a_user_not_in_the_channel_gets_no_code(auth_service: PlaylistService, robot: RobotStandIn  # noqa: F811
                                                ) -> None:
    status, answer = Client(auth_service).request_code("nobody_here")
    assert status == 409 and answer["error"]["code"] == "user_not_in_channel"
    assert robot.pms_to("nobody_here") == []


def test_a_silent_robot_is_503_and_nothing_is_stored(make_config: Callable[..., Config], config: Config,
                                                     robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users(users("Alice"))
    service = start_service(make_config(namespace=config.namespace, robot_timeout_seconds=1,
                                        cytube_channel=config.cytube_channel))
    try:
        wait_for(lambda: service.ready)
        robot.stop_answering()
        status, answer = Client(service).request_code("Alice")
        assert status == 503 and answer["error"]["code"] == "robot_unavailable"
        assert service.kv.get("auth", "otp/request/alice") is None
    finally:
        robot.resume_answering()
        service.stop()


def test_requests_per_user_are_rate_limited_with_retry_after(auth_service: PlaylistService,
                                                            robot: RobotStandIn) -> None:  # noqa: F811
    client = Client(auth_service)
    assert [client.request_code("Alice")[0] for _ in range(3)] == [200, 200, 200]
    status, answer = client.request_code("alice")
    assert status == 429 and answer["error"]["code"] == "rate_limited"
    assert 0 < int(client.last_headers["Retry-After"]) <= 900
    assert answer["error"]["details"]["retry_after_seconds"] == int(client.last_headers["Retry-After"])


def test_usernames_are_one_identity_regardless_of_case(auth_service: PlaylistService,
                                                       robot: RobotStandIn) -> None:  # noqa: F811
    client = Client(auth_service)
    assert client.request_code("some_user-x")[0] == 200
    assert robot.pms_to("Some_User-X"), "the PM goes to the name as the channel spells it"
    assert client.verify("SOME_USER-X", code_sent_to(robot, "Some_User-X"))["status"] == "ok"
    assert client.call("GET", "/api/v1/auth/me")[1]["username"] == "SOME_USER-X"


def test_roles_follow_kv_changes_within_five_seconds(auth_service: PlaylistService,
                                                     robot: RobotStandIn) -> None:  # noqa: F811
    helper = sign_in(auth_service, robot, "helper")
    assert helper.call("GET", "/api/v1/auth/me")[1]["role"] == "blessed"
    assert helper.call("POST", "/api/v1/playlists", {"name": "Mine", "items": []})[0] == 201
    auth_service.acl.unbless("helper")
    wait_for(lambda: helper.call("POST", "/api/v1/playlists", {"name": "Again", "items": []})[0] == 403,
             timeout=5, what="a 403 for the unblessed user")
    assert helper.call("GET", "/api/v1/auth/me")[1]["role"] == "viewer"
    viewer = sign_in(auth_service, robot, "viewer1")
    auth_service.kv.put("acl", "admins", ["viewer1"])
    wait_for(lambda: viewer.call("GET", "/api/v1/catalog/refresh/" + "0" * 32)[0] == 404, timeout=5)
    auth_service.kv.put("acl", "admins", [])
    wait_for(lambda: viewer.call("GET", "/api/v1/catalog/refresh/" + "0" * 32)[0] == 403, timeout=5,
             what="a 403 once the admin is removed")


# Every route and the lowest role it admits; None means anyone. A new route must be added here.
ROUTE_ROLES: dict[tuple[str, str], str | None] = {
    ("GET", "/api/v1/health"): None,
    ("GET", "/metrics"): None,
    ("GET", "/api/v1/catalog/search"): None,
    ("GET", "/api/v1/catalog/categories"): None,
    ("GET", "/api/v1/catalog/items/<video_id:re:[A-Za-z0-9_-]{1,64}>"): None,
    ("POST", "/api/v1/catalog/refresh"): "admin",
    ("GET", "/api/v1/catalog/refresh/<job_id>"): "admin",
    ("POST", "/api/v1/auth/otp/request"): None,
    ("POST", "/api/v1/auth/otp/verify"): None,
    ("POST", "/api/v1/auth/ipblock"): None,
    ("POST", "/api/v1/auth/logout"): None,
    ("GET", "/api/v1/auth/me"): "viewer",
    ("GET", "/api/v1/playlists"): "viewer",
    ("POST", "/api/v1/playlists"): "blessed",
    ("GET", "/api/v1/playlists/<playlist_id>"): "viewer",
    ("PUT", "/api/v1/playlists/<playlist_id>"): "blessed",
    ("DELETE", "/api/v1/playlists/<playlist_id>"): "blessed",
    ("POST", "/api/v1/marathons/preview"): "viewer",
    ("GET", "/api/v1/nowplaying"): "viewer",
    ("POST", "/api/v1/likes/current"): "viewer",
    ("GET", "/api/v1/stats/top-played"): "blessed",
    ("GET", "/api/v1/stats/top-liked"): "blessed",
    ("GET", "/api/v1/stats/summary"): "blessed",
    ("POST", "/api/v1/queue/apply"): "blessed",
    ("GET", "/api/v1/queue/apply/<apply_id>"): "blessed",
    ("GET", "/api/v1/queue"): "viewer",
    # the web pages of ui.md: the shells are public, the API behind them decides
    ("GET", "/"): None,
    ("GET", "/login"): None,
    ("GET", "/playlists"): None,
    ("GET", "/playlists/<playlist_id>"): None,
    ("GET", "/marathon"): None,
    ("GET", "/apply"): None,
    ("GET", "/stats"): None,
    ("GET", "/static/<path:path>"): None,
}
ROLE_ORDER = [None, "viewer", "blessed", "admin"]


def test_every_route_admits_exactly_the_roles_of_the_table(auth_service: PlaylistService,
                                                          robot: RobotStandIn) -> None:  # noqa: F811
    registered = {(route.method, route.rule) for route in auth_service.app.routes}
    assert registered == set(ROUTE_ROLES), "a route is missing from ROUTE_ROLES (or the table is stale)"
    clients = {None: Client(auth_service), "viewer": sign_in(auth_service, robot, "viewer1"),
               "blessed": sign_in(auth_service, robot, "helper"), "admin": sign_in(auth_service, robot, "boss")}
    for (method, rule), needed in ROUTE_ROLES.items():
        if needed is None:
            continue
        path = re.sub(r"<[^>]+>", "x" * 32, rule)
        for role, client in clients.items():
            status, _answer = client.call(method, path, {} if method in ("POST", "PUT") else None)
            admitted = ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)
            assert (status not in (401, 403)) == admitted, (method, rule, role, status)
            if not admitted:
                assert status == (401 if role is None else 403)


def test_no_code_session_id_or_secret_in_any_log_line_or_in_kv(auth_service: PlaylistService,
                                                               robot: RobotStandIn,  # noqa: F811
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client(auth_service)
    client.request_code("Alice")
    code = code_sent_to(robot, "Alice")
    stored = json.dumps([auth_service.kv.get("auth", key).value for key in auth_service.kv.keys("auth")])
    assert code not in stored and code.lower() not in stored
    client.verify("Alice", code)
    session_id = client.cookie
    assert session_id and client.call("GET", "/api/v1/auth/me")[0] == 200
    client.call("POST", "/api/v1/auth/logout")
    assert caplog.records, "nothing was logged, so nothing was checked"
    for secret in (code, session_id, auth_service.secret.hex()):
        assert secret not in caplog.text


def post_raw(url: str, data: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": content_type, "X-Requested-With": "kryten-playlist"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_bodies_get_their_documented_errors(auth_service: PlaylistService) -> None:
    url = Client(auth_service).base + "/api/v1/auth/otp/request"
    try:
        status, answer = post_raw(url, b"x" * (1024 * 1024 + 10))
        assert status == 413 and answer["error"]["code"] == "payload_too_large"
    except (ConnectionError, urllib.error.URLError):
        pass  # cheroot may close the socket while a client still sends a large body (spec/http.md)
    status, answer = post_raw(url, b'{"username": ')
    assert status == 400 and answer["error"]["code"] == "bad_json"
    status, answer = post_raw(url, b'username=alice', "application/x-www-form-urlencoded")
    assert status == 415
    for name in ("bad name!", 5, "x" * 21, None):
        status, answer = post_raw(url, json.dumps({"username": name}).encode())
        assert status == 422 and "username" in answer["error"]["details"]["fields"], name
