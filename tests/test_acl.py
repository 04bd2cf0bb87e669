"""Roles from config, KV and CyTube ranks; the ACL admin commands over NATS (both forms) and the CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin.robot import RobotStandIn
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)
from tests.test_auth import Client, code_sent_to, sign_in, users
from tests.test_cli import CHILD_ENV, CLI, write_config


@pytest.fixture
def acl_service(make_config: Callable[..., Config], config: Config) -> Iterator[PlaylistService]:
    running = start_service(make_config(namespace=config.namespace, initial_admins=["Boss"],
                                        blessed_users=["Helper"]))
    wait_for(lambda: running.ready)
    yield running
    running.stop()


def native(tool: NatsBridge, config: Config, command: str, requested_by: str, **fields: Any) -> dict[str, Any]:
    return tool.request(f"kryten.playlist.cmd.{command}", {
        "correlation_id": f"c-{command}", "namespace": config.namespace, "requested_by": requested_by, **fields},
        timeout=10)


def ecosystem(tool: NatsBridge, command: str, args: dict[str, Any], source: str = "kryten-cli") -> dict[str, Any]:
    return tool.request("kryten.playlist.command", {
        "command": command, "args": args,
        "meta": {"source": source, "timestamp": "2026-11-24T00:00:00Z", "request_id": "r-1",
                 "domain": "cytu.be", "channel": "lounge"}}, timeout=10)


def test_blessed_users_are_seeded_once_from_config(acl_service: PlaylistService) -> None:
    assert acl_service.acl.blessed() == ["helper"]
    acl_service.acl.unbless("helper")
    assert acl_service.acl.blessed() == []  # the seed does not come back


def test_acl_commands_in_the_native_form(acl_service: PlaylistService, bridge: NatsBridge,
                                         config: Config) -> None:
    reply = native(bridge, config, "blessed_add", "boss", username="Carol")
    assert reply == {"correlation_id": "c-blessed_add", "status": "ok", "error": None}
    assert native(bridge, config, "blessed_list", "BOSS")["blessed"] == ["carol", "helper"]
    assert native(bridge, config, "admins_list", "boss")["admins"] == ["boss"]
    assert acl_service.roles.role_of("carol") in ("blessed", "viewer")  # the cache may hold 5 s
    wait_for(lambda: acl_service.roles.role_of("Carol") == "blessed", timeout=5)
    native(bridge, config, "blessed_remove", "boss", username="carol")
    assert native(bridge, config, "blessed_list", "boss")["blessed"] == ["helper"]


def test_acl_commands_refuse_non_admins_and_bad_names(acl_service: PlaylistService, bridge: NatsBridge,
                                                     config: Config) -> None:
    denied = native(bridge, config, "blessed_add", "helper", username="carol")
    assert denied["status"] == "error" and "admin" in denied["error"]
    denied = native(bridge, config, "blessed_list", "nobody")
    assert denied == {"correlation_id": "c-blessed_list", "status": "error", "error": denied["error"],
                      "blessed": []}
    bad = native(bridge, config, "blessed_add", "boss", username="no spaces allowed")
    assert bad["status"] == "error" and "username" in bad["error"]
    missing = native(bridge, config, "blessed_add", "boss")
    assert missing["status"] == "error" and "username" in missing["error"]
    assert acl_service.acl.blessed() == ["helper"]


def test_acl_commands_in_the_ecosystem_form(acl_service: PlaylistService, bridge: NatsBridge) -> None:
    reply = ecosystem(bridge, "blessed_add", {"username": "dave", "requested_by": "boss"})
    assert reply == {"service": "playlist", "command": "blessed_add", "success": True, "data": {}}
    listed = ecosystem(bridge, "blessed_list", {}, source="Boss")
    assert listed["success"] is True and listed["data"]["blessed"] == ["dave", "helper"]
    refused = ecosystem(bridge, "admins_list", {}, source="dave")
    assert refused["success"] is False and "admin" in refused["error"]


def test_roles_from_cytube_ranks_when_configured(make_config: Callable[..., Config], config: Config,
                                                 robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users([{"name": "Mod", "rank": 3, "profile": {}, "meta": {}},
                     {"name": "Regular", "rank": 2, "profile": {}, "meta": {}},
                     {"name": "Guest", "rank": 0, "profile": {}, "meta": {}}])
    service = start_service(make_config(namespace=config.namespace, admin_min_rank=3, blessed_min_rank=2))
    try:
        wait_for(lambda: service.ready)
        assert [service.roles.role_of(name) for name in ("mod", "REGULAR", "guest", "absent")] == \
            ["admin", "blessed", "viewer", "viewer"]
    finally:
        service.stop()


def test_a_session_cookie_is_secure_behind_a_trusted_https_proxy(make_config: Callable[..., Config],
                                                                 config: Config,
                                                                 robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users(users("Alice"))
    service = start_service(make_config(namespace=config.namespace, trusted_proxies=["127.0.0.1"]))
    try:
        wait_for(lambda: service.ready)
        client = Client(service)
        client.request_code("Alice")
        status, headers, answer = http_json(
            "POST", client.base + "/api/v1/auth/otp/verify", {"username": "Alice", "otp": code_sent_to(robot, "Alice")},
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
        assert status == 200 and answer["status"] == "ok"
        assert "secure" in {part.strip().lower() for part in headers["Set-Cookie"].split(";")}
        assert service.sessions.get(headers["Set-Cookie"].split(";")[0].split("=")[1])["ip"] == "198.51.100.7"
    finally:
        service.stop()


def test_sessions_made_by_one_replica_work_on_another(acl_service: PlaylistService, config: Config,
                                                      make_config: Callable[..., Config],
                                                      robot: RobotStandIn) -> None:  # noqa: F811
    robot.set_users(users("boss"))
    client = sign_in(acl_service, robot, "boss")
    other = start_service(make_config(namespace=config.namespace, initial_admins=["Boss"]))
    try:
        wait_for(lambda: other.ready)
        client.base = f"http://127.0.0.1:{other.http.port}"
        status, me = client.call("GET", "/api/v1/auth/me")
        assert status == 200 and me["role"] == "admin"
    finally:
        other.stop()


def test_acl_from_the_command_line(tmp_path: Path, nats_server: NatsServerProcess, config: Config) -> None:
    path = write_config(tmp_path, nats_url=nats_server.url, namespace=config.namespace, initial_admins=["boss"])

    def acl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "acl", *args, "--config", str(path)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env=CHILD_ENV, check=False)

    assert acl("bless", "Erin").returncode == 0
    listed = acl("list")
    assert listed.returncode == 0 and "blessed: erin" in listed.stdout and "admins:  boss" in listed.stdout
    assert "blessed: (none)" in acl("unbless", "erin").stdout
    refused = acl("bless", "no good")
    assert refused.returncode == 1 and "username" in refused.stderr
