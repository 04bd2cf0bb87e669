"""RobotStandIn: behaves like Kryten-Robot 1.12 as nats.md section 3 describes it.

A NATS client of its own with its own asyncio loop on a daemon thread, so the
tests, the demo and the benchmarks can run it beside the service. What it
does (spec/robot.md has the full list):

- answers `{pfx}.robot.command` in the kryten-py envelope, one command at a
  time; replies `{"service":"robot","command","success":true,"data"}`, or
  `{"service":"robot","success":false,"error"}` when a handler raises;
- drops without a reply: malformed JSON, an unknown command, a `meta.domain`
  that differs (exact compare), a `meta.channel` that differs (ignoring case);
- keeps the userlist in KV `kryten_{channel}_userlist` key `users`;
- keeps a pretend CyTube queue (`standin/queue.py`): `addvideo` with CyTube's
  refusals, silent drops and add rate limit, `rmvideo`, `clear`, `jump`,
  `state.playlist`, the KV `kryten_{channel}_playlist` (`items`, `current`)
  with the robot's uid-0 quirk, and the CyTube events on
  `{prefix}.events.cytube.{chan}.<event>`.

Commands live in a registry (`self._handlers`): adding one is one async
method taking the whole request and returning `data`, plus one entry.

Knobs for tests: `handling_delay` (seconds each command holds the robot),
`stop_answering()`/`resume_answering()`, `received_count`/`answered_count`,
`silent_timeout_seconds`, `add_burst`, `add_rate_per_second`, `rate_limit_enabled`;
helpers to shape CyTube: `set_media`, `refuse`, `drop_silently`, `accept`,
`enqueue`, `play`, `play_next`, `reconnect_replay`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from kryten_playlist_lib.standin.queue import TOO_QUICKLY, AddRateLimit, AddRecord, PretendQueue
from kryten_playlist_lib.timeutil import iso, utcnow

log = logging.getLogger("kryten_playlist.standin.robot")

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
PmCallback = Callable[[str, str], None]

CALL_TIMEOUT_SECONDS = 15.0
USERS_KEY = "users"
ITEMS_KEY = "items"
CURRENT_KEY = "current"
SILENT_TIMEOUT_SECONDS = 8.0  # how long the real robot waits for CyTube to confirm an add
STAFF_ADD_BURST = 10
STAFF_ADD_RATE_PER_SECOND = 2.0


class RobotStandIn:
    """`on_pm(to, msg)` runs on the stand-in's loop thread, so it must be quick (the demo prints).

    The add rate limit defaults to what CyTube gives a staff robot (rank >= 2);
    a robot below staff gets `add_burst=3, add_rate_per_second=1`.
    """

    def __init__(self, nats_url: str, *, domain: str = "cytu.be", channel: str = "lounge",
                 prefix: str = "kryten", on_pm: PmCallback | None = None, handling_delay: float = 0.0,
                 silent_timeout_seconds: float = SILENT_TIMEOUT_SECONDS, add_burst: int = STAFF_ADD_BURST,
                 add_rate_per_second: float = STAFF_ADD_RATE_PER_SECOND, rate_limit_enabled: bool = True) -> None:
        self.nats_url = nats_url
        self.domain = domain
        self.channel = channel
        self.subject = f"{prefix}.robot.command"
        self.events_prefix = f"{prefix}.events.cytube.{channel.lower().replace('.', '')}"
        self.userlist_bucket = f"kryten_{channel}_userlist"
        self.playlist_bucket = f"kryten_{channel}_playlist"
        self.username = "KrytenRobot"  # the `queueby` of what the robot adds
        # A test knob: every routed command holds the robot this long, as addvideo can.
        self.handling_delay = handling_delay
        self.silent_timeout_seconds = silent_timeout_seconds
        self.add_burst = add_burst
        self.add_rate_per_second = add_rate_per_second
        self.rate_limit_enabled = rate_limit_enabled
        self.received_count = 0
        self.answered_count = 0
        self.add_log: list[AddRecord] = []
        self._queue = PretendQueue()
        self._add_limit = AddRateLimit(add_burst)
        self._refusals: dict[str, str] = {}
        self._silent: dict[str, bool] = {}  # url -> whether CyTube added it all the same
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
            "addvideo": self._addvideo,
            "rmvideo": self._rmvideo,
            "clear": self._clear,
            "jump": self._jump,
            "state.playlist": self._state_playlist,
        }
        self._nc = NatsClient()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._userlist: KeyValue | None = None
        self._playlist: KeyValue | None = None
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
        self._playlist = await self._bucket(self.playlist_bucket)
        # A starting robot writes the whole playlist it gets from CyTube, so any uid-0 leftover is gone.
        self._queue.resync_kv()
        await self._write_items()
        await self._write_current()
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

    # ---- the pretend CyTube queue: shaping it from a test ------------------------------

    def set_media(self, url: str, title: str, seconds: int) -> None:
        """What CyTube learns from the manifest at `url`; unset, the title is the URL's last path
        segment without extensions and the duration 0."""
        self._queue.set_media(url, title, seconds)

    def refuse(self, url: str, message: str) -> None:
        """CyTube refuses every add of `url` with `message` (a `queueFail`)."""
        self._silent.pop(url, None)
        self._refusals[url] = message

    def drop_silently(self, url: str, *, but_add: bool = False) -> None:
        """CyTube says nothing about adds of `url`: the robot answers `uid:null` after
        `silent_timeout_seconds`. With `but_add` the item is added all the same (the confirmation was lost)."""
        self._refusals.pop(url, None)
        self._silent[url] = but_add

    def accept(self, url: str) -> None:
        """Undo `refuse`/`drop_silently`: adds of `url` work again."""
        self._refusals.pop(url, None)
        self._silent.pop(url, None)

    def enqueue(self, url: str, *, temp: bool = False, queueby: str = "someone") -> int:
        """Someone else adds `url` at the end on CyTube (no command, no rate limit); returns its uid."""
        return self._call(self._add(url, "cm", "end", temp, queueby))["uid"]

    def play(self, uid: int) -> None:
        """CyTube starts playing `uid`: `setCurrent` then `changeMedia`, and the KV `current`."""
        self._call(self._play(uid))

    def play_next(self) -> int | None:
        """Play the item after the current one (the first when nothing plays); None, and no change, at the end."""
        return self._call(self._play_next())

    def reconnect_replay(self) -> None:
        """What the real robot does on reconnecting: resend the current media (nothing when nothing plays)."""
        self._call(self._replay_current())

    def queue_items(self) -> list[dict[str, Any]]:
        """The true queue, as `state.playlist` answers it (a copy)."""
        return self._call(_copied(lambda: self._queue.items))

    def kv_items(self) -> list[dict[str, Any]]:
        """The queue as the robot's KV `items` shows it (a copy): uid 0 lingers there once removed."""
        return self._call(_copied(lambda: self._queue.kv_items))

    @property
    def current_uid(self) -> int | None:
        return self._queue.current_uid

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

    # ---- queue commands ------------------------------------------------------------------

    async def _addvideo(self, request: dict[str, Any]) -> dict[str, Any]:
        args = request.get("args") or {}
        url, media_type, pos = args.get("id"), args.get("type"), args.get("pos")
        if not (isinstance(url, str) and url and isinstance(media_type, str) and media_type):
            raise ValueError("Missing media type or id")
        if pos not in ("end", "next"):
            return self._answer_add(url, "bad_pos", {"success": False, "error": f"Invalid pos {pos!r}: "
                                                     "use 'end' or 'next'"})
        # CyTube counts every add that reaches it, whatever then becomes of it.
        if self.rate_limit_enabled and not self._add_limit.take(self.add_burst, self.add_rate_per_second):
            return await self._queue_fail(url, TOO_QUICKLY, "too_quickly")
        refusal = self._refusals.get(url)
        if refusal is not None:
            return await self._queue_fail(url, refusal, "refused")
        temp = bool(args.get("temp", False))
        if url in self._silent:
            return await self._say_nothing(url, media_type, pos, temp)
        item = await self._add(url, media_type, pos, temp, self.username)
        return self._answer_add(url, "added", {"success": True, "uid": item["uid"]})

    async def _queue_fail(self, url: str, message: str, outcome: str) -> dict[str, Any]:
        fail = {"msg": message, "link": url, "id": url}
        await self._publish("queueFail", fail)
        return self._answer_add(url, outcome, {"success": False, "error": message, "queue_fail": fail})

    async def _say_nothing(self, url: str, media_type: str, pos: str, temp: bool) -> dict[str, Any]:
        but_add = self._silent.get(url, False)
        if but_add:
            await self._add(url, media_type, pos, temp, self.username)
        # The robot holds on to the command (and so to every later one) while it waits.
        await asyncio.sleep(self.silent_timeout_seconds)
        return self._answer_add(url, "silent_added" if but_add else "silent", {"success": True, "uid": None})

    def _answer_add(self, url: str, outcome: str, data: dict[str, Any]) -> dict[str, Any]:
        self.add_log.append(AddRecord(time.monotonic(), url, outcome))
        return data

    async def _rmvideo(self, request: dict[str, Any]) -> dict[str, Any]:
        uid = (request.get("args") or {}).get("uid")
        # CyTube ignores a uid it does not hold (or that is not a number); the reply only confirms the send.
        if isinstance(uid, int) and not isinstance(uid, bool) and self._queue.delete(uid):
            await self._write_items()
            await self._publish("delete", {"uid": uid})
        return {"success": True}

    async def _clear(self, request: dict[str, Any]) -> dict[str, Any]:
        self._queue.clear()
        await self._write_items()
        await self._publish("playlist", [])
        return {"success": True}

    async def _jump(self, request: dict[str, Any]) -> dict[str, Any]:
        uid = (request.get("args") or {}).get("uid")
        if not isinstance(uid, str):
            # The real handler treats the uid as text and breaks on anything else (nats.md section 3).
            raise TypeError(f"jump: expected the uid as a string, got {type(uid).__name__}")
        if self._queue.item(int(uid)) is not None:
            await self._play(int(uid))
        return {"success": True}

    async def _state_playlist(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"playlist": copy.deepcopy(self._queue.items)}

    # ---- queue effects: KV and events ------------------------------------------------------

    async def _add(self, url: str, media_type: str, pos: str, temp: bool, queueby: str) -> dict[str, Any]:
        item, after = self._queue.add(url, media_type, pos, temp, queueby)
        await self._write_items()
        await self._publish("queue", {"item": item, "after": after})
        return copy.deepcopy(item)

    async def _play(self, uid: int) -> None:
        if self._queue.item(uid) is None:
            raise LookupError(f"uid {uid} is not in the queue")
        self._queue.current_uid = uid
        await self._write_current()
        await self._replay_current()

    async def _play_next(self) -> int | None:
        uid = self._queue.next_uid()
        if uid is not None:
            await self._play(uid)
        return uid

    async def _replay_current(self) -> None:
        uid = self._queue.current_uid
        if uid is None:
            return
        # CyTube sends setCurrent just before changeMedia, and changeMedia has no uid.
        await self._publish("setCurrent", uid)
        await self._publish("changeMedia", self._queue.change_media())
        await self._nc.flush()

    async def _publish(self, event_name: str, payload: Any) -> None:
        envelope = {"event_name": event_name, "payload": payload, "channel": self.channel, "domain": self.domain,
                    "timestamp": iso(utcnow()), "correlation_id": str(uuid.uuid4())}
        await self._nc.publish(f"{self.events_prefix}.{event_name.lower()}", json.dumps(envelope).encode("utf-8"))

    async def _write_items(self) -> None:
        assert self._playlist is not None, "the playlist bucket is bound in _astart"
        await self._playlist.put(ITEMS_KEY, json.dumps(self._queue.kv_items).encode("utf-8"))

    async def _write_current(self) -> None:
        """The KV `current` changes only with a changeMedia; with nothing playing at start it is removed."""
        assert self._playlist is not None, "the playlist bucket is bound in _astart"
        uid = self._queue.current_uid
        if uid is None:
            await self._playlist.delete(CURRENT_KEY)
            return
        await self._playlist.put(CURRENT_KEY, json.dumps({**self._queue.change_media(), "uid": uid}).encode("utf-8"))


async def _run(name: str, handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    try:
        data = await handler(request)
    except Exception as exc:
        # Like the real robot: any handler failure becomes an outer success:false.
        return {"service": "robot", "success": False, "error": str(exc)}
    return {"service": "robot", "command": name, "success": True, "data": data}


async def _copied(read: Callable[[], T]) -> T:
    """A deep copy of `read()` taken on the stand-in's loop, so it never sees a change half made."""
    return copy.deepcopy(read())


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
