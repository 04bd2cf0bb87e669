"""The robot's CyTube events (nats.md section 4) that drive now playing and the play counts.

Every replica subscribes without a queue group, so each hears every event; the
count-once rule in plays.py keeps one play from counting twice. There is one
subscription on `{pfx}.events.cytube.{chan}.*`, not one per event, because
nats-py hands one subscription's messages over in order, and a `changemedia`
must be paired with the `setcurrent` sent just before it. Any event at all is a
sign of life of the robot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg

from kryten_playlist_lib.activity.plays import MediaChange, Plays
from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.catalog.manifest import video_id_from_manifest
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.timeutil import parse_iso, utcnow
from kryten_playlist_lib.web.metrics import Metrics

log = logging.getLogger("kryten_playlist.events")

HANDLED_EVENTS = frozenset({"setcurrent", "changemedia"})
# A robot clock further off than this is not trusted: a timestamp far in the future would
# make every later change look stale (plays.py), so our own clock is used instead.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def events_subject(config: Config) -> str:
    """Every CyTube event of the configured channel (lower-cased, dots removed, as the robot names it)."""
    channel = config.cytube_channel.lower().replace(".", "")
    return f"{config.nats_subject_prefix}.events.cytube.{channel}.*"


class BadEvent(ValueError):
    """An event whose envelope or payload is not what nats.md describes."""


@dataclass(frozen=True)
class _Media:
    media_type: str
    media_id: str
    title: str | None
    seconds: int | None


class EventConsumer:
    def __init__(self, config: Config, catalog: CatalogReader, plays: Plays, robot: RobotClient,
                 metrics: Metrics) -> None:
        self._subject = events_subject(config)
        self._template = config.manifest_url_template
        self._catalog = catalog
        self._plays = plays
        self._robot = robot
        self._outcomes = metrics.counter(
            "kryten_playlist_play_events_total",
            "setcurrent/changemedia events: invalid ones, and what came of each changemedia.", ("outcome",))
        # Only the subscription's callback touches it, one message at a time.
        self._uid: int | None = None
        self.subscribed = False

    async def subscribe(self, bridge: NatsBridge) -> None:
        """On the loop, once: subscriptions survive reconnects."""
        bridge.track(await bridge.nc.subscribe(self._subject, cb=self._on_message))
        # Only once the server holds the subscription is no event published from now on missed.
        await bridge.nc.flush()
        self.subscribed = True

    async def _on_message(self, msg: Msg) -> None:
        self._robot.mark_seen()
        event = msg.subject.rsplit(".", 1)[-1]
        if event not in HANDLED_EVENTS:
            return
        try:
            payload, at = _decode(msg.data)
            if event == "setcurrent":
                self._uid = _uid(payload)
                return
            media = _media(payload)
        except BadEvent as exc:
            log.warning("ignored a %s event: %s", event, exc)
            self._outcomes.inc(outcome="invalid")
            return
        # Awaited rather than handed off, so the next event waits behind this one and order holds.
        outcome = await asyncio.to_thread(self._record, self._uid, media, at)
        self._outcomes.inc(outcome=outcome)

    def _record(self, uid: int | None, media: _Media, at: datetime) -> str:
        """On a worker thread: decide the catalog item and record the change; never raises."""
        try:
            item = self._catalog_item(media.media_type, media.media_id)
            change = MediaChange(
                uid=uid, media_type=media.media_type, media_id=media.media_id,
                title=item["title"] if item else media.title,
                duration_seconds=(item["duration_seconds"] if item else None) or media.seconds,
                video_id=item["video_id"] if item else None, at=at)
            return self._plays.media_changed(change)
        except ServiceError as exc:
            log.warning("media change %s not recorded: %s", media.media_id, exc.message)
        except Exception:
            log.exception("media change %s not recorded", media.media_id)
        return "failed"

    def _catalog_item(self, media_type: str, media_id: str) -> dict[str, Any] | None:
        """The catalog item a `cm` media id is the manifest URL of, or None."""
        if media_type != "cm":
            return None
        video_id = video_id_from_manifest(self._template, media_id)
        if video_id is None:
            return None
        try:
            return self._catalog.item(video_id)
        except ServiceError as exc:
            if exc.code == "no_snapshot":
                return None
            raise


def _decode(data: bytes) -> tuple[Any, datetime]:
    """The payload and the robot's time of an event envelope."""
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadEvent("the envelope is not JSON") from None
    if not isinstance(envelope, dict) or "payload" not in envelope:
        raise BadEvent("not an event envelope (no payload)")
    return envelope["payload"], _event_time(envelope.get("timestamp"))


def _event_time(timestamp: Any) -> datetime:
    now = utcnow()
    try:
        at = parse_iso(timestamp) if isinstance(timestamp, str) else now
    except ValueError:
        return now
    return at if abs(at - now) <= MAX_CLOCK_SKEW else now


def _uid(payload: Any) -> int:
    if isinstance(payload, bool) or not isinstance(payload, int):
        raise BadEvent(f"the uid is not an integer: {payload!r:.80}")
    return payload


def _media(payload: Any) -> _Media:
    if not isinstance(payload, dict):
        raise BadEvent("the payload is not an object")
    media_id, media_type, title, seconds = (payload.get(name) for name in ("id", "type", "title", "seconds"))
    if not isinstance(media_id, str) or not media_id or not isinstance(media_type, str) or not media_type:
        raise BadEvent("the media has no id or type")
    return _Media(media_type, media_id, title if isinstance(title, str) else None, _seconds(seconds))


def _seconds(value: Any) -> int | None:
    # CyTube says 0 seconds for live streams and unknown lengths: that is no duration.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return int(value)
