"""NatsBridge: one asyncio loop and one nats-py connection, used from worker threads.

Cheroot threads call the blocking methods (`run`, `request`, `publish`);
each submits a coroutine to the loop with `run_coroutine_threadsafe` and
waits with a timeout. Any NATS failure comes out as `NatsUnavailable`.

Two ways to run:
- owned (`start()`/`stop()`): the bridge makes its own loop thread and
  connection, connecting in the background so start-up never waits for NATS;
- embedded (`astart()`/`astop()` on a host loop with the host's connection):
  no second loop, no connect or close of the host's connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ConfigError, NatsUnavailable

log = logging.getLogger("kryten_playlist.bridge")

T = TypeVar("T")
ConnectHook = Callable[[], Awaitable[None]]
# A sync handler gets (subject, data) and returns the reply bytes, or None for no reply.
SyncHandler = Callable[[str, bytes], "bytes | None"]

MONITOR_INTERVAL_SECONDS = 0.25
HOOK_RETRY_SECONDS = 3.0
RECONNECT_WAIT_SECONDS = 2
DEFAULT_TIMEOUT_SECONDS = 5.0


def connect_options(config: Config) -> dict[str, Any]:
    """nats-py connect() arguments from the config (servers, auth, TLS)."""
    options: dict[str, Any] = {
        "servers": config.nats_servers(),
        "name": f"kryten-playlist-{config.namespace}",
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT_SECONDS,
        "connect_timeout": 2,
        "ping_interval": 10,
        "max_outstanding_pings": 2,
    }
    if config.nats_user:
        options["user"] = config.nats_user
        options["password"] = config.nats_password or ""
    if config.nats_token:
        options["token"] = config.nats_token
    if config.nats_creds:
        try:
            import nkeys  # noqa: F401  (nats-py needs it for creds files)
        except ImportError as exc:
            raise ConfigError("nats_creds", "a creds file needs the 'nkeys' extra: "
                              "pip install 'kryten-playlist[nkeys]'") from exc
        options["user_credentials"] = config.nats_creds
    if config.nats_tls_ca:
        options["tls"] = ssl.create_default_context(cafile=config.nats_tls_ca)
    return options


class NatsBridge:
    def __init__(self, config: Config, nc: NatsClient | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._config = config
        self._owns_connection = nc is None
        self._options = connect_options(config) if nc is None else {}
        self.nc: NatsClient = nc if nc is not None else NatsClient()
        self.loop: asyncio.AbstractEventLoop | None = loop
        self._loop_thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self._tasks: list[asyncio.Future[Any]] = []
        self._hooks: list[ConnectHook] = []
        self._subscriptions: list[Subscription] = []
        self._in_flight: set[asyncio.Future[None]] = set()
        self._workers = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="nats-work")
        self._stopping = False

    # ---- state ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    def track(self, thing: asyncio.Future[Any] | Subscription) -> None:
        """Tie a task or subscription to the bridge, so that `astop` ends it."""
        if isinstance(thing, asyncio.Future):
            self._tasks.append(thing)
        else:
            self._subscriptions.append(thing)

    def on_connect(self, hook: ConnectHook) -> None:
        """Run `hook` on the loop after the first connect and after every reconnect."""
        self._hooks.append(hook)

    # ---- lifecycle -----------------------------------------------------

    def start(self) -> None:
        """Owned mode: start the loop thread; the connection is made in the background."""
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="nats-bridge", daemon=True)
        self._loop_thread.start()
        asyncio.run_coroutine_threadsafe(self.astart(), self.loop).result(DEFAULT_TIMEOUT_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop is None or self._loop_thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), self.loop).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            log.warning("NATS bridge did not stop cleanly within %.1f s", timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(timeout)
        self.loop.close()
        self._loop_thread = None

    async def astart(self) -> None:
        """Begin on the running loop (the bridge's own, or the host's in embedded mode)."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._stopping = False
        if self._owns_connection:
            self._tasks.append(asyncio.ensure_future(self._connect_forever()))
        self._tasks.append(asyncio.ensure_future(self._monitor_connection()))

    async def astop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sub in self._subscriptions:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass
        self._subscriptions.clear()
        if self._owns_connection and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 2.0)
            except (asyncio.TimeoutError, nats.errors.Error):
                log.warning("NATS connection did not close cleanly")
        self._workers.shutdown(wait=False, cancel_futures=True)

    async def _connect_forever(self) -> None:
        async def quiet_error(exc: Exception) -> None:
            log.debug("NATS connection error: %s", exc)

        await self.nc.connect(error_cb=quiet_error, **self._options)

    async def _monitor_connection(self) -> None:
        """Fire the connect hooks on every move to connected; one watcher serves both modes.

        nats-py can drop and regain a connection between two polls, so its
        reconnect counter counts as a move too. A failed hook (a JetStream
        timeout while a cluster settles) is tried again, with the hooks after
        it, every few seconds while connected.
        """
        loop = asyncio.get_running_loop()
        was_connected, reconnects = False, self._reconnects()
        pending: list[ConnectHook] = []
        retry_at = 0.0
        while True:
            now_connected, count = self.nc.is_connected, self._reconnects()
            if now_connected and (not was_connected or count != reconnects):
                log.info("NATS connected")
                pending, retry_at = list(self._hooks), 0.0
            elif was_connected and not now_connected:
                log.warning("NATS disconnected; reconnecting in the background")
            was_connected, reconnects = now_connected, count
            if now_connected and pending and loop.time() >= retry_at:
                pending = await self._run_hooks(pending)
                retry_at = loop.time() + HOOK_RETRY_SECONDS
            await asyncio.sleep(MONITOR_INTERVAL_SECONDS)

    def _reconnects(self) -> int:
        return int(self.nc.stats.get("reconnects", 0))

    async def _run_hooks(self, hooks: list[ConnectHook]) -> list[ConnectHook]:
        """Run `hooks` in order; the one that failed and those after it are returned, to try again."""
        for position, hook in enumerate(hooks):
            try:
                await hook()
            except Exception:
                log.exception("NATS connect hook %s failed; trying again in %.0f s",
                              getattr(hook, "__qualname__", hook), HOOK_RETRY_SECONDS)
                return hooks[position:]
        return []

    # ---- blocking facade (worker threads only) ---------------------------

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> T:
        """Run `fn(*args)` on the loop and wait for it; NATS trouble becomes NatsUnavailable."""
        if self.loop is None or not self.connected:
            raise NatsUnavailable()
        if threading.get_ident() == self._loop_thread_id:
            raise RuntimeError("a blocking NATS call was made on the event loop thread")
        future = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise NatsUnavailable("NATS did not answer in time.") from exc
        except (nats.errors.Error, OSError) as exc:
            raise NatsUnavailable() from exc

    def publish(self, subject: str, payload: dict[str, Any]) -> None:
        self.run(self.apublish, subject, payload)

    async def apublish(self, subject: str, payload: dict[str, Any]) -> None:
        await self.nc.publish(subject, json.dumps(payload).encode("utf-8"))

    def request(self, subject: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Request/reply with a JSON object both ways; no answer in time → NatsUnavailable."""
        async def ask() -> Msg:
            return await self.nc.request(subject, json.dumps(payload).encode("utf-8"), timeout=timeout)

        msg = self.run(ask, timeout=timeout + 1.0)
        reply = json.loads(msg.data)
        if not isinstance(reply, dict):
            raise NatsUnavailable(f"the reply on {subject} was not a JSON object")
        return reply

    # ---- subscriptions ---------------------------------------------------

    async def subscribe(self, subject: str, handler: SyncHandler, queue: str = "") -> None:
        """Subscribe on the loop; `handler` runs on a worker thread and its bytes are the reply.

        nats-py awaits a subscription's callback before taking the next message,
        so each message gets its own task: one slow command never holds back the rest.
        """
        async def answer(msg: Msg) -> None:
            loop = asyncio.get_running_loop()
            try:
                reply = await loop.run_in_executor(self._workers, handler, msg.subject, msg.data)
            except RuntimeError:
                return  # the pool is shut down: the service is stopping
            except Exception:
                log.exception("handler for %s failed", msg.subject)
                return
            if reply is not None and msg.reply and self.nc.is_connected:
                await self.nc.publish(msg.reply, reply)

        async def on_message(msg: Msg) -> None:
            task = asyncio.ensure_future(answer(msg))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        self._subscriptions.append(await self.nc.subscribe(subject, queue=queue, cb=on_message))
