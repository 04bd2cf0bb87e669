"""HttpServer: cheroot serving one WSGI app from a daemon thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cheroot import wsgi

LISTEN_BACKLOG = 128


class HttpServer:
    """`start()` returns once the socket listens; `stop()` returns within its timeout."""

    def __init__(self, app: Callable[..., Any], host: str, port: int, threads: int = 16) -> None:
        # cheroot's listen backlog defaults to 5: a burst of browsers or clients would be reset.
        self._server = wsgi.Server((host, port), app, numthreads=threads, request_queue_size=LISTEN_BACKLOG)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for), once started."""
        return int(self._server.bind_addr[1])

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("HttpServer already started")
        # prepare() binds and listens here, so a busy port fails in the caller's thread.
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        # cheroot waits this long for busy workers, then closes their sockets; the
        # second kept back covers the rest of its shutdown (a 1 s self-connect).
        self._server.shutdown_timeout = max(0.0, timeout - 1.0)
        self._server.stop()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
