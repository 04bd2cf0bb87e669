"""The service secret: created once with mode 0600, shared by replicas, overridable by environment."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from kryten_playlist_lib import secret as secret_module
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ConfigError
from kryten_playlist_lib.secret import load_or_create_secret


def config_for(path: Path) -> Config:
    return Config.from_mapping({"secret_path": str(path)})


def test_created_with_mode_0600_and_64_hex(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "secret.key"
    secret = load_or_create_secret(config_for(path), env={})
    assert len(secret) == 32
    text = path.read_text(encoding="ascii").strip()
    assert len(text) == 64 and bytes.fromhex(text) == secret
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_second_load_returns_same_secret(tmp_path: Path) -> None:
    config = config_for(tmp_path / "secret.key")
    assert load_or_create_secret(config, env={}) == load_or_create_secret(config, env={})


def test_env_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    load_or_create_secret(config_for(path), env={})
    assert load_or_create_secret(config_for(path), env={"KRYTEN_PLAYLIST_SECRET": "AB" * 32}) == b"\xab" * 32


def test_env_override_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    load_or_create_secret(config_for(path), env={"KRYTEN_PLAYLIST_SECRET": "01" * 32})
    assert not path.exists()


@pytest.mark.parametrize("value", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_malformed_env_names_variable_without_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_or_create_secret(config_for(tmp_path / "secret.key"), env={"KRYTEN_PLAYLIST_SECRET": value})
    assert info.value.key == "KRYTEN_PLAYLIST_SECRET"
    if value:
        assert value not in str(info.value)


@pytest.mark.parametrize("content", ["not hex at all", "ab" * 33, "xy" * 32])
def test_malformed_file_names_secret_path(tmp_path: Path, content: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secret.key"
    path.write_text(content, encoding="ascii")
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as info:
        load_or_create_secret(config_for(path), env={})
    assert info.value.key == "secret_path"
    assert content not in str(info.value)
    assert all(content not in r.getMessage() for r in caplog.records)


def test_empty_file_left_by_a_crash_fails_after_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_module, "WRITE_WAIT_SECONDS", 0.1)
    path = tmp_path / "secret.key"
    path.write_text("", encoding="ascii")
    with pytest.raises(ConfigError) as info:
        load_or_create_secret(config_for(path), env={})
    assert info.value.key == "secret_path"


def test_waits_for_a_concurrent_writer(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("", encoding="ascii")
    writer = threading.Timer(0.2, lambda: path.write_text("cd" * 32 + "\n", encoding="ascii"))
    writer.start()
    try:
        assert load_or_create_secret(config_for(path), env={}) == b"\xcd" * 32
    finally:
        writer.join()


def test_concurrent_creators_agree(tmp_path: Path) -> None:
    config = config_for(tmp_path / "shared" / "secret.key")
    barrier = threading.Barrier(4)
    results: list[bytes] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait()
        value = load_or_create_secret(config, env={})
        with lock:
            results.append(value)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert len(results) == 4 and len(set(results)) == 1
