"""The command line as a person runs it: a real process, real signals, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from kryten_playlist_lib import package_version
from kryten_playlist_lib.bus.natsserver import free_port
from tests.helpers import http_json, no_traceback_when_done, stop_with_sigterm, wait_for

CLI = [sys.executable, "-m", "kryten_playlist"]
# The child imports this checkout's code even when an older copy is installed.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=CHILD_ENV,
                          check=False)


def write_config(folder: Path, **values: Any) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"kryten-playlist {package_version()}"
    assert package_version() != "0.0.0+unknown"


def test_config_check_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    path = write_config(tmp_path, nats_url="nats://admin:hunter2@127.0.0.1:4222", nats_token="tok-123",
                        nats_subject_prefix="cytube", service_name="kryten-playlist", unused_upstream_key=1)
    result = run_cli("config", "check", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["nats_subject_prefix"] == "cytube"
    assert printed["http_port"] == 8088
    assert "hunter2" not in result.stdout and "tok-123" not in result.stdout
    assert "unused_upstream_key" in result.stderr


def test_a_bad_config_value_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, http_port="many")
    result = run_cli("config", "check", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "http_port" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_verb_is_a_usage_error(tmp_path: Path) -> None:
    assert run_cli("frobnicate", cwd=tmp_path).returncode == 2


def test_serve_with_embedded_nats_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, http_port=port, sqlite_path=str(tmp_path / "data" / "catalog.sqlite3"),
                        state_path=str(tmp_path / "data" / "state.sqlite3"),
                        secret_path=str(tmp_path / "data" / "secret.key"))
    process = subprocess.Popen([*CLI, "serve", "--embedded-nats", "--config", str(path)], cwd=tmp_path, env=CHILD_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with no_traceback_when_done(process):
        health = f"http://127.0.0.1:{port}/api/v1/health"
        wait_for(lambda: _nats_connected(health), timeout=30, what="serve connected to its embedded NATS")
        assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "data" / "nats").is_dir()
        assert stop_with_sigterm(process) < 5.0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def _nats_connected(url: str) -> bool:
    try:
        status, _headers, body = http_json("GET", url)
    except OSError:
        return False
    return status == 200 and body["nats"] == "connected"
