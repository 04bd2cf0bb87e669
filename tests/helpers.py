"""Small helpers shared by the tests: waiting on conditions and plain HTTP calls."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
              ) -> tuple[int, Message, Any]:
    """One request; returns (status, headers (case-insensitive), decoded JSON body or text)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Requested-With": "kryten-playlist", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, response_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, response_headers, raw = exc.code, exc.headers, exc.read()
    text = raw.decode("utf-8")
    try:
        return status, response_headers, json.loads(text)
    except ValueError:
        return status, response_headers, text


def stop_with_sigterm(process: subprocess.Popen[str]) -> float:
    """SIGTERM `process`; it must exit 0. Returns how many seconds that took."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    return time.monotonic() - began


@contextmanager
def no_traceback_when_done(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill `process` if the test left it running; its output (stdout with stderr) must hold no traceback."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0]
    assert "Traceback" not in output
