"""RobotStandIn: behaves like Kryten-Robot 1.12 as nats.md section 3 describes it.

A NATS client of its own with its own asyncio loop on a daemon thread, so the
tests, the demo and the benchmarks can run it beside the service. What it
does (spec/robot.md has the full list):

- answers `{pfx}.robot.command` in the kryten-py envelope, one command at a
  time; replies `{"service":"robot","command","success":true,"data"}`, or
  `{"service":"robot","success":false,"error"}` when a handler raises;
- drops without a reply: malformed JSON, an unknown command, a `meta.domain`
  that differs (exact compare), a `meta.channel` that differs (ignoring case);
- keeps the userlist in KV `kryten_{channel}_userlist` key `users`.

Commands live in a registry (`self._handlers`): adding one is one async
method taking the whole request and returning `data`, plus one entry.

Knobs for tests: `handling_delay` (seconds each command holds the robot),
`stop_answering()`/`resume_answering()`, `received_count`/`answered_count`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

log = logging.getLogger("kryten_playlist.standin.robot")

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
PmCallback = Callable[[str, str], None]

CALL_TIMEOUT_SECONDS = 15.0
USERS_KEY = "users"


class RobotStandIn:
    """`on_pm(to, msg)` runs on the stand-in's loop thread, so it must be quick (the demo prints)."""

    def __init__(self, nats_url: str, *, domain: str = "cytu.be", channel: str = "lounge",
                 prefix: str = "kryten", on_pm: PmCallback | None = None,
                 handling_delay: float = 0.0) -> None:
        self.nats_url = nats_url
        self.domain = domain
        self.channel = channel
        self.subject = f"{prefix}.robot.command"
        self.userlist_bucket = f"kryten_{channel}_userlist"
        # A test knob: every routed command holds the robot this long, as addvideo can.
        self.handling_delay = handling_delay
        self.received_count = 0
        self.answered_count = 0
        self._on_pm = on_pm
        self._answering = True
        self._users: list[dict[str, Any]] = []
        self._pms: list[tuple[str, str]] = []
        self._pm_arrived = threading.Condition()
        # The real robot handles one command at a time; later ones wait their turn.
        self._turn = asyncio.Lock()
        self._handlers: dict[str, Handler] = {
            "pm": self._pm,
            "state.user": self._state_user,
        }
        self._nc = NatsClient()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._userlist: KeyValue | None = None
        self._in_flight: set[asyncio.Future[None]] = set()

    # ---- lifecycle -----------------------------------------------------

    def start(self) -> None:
        """Connect, make the KV state and subscribe; raises if NATS is not reachable in time."""
        # Fresh per start, so a stopped stand-in can start again (a robot restart).
        self._nc = NatsClient()
        self._turn = asyncio.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="robot-standin", daemon=True)
        self._thread.start()
        try:
            self._call(self._astart())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        try:
            self._call(self._astop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_SECONDS)
            self._loop.close()
            self._loop = None
            self._thread = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the stand-in's loop from another thread and wait for it."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the robot stand-in is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(CALL_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()  # so that a start that never connected does not linger on the loop
            raise

    async def _astart(self) -> None:
        async def quiet(exc: Exception) -> None:
            log.debug("robot stand-in NATS error: %s", exc)

        await self._nc.connect(self.nats_url, name="kryten-robot-standin", error_cb=quiet,
                               max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2)
        self._userlist = await self._bucket(self.userlist_bucket)
        await self._write_users()
        await self._nc.subscribe(self.subject, cb=self._on_message)

    async def _astop(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.close(), 2.0)
            except (asyncio.TimeoutError, nats.errors.Error):
                log.warning("robot stand-in NATS connection did not close cleanly")

    async def _bucket(self, name: str) -> KeyValue:
        """Bind the bucket, making it when missing (the robot creates its own state buckets)."""
        js = self._nc.jetstream()
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(KeyValueConfig(bucket=name))

    # ---- test knobs --------------------------------------------------------

    def stop_answering(self) -> None:
        """Act hung: commands still arrive (and are counted) but get no reply and no effect."""
        self._answering = False

    def resume_answering(self) -> None:
        self._answering = True

    def set_users(self, users: list[dict[str, Any]]) -> None:
        """Replace the channel's users (state and KV); an entry needs `name`, the rest defaults."""
        normalized = [{"name": user["name"], "rank": user.get("rank", 0),
                       "profile": user.get("profile", {}), "meta": user.get("meta", {})} for user in users]
        if self._loop is None:
            self._users = normalized
            return
        self._call(self._replace_users(normalized))

    async def _replace_users(self, users: list[dict[str, Any]]) -> None:
        self._users = users
        await self._write_users()

    async def _write_users(self) -> None:
        assert self._userlist is not None, "the userlist bucket is bound in _astart"
        await self._userlist.put(USERS_KEY, json.dumps(self._users).encode("utf-8"))

    @property
    def pms(self) -> list[tuple[str, str]]:
        """Every PM handed over so far as (to, msg), oldest first (a copy)."""
        with self._pm_arrived:
            return list(self._pms)

    def pms_to(self, username: str) -> list[str]:
        """The texts sent to `username`; CyTube matches PM recipients ignoring case."""
        wanted = username.lower()
        return [msg for to, msg in self.pms if to.lower() == wanted]

    def wait_for_pm(self, username: str, timeout: float = 10.0, nth: int = 1) -> str:
        """Block until `username` has had `nth` PMs (1 = the first) and return that one's text."""
        with self._pm_arrived:
            if not self._pm_arrived.wait_for(lambda: len(self.pms_to(username)) >= nth, timeout):
                raise TimeoutError(f"PM number {nth} to {username!r} did not come within {timeout} s")
            return self.pms_to(username)[nth - 1]

    # ---- command handling ------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        self.received_count += 1
        if not self._answering:
            return
        # A task per message, so arrivals are counted while an earlier command holds the robot.
        task = asyncio.ensure_future(self._handle(msg))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, msg: Msg) -> None:
        request = _decode(msg.data)
        if request is None or not self._routed_here(request):
            return
        name = request.get("command")
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            return
        async with self._turn:
            if self.handling_delay > 0:
                await asyncio.sleep(self.handling_delay)
            reply = await _run(name, handler, request)
            if msg.reply and self._nc.is_connected:
                await self._nc.publish(msg.reply, json.dumps(reply).encode("utf-8"))
                self.answered_count += 1

    def _routed_here(self, request: dict[str, Any]) -> bool:
        meta = request.get("meta")
        if not isinstance(meta, dict):
            return False
        channel = meta.get("channel")
        return (meta.get("domain") == self.domain and isinstance(channel, str)
                and channel.lower() == self.channel.lower())

    async def _pm(self, request: dict[str, Any]) -> dict[str, Any]:
        args = request.get("args") or {}
        to, text = args.get("to"), args.get("msg")
        if not (isinstance(to, str) and to and isinstance(text, str) and text):
            raise ValueError("Missing username or message")
        with self._pm_arrived:
            self._pms.append((to, text))
            self._pm_arrived.notify_all()
        if self._on_pm is not None:
            self._on_pm(to, text)
        # True even for someone not in the channel: CyTube reports that later, as an event.
        return {"success": True}

    async def _state_user(self, request: dict[str, Any]) -> dict[str, Any]:
        username = request.get("username")
        return {"user": next((user for user in self._users if user["name"] == username), None)}


async def _run(name: str, handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    try:
        data = await handler(request)
    except Exception as exc:
        # Like the real robot: any handler failure becomes an outer success:false.
        return {"service": "robot", "success": False, "error": str(exc)}
    return {"service": "robot", "command": name, "success": True, "data": data}


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
