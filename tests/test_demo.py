"""`kryten-playlist demo` as a newcomer runs it: a real process, sign in with the printed code, apply a playlist."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.bus.natsserver import free_port
from tests.helpers import http_json
from tests.test_cli import CHILD_ENV, CLI

READY = re.compile(r"^ready: open (http://\S+)/login and sign in as demo$")
PM_CODE = re.compile(r"^PM to demo: .*\b([A-HJ-NP-Z2-9]{8})\b")
START_TIMEOUT_SECONDS = 60.0  # the first start builds the catalog
STOP_LIMIT_SECONDS = 5.0


class Output:
    """The demo's output lines, read on a thread of their own so a test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._arrived:
                self.lines.append(line.rstrip("\n"))
                self._arrived.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 10.0, after: int = 0) -> re.Match[str]:
        """The first line from index `after` on that matches `pattern`, waiting up to `timeout` seconds for it."""
        def found() -> re.Match[str] | None:
            return next((m for line in self.lines[after:] if (m := pattern.search(line))), None)

        with self._arrived:
            if not self._arrived.wait_for(found, timeout):
                raise AssertionError(f"no line matching {pattern.pattern!r} within {timeout} s:\n" + self.text)
            match = found()
            assert match is not None
            return match

    @property
    def text(self) -> str:
        with self._arrived:
            return "\n".join(self.lines)


class Demo:
    def __init__(self, process: subprocess.Popen[str], output: Output, base_url: str) -> None:
        self.process = process
        self.output = output
        self.base_url = base_url

    def stop(self) -> float:
        """SIGTERM; returns how long the process took to exit, which must be 0."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=STOP_LIMIT_SECONDS * 2) == 0, self.output.text
        return time.monotonic() - began


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[[], Demo]]:
    """Starts `demo` on a free port with its data under `tmp_path/demo`; every start is killed at the end."""
    processes: list[subprocess.Popen[str]] = []

    def start() -> Demo:
        process = subprocess.Popen([*CLI, "demo", "--http-port", str(free_port()), "--data", str(tmp_path / "demo")],
                                   cwd=tmp_path, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        processes.append(process)
        output = Output(process)
        ready = output.wait_for(READY, timeout=START_TIMEOUT_SECONDS)
        return Demo(process, output, ready.group(1))

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


class Browser:
    """Keeps the session cookie; http_json already sends the CSRF header."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookie: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Cookie": f"kryten_playlist_session={self.cookie}"} if self.cookie else {}
        status, response_headers, answer = http_json(method, self.base_url + path, body, headers)
        self._keep_cookie(response_headers)
        return status, answer

    def _keep_cookie(self, headers: Message) -> None:
        cookie = headers.get("Set-Cookie", "")
        if cookie.startswith("kryten_playlist_session="):
            self.cookie = cookie.split(";", 1)[0].split("=", 1)[1].strip('"') or None


def test_the_demo_signs_in_with_the_printed_code_and_applies_a_playlist(start_demo: Callable[[], Demo],
                                                                         tmp_path: Path) -> None:
    demo = start_demo()
    banner = demo.output.text
    assert demo.base_url in banner and "sign in as: demo" in banner and "Ctrl-C" in banner
    assert str(tmp_path / "demo") in banner and "printed here" in banner
    browser = Browser(demo.base_url)

    lines_before = len(demo.output.lines)
    assert browser.call("POST", "/api/v1/auth/otp/request", {"username": "demo"}) == (
        200, {"status": "sent", "expires_in_seconds": 300})
    code = demo.output.wait_for(PM_CODE, after=lines_before).group(1)
    assert browser.call("POST", "/api/v1/auth/otp/verify", {"username": "demo", "otp": code}) == (
        200, {"status": "ok", "role": "admin"})

    status, found = browser.call("GET", "/api/v1/catalog/search?q=night&limit=3")
    assert status == 200 and len(found["items"]) == 3
    items = [{"video_id": item["video_id"]} for item in found["items"]]
    status, created = browser.call("POST", "/api/v1/playlists", {"name": "Demo night", "items": items})
    assert status == 201, created
    status, applied = browser.call("POST", "/api/v1/queue/apply",
                                   {"playlist_id": created["playlist_id"], "mode": "append"})
    assert status == 200, applied
    assert (applied["status"], applied["enqueued_count"], applied["failed"]) == ("queued", 3, [])

    assert demo.stop() < STOP_LIMIT_SECONDS
    assert "Traceback" not in demo.output.text


def test_a_second_start_reuses_the_catalog(start_demo: Callable[[], Demo]) -> None:
    first = start_demo()
    built = first.output.wait_for(re.compile(r"^catalog: ([\d,]+) titles$")).group(1)
    assert any(line.startswith("building the catalog") for line in first.output.lines)
    first.stop()

    second = start_demo()
    assert second.output.wait_for(re.compile(r"^catalog: ([\d,]+) titles$")).group(1) == built
    assert not any(line.startswith("building the catalog") for line in second.output.lines)
    second.stop()
