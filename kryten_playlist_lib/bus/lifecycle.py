"""Kryten lifecycle messages (nats.md section 2): startup, heartbeat, shutdown, discovery."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import nats.errors

from kryten_playlist_lib import package_version
from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.timeutil import iso, utcnow

log = logging.getLogger("kryten_playlist.lifecycle")

HEARTBEAT_SECONDS = 30.0


class Lifecycle:
    def __init__(self, config: Config, bridge: NatsBridge, http_port: Callable[[], int]) -> None:
        self._config = config
        self._bridge = bridge
        self._http_port = http_port
        self._started = time.monotonic()
        self._heartbeat: asyncio.Task[None] | None = None

    def subject(self, event: str) -> str:
        return f"{self._config.nats_subject_prefix}.lifecycle.{self._config.service_subject_name}.{event}"

    @property
    def uptime_seconds(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def payload(self, **extra: Any) -> dict[str, Any]:
        port = self._http_port()
        return {
            "service": self._config.service_subject_name,
            "version": package_version(),
            "hostname": socket.gethostname(),
            "timestamp": iso(utcnow()),
            "uptime_seconds": self.uptime_seconds,
            "metadata": {"endpoints": {
                "health": {"port": port, "path": "/api/v1/health"},
                "metrics": {"port": port, "path": "/metrics"},
            }},
            **extra,
        }

    async def _publish(self, event: str, **extra: Any) -> None:
        data = json.dumps(self.payload(**extra)).encode("utf-8")
        await self._bridge.nc.publish(self.subject(event), data)

    async def subscribe(self) -> None:
        """Answer discovery polls (every replica answers) and start the heartbeat."""
        async def on_poll(_msg: object) -> None:
            await self._publish("startup")

        poll_subject = f"{self._config.nats_subject_prefix}.service.discovery.poll"
        self._bridge.track(await self._bridge.nc.subscribe(poll_subject, cb=on_poll))
        self._heartbeat = asyncio.ensure_future(self._beat())
        self._bridge.track(self._heartbeat)

    async def announce(self) -> None:
        """A connect hook: say `startup` on every (re)connect."""
        await self._publish("startup")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self._bridge.connected:
                try:
                    await self._publish("heartbeat")
                except nats.errors.Error as exc:
                    log.debug("heartbeat not sent: %s", exc)

    async def shutdown(self, reason: str) -> None:
        if not self._bridge.connected:
            return
        try:
            await self._publish("shutdown", reason=reason)
            await self._bridge.nc.flush(timeout=1)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            log.debug("shutdown message not sent: %s", exc)
