"""The single file (operations.md, "Deployment shapes"): build it, then run it with only the stdlib beside it."""

from __future__ import annotations

import configparser
import importlib.util
import json
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from kryten_playlist_lib.bus.natsserver import NatsServerProcess, free_port
from tests.helpers import http_json, no_traceback_when_done, stop_with_sigterm, wait_for
from tests.test_cli import _nats_connected

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build_pyz.py"
# -I: no PYTHONPATH, no user site; -S: no site-packages. Only the stdlib and the file itself are importable.
STDLIB_ONLY = [sys.executable, "-I", "-S"]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pyz") / "kryten-playlist.pyz"
    result = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--output", str(target)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(target)) and "KiB" in result.stdout
    return target


def setup_cfg_version() -> str:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    return setup["metadata"]["version"]


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_pyz", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_file_holds_the_code_its_metadata_and_pure_python_dependencies(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert not [name for name in names if "__pycache__" in name]
    assert {"__main__.py", "kryten_playlist_lib", "bottle.py", "cheroot", "jaraco", "more_itertools",
            "nats"} <= tops
    assert f"kryten_playlist-{setup_cfg_version()}.dist-info" in tops
    assert "bin" not in tops
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_version_comes_from_the_metadata_inside_the_file(pyz: Path, tmp_path: Path) -> None:
    result = subprocess.run([*STDLIB_ONLY, str(pyz), "--version"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kryten-playlist {setup_cfg_version()}"


def test_serve_from_the_file_answers_health_and_stops_on_sigterm(pyz: Path, tmp_path: Path,
                                                                  nats_server: NatsServerProcess) -> None:
    port = free_port()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "nats_url": nats_server.url, "namespace": "t" + secrets.token_hex(6), "http_port": port,
        "sqlite_path": str(tmp_path / "data" / "catalog.sqlite3"),
        "state_path": str(tmp_path / "data" / "state.sqlite3"),
        "secret_path": str(tmp_path / "data" / "secret.key"),
    }))
    process = subprocess.Popen([*STDLIB_ONLY, str(pyz), "serve", "--config", str(config)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with no_traceback_when_done(process):
        health = f"http://127.0.0.1:{port}/api/v1/health"
        # NATS connected proves nats-py works when imported from the zip, not just bottle and cheroot.
        wait_for(lambda: _nats_connected(health), timeout=30, what="serve from the .pyz connected to NATS")
        status, headers, _body = http_json("GET", f"http://127.0.0.1:{port}/static/app.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        assert http_json("GET", f"http://127.0.0.1:{port}/static/..%2Fapp.py")[0] == 404
        assert stop_with_sigterm(process) < 5.0


def test_a_compiled_extension_is_found_so_the_build_can_refuse_it(tmp_path: Path) -> None:
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (tmp_path / "fast" / "plain.py").write_text("")
    (tmp_path / "win.pyd").write_bytes(b"MZ")
    assert load_build_script().compiled_extensions(tmp_path) == [
        "fast/_speedups.cpython-311-x86_64-linux-gnu.so", "win.pyd"]
