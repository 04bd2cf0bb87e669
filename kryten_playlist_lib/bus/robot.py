"""RobotClient: Kryten-Robot commands and state (nats.md section 3), from worker threads.

Every command is a request on `{pfx}.robot.command` in the kryten-py envelope.
Failures come out as (spec/robot.md):
- NATS down → `NatsUnavailable` (503 `nats_unavailable`);
- connected, but no reply in time, no responders, an unreadable reply, or the
  robot's own `success:false` → 503 `robot_unavailable`. An outer
  `success:false` means the robot's handler crashed: from here that is the
  robot failing, not the request being wrong, so it is reported the same way,
  with the robot's text in `details.robot_error`.

The text of a PM holds a one-time code, so it is never logged and never put
into an error, and a failed `pm` does not pass the robot's error text on.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import nats.errors
import nats.js.errors

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import NatsUnavailable, ServiceError
from kryten_playlist_lib.timeutil import iso, utcnow

log = logging.getLogger("kryten_playlist.robot")

SOURCE = "playlist"
SEEN_WINDOW_SECONDS = 60.0
USERS_KEY = "users"
# The bridge's own deadline must fall after the request's, so that a robot that
# stays silent is reported as the robot, not as NATS.
BRIDGE_GRACE_SECONDS = 1.0


def userlist_bucket(channel: str) -> str:
    """The robot's userlist bucket; the channel keeps its case (nats.md section 3)."""
    return f"kryten_{channel}_userlist"


def playlist_bucket(channel: str) -> str:
    """The robot's queue state bucket; the channel's case is kept (nats.md section 3)."""
    return f"kryten_{channel}_playlist"


def match_user(users: list[dict[str, Any]], username: str) -> dict[str, Any] | None:
    """The entry of `users` whose name equals `username` ignoring case, else None."""
    wanted = username.lower()
    return next((user for user in users if str(user.get("name", "")).lower() == wanted), None)


def robot_unavailable(command: str, message: str = "The robot did not answer.",
                      robot_error: str | None = None) -> ServiceError:
    details: dict[str, Any] = {"command": command}
    if robot_error is not None:
        details["robot_error"] = robot_error
    return ServiceError("robot_unavailable", message, details)


class RobotClient:
    def __init__(self, bridge: NatsBridge, config: Config) -> None:
        self._bridge = bridge
        self._config = config
        self._subject = f"{config.nats_subject_prefix}.robot.command"
        self._userlist_bucket = userlist_bucket(config.cytube_channel)
        # Monotonic time of the last sign of life; a float store is atomic, so no lock.
        self.last_seen: float | None = None

    # ---- liveness (health: `robot: "seen"`) -------------------------------

    def mark_seen(self) -> None:
        """Note a sign of life: a reply here, or an event for the event consumers."""
        self.last_seen = time.monotonic()

    def seen_recently(self, seconds: float = SEEN_WINDOW_SECONDS) -> bool:
        seen = self.last_seen
        return seen is not None and time.monotonic() - seen <= seconds

    # ---- commands ------------------------------------------------------

    def command(self, name: str, args: dict[str, Any], timeout: float | None = None,
                top_level: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return the reply's `data`; see the module notes for failures."""
        return self._command(name, args, timeout, top_level, reveal_error=True)

    def pm(self, to: str, msg: str) -> None:
        """Hand a private message to the robot; CyTube reports a later refusal as an event."""
        data = self._command("pm", {"to": to, "msg": msg}, None, None, reveal_error=False)
        if data.get("success") is not True:
            raise robot_unavailable("pm", "The robot could not send the private message.")

    def user(self, username: str) -> dict[str, Any] | None:
        """The robot's `state.user` (exact case); None when the robot does not know the name."""
        data = self.command("state.user", {}, top_level={"username": username})
        user = data.get("user")
        return user if isinstance(user, dict) else None

    def _command(self, name: str, args: dict[str, Any], timeout: float | None,
                 top_level: dict[str, Any] | None, *, reveal_error: bool) -> dict[str, Any]:
        wait = self._config.robot_timeout_seconds if timeout is None else timeout
        payload = json.dumps(self.envelope(name, args, top_level)).encode("utf-8")
        raw = self._bridge.run(self._ask, name, payload, wait, timeout=wait + BRIDGE_GRACE_SECONDS)
        self.mark_seen()
        reply = _decode(raw)
        if reply is None:
            raise robot_unavailable(name, "The robot's reply could not be read.")
        if reply.get("success") is not True:
            if not reveal_error:
                raise robot_unavailable(name, "The robot failed to carry out the command.")
            error = str(reply.get("error") or "no reason given")
            log.warning("robot command %s failed: %s", name, error)
            raise robot_unavailable(name, "The robot failed to carry out the command.", error)
        data = reply.get("data")
        return data if isinstance(data, dict) else {}

    def envelope(self, name: str, args: dict[str, Any], top_level: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        """The kryten-py request envelope; `top_level` keys sit beside `args` and never replace its fields."""
        meta = {"source": SOURCE, "timestamp": iso(utcnow()), "request_id": str(uuid.uuid4()),
                "domain": self._config.cytube_domain, "channel": self._config.cytube_channel}
        return {**(top_level or {}), "service": "robot", "command": name, "args": args, "meta": meta}

    async def _ask(self, name: str, payload: bytes, wait: float) -> bytes:
        nc = self._bridge.nc
        try:
            msg = await nc.request(self._subject, payload, timeout=wait)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            # A connection lost while waiting is NATS's fault, not the robot's.
            if not nc.is_connected:
                raise NatsUnavailable() from exc
            raise robot_unavailable(name) from exc
        return msg.data

    # ---- users ----------------------------------------------------------

    def userlist(self) -> list[dict[str, Any]] | None:
        """The channel's users from the robot's KV; None when the userlist is not known."""
        raw = self._bridge.run(self._read_userlist)
        if raw is None:
            return None
        users = _decode_list(raw)
        if users is None:
            log.warning("the robot's userlist in %s is not a JSON array; treating it as unknown",
                        self._userlist_bucket)
            return None
        return [user for user in users if isinstance(user, dict)]

    # ---- the queue --------------------------------------------------------

    def state_playlist(self) -> list[dict[str, Any]]:
        """The true queue, from the robot (`state.playlist`); its KV can lag (the uid-0 quirk)."""
        playlist = self.command("state.playlist", {}).get("playlist")
        return [item for item in playlist if isinstance(item, dict)] if isinstance(playlist, list) else []

    def queue_from_kv(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
        """The queue items and the current media as the robot's KV last recorded them; None when unknown."""
        bucket = playlist_bucket(self._config.cytube_channel)
        items_raw = self._bridge.run(self._read_robot_kv, bucket, "items")
        if items_raw is None:
            return None
        items = _decode_list(items_raw) or []
        current_raw = self._bridge.run(self._read_robot_kv, bucket, "current")
        current = _decode(current_raw) if current_raw is not None else None
        return [item for item in items if isinstance(item, dict)], current

    def find_user(self, username: str) -> dict[str, Any] | None:
        """The user from the userlist, names compared ignoring case; None if absent or unknown."""
        users = self.userlist()
        return None if users is None else match_user(users, username)

    async def _read_userlist(self) -> bytes | None:
        return await self._read_robot_kv(self._userlist_bucket, USERS_KEY)

    async def _read_robot_kv(self, bucket_name: str, key: str) -> bytes | None:
        try:
            bucket = await self._bridge.nc.jetstream().key_value(bucket_name)
            entry = await bucket.get(key)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError):
            return None
        return entry.value


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _decode_list(raw: bytes) -> list[Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, list) else None
