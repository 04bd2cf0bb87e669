"""Figures of `kryten-playlist serve` as its own process: start to listening, resident memory, search over HTTP.

`serve` runs as a person starts it (`python -m kryten_playlist serve --config F`)
on a catalog site of `catalog_measures`, whose snapshot is present and
current, so nothing here is measured inside the benchmark's own process.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kryten_playlist_lib.bench import Figure
from kryten_playlist_lib.bench.catalog_measures import CatalogSite, p95, size_label

SERVE_SECRET = "5e" * 32
START_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.002
MEMORY_TARGET_MB = 80.0
START_TARGET_S = 1.5
HTTP_RATE_TARGET = 1500.0
HTTP_P95_TARGET_MS = 20.0
SEARCHES_BEFORE_MEMORY = 20


class ServeProcess:
    """One `serve` child with a config file of its own; its output goes to a log file beside it."""

    def __init__(self, site: CatalogSite, folder: Path) -> None:
        self.port = int(site.settings["http_port"])
        self.expected_items = site.item_count
        self._config = folder / f"serve-{site.settings['namespace']}.json"
        self._config.write_text(json.dumps(site.settings))
        self._log = self._config.with_suffix(".log")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start `serve`; the seconds from the process start until its HTTP port answers."""
        environment = {**os.environ, "KRYTEN_PLAYLIST_SECRET": SERVE_SECRET,
                       "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
        with self._log.open("ab") as log:
            started = time.perf_counter()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "kryten_playlist", "serve", "--config", str(self._config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment)
        while self._status("/api/v1/health") is None:
            self._check_alive(started)
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - started

    def wait_ready(self) -> None:
        """Until health says NATS is connected and the catalog has the site's items."""
        started = time.perf_counter()
        while True:
            answer = self.get_json("/api/v1/health")
            if answer.get("status") == "ok" and answer.get("item_count") == self.expected_items:
                return
            self._check_alive(started)
            time.sleep(0.05)

    def resident_mb(self) -> float:
        assert self._process is not None
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc: resident memory is measured on Linux only")

    def get_json(self, path: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            return dict(json.loads(connection.getresponse().read()))
        finally:
            connection.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _status(self, path: str) -> int | None:
        """The HTTP status of GET `path`, or None while nothing answers."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            connection.close()

    def _check_alive(self, started: float) -> None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"serve exited with code {self._process.returncode}: {self._log_tail()}")
        if time.perf_counter() - started > START_TIMEOUT_SECONDS:
            raise RuntimeError(f"serve did not get ready within {START_TIMEOUT_SECONDS:g} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return " | ".join(self._log.read_text(errors="replace").strip().splitlines()[-5:])


@contextmanager
def running_serve(site: CatalogSite, folder: Path) -> Iterator[tuple[ServeProcess, float]]:
    """A started and ready `serve` on `site`, with its start-to-listening time; stopped afterwards."""
    serve = ServeProcess(site, folder)
    try:
        seconds = serve.start()
        serve.wait_ready()
        yield serve, seconds
    finally:
        serve.stop()


def search_path(query: str) -> str:
    return "/api/v1/catalog/search?q=" + quote(query)


# ---- start to listening, resident memory ------------------------------------------------------


def serve_figures(site: CatalogSite, folder: Path, queries: list[str], runs: int) -> list[Figure]:
    """Start `serve` `runs` times: the time until its port answers, and its memory after a few searches."""
    start_seconds, resident = [], []
    for _ in range(runs):
        with running_serve(site, folder) as (serve, seconds):
            for query in queries[:SEARCHES_BEFORE_MEMORY]:
                serve.get_json(search_path(query))
            start_seconds.append(seconds)
            resident.append(serve.resident_mb())
    memory, start = statistics.median(resident), statistics.median(start_seconds)
    return [Figure(f"resident memory of serve with {size_label(site.item_count)} items, idle", memory, "MB",
                   f"<= {MEMORY_TARGET_MB:g} MB", memory <= MEMORY_TARGET_MB),
            Figure("start to listening (serve, catalog present)", start, "s", f"<= {START_TARGET_S:g} s",
                   start <= START_TARGET_S)]


# ---- search over HTTP --------------------------------------------------------------------------


class _RawClient:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads just the status and body.

    http.client parses every header with the email package; in the same
    process and on the same two cores as the server, that client work would
    be what the figure measures.
    """

    def __init__(self, port: int) -> None:
        self._port = port
        self._socket = self._connect()
        self._pending = b""

    def get(self, request: bytes) -> int:
        """Send one prepared GET; its status once the whole body has arrived."""
        try:
            return self._exchange(request)
        except ConnectionError:
            # cheroot closes idle keep-alive connections beyond its limit; a browser would
            # open a new one and ask again, and so does this client.
            self._socket.close()
            self._socket, self._pending = self._connect(), b""
            return self._exchange(request)

    def close(self) -> None:
        self._socket.close()

    def _connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self._port), timeout=10)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _exchange(self, request: bytes) -> int:
        self._socket.sendall(request)
        while (end := self._pending.find(b"\r\n\r\n")) < 0:
            self._pending += self._receive()
        head, self._pending = self._pending[:end], self._pending[end + 4:]
        length = _content_length(head)
        while len(self._pending) < length:
            self._pending += self._receive()
        self._pending = self._pending[length:]
        return int(head.split(b" ", 2)[1])

    def _receive(self) -> bytes:
        data = self._socket.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        return data


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("a search answer without Content-Length: cannot keep the connection")


def _client(port: int, paths: list[str], until: float, latencies: list[float], failures: list[str]) -> None:
    """One keep-alive connection searching back to back until `until`."""
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("ascii") for path in paths]
    n = 0
    try:
        client = _RawClient(port)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                status = client.get(requests[n % len(requests)])
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    failures.append(f"HTTP {status} for {paths[n % len(paths)]}")
                    return
                n += 1
        finally:
            client.close()
    except (OSError, ValueError) as exc:
        failures.append(f"{type(exc).__name__}: {exc}")


def http_load(port: int, queries: list[str], clients: int, seconds: float) -> tuple[float, float]:
    """`clients` threads searching for `seconds`: (requests per second, p95 in ms)."""
    latencies: list[float] = []
    failures: list[str] = []
    paths = [search_path(query) for query in queries]
    started = time.perf_counter()
    until = started + seconds
    # Each client starts at its own place in the query set, so they do not ask the same thing in step.
    workers = [threading.Thread(target=_client, args=(port, paths[n * 37:] + paths[:n * 37], until, latencies,
                                                      failures)) for n in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"search over HTTP failed: {failures[0]}")
    return len(latencies) / (time.perf_counter() - started), p95(latencies)


def http_figures(site: CatalogSite, folder: Path, queries: list[str], clients: int, seconds: float,
                 runs: int) -> list[Figure]:
    with running_serve(site, folder) as (serve, _seconds):
        http_load(serve.port, queries, clients, 1.0)  # warm: connections, page cache, first imports
        results = [http_load(serve.port, queries, clients, seconds) for _ in range(runs)]
    rate = statistics.median(rate for rate, _ in results)
    latency = statistics.median(latency for _, latency in results)
    name = f"search over HTTP, {size_label(site.item_count)} items, {clients} concurrent clients"
    return [Figure(f"{name}, rate", rate, "requests/s", f">= {HTTP_RATE_TARGET:,.0f}", rate >= HTTP_RATE_TARGET),
            Figure(f"{name}, p95", latency, "ms", f"<= {HTTP_P95_TARGET_MS:g} ms", latency <= HTTP_P95_TARGET_MS)]
