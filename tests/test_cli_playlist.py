"""`playlist list|show|export|import` as an operator runs them, against a real nats-server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from tests.test_catalog_api import small_catalog
from tests.test_cli import CHILD_ENV, CLI, write_config


def test_export_then_import_round_trips_and_names_stay_unique(tmp_path: Path, nats_server: NatsServerProcess,
                                                              config: Config) -> None:
    path = write_config(tmp_path, nats_url=nats_server.url, namespace=config.namespace,
                        sqlite_path=str(tmp_path / "data" / "catalog.sqlite3"))

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--config", str(path)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env=CHILD_ENV, check=False, input=stdin)

    catalog = small_catalog(tmp_path / "c.jsonl")
    assert cli("catalog", "refresh", "--connector", "jsonl", "--source", str(catalog)).returncode == 0
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"name": "Late Show", "items": [{"video_id": "vid01"}, {"video_id": "gone9"}],
                                  "revision": 99, "created_by": "ignored"}))
    imported = cli("playlist", "import", str(source))
    assert imported.returncode == 0, imported.stderr
    exported = cli("playlist", "export", "late show")
    document = json.loads(exported.stdout)
    assert document["name"] == "Late Show" and document["created_by"] == "local"
    assert [(i["video_id"], i["available"]) for i in document["items"]] == [("vid01", True), ("gone9", False)]
    again = cli("playlist", "import", "-", stdin=exported.stdout)
    assert again.returncode == 1 and "--rename" in again.stderr and "Traceback" not in again.stderr
    assert cli("playlist", "import", "-", "--rename", "Late Show 2", stdin=exported.stdout).returncode == 0
    listed = cli("playlist", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["Late Show", "Late Show 2"]
    shown = cli("playlist", "show", "LATE SHOW 2").stdout
    assert "Silk Stalkings" in shown and "gone9\t?\t(not in the catalog)" in shown
    missing = cli("playlist", "show", "nope")
    assert missing.returncode == 1 and "no playlist named 'nope'" in missing.stderr
