"""PlaylistService: wires the parts together and starts and stops them.

Blocking form for a process of its own (`start()`/`stop()`, the bridge runs
its own loop thread), or embedded in a bot that already runs asyncio and
nats-py (`await astart()`/`await astop()` on the bot's loop with its
connection: no second loop, no signal handlers, no global state).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from typing import Any

from nats.aio.client import Client as NatsClient

from kryten_playlist_lib import package_version
from kryten_playlist_lib.activity.events import EventConsumer
from kryten_playlist_lib.activity.likes import Likes
from kryten_playlist_lib.activity.plays import Plays
from kryten_playlist_lib.activity.stats import Stats
from kryten_playlist_lib.admin_commands import register_admin_commands
from kryten_playlist_lib.auth.acl import Acl
from kryten_playlist_lib.auth.limits import RateLimits
from kryten_playlist_lib.auth.roles import RoleResolver
from kryten_playlist_lib.auth.sessions import Sessions
from kryten_playlist_lib.auth.signin import SignIn
from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.commands import CommandRequest, CommandRouter
from kryten_playlist_lib.bus.janitor import Janitor
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.leases import Leases
from kryten_playlist_lib.bus.lifecycle import Lifecycle
from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.catalog.follower import SnapshotFollower
from kryten_playlist_lib.catalog.refresh import CatalogRefresh
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.catalog.store import require_trigram_sqlite
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.mirror.reads import MirroredReads
from kryten_playlist_lib.mirror.state_file import StateFile
from kryten_playlist_lib.mirror.watcher import MirrorWatcher
from kryten_playlist_lib.playlists.offline import OfflinePlaylists
from kryten_playlist_lib.playlists.preview import MarathonPreview
from kryten_playlist_lib.playlists.replay import JournalReplay
from kryten_playlist_lib.playlists.store import PlaylistStore
from kryten_playlist_lib.queue.apply import QueueApplier
from kryten_playlist_lib.secret import load_or_create_secret
from kryten_playlist_lib.web.app import create_app
from kryten_playlist_lib.web.metrics import Metrics
from kryten_playlist_lib.web.server import HttpServer

log = logging.getLogger("kryten_playlist.service")


class PlaylistService:
    def __init__(self, config: Config, nats: NatsClient | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.secret = b""
        self._env = env
        self.bridge = NatsBridge(config, nc=nats, loop=loop)
        self.kv = KvStore(self.bridge, config.namespace, config.kv_replicas)
        self.leases = Leases(self.kv, owner=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")
        self.janitor = Janitor(self.kv, self.leases)
        self.catalog = CatalogReader(config.sqlite_path)
        self.state = StateFile(config.state_path, config.namespace)
        self.mirror = MirrorWatcher(self.bridge, self.state, config.namespace)
        self.reads = MirroredReads(self.kv, self.state)
        self.offline_playlists = OfflinePlaylists(self.state, self.reads, self.catalog, config.max_playlist_items)
        self.playlists = PlaylistStore(self.kv, self.catalog, config.max_playlist_items, local=self.offline_playlists)
        self.journal_replay = JournalReplay(self.state, self.playlists, self.kv)
        self.marathons = MarathonPreview(self.playlists, self.catalog)
        self.robot = RobotClient(self.bridge, config)
        self.queue = QueueApplier(config, self.kv, self.leases, self.robot, self.playlists, self.catalog)
        self.acl = Acl(self.kv, config, self.reads)
        self.roles = RoleResolver(self.acl, config, rank_of=self._rank_of)
        self.sessions = Sessions(self.kv, config.session_ttl_seconds, self.reads)
        self.signin = SignIn(config, self.kv, RateLimits(self.kv, config), self.sessions, self.roles, self.robot,
                             lambda: self.secret)
        self.refresh = CatalogRefresh(config, self.kv, self.leases, SnapshotObjects(self.bridge, config.namespace))
        self.follower = SnapshotFollower(config, self.kv, SnapshotObjects(self.bridge, config.namespace),
                                         local_refresh_running=lambda: self.refresh.in_progress)
        self.metrics = Metrics()
        self.plays = Plays(self.kv)
        self.likes = Likes(self.kv, RateLimits(self.kv, config), self.plays, config)
        self.stats = Stats(self.kv, self.catalog)
        self.activity_events = EventConsumer(config, self.catalog, self.plays, self.robot, self.metrics)
        self.commands = CommandRouter(config)
        self.app = create_app(self)
        self.http = HttpServer(self.app, config.http_host, config.http_port, config.http_threads)
        self.lifecycle = Lifecycle(config, self.bridge, lambda: self.http.port)
        self._maintenance_stop = threading.Event()
        self._maintenance_thread: threading.Thread | None = None
        self._subscribed = False
        self.commands.register("system.ping", self._ping)
        register_admin_commands(self)
        self.bridge.on_connect(self.kv.bootstrap)
        self.bridge.on_connect(self.mirror.restart_watches)
        self.bridge.on_connect(self.journal_replay.on_connect)
        self.bridge.on_connect(self._subscribe_once)
        self.bridge.on_connect(self.lifecycle.announce)
        self.metrics.gauge("kryten_playlist_nats_connected", "1 while connected to NATS.",
                           callback=lambda: 1.0 if self.bridge.connected else 0.0)
        self.metrics.gauge("kryten_playlist_pending_writes", "Offline playlist writes not yet replayed into KV.",
                           callback=lambda: float(self.state.pending_count()))

    @property
    def ready(self) -> bool:
        """Connected, buckets bound and every subscription in place (admin commands, events)."""
        return self.kv.ready and self._subscribed

    # ---- blocking form -----------------------------------------------------

    def start(self) -> None:
        """Listen on HTTP first, then connect to NATS in the background."""
        require_trigram_sqlite()
        self.secret = load_or_create_secret(self.config, self._env)
        self.http.start()
        self.bridge.start()
        self._start_maintenance()
        self._report_catalog()
        log.info("kryten-playlist %s listening on http://%s:%d", package_version(),
                 self.config.http_host, self.http.port)

    def stop(self, reason: str = "stopped") -> None:
        self.follower.stop()
        self._stop_maintenance()
        if self.bridge.loop is not None and self.bridge.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.lifecycle.shutdown(reason), self.bridge.loop).result(2)
            except Exception:
                log.debug("shutdown message not sent", exc_info=True)
        self.http.stop()
        self.bridge.stop()
        self.mirror.stop()
        self.state.close()

    # ---- embedded form -----------------------------------------------------

    async def astart(self) -> None:
        """From a coroutine on the host's loop: returns once the HTTP port is listening."""
        require_trigram_sqlite()
        self.secret = load_or_create_secret(self.config, self._env)
        self.http.start()
        await self.bridge.astart()
        self._start_maintenance()
        self._report_catalog()

    async def astop(self, reason: str = "stopped") -> None:
        self.follower.stop()
        self._stop_maintenance()
        await self.lifecycle.shutdown(reason)
        # The HTTP workers may be waiting on this loop, so stop them from a
        # thread of their own while the loop keeps running.
        stopped = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def stop_http() -> None:
            self.http.stop()
            loop.call_soon_threadsafe(stopped.set_result, None)

        threading.Thread(target=stop_http, name="http-stop").start()
        await stopped
        await self.bridge.astop()
        self.mirror.stop()
        self.state.close()

    # ---- shared ------------------------------------------------------------

    async def _subscribe_once(self) -> None:
        """Subscriptions survive reconnects in nats-py, so they are made on the first connect only."""
        if self._subscribed:
            return
        await self.kv.watch("acl", self.roles.invalidate)
        await self.follower.subscribe()
        await self.commands.subscribe(self.bridge)
        await self.lifecycle.subscribe()
        await self.activity_events.subscribe(self.bridge)
        self._subscribed = True

    def _start_maintenance(self) -> None:
        self.mirror.start()
        self.journal_replay.start()
        self._maintenance_stop.clear()
        self._maintenance_thread = threading.Thread(target=self._maintenance_loop, name="maintenance", daemon=True)
        self._maintenance_thread.start()

    def _stop_maintenance(self) -> None:
        self._maintenance_stop.set()
        if self._maintenance_thread is not None:
            self._maintenance_thread.join(5)
            self._maintenance_thread = None
        self.journal_replay.stop()

    def _maintenance_loop(self) -> None:
        """Mend the playlist index once KV is ready, then sweep expired keys every interval."""
        while not self._repair_playlists():
            if self._maintenance_stop.wait(1.0):
                return
        while not self._maintenance_stop.wait(self.janitor.interval_seconds):
            if not self.kv.ready:
                continue
            try:
                self.janitor.sweep()
            except ServiceError as exc:
                log.warning("janitor sweep skipped: %s", exc.message)

    def _repair_playlists(self) -> bool:
        if not self.kv.ready:
            return False
        try:
            self.playlists.repair()
        except ServiceError as exc:
            log.warning("playlist index repair postponed: %s", exc.message)
            return False
        return True

    def _report_catalog(self) -> None:
        """Say at start when search cannot work yet; the service runs anyway, and a refresh mends it."""
        try:
            self.catalog.snapshot_info()
        except ServiceError as exc:
            log.warning("catalog search unavailable: %s", exc.message)

    def _ping(self, _request: CommandRequest) -> dict[str, Any]:
        return {"version": package_version(), "uptime_seconds": self.lifecycle.uptime_seconds,
                "nats": "connected" if self.bridge.connected else "disconnected"}

    def _rank_of(self, username: str) -> int | None:
        user = self.robot.find_user(username)
        rank = user.get("rank") if user else None
        return rank if isinstance(rank, int) else None

    def health(self) -> dict[str, Any]:
        nats_state = "connected" if self.kv.ready else "disconnected"
        try:
            snapshot = self.catalog.snapshot_info()
        except ServiceError:
            snapshot = {"snapshot_id": None, "item_count": 0}
        pending_writes = self.state.pending_count()
        return {
            "status": "ok" if nats_state == "connected" and pending_writes == 0 else "degraded",
            "version": package_version(),
            "nats": nats_state,
            "robot": "seen" if self.robot.seen_recently() else "unknown",
            "snapshot_id": snapshot["snapshot_id"],
            "item_count": snapshot["item_count"],
            "pending_writes": pending_writes,
        }
