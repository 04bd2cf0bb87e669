"""Reading, cleaning and writing a snapshot file in a child process.

Why a child: the build does Python work for every item (JSON, cleaning,
episode parsing), and on a thread of the service it holds the GIL so much
that searches served meanwhile get several times slower. In a process of its
own it runs on another core and the service only waits on a pipe.

The parent runs `python -m kryten_playlist_lib.catalog.child_build` with its
own `sys.path` (so it also works from a zipapp) and talks JSON lines:

- parent → child (standard input): one `BuildRequest`; for the jsonl
  connector reading `-`, the parent's standard input follows it.
- child → parent (standard output): `{"ready": 1}` once imported, then
  `{"items_seen": N}` per batch, `{"log": [level, logger, message]}` for the
  child's log records, and last `{"done": count, "skipped": {...}}` (the file
  is at `path`, complete) or `{"error": message}` (nothing was left behind).

When no child can start (no usable `sys.executable`, or it never says
`ready`), `build_snapshot_file` builds in this process instead.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from kryten_playlist_lib.catalog.clean import clean_items
from kryten_playlist_lib.catalog.store import build_snapshot, partial_build_files, read_snapshot_meta

log = logging.getLogger("kryten_playlist.catalog.build")

CHILD_MODULE = "kryten_playlist_lib.catalog.child_build"
# Long enough for a cold start on a slow disk; a "Python" that is really some
# other program (an embedding host's binary) must not stall the refresh.
READY_TIMEOUT_SECONDS = 30.0
STDIN_SOURCE = "-"

Progress = Callable[[int], None]


class ChildBuildFailed(Exception):
    """The child reported an error or ended without finishing; the message says which."""


@dataclass(frozen=True)
class BuildRequest:
    """Everything a build needs, as plain JSON: what to read, where to write, how to name it."""

    path: str
    snapshot_id: str
    created_at: str
    connector: str
    connector_source: str | None
    manifest_url_template: str
    mediacms_base_url: str | None
    mediacms_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BuildOutcome:
    item_count: int
    skipped: dict[str, int]


def build_here(request: BuildRequest, on_progress: Progress | None) -> BuildOutcome:
    """Read, clean and write the snapshot in this process (the child's work, and the fallback)."""
    # Imported here: the connectors pull in the config and HTTP modules, which
    # the parent only needs when it builds in-process.
    from kryten_playlist_lib.catalog.connectors import make_connector
    from kryten_playlist_lib.config import Config

    config = Config(mediacms_base_url=request.mediacms_base_url, mediacms_token=request.mediacms_token)
    cleaned = clean_items(make_connector(request.connector, config, request.connector_source).iter_catalog_items())
    count = build_snapshot(Path(request.path), snapshot_id=request.snapshot_id, source=request.connector,
                           created_at=request.created_at, items=cleaned,
                           manifest_url_template=request.manifest_url_template, on_progress=on_progress)
    return BuildOutcome(count, cleaned.counts())


def child_command() -> list[str] | None:
    """The command that starts a build child, or None when this interpreter cannot start one."""
    executable = sys.executable
    if not executable or not os.access(executable, os.X_OK):
        return None
    return [executable, "-m", CHILD_MODULE]


def build_snapshot_file(request: BuildRequest, on_progress: Progress | None,
                        command: list[str] | None) -> BuildOutcome:
    """Build in a child process started with `command` (see `child_command`), else in this one.

    Raises ChildBuildFailed (or the in-process build's own exception) with no
    file left at `request.path`.
    """
    child = _start_child(command) if command else None
    if child is None:
        log.warning("catalog build: no child process could start; building inside the service instead")
        return build_here(request, on_progress)
    return child.build(request, on_progress)


class _Child:
    """One started build child and the thread that reads its messages."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name="catalog-build-reader", daemon=True).start()

    def wait_ready(self) -> bool:
        try:
            message = self._messages.get(timeout=READY_TIMEOUT_SECONDS)
        except queue.Empty:
            message = None
        return message is not None and message.get("ready") == 1

    def build(self, request: BuildRequest, on_progress: Progress | None) -> BuildOutcome:
        try:
            self._send(request)
            outcome = self._follow(on_progress)
            _check_built(request, outcome)
            return outcome
        except BaseException:
            self.stop()
            Path(request.path).unlink(missing_ok=True)
            for leftover in partial_build_files(Path(request.path)):
                leftover.unlink(missing_ok=True)
            raise
        finally:
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass  # the child is gone: nothing is waiting for the rest

    def _send(self, request: BuildRequest) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(asdict(request)).encode("utf-8") + b"\n")
            stdin.flush()
        except OSError as exc:
            raise ChildBuildFailed(f"the catalog build process ended before it got its work"
                                   f" ({_exit_text(self.process)})") from exc
        if request.connector == "jsonl" and request.connector_source == STDIN_SOURCE:
            threading.Thread(target=_pump, args=(sys.stdin.buffer, stdin), name="catalog-build-stdin",
                             daemon=True).start()
        else:
            stdin.close()

    def _follow(self, on_progress: Progress | None) -> BuildOutcome:
        while (message := self._messages.get()) is not None:
            if "items_seen" in message:
                if on_progress is not None:
                    on_progress(int(message["items_seen"]))
            elif "log" in message:
                level, name, text = message["log"]
                logging.getLogger(name).log(int(level), "%s", text)
            elif "error" in message:
                raise ChildBuildFailed(str(message["error"]))
            elif "done" in message:
                return BuildOutcome(int(message["done"]), dict(message["skipped"]))
        raise ChildBuildFailed(f"the catalog build process ended without finishing ({_exit_text(self.process)})")

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with stdout:
            for line in stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if isinstance(message, dict):
                    self._messages.put(message)
                else:
                    log.warning("catalog build: unreadable message from the child: %r", line[:200])
        self._messages.put(None)


def _start_child(command: list[str]) -> _Child | None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment)
    except OSError as exc:
        log.warning("catalog build: cannot start %s: %s", command[0], exc)
        return None
    child = _Child(process)
    if child.wait_ready():
        return child
    child.stop()
    return None


def _check_built(request: BuildRequest, outcome: BuildOutcome) -> None:
    """The child said done: the file must be there and be the snapshot it was asked for."""
    try:
        meta = read_snapshot_meta(request.path)
    except (OSError, ValueError) as exc:
        raise ChildBuildFailed(f"the catalog build process left no usable file: {exc}") from exc
    if meta["snapshot_id"] != request.snapshot_id or meta["item_count"] != outcome.item_count:
        raise ChildBuildFailed(f"the catalog build process wrote snapshot {meta['snapshot_id']} with"
                               f" {meta['item_count']} items, not {request.snapshot_id} with {outcome.item_count}")


def _exit_text(process: subprocess.Popen[bytes]) -> str:
    code = process.wait()
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _pump(source: IO[bytes], target: IO[bytes]) -> None:
    """Hand this process's standard input to the child (the jsonl connector reading `-`)."""
    try:
        shutil.copyfileobj(source, target)
    except (OSError, ValueError) as exc:  # the child ended early (or was stopped); its own message says why
        log.debug("catalog build: standard input not fully passed on: %s", exc)
    finally:
        try:
            target.close()
        except OSError:
            pass


# ---- the child ---------------------------------------------------------------------


class _ChannelHandler(logging.Handler):
    """Sends the child's log records to the parent, which logs them its own way."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        self._send({"log": [record.levelno, record.name, record.getMessage()]})


def _open_channel() -> Callable[[dict[str, Any]], None]:
    """Keep standard output for messages only: anything else printed goes to standard error."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            channel.write(json.dumps(message) + "\n")

    return send


def main() -> int:
    send = _open_channel()
    send({"ready": 1})
    request = BuildRequest(**json.loads(sys.stdin.buffer.readline()))
    logging.basicConfig(level=logging.INFO, handlers=[_ChannelHandler(send)])
    try:
        outcome = build_here(request, lambda items_seen: send({"items_seen": items_seen}))
    except BaseException as exc:  # noqa: BLE001  (every failure must reach the parent as a message)
        send({"error": _describe(exc)})
        return 1
    send({"done": outcome.item_count, "skipped": outcome.skipped})
    return 0


def _describe(exc: BaseException) -> str:
    """The same words the in-process refresh uses for a failure."""
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else (str(exc) or type(exc).__name__)


if __name__ == "__main__":
    sys.exit(main())
