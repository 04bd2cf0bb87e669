"""`catalog refresh` and `catalog search` as an operator runs them, against a real nats-server."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from tests.test_catalog_api import small_catalog
from tests.test_cli import CHILD_ENV, CLI, write_config


def catalog_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "catalog", *args, "--config", str(config)], cwd=config.parent,
                          capture_output=True, text=True, timeout=120, env=CHILD_ENV, check=False)


def operator_config(tmp_path: Path, nats_url: str) -> Path:
    return write_config(tmp_path, nats_url=nats_url, namespace="cli" + secrets.token_hex(4),
                        sqlite_path=str(tmp_path / "data" / "catalog.sqlite3"))


def test_refresh_then_search_from_the_command_line(tmp_path: Path, nats_server: NatsServerProcess) -> None:
    config = operator_config(tmp_path, nats_server.url)
    refreshed = catalog_cli("refresh", "--connector", "jsonl", "--source", str(small_catalog(tmp_path / "c.jsonl")),
                            config=config)
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout.startswith("snapshot ") and ": 4 items" in refreshed.stdout
    found = catalog_cli("search", "silk", config=config)
    assert found.returncode == 0, found.stderr
    assert [line.split("\t")[0] for line in found.stdout.splitlines()] == ["vid01", "vid02"]
    assert "2 of 2 matches" in found.stderr
    only_movies = catalog_cli("search", "s", "--category", "Movies", "--category", "Sci-Fi", config=config)
    assert [line.split("\t")[0] for line in only_movies.stdout.splitlines()] == ["vid03"]


def test_a_refused_refresh_exits_1_with_one_clear_line(tmp_path: Path, nats_server: NatsServerProcess) -> None:
    config = operator_config(tmp_path, nats_server.url)
    assert catalog_cli("refresh", "--connector", "fake", "--source", "200", config=config).returncode == 0
    small = tmp_path / "one.jsonl"
    small.write_text(json.dumps({"video_id": "x1", "title": "Only one"}) + "\n")
    refused = catalog_cli("refresh", "--connector", "jsonl", "--source", str(small), config=config)
    assert refused.returncode == 1
    assert "use --force" in refused.stderr and "Traceback" not in refused.stderr
    forced = catalog_cli("refresh", "--connector", "jsonl", "--source", str(small), "--force", config=config)
    assert forced.returncode == 0 and ": 1 item" in forced.stdout


def test_refresh_without_nats_says_so(tmp_path: Path) -> None:
    config = operator_config(tmp_path, "nats://127.0.0.1:1")
    result = catalog_cli("refresh", "--connector", "fake", config=config)
    assert result.returncode == 1
    assert "NATS is not reachable at nats://127.0.0.1:1" in result.stderr


def test_search_before_any_refresh_says_what_to_do(tmp_path: Path) -> None:
    result = catalog_cli("search", "x", config=operator_config(tmp_path, "nats://127.0.0.1:1"))
    assert result.returncode == 1 and "catalog refresh" in result.stderr
